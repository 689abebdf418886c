"""Guide 4's checks bite: the real PVP module against a DUT broken on purpose.

Each case runs testsuites/test_pvp_benchmark.py in a child pytest on one set-up (the
container, split-mergeable, one queue pair) and one frame size, on a copy of the virtual
topology with short, coarse searches (1 s trials, 25 % width, up to 8 kpps) and a baseline
file in a temporary directory. Every run shares that copy; each asserts the run fails in
the test that should catch the fault, with the message of the promise it breaks, and
leaves nothing behind:

- a host losing 1 frame in 100 (pvp-drops-1-in-100) has no loss-free rate: the NDR test
  fails naming the first lossy trial, and so does the restart test, which needs the NDR;
- a correct DUT writes the baseline (--update-baseline); a DUT losing every frame above
  2 kpps (pvp-drops-after-1000) still has an NDR, far below it, and fails the gate;
- the restart test run alone measures its own NDR: it passes (and the run may sign off
  guide 4) on a correct DUT, and fails when stopped ports still forward
  (pvp-host-stop-ignored) or restarted ones forward nothing (pvp-guest-resumes-nothing).
"""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from framework.faults import PVP_FIRST_KEPT
from framework.lab.leftovers import snapshot
from framework.report.summary import SUMMARY_JSON
from tests.integration.guide_runs import ROOT, GuideRun, run_guide

MODULE = "testsuites/test_pvp_benchmark.py"
SETUP = "container-split-mergeable and not 2q"
NDR_TEST = f"{MODULE}::test_ndr_and_pdr[64B-container-split-mergeable]"
RESTART_TEST = f"{MODULE}::test_vhost_port_restart[container-split-mergeable]"
KEY = "container/split-mergeable/q1/64B"
MIN_PPS, MAX_PPS = 500, 8000
# The child runs' name prefix: what they leave is told apart from other runs on the machine.
NAME_PREFIX = "hg4"
NO_NDR = f"NDR: no loss-free rate at or above min_pps {MIN_PPS:,} pps"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(topology, baseline): the virtual topology with cheap searches and a baseline file."""
    directory = tmp_path_factory.mktemp("guide4")
    data = yaml.safe_load((ROOT / "topologies" / "virtual.yaml").read_text())
    data["virtual_lab"]["name_prefix"] = NAME_PREFIX
    baseline = directory / "baseline.json"
    data["pvp"].update(
        frame_sizes=[64], trial_s=1, relative_width=0.25, min_pps=MIN_PPS, max_pps=MAX_PPS,
        baseline=str(baseline), tolerance=0.5, restart_setups=["container-split-mergeable"],
        restart_rounds=2,
    )  # fmt: skip
    topology = directory / "virtual-guide4.yaml"
    topology.write_text(yaml.safe_dump(data))
    return topology, baseline


def _run(reports: Path, topology: Path, select: str, *extra: str, fault: str | None = None):
    """The module on SETUP and `select`, timed; nothing may be left behind."""
    assert snapshot().owned_by(NAME_PREFIX) == {}, f"no {NAME_PREFIX} run is on the machine"
    started = time.monotonic()
    run = run_guide(reports, MODULE, "-k", f"{SETUP} and ({select})", "--topology",
                    str(topology), *extra, fault=fault)  # fmt: skip
    print(f"\n{fault or 'correct DUT'}, -k {select!r}: {time.monotonic() - started:.0f} s")
    left = snapshot().owned_by(NAME_PREFIX)
    assert left == {}, f"namespaces, testpmds, container, files are gone: {left}"
    return run


def _summary(reports: Path) -> dict:
    return json.loads((reports / "latest" / SUMMARY_JSON).read_text())


def _results(reports: Path) -> dict:
    return json.loads(next(reports.glob("*/pvp/results.json")).read_text())["results"]


def _failures(reports: Path) -> dict[str, str]:
    """Each failed test of the run's junit.xml (module::name) with its failure message."""
    found = {}
    for case in ET.parse(next(reports.glob("*/junit.xml"))).iter("testcase"):
        failure = case.find("failure")
        if failure is not None:
            module = case.get("classname", "").replace(".", "/")
            found[f"{module}.py::{case.get('name')}"] = failure.get("message", "")
    return found


def _failed_with(run: GuideRun, reports: Path, test: str, message: str) -> None:
    assert run.returncode == 1, f"the guide-4 run must fail:\n{run.why}"
    assert f"FAILED {test}" in run.output, run.why
    said = _failures(reports).get(test, "")
    assert message in said, f"{test} fails saying {message!r}; it said {said!r}"


def test_a_host_losing_1_in_100_has_no_ndr(tmp_path: Path, bed: tuple[Path, Path]) -> None:
    topology, _ = bed
    run = _run(tmp_path, topology, "ndr or restart", fault="pvp-drops-1-in-100")
    # 500 pps both ways for 1 s: 250 frames through NIC 0, of which seq 99 and 199 drop
    first = "first lossy trial: offered 500 pps for"
    counts = "sent 500, received 498, lost 2 (0.400 %)"
    for test in (NDR_TEST, RESTART_TEST):
        _failed_with(run, tmp_path, test, NO_NDR + " (the DUT lost frames)")
        _failed_with(run, tmp_path, test, first)
        _failed_with(run, tmp_path, test, counts)
    assert "no NDR to restart at" in run.output, run.why
    assert _results(tmp_path)[KEY]["ndr_pps"] == 0, "results.json records no NDR"
    summary = _summary(tmp_path)
    (row,) = [r for r in summary["rows"] if r["variant"] == "container-split-mergeable"]
    assert row["status"] == "failed" and NO_NDR in row["message"], row
    assert not summary["sign_off"]["ok"]


# two child runs, each of which may queue for the CPU lease behind other runs
@pytest.mark.timeout(1200)
def test_a_slower_dut_has_a_lower_ndr_and_fails_the_gate(
    tmp_path: Path, bed: tuple[Path, Path]
) -> None:
    topology, baseline = bed
    good = _run(tmp_path / "good", topology, "ndr", "--update-baseline")
    assert good.returncode == 0, f"a correct DUT passes and writes the baseline:\n{good.why}"
    reference = json.loads(baseline.read_text())["results"][KEY]["ndr_pps"]
    assert reference >= 2 * 2 * PVP_FIRST_KEPT, f"the correct DUT's NDR ({reference})"

    bad = _run(tmp_path / "bad", topology, "ndr", fault="pvp-drops-after-1000")
    _failed_with(bad, tmp_path / "bad", NDR_TEST, f"regression: {KEY} NDR ")
    assert NO_NDR not in bad.output, f"the slower DUT still has an NDR:\n{bad.why}"
    assert f"below the baseline {reference:,.0f} pps of {baseline}" in bad.output, bad.why
    ndr = _results(tmp_path / "bad")[KEY]["ndr_pps"]
    assert MIN_PPS <= ndr <= 2 * PVP_FIRST_KEPT, f"NDR {ndr} at most where the loss starts"


def test_the_restart_test_alone_measures_its_ndr(tmp_path: Path, bed: tuple[Path, Path]) -> None:
    topology, _ = bed
    run = _run(tmp_path, topology, "restart")
    assert run.returncode == 0, f"on a correct DUT the restart test passes alone:\n{run.why}"
    assert "1 passed" in run.output and "deselected" in run.output, run.output[-2000:]
    assert _results(tmp_path)[KEY]["ndr_pps"] >= MIN_PPS, "it searched the NDR itself"
    sign = _summary(tmp_path)["sign_off"]
    assert sign["ok"] and sign["guides_passed"] == [4], sign


@pytest.mark.parametrize(
    "fault, message",
    [
        ("pvp-host-stop-ignored",
         "the host's vhost-user ports stopped: no traffic crosses (restart 1); "),
        ("pvp-guest-resumes-nothing",
         "after restart 1 of the guest's ports the stream resumes; restart 1 of the guest's "
         "ports ended at "),
    ],
)  # fmt: skip
def test_a_restart_fault_fails_the_restart_test_alone(
    tmp_path: Path, bed: tuple[Path, Path], fault: str, message: str
) -> None:
    topology, _ = bed
    run = _run(tmp_path, topology, "restart", fault=fault)
    _failed_with(run, tmp_path, RESTART_TEST, message)
    assert NO_NDR not in run.output, f"the NDR was found first:\n{run.why}"
