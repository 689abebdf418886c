"""Guide 1's checks bite: the real SR-IOV/bonding migration test against a broken DUT.

Each case runs testsuites/test_sriov_bond_migration.py (the emulated VF of the virtual lab)
in a child pytest with one --inject-fault and asserts that it fails, with the message of
the guide promise the fault breaks, and that it leaves nothing behind.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from framework.lab.leftovers import snapshot

ROOT = Path(__file__).resolve().parents[2]
MODULE = "testsuites/test_sriov_bond_migration.py"
TEST = "test_live_migration_with_sriov_vf_and_bonding[emulated-vf]"

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    "fault, messages",
    [
        ("bond-primary-ignored", ["guide: Primary is now P1", "primary=0"]),
        ("vf-not-reattached", ["after device_add the VM has the VF back at 0000:00:04.0"]),
        ("traffic-stops-after-migration", ["traffic crosses virtio on host_server_2", "RX 0"]),
    ],
)
def test_broken_dut_fails_guide_1(tmp_path: Path, fault: str, messages: list[str]) -> None:
    before = snapshot()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", f"{MODULE}::{TEST}", "-p", "no:cacheprovider",
         "--inject-fault", fault, "--reports-dir", str(tmp_path), "--no-allure-html", "-q"],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    output = done.stdout + done.stderr
    why = (
        "\n".join(
            line[:600]
            for line in output.splitlines()
            if line.startswith("E ") or "STEP FAILED" in line
        )
        or output[-3000:]
    )
    assert snapshot().new_since(before) == {}, "VMs, taps, bridges and testpmds are gone"
    assert done.returncode == 1, f"with fault {fault} guide 1 must fail:\n{why}"
    assert f"FAILED {MODULE}::{TEST}" in output
    for message in messages:
        assert message in output, f"the failure says why ({message!r}):\n{why}"
