"""The ledger: every line sent to each build's testpmd, and which parser refused one.

The refusals are real answers: testpmd 22.11's to a word it does not know, 24.11's to
22.11's bonding line (tests/data/testpmd, tests/data/testpmd-24.11).
"""

from __future__ import annotations

import json
from pathlib import Path

from framework.dpdk import ledger
from framework.dpdk.ledger import Sent, parser_refusal
from framework.report import summary as report_summary
from framework.report.commands import SENT_PROPERTY, command_table, sent_of
from framework.report.summary import build_summary, render_html

DATA = Path(__file__).resolve().parents[1] / "data"
OLD_WORDS = "create bonded device 1 0"


def test_the_parsers_refusals_are_told_from_a_drivers() -> None:
    assert parser_refusal((DATA / "testpmd-24.11/error_create_bonded_device.txt").read_text()) == (
        "Bad arguments"
    )
    assert parser_refusal((DATA / "testpmd/error_command_not_found.txt").read_text()) == (
        "Command not found"
    )
    # the driver's answer to a parsed line is the DUT's, not a misspelling
    for driver in ("error_invalid_port", "error_set_vf_rxmode", "error_port_stop_bond_member"):
        assert parser_refusal((DATA / f"testpmd/{driver}.txt").read_text()) == "", driver


def test_the_ledger_gives_each_line_once_and_starts_afresh() -> None:
    ledger.take()
    one = Sent("dut", "22.11.11", "show port stats 0")
    for sent in (one, one, Sent("vm", "24.11.3", OLD_WORDS, "Bad arguments"), one):
        ledger.note(sent)
    assert ledger.take() == [one, Sent("vm", "24.11.3", OLD_WORDS, "Bad arguments")]
    assert ledger.take() == []


def test_a_line_one_build_refused_shows_what_each_build_said() -> None:
    rows = command_table(
        [
            (1, "installed", Sent("vm0", "22.11.11", OLD_WORDS)),
            (1, "24.11", Sent("vm0", "24.11.3", OLD_WORDS, "Bad arguments")),
            (1, "24.11", Sent("vm0", "24.11.3", "create bonding device 1 0")),
            (1, "installed", Sent("dut", "22.11.11", "set fwd mac")),
            (1, "24.11", Sent("dut", "24.11.3", "set fwd mac")),
        ],
        ["installed", "24.11"],
    )
    by_command = {r["command"]: r for r in rows}
    assert by_command[OLD_WORDS]["refused"] == {"24.11": ["24.11.3: Bad arguments"]}
    assert by_command[OLD_WORDS]["taken"] == {"installed": ["22.11.11"]}
    assert by_command["create bonding device 1 0"]["taken"] == {"24.11": ["24.11.3"]}
    assert by_command["set fwd mac"]["taken"] == {"installed": ["22.11.11"], "24.11": ["24.11.3"]}
    assert not by_command["set fwd mac"]["refused"]
    assert by_command["set fwd mac"]["to"] == ["dut"] and by_command[OLD_WORDS]["to"] == ["vm0"]


def test_the_run_s_own_names_are_one_command() -> None:
    rows = command_table(
        [
            (6, "a", Sent("h", "22.11.11", "port attach net_virtio_user0,path=/tmp/hc-3k9a/s")),
            (6, "b", Sent("h", "24.11.3", "port attach net_virtio_user0,path=/tmp/hc-9zzq/s")),
        ],
        ["a", "b"],
    )
    assert [r["taken"] for r in rows] == [{"a": ["22.11.11"], "b": ["24.11.3"]}]


def test_the_summary_shows_the_refused_lines_first_and_folds_the_rest() -> None:
    refused = Sent("vm0", "24.11.3", OLD_WORDS, "Bad arguments")
    props = [(SENT_PROPERTY, json.dumps(refused.__dict__))] * 2
    assert sent_of(props) == [refused]
    node = "testsuites/test_sriov_bond_migration.py::test_live_migration_with_sriov_vf_and_bonding"
    record = report_summary.TestRecord
    records = [
        record(f"{node}[installed]", 1, "installed", "passed", build="installed",
               sent=[Sent("vm0", "22.11.11", OLD_WORDS), Sent("dut", "22.11.11", "start")]),
        record(f"{node}[24.11]", 1, "24.11", "failed", build="24.11",
               sent=[refused, Sent("dut", "24.11.3", "start")]),
    ]  # fmt: skip
    run = {"name": "r", "topology": "virtual", "started": 0, "duration_s": 1, "faults": []}
    summary = build_summary(records, run, {}, None)
    assert [r["command"] for r in summary["commands"]] == [OLD_WORDS, "start"]
    page = render_html(summary)
    assert "2 distinct commands sent to the testpmds of 2 build(s); 1 refused" in page
    refused_at = page.index("REFUSED by 24.11.3: Bad arguments")
    assert refused_at < page.index("<details><summary>the commands no build refused")
    assert page.index("<code>start</code>") > page.index("<details>")
