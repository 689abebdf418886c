"""Guide 1's checks bite: the real SR-IOV/bonding migration test against a broken DUT.

Each case runs testsuites/test_sriov_bond_migration.py (the emulated VF of the virtual lab)
in a child pytest with one --inject-fault and asserts that it fails, with the message of
the guide promise the fault breaks, and that it leaves nothing behind.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.guide_runs import verify_fault_fails

MODULE = "testsuites/test_sriov_bond_migration.py"
TEST = "test_live_migration_with_sriov_vf_and_bonding[emulated-vf]"

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    "fault, messages",
    [
        ("bond-primary-ignored", ["guide: Primary is now P1", "primary=0"]),
        ("vf-link-down", ["guide: Primary is now P1", "active_slaves=[0]"]),
        ("backup-port-forwarded", ["nothing leaves through the backup port P0; P0 RX"]),
        ("failover-ignored", ["P1 is out of the bond", "slaves=[0, 1]"]),
        ("vf-not-reattached", ["after device_add the VM has the VF back at 0000:00:04.0"]),
        ("traffic-stops-after-migration", ["traffic crosses virtio on host_server_2", "RX 0"]),
        # every frame after `start` comes back with 02:00:00:00:0b:ad, not the peer 02:..:02
        (
            "bond-wrong-peer",
            [
                "traffic crosses the bond: every frame arrives whole;",
                " altered: seq ",
                "differs at byte 4 (expected 0x00, seen 0x0b;",
            ],
        ),
        # appended last: the ids above are positional and named in tests/bites/table.yaml
        ("vf-not-detached", ["after device_del the VM no longer has the VF at 0000:00:04.0"]),
    ],
)
def test_broken_dut_fails_guide_1(tmp_path: Path, fault: str, messages: list[str]) -> None:
    verify_fault_fails(tmp_path, f"{MODULE}::{TEST}", fault, messages)


HOT_PLUG_TEST = "test_a_device_removed_under_a_started_port_comes_back[emulated-vf]"
TWO_DEVICES_TEST = "test_two_devices_removed_at_once_come_back[emulated-vf]"
CYCLE_TEST = "test_vf_hot_unplug_and_plug_three_times[emulated-vf]"


# Beyond the guide: DPDK's vm_hotplug plan on the virtual lab's vIOMMU guest (one device
# removed under a started port: the case that runs every check the two-device case runs),
# and the guide's own detach/attach cycle repeated on one host.
@pytest.mark.parametrize(
    "test, fault, messages",
    [
        pytest.param(
            HOT_PLUG_TEST,
            "hot-plug-option-dropped",
            # measured: nothing releases the vfio device, so the guest never lets it go
            ["device_del vf1: the guest did not release the device within 30 s"],
            id="hot-plug-option-dropped",
        ),
        pytest.param(
            HOT_PLUG_TEST,
            "removed-devices-kept",
            ["the guest lets the removed devices go"],
            id="removed-devices-kept",
        ),
        pytest.param(
            HOT_PLUG_TEST,
            "attached-ports-not-started",
            ["cycle 1: frames leave through the VF again"],
            id="attached-ports-not-started",
        ),
        pytest.param(
            HOT_PLUG_TEST,
            "restarted-testpmd-forwards-nothing",
            ["+ reset: frames leave through the VF"],
            id="restarted-testpmd-forwards-nothing",
        ),
        pytest.param(
            TWO_DEVICES_TEST,
            "attached-ports-not-started",
            ["frames leave through both again"],
            id="two-devices-attached-ports-not-started",
        ),
        pytest.param(
            TWO_DEVICES_TEST,
            "restarted-testpmd-forwards-nothing",
            ["+ reset: frames leave through both"],
            id="two-devices-restarted-testpmd-forwards-nothing",
        ),
        pytest.param(
            CYCLE_TEST, "vf-not-detached", ["cycle 1: the VF left the VM"], id="vf-not-detached"
        ),
        pytest.param(
            CYCLE_TEST,
            "vf-not-reattached",
            ["cycle 1: the VF is back in the VM"],
            id="vf-not-reattached",
        ),
    ],
)
def test_broken_hot_plug_fails(tmp_path: Path, test: str, fault: str, messages: list[str]) -> None:
    verify_fault_fails(tmp_path, f"{MODULE}::{test}", fault, messages)
