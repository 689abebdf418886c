"""Guide 2's checks bite: the real migration test against a DUT broken on purpose."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from framework.lab.leftovers import snapshot

ROOT = Path(__file__).resolve().parents[2]
MODULE = "testsuites/test_vhost_user_migration.py"
TEST = "test_live_migration_with_vhost_user[split-virtqueue]"

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    "fault, message",
    [
        ("vm-paused-after-migration", "exceeds the bound 2000 ms"),
        ("dest-host-forwards-nothing", "traffic crosses host_server_2's vhost port"),
    ],
)
def test_broken_dut_fails_guide_2(tmp_path: Path, fault: str, message: str) -> None:
    before = snapshot()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", f"{MODULE}::{TEST}", "-p", "no:cacheprovider",
         "--inject-fault", fault, "--reports-dir", str(tmp_path), "--no-allure-html", "-q"],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert snapshot().new_since(before) == {}, "VMs, testpmds and sockets are gone after a failure"
    assert done.returncode == 1, f"with fault {fault} guide 2 must fail:\n{output[-3000:]}"
    assert f"FAILED {MODULE}::{TEST}" in output
    assert message in output, f"the failure says why ({message!r}):\n{output[-3000:]}"
