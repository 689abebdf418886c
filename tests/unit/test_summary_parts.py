"""The conformance summary's judgements: regressions, kinds of skip, the previous run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from framework.report.figures import Better, Figure, format_value
from framework.report.outcomes import (
    LACKS,
    NOT_APPLICABLE,
    PLANNED,
    UNEXPECTED,
    refusal,
    skip_kind,
)
from framework.report.summary import SCHEMA, SUMMARY_JSON, find_previous


@pytest.mark.parametrize(
    ("better", "previous", "value", "tolerance", "slack", "flagged"),
    [
        ("lower", 100, 151, 0.5, 0, True),
        ("lower", 100, 149, 0.5, 0, False),
        ("lower", 100, 10, 0.5, 0, False),  # better, however much
        ("lower", 0, 30, 0.25, 50, False),  # within the absolute slack
        ("lower", 0, 60, 0.25, 50, True),
        ("higher", 1000, 700, 0.2, 0, True),
        ("higher", 1000, 850, 0.2, 0, False),
        ("higher", 1000, 5000, 0.2, 0, False),
        ("info", 1000, 1, 0.0, 0, False),  # shown, never a regression
    ],
)
def test_regression_is_worse_beyond_tolerance_and_slack(
    better: Better, previous: float, value: float, tolerance: float, slack: float, flagged: bool
) -> None:
    figure = Figure("x", value, "ms", better, tolerance, slack)
    assert (figure.regression_from(previous) is not None) == flagged


def test_regression_line_names_both_values() -> None:
    line = Figure("migration downtime", 400, "ms", "lower", 0.5).regression_from(100)
    assert line == "migration downtime up 300%: 400 ms vs 100 ms (tolerated: 50%)"
    assert "from 0" in (Figure("lost", 60, "frames", "lower", 0.25, 50).regression_from(0) or "")


def test_figure_round_trips_through_its_property() -> None:
    figure = Figure("NDR", 21400.4, "pps", "higher", 0.2)
    assert Figure.from_json(figure.to_json()) == figure
    assert (
        format_value(21400.5, "pps") == "21,400 pps" or format_value(21400.5, "pps") == "21,401 pps"
    )
    assert format_value(0, "frames") == "0 frames" and format_value(12.34, "ms") == "12.3 ms"


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        ("topology 'virtual' lacks niantic (an Intel 82599 (ixgbe) NIC on a DUT host)", LACKS),
        ("lacks: topology virtual has no pvp section", LACKS),
        ("not applicable: one queue pair: see the two-queue set-up", NOT_APPLICABLE),
        ("tg has no iperf3 (the TG's end of the TCP test)", UNEXPECTED),
        ("no NDR at 64 B from test_ndr_and_pdr in this run to compare with", UNEXPECTED),
        ("planned: its commands were recorded (plan.txt)", PLANNED),
        # a PMD refusing a path is not a missing capability (it fails: fail_refused)
        ("DUT refused: vm-split-vectorized: the PMD took another path", UNEXPECTED),
    ],
)
def test_skip_kind_comes_from_the_reason(reason: str, kind: str) -> None:
    assert skip_kind(reason) == kind


def test_a_refusal_is_found_in_the_failure_line() -> None:
    line = "setup: Failed: DUT refused: vm-split-vectorized: the PMD took another path"
    assert refusal(line) == "vm-split-vectorized: the PMD took another path"
    assert refusal("AssertionError: guide: 32 frames arrive; 0 did") == ""


def _write(root: Path, name: str, topology: str, finished: float, **run: object) -> None:
    rows = run.pop("rows", [{"status": "passed"}])
    data = {
        "schema": SCHEMA,
        "run": {"name": name, "topology": topology, "finished": finished, "ran_tests": True,
                "plan": False, "faults": [], **run},
        "rows": rows,
    }  # fmt: skip
    (root / name).mkdir()
    (root / name / SUMMARY_JSON).write_text(json.dumps(data))


def test_previous_run_is_the_latest_real_run_on_the_same_topology(tmp_path: Path) -> None:
    _write(tmp_path, "a", "virtual", 100.0)
    _write(tmp_path, "b", "virtual", 200.0)  # the one
    _write(tmp_path, "c", "lab", 300.0)  # another topology
    _write(tmp_path, "d", "virtual", 400.0, plan=True)
    _write(tmp_path, "e", "virtual", 500.0, faults=["container-port-stopped"])
    _write(tmp_path, "f", "virtual", 600.0, rows=[{"status": "not run"}])  # self-tests
    _write(tmp_path, "g", "virtual", 700.0, ran_tests=False)
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / SUMMARY_JSON).write_text("{ half written")
    found = find_previous(tmp_path, "virtual", "now")
    assert found is not None and found[0].name == "b"
    found = find_previous(tmp_path, "virtual", "b")
    assert found is not None and found[0].name == "a"
    assert find_previous(tmp_path, "nowhere", "now") is None


def test_an_expected_failure_for_a_known_defect_fails_the_row() -> None:
    import pytest as _pytest

    from framework.report.summary import Collector, build_rows

    report = _pytest.TestReport(
        "testsuites/test_x.py::test_y[v]", ("testsuites/test_x.py", 1, "test_y"), {},
        "skipped", None, "call", user_properties=[("guide", 1), ("variant", "v")],
    )  # fmt: skip
    report.wasxfail = "known defect: QEMU's destination handed a frame 2 bytes short"
    collector = Collector()
    collector.add_report(report)
    (row,) = [r for r in build_rows(collector.records.values()) if r.guide == 1]
    assert row.status == "failed" and row.message.startswith("known defect: QEMU")
