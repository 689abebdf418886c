"""The reconnect plan's checks bite: its real tests against a DUT broken on purpose.

Each case runs testsuites/test_vhost_user_reconnect.py in its vhost-client-split form in a
child pytest with one --inject-fault and asserts that it fails, saying why: a relaunched
host testpmd whose links come up but which forwards nothing never lets the stream resume
(and, relaunched ten times, loses the last stream); one that drops 1 frame in 50 loses
frames after the event; a relaunch that leaves a hugepage file behind each time is found
by the stability form's readings. In the packed form, where a relaunch may stall the ring
(a known QEMU defect, an expected failure), a host that does not forward still fails. With
two VMs: a relaunched host that forwards nothing stops the chained stream and TCP between
two kernel VMs; a host that reorders TCP payload (checksums still right) is found by the
byte stream's check alone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from framework.lab.leftovers import snapshot
from tests.integration.guide_runs import run_guide

MODULE = "testsuites/test_vhost_user_reconnect.py"
ACROSS = f"{MODULE}::test_traffic_resumes_when_the_host_testpmd_is_killed_and_relaunched"
STABILITY = f"{MODULE}::test_relaunching_the_host_testpmd_leaks_nothing_in_qemu"
FORM = "[vhost-client-split]"

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    "fault, tests, messages",
    [
        (
            "relaunched-host-forwards-nothing",
            [ACROSS, STABILITY],
            [
                "traffic resumes once the links are back; host testpmd killed and relaunched "
                "ended at ",
                ", never recovered",
                "after the relaunches the path loses and duplicates nothing",
            ],
        ),
        # seq 49, 99, ... dropped by the relaunched host: past the event, in its wake
        (
            "relaunched-host-drops-1-in-50",
            [ACROSS],
            [
                "traffic resumes: nothing lost or duplicated around the event; outside the "
                "windows: ",
                "9 (sent at ",
            ],
        ),
        (
            "host-relaunch-leaks-hugepage-file",
            [STABILITY],
            [
                "after the last relaunch the side that stays holds no more than after the first",
                "host testpmd killed and relaunched, 10 times: hugepage files ",
            ],
        ),
    ],
)
def test_broken_dut_fails_the_reconnect_plan(
    tmp_path: Path, fault: str, tests: list[str], messages: list[str]
) -> None:
    _fails(tmp_path, fault, tests, FORM, messages)


def test_a_packed_host_that_forwards_nothing_is_no_known_defect(tmp_path: Path) -> None:
    # packed rings stall after a backend relaunch (a known QEMU defect, an expected
    # failure): a relaunched host that does not forward at all must still fail
    _fails(
        tmp_path,
        "relaunched-host-forwards-nothing",
        [ACROSS],
        "[vhost-client-packed]",
        ["traffic resumes once the links are back; ", ", never recovered"],
    )


def _fails(tmp_path: Path, fault: str, tests: list[str], form: str, messages: list[str]) -> None:
    before = snapshot()
    run = run_guide(tmp_path, *(t + form for t in tests), fault=fault)
    assert snapshot().new_since(before) == {}, "VMs, testpmds, files are gone after a failure"
    assert run.returncode == 1, f"with fault {fault} the reconnect tests must fail:\n{run.why}"
    for test in tests:
        assert f"FAILED {test}{form}" in run.output, run.why
    for message in messages:
        assert message in run.output, f"the failure says why ({message!r}):\n{run.why}"


TWO_VMS = f"{MODULE}::test_traffic_through_two_vms_resumes_when_the_host_testpmd_is_relaunched"
VM_TO_VM = f"{MODULE}::test_tcp_between_two_kernel_guests_survives_a_host_testpmd_relaunch"
VM_TO_VM_REBOOTED = f"{MODULE}::test_tcp_between_two_kernel_guests_after_both_vms_are_relaunched"


def test_a_relaunched_host_that_forwards_nothing_fails_the_two_vm_cases(tmp_path: Path) -> None:
    # the plan's multi-VM cases: the stream through VM1 and VM2 never comes back, nor TCP
    # between two kernel VMs
    _fails(
        tmp_path,
        "two-vm-relaunched-host-forwards-nothing",
        [TWO_VMS, VM_TO_VM],
        FORM,
        ["traffic resumes once the links are back; host testpmd killed and relaunched ended at ",
         ", never recovered",
         "TCP between the VMs resumes once the links are back; host testpmd killed and "
         "relaunched",
         "no byte arrived after the links were back"],
    )  # fmt: skip


def test_a_host_that_reorders_tcp_payload_fails_the_vm_to_vm_cases(tmp_path: Path) -> None:
    # two payload words swapped in every segment from VM2: TCP's checksum stays right, the
    # kernels take every segment, only the bytes show it
    _fails(
        tmp_path,
        "vm-to-vm-host-swaps-tcp-payload",
        [VM_TO_VM, VM_TO_VM_REBOOTED],
        FORM,
        ["TCP between the VMs carries every byte across the event; the receiver's bytes are "
         "not the bytes sent (first in the 65536-byte block at byte 0)",
         "TCP between the VMs carries every byte once the links are back; the receiver's "
         "bytes are not the bytes sent"],
    )  # fmt: skip
