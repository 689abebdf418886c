"""Guide 1's lab variants in `--plan`: the runbook a lab engineer reviews before a migration.

`--plan -m niantic --topology topologies/lab.yaml` on the guide-1 module runs its lab-only
code against the plan's stand-ins: QEMU's command lines on each host, QMP (migrate,
device_del, device_add, query-migrate), the guest's shell and testpmd, the PF's `ip
link`, the TG's stream, and each promise, QEMU's refusal and the PF's perm_addr among
them, recorded and not judged. A socket guard in the run proves it connects to nothing.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from framework.report.summary import SUMMARY_JSON
from tests.integration.guide_runs import ROOT

MODULE = "testsuites/test_sriov_bond_migration.py"
REFUSAL = "test_qemu_refuses_to_migrate_a_vm_with_its_vf[niantic-vf]"
MIGRATION = "test_live_migration_with_sriov_vf_and_bonding[niantic-vf]"

# Loaded by the plan run's Python before anything else: every IP connect is written down
# and refused, so a plan that reached for a host (SSH, QMP, the TG's agent) fails here.
GUARD = """
import os, socket
_connect = socket.socket.connect
def _guarded(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        with open(os.environ["HOWTO_CONNECT_LOG"], "a") as log:
            log.write(f"{address}\\n")
        raise OSError(f"a plan connects to nothing: {address}")
    return _connect(self, address)
socket.socket.connect = _guarded
"""


@pytest.fixture(scope="module")
def plan_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The plan run's directory, and the log of the connects it tried (none)."""
    reports = tmp_path_factory.mktemp("plan-guide1")
    guard = tmp_path_factory.mktemp("guard")
    (guard / "sitecustomize.py").write_text(GUARD)
    connects = guard / "connects.log"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(guard), str(ROOT)]),
        "HOWTO_CONNECT_LOG": str(connects),
    }
    argv = [sys.executable, "-m", "pytest", MODULE, "--plan", "-m", "niantic",
            "--topology", "topologies/lab.yaml", "-p", "no:cacheprovider",
            "--reports-dir", str(reports), "--no-allure-html", "-q"]  # fmt: skip
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, f"the plan did not complete:\n{done.stdout[-4000:]}"
    last = done.stdout.strip().splitlines()[-1]
    assert " passed" not in last and " failed" not in last, f"a plan judges nothing: {last}"
    (found,) = [p for p in reports.glob("*/plan.txt") if not p.parent.is_symlink()]
    return found.parent, connects


@pytest.fixture(scope="module")
def plan(plan_run: tuple[Path, Path]) -> str:
    return (plan_run[0] / "plan.txt").read_text()


def _section(plan: str, test: str) -> str:
    return plan.split(f"== {MODULE}::{test}\n", 1)[1].split("\n== ", 1)[0]


def test_the_plan_connects_to_nothing(plan_run: tuple[Path, Path]) -> None:
    run_dir, connects = plan_run
    assert not connects.exists(), f"the plan tried to connect: {connects.read_text()}"
    summary = json.loads((run_dir / SUMMARY_JSON).read_text())
    assert 1 in summary["sign_off"]["guides_planned"], summary["sign_off"]


def test_the_lab_variants_tests_are_planned(plan: str) -> None:
    planned = set(re.findall(rf"^== {re.escape(MODULE)}::(\S+)", plan, re.M))
    assert {REFUSAL, MIGRATION} <= planned, planned
    # the emulated VF is the virtual lab's; a plan is for a lab
    assert not any("emulated-vf" in test for test in planned), planned


def test_the_plan_starts_qemu_on_each_host_with_the_vf_then_without(plan: str) -> None:
    section = _section(plan, MIGRATION)
    source = re.search(r"^  \[host_server_1\] \$ .*qemu-system-x86_64 .*$", section, re.M)
    dest = re.search(r"^  \[host_server_2\] \$ .*qemu-system-x86_64 .*$", section, re.M)
    assert source and dest, section[:3000]
    assert "-device vfio-pci,host=<VF 0 of 0000:09:00.0>,id=vf1" in source.group(0)
    assert "-daemonize" in source.group(0)
    assert "-incoming tcp:" in dest.group(0) and "vfio-pci" not in dest.group(0)


def test_the_plan_migrates_with_the_vf_unplugged_and_plugs_it_back(plan: str) -> None:
    section = _section(plan, MIGRATION)
    qmp = [line for line in section.splitlines() if " QMP " in line]
    unplug = next(
        i for i, line in enumerate(qmp) if '"device_del", "arguments": {"id": "vf1"}' in line
    )
    migrate = next(
        i
        for i, line in enumerate(qmp)
        if '"execute": "migrate", "arguments": {"uri": "tcp:' in line
    )
    plug = next(i for i, line in enumerate(qmp) if '"execute": "device_add"' in line)
    assert unplug < migrate < plug, qmp
    assert qmp[unplug].startswith("  [host_server_1 QMP bond_vm_niantic-src]")
    assert ":5555" in qmp[migrate] and "query-migrate" in qmp[migrate + 1]
    assert qmp[plug].startswith("  [host_server_2 QMP bond_vm_niantic-dst]")
    assert "testpmd> create bonded device 1 0" in section
    assert "[TG] stream on " in section and "[TG] stop the stream" in section


def test_the_plan_promises_the_perm_addr_at_the_pf(plan: str) -> None:
    lines = _section(plan, MIGRATION).splitlines()
    at = next(i for i, line in enumerate(lines) if "perm_addr" in line)
    assert lines[at].startswith("  [verify] guide: port close should remove the VF MAC")
    assert lines[at - 1] == "  [host_server_1] $ ip -j link show dev ens3f0", lines[at - 3 : at]


def test_the_plan_promises_qemus_refusal_without_judging_it(plan: str) -> None:
    lines = _section(plan, REFUSAL).splitlines()
    migrate = next(i for i, line in enumerate(lines) if '"execute": "migrate"' in line)
    promise = next(i for i, line in enumerate(lines) if "not possible to migrate" in line)
    assert migrate < promise, lines
    assert lines[promise] == (
        "  [verify] guide 1.1: it is not possible to migrate a VM which has an SR-IOV VF"
    )
