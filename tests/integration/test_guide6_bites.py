"""Guide 6's checks bite: run the real test module against a DUT broken on purpose.

Each case runs testsuites/test_virtio_user_container.py in a child pytest with one
--inject-fault and asserts it fails, in the test that should catch the fault, with a
message that says what the guide promised and what was seen.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from framework.lab.leftovers import snapshot
from framework.report.summary import SUMMARY_JSON
from tests.integration.guide_runs import run_guide

MODULE = "testsuites/test_virtio_user_container.py"


@pytest.mark.parametrize(
    "fault, test, message",
    [
        (
            "container-forwards-nothing",
            "test_traffic_crosses_vhost_user_into_the_container",
            "expected 256 packets on eth1, saw 0",
        ),
        (
            "container-port-stopped",
            "test_traffic_crosses_vhost_user_into_the_container",
            "expected 256 packets on eth1, saw 0",
        ),
        (
            "single-queue",
            "test_multiqueue_spreads_flows_over_both_queues",
            "queue 1 carried no traffic",
        ),
    ],
)
def test_broken_dut_fails_the_guide(tmp_path: Path, fault: str, test: str, message: str) -> None:
    before = snapshot()
    done = run_guide(tmp_path, MODULE, "-k", test.removeprefix("test_"), fault=fault, timeout=600)
    assert snapshot().new_since(before) == {}, "a failing guide run cleans up too"
    output = done.output
    assert done.returncode == 1, f"with fault {fault} the guide-6 test must fail:\n{output[-3000:]}"
    assert f"FAILED {MODULE}::{test}" in output
    assert message in output, f"the failure says why ({message!r}):\n{output[-3000:]}"
    # The run's conformance summary says the same: the guide's row failed, with that line.
    summary = json.loads((tmp_path / "latest" / SUMMARY_JSON).read_text())
    (row,) = [r for r in summary["rows"] if r["module"] == "test_virtio_user_container"]
    assert row["status"] == "failed" and row["message_test"].startswith(test), row
    assert message in row["message"], row
    assert row["testbeds"] == ["virtual"] and row["dpdk"] == [
        summary["environment"]["DPDK version"]
    ]
    assert not summary["sign_off"]["ok"]


def test_guide_run_leaves_the_machine_as_it_was(tmp_path: Path) -> None:
    """Namespaces, processes, hugepage files, DPDK runtime dirs, containers and the lab's
    socket directories are exactly as before a passing guide-6 run."""
    before = snapshot()
    done = run_guide(tmp_path, MODULE, timeout=600)
    assert done.returncode == 0, done.output[-3000:]
    assert snapshot().new_since(before) == {}
    # A correct DUT's run of the whole module may sign off guide 6, and only guide 6.
    sign = json.loads((tmp_path / "latest" / SUMMARY_JSON).read_text())["sign_off"]
    assert sign["ok"] and sign["guides_passed"] == [6], sign


def test_unknown_fault_is_one_line(tmp_path: Path) -> None:
    done = run_guide(tmp_path, MODULE, fault="gremlins", timeout=600)
    assert done.returncode == 4
    assert "ERROR: --inject-fault: unknown fault gremlins (known: container-forwards-nothing" in (
        done.stderr
    )
