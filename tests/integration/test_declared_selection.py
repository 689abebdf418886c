"""What a topology leaves out for time is a declared selection, never a skip.

Guide 4's rate searches on the set-ups other than the guide's (its path, one queue pair) run at
pvp.other_paths_frame_sizes only: the others are deselected at collection (no test is
skipped) and the summary lists them as not selected, naming the topology's field. The
runs select only what the topology leaves out, so no DUT is started.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from framework.report.summary import SUMMARY_HTML, SUMMARY_JSON
from tests.integration.guide_runs import on_builds, run_guide
from tests.integration.topology_files import virtual_variant

MODULE = "testsuites/test_pvp_benchmark.py"
# the guide's own set-up is split-mergeable with one queue pair (not the -2q one)
LEFT_OUT = "ndr_and_pdr and 1518B and (not split-mergeable or 2q)"


def _summary(reports: Path) -> dict:
    (found,) = [p for p in reports.glob(f"*/{SUMMARY_JSON}") if not p.parent.is_symlink()]
    return json.loads(found.read_text())


def test_searches_left_out_for_time_are_not_selected_not_skipped(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    run = run_guide(reports, MODULE, "-k", LEFT_OUT, timeout=300)
    assert run.returncode == 5, run.output[-2000:]  # nothing left to run: no test skipped
    assert "skipped" not in run.stdout.splitlines()[-1], run.stdout[-500:]
    rows = [r for r in _summary(reports)["rows"] if r["guide"] == 4]
    left_out = [entry for r in rows for entry in r["not_selected"]]
    # 13 paths other than split-mergeable (container and VM) and the container's two
    # queue pairs, one 1518 B search each
    assert len(left_out) == 14, left_out
    assert all(
        "topology virtual: pvp.other_paths_frame_sizes [64], set-ups other than "
        "split-mergeable with one queue pair are measured at these sizes only (time)" in entry
        for entry in left_out
    ), left_out
    assert all(r["tests"].get("skipped", 0) == 0 for r in rows)
    page = next(reports.glob(f"*/{SUMMARY_HTML}")).read_text()
    assert "not selected (topology virtual: pvp.other_paths_frame_sizes [64]" in page


def test_the_topology_field_decides_what_is_selected(tmp_path: Path) -> None:
    both = virtual_variant(
        tmp_path, "all-sizes", lambda t: t["pvp"].update(other_paths_frame_sizes=[64, 1518])
    )
    run = run_guide(
        tmp_path / "reports", MODULE, "-k", LEFT_OUT, "--collect-only", "--topology", str(both)
    )
    assert run.returncode == 0, run.output[-2000:]
    # 14 selected, whatever else the module holds
    assert re.search(r"\b14/\d+ tests collected", run.stdout), run.stdout[-500:]


RECONNECT = "testsuites/test_vhost_user_reconnect.py"
# the set-up selections: the port restarts (pvp.restart_setups), the reconnect plan's
# stability forms and two-VM cases (pvp.reconnect_stability_forms, reconnect_two_vm_forms)
BY_SETUP = "vhost_port_restart or leaks_nothing or two_vms or two_kernel_guests"


def _selected(reports: Path, *builds: str) -> list[str]:
    run = run_guide(
        reports, MODULE, RECONNECT, "-k", BY_SETUP, "--collect-only", *on_builds(*builds)
    )
    assert run.returncode == 0, run.output[-2000:]
    return [line for line in run.stdout.splitlines() if "::" in line]


def test_a_selection_of_set_ups_holds_under_every_dpdk_build_alike(tmp_path: Path) -> None:
    # With several builds a test's id also names its build: the set-ups the topology names
    # must still be selected under each (they once matched no id, and were left out).
    one = _selected(tmp_path / "one", "installed")
    assert len(one) >= 8, one
    mix = "host-24.11-guest-installed"
    two = _selected(tmp_path / "two", "installed", mix)
    under_mix = sorted(t for t in two if t.endswith(f"-{mix}]"))
    under_installed = sorted(t for t in two if t not in under_mix)
    for build, under in (("installed", under_installed), (mix, under_mix)):
        assert [t.removesuffix(f"-{build}]") + "]" for t in under] == sorted(one), under
