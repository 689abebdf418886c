"""The guides' commands and what ran in their place, per test: the summary's drift table.

A guide of 17.05 names commands that later DPDK releases spell otherwise, or that the lab
runs another way. Scenarios record each pair as they run it (`attach_drift`): a table on
the test's report, and a user property the summary folds into one table of the run, a
column per DPDK build, so a validation engineer sees what changed between builds and why.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from framework.dpdk.args import translate_guide_command
from framework.dpdk.version import DpdkVersion
from framework.report.attach import attach_table, record_rows, recorded_rows

DRIFT_PROPERTY = "drift"
# What differs between builds (or runs) and says nothing of DPDK: the TCP ports a run
# picks for itself (QMP, migration), the run's name prefix (file prefixes, sockets,
# containers), each build's own testpmd path and the guest image made from it.
_NOT_A_DIFFERENCE = (
    (re.compile(r":\d{4,5}\b"), ":<port>"),
    (re.compile(r"\bhc-[0-9a-z]{4}\b"), "hc-<run>"),
    (re.compile(r"\S*dpdk-testpmd\b"), "<testpmd>"),
    (re.compile(r"/guest/[^/\s]+-[0-9a-f]{12}/"), "/guest/<image>/"),
)


def comparable(text: str) -> str:
    """`text` with what differs between builds but is no difference masked."""
    for pattern, mask in _NOT_A_DIFFERENCE:
        text = pattern.sub(mask, text)
    return text


@dataclass(frozen=True)
class Drift:
    """A guide's command, what ran here instead, and why they differ ("" if they do not)."""

    guide: str
    ran: str
    why: str = ""


def launch_drift(guide: str, argv: Sequence[str], version: DpdkVersion, fitted: str) -> Drift:
    """A guide's testpmd command line beside the argv that ran in its place.

    Why they differ: how the guide's line is respelt for the release of the testpmd that
    ran (translate_guide_command's changes), then `fitted`, what the lab sets otherwise.
    Interactive commands after the line (`; set portlist ...`) are not part of it.
    """
    line = guide.split(";", 1)[0].strip()
    changes = translate_guide_command(line, version, argv[0]).changes
    return Drift(guide, shlex.join(argv), "; ".join([*changes, fitted] if fitted else changes))


def _as_drift(row: Drift | tuple[str, str]) -> Drift:
    return row if isinstance(row, Drift) else Drift(*row)


def attach_drift(rows: Iterable[Drift | tuple[str, str]]) -> None:
    """Attach "guide vs ran" to the running test and record it for the run's drift table."""
    drifts = [_as_drift(row) for row in rows]
    if not drifts:
        return
    attach_table(
        "guide vs ran", ["guide", "ran here", "why"], [(d.guide, d.ran, d.why) for d in drifts]
    )
    record_rows(DRIFT_PROPERTY, drifts)


def drifts_of(properties: Sequence[tuple[str, object]]) -> list[Drift]:
    """The drift a test recorded, in order, each once."""
    return recorded_rows(properties, DRIFT_PROPERTY, Drift)


def drift_table(
    drifts: Iterable[tuple[int, str, Drift]], builds: Sequence[str]
) -> list[dict[str, Any]]:
    """One row per guide and guide command: what ran on each build, why, and whether they differ.

    `drifts`: (guide, build, drift) of every test of the run. Builds are compared with what
    is no drift masked: the TCP ports a run picks (QMP, migration), each build's testpmd
    path and guest image (the why column names a binary's change).
    """
    rows: dict[tuple[int, str], dict[str, Any]] = {}
    for guide, build, drift in drifts:
        row = rows.setdefault(
            (guide, drift.guide),
            {"guide": guide, "command": drift.guide, "ran": {}, "why": {}},
        )
        ran: dict[str, list[str]] = row["ran"]
        if drift.ran not in ran.setdefault(build, []):
            ran[build].append(drift.ran)
        if drift.why:
            row["why"].setdefault(build, drift.why)
    table = []
    for _, row in sorted(rows.items(), key=lambda kv: kv[0][0]):
        ran = {b: row["ran"].get(b, []) for b in builds}
        seen = {tuple(sorted({comparable(r) for r in v})) for v in ran.values() if v}
        table.append(row | {"ran": ran, "differs": len(seen) > 1})
    return table


def differing(table: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The rows whose command ran differently on some build."""
    return [row for row in table if row["differs"]]
