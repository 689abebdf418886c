"""Every command the suite sent to each DPDK build's testpmd: the summary's command table.

TestPmd notes each line it sends, with the release of the testpmd and whether that
release's parser took it (framework.dpdk.ledger). The report plugin moves the lines onto
the running test before each phase's report; the summary folds them, per guide, into one
row per command with a column per build: which releases took it, which refused it. A
refused line also failed its test (TestPmdParseError): the table shows every other build's
answer to the same line beside it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from framework.dpdk import ledger
from framework.dpdk.ledger import Sent
from framework.report.attach import record_rows, recorded_rows
from framework.report.drift import comparable

SENT_PROPERTY = "sent"


def record_sent() -> None:
    """Move the lines sent since the last call onto the running test, for the summary."""
    record_rows(SENT_PROPERTY, ledger.take())


def sent_of(properties: Sequence[tuple[str, object]]) -> list[Sent]:
    """The lines a test sent to its testpmds, in order, each once."""
    return recorded_rows(properties, SENT_PROPERTY, Sent)


def command_table(
    sent: Iterable[tuple[int, str, Sent]], builds: Sequence[str]
) -> list[dict[str, Any]]:
    """One row per guide and command (run-specific names masked): what each build said.

    `sent`: (guide, build, line) of every test of the run. Each row holds the testpmds it
    was sent to and, per build, the releases whose parser took it and those that refused
    it (with the refusal).
    """
    rows: dict[tuple[int, str], dict[str, Any]] = {}
    for guide, build, line in sent:
        command = comparable(line.command)
        row = rows.setdefault(
            (guide, command),
            {"guide": guide, "command": command, "to": [], "taken": {}, "refused": {}},
        )
        if (to := comparable(line.testpmd)) not in row["to"]:
            row["to"].append(to)
        if line.refused:
            said = f"{line.release}: {line.refused}"
            if said not in row["refused"].setdefault(build, []):
                row["refused"][build].append(said)
        elif line.release not in row["taken"].setdefault(build, []):
            row["taken"][build].append(line.release)
    return [
        row
        | {
            "taken": {b: row["taken"][b] for b in builds if b in row["taken"]},
            "refused": {b: row["refused"][b] for b in builds if b in row["refused"]},
        }
        for _, row in sorted(rows.items(), key=lambda kv: kv[0])
    ]
