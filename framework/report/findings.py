"""What the DUT answered to the same command on each DPDK build: the summary's findings.

Drift (report.drift) is a command spelt otherwise; a finding is the same command answered
otherwise: a state a release reports differently (a bond without members still "up"), a
refusal worded anew, a default changed. Tests record an answer they show anyway with
`observe`; the summary compares each answer across the builds of the run and lists those
that differ, with every build's output.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from framework.report.attach import attach_text, record_rows, recorded_rows
from framework.report.drift import comparable

OBSERVED_PROPERTY = "observed"


@dataclass(frozen=True)
class Observation:
    """What a command answered on the DUT, named by what it shows."""

    what: str
    command: str
    output: str


def observe(what: str, command: str, output: str) -> None:
    """Attach `command`'s answer to the running test and record it for the findings."""
    attach_text(what, f"{command}\n{output}")
    record_rows(OBSERVED_PROPERTY, [Observation(what, command, output)])


def observations_of(properties: Sequence[tuple[str, object]]) -> list[Observation]:
    """The observations a test recorded, in order, each once."""
    return recorded_rows(properties, OBSERVED_PROPERTY, Observation)


def _comparable(output: str) -> str:
    return comparable("\n".join(line.rstrip() for line in output.strip().splitlines()))


def findings_table(
    observations: Iterable[tuple[int, str, Observation]], builds: Sequence[str]
) -> list[dict[str, Any]]:
    """One row per guide, observation and command that ran on two builds or more.

    Each row holds every build's distinct answers (run-specific names masked) and whether
    they differ between builds: those are the findings.
    """
    rows: dict[tuple[int, str, str], dict[str, list[str]]] = {}
    for guide, build, seen in observations:
        texts = rows.setdefault((guide, seen.what, seen.command), {}).setdefault(build, [])
        if (text := _comparable(seen.output)) not in texts:
            texts.append(text)
    table = []
    for (guide, what, command), by_build in sorted(rows.items(), key=lambda kv: kv[0][0]):
        if len(by_build) < 2:
            continue  # one build: nothing to compare
        outputs = {b: by_build[b] for b in builds if b in by_build}
        distinct = {tuple(sorted(v)) for v in outputs.values()}
        table.append(
            {
                "guide": guide,
                "what": what,
                "command": command,
                "outputs": outputs,
                "differs": len(distinct) > 1,
            }
        )
    return table
