"""Guide 7's checks bite: the real exceptional-path module against a broken DUT.

Each case runs testsuites/test_virtio_user_exceptional_path.py (its single-queue form) in a
child pytest with one --inject-fault and asserts that the tests the fault breaks fail with
the guide's promise in their message, and that nothing is left behind.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from framework.lab.leftovers import snapshot
from tests.integration.guide_runs import run_guide

MODULE = "testsuites/test_virtio_user_exceptional_path.py"

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    "fault, failed, messages",
    [
        (
            "tap-left-down",
            ["test_the_kernel_makes_a_tap_for_virtio_user", "test_the_kernel_answers_through_dpdk"],
            ["brings it up", "expected 1 ARP reply, seen 0"],
        ),
        (
            "exceptional-path-forwards-nothing",
            [
                "test_the_kernel_answers_through_dpdk",
                "test_what_the_kernel_sends_leaves_through_the_nic",
            ],
            ["expected 1 ARP reply, seen 0", "the TG saw 0 echo requests"],
        ),
    ],
)
def test_broken_dut_fails_guide_7(
    tmp_path: Path, fault: str, failed: list[str], messages: list[str]
) -> None:
    before = snapshot()
    run = run_guide(tmp_path, MODULE, "-k", "single-queue", fault=fault)
    assert snapshot().new_since(before) == {}, "the VM, its tap bridge and testpmd are gone"
    assert run.returncode == 1, f"with fault {fault} guide 7 must fail:\n{run.why}"
    for test in failed:
        assert f"FAILED {MODULE}::{test}[single-queue]" in run.output, (
            f"{test} fails with fault {fault}:\n{run.why}"
        )
    for message in messages:
        assert message in run.output, f"the failure says why ({message!r}):\n{run.why}"
