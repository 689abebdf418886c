"""Guide 2's checks bite: the real migration test against a DUT broken on purpose.

Each case runs testsuites/test_vhost_user_migration.py (split virtqueues) in a child pytest
with one --inject-fault and asserts that it fails, with a message that says what went
wrong: steady loss before the migration names the first lost frames and when they were
sent; a second outage or duplicates after the migration are found outside its window; a VM
held paused after the switch-over exceeds the longest-outage bound, and one whose QEMU is
frozen for a moment while its RAM is copied exceeds the outage count of the migration
window; a VM paused (QMP stop) while its RAM is copied is seen paused by the polls of the
running migration: not live.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.guide_runs import verify_fault_fails

MODULE = "testsuites/test_vhost_user_migration.py"
TEST = "test_live_migration_with_vhost_user[split-virtqueue]"
OUTSIDE = "traffic crosses the VM unharmed before and after the migration; outside the windows:"
WINDOW = "migration window (loss_windows.guide2.migration): "

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    "fault, messages",
    [
        # the longest-outage bound (650 ms) fails, named on its own or, when the resumed VM
        # re-delivers frames after the window, with those duplicates
        ("vm-paused-after-migration", ["migration window", "longest outage", " ms, bound 650 ms"]),
        # a second interruption inside the migration window: the outage count bites
        ("vm-stalls-during-migration", [WINDOW, " outages, bound "]),
        (
            "dest-host-forwards-nothing",
            ["virtio traffic is seen at P0 and P1 on host_server_2; P0 RX 0 TX 0"],
        ),
        # host_server_1 drops seq 199, 399, ... (0.5 %; 2 s of traffic at 1000 pps before
        # migrating): the least loss of the drop faults, so heavier drops fail the same way
        ("source-host-drops-1-in-200", [OUTSIDE, "lost: seq 199 (sent at ", ", seq 399 (sent at "]),
        ("second-outage-after-migration", [OUTSIDE, " lost: seq "]),
        # the echoes come back MAC-swapped: the migrated VM's stream (2.3.15) sees them first,
        # as altered frames (source and destination MACs swapped)
        (
            "duplicates-after-migration",
            [
                "traffic crosses the migrated VM: every frame arrives whole",
                " altered: seq ",
                # in the MAC addresses; which byte first differs depends on the TG's random MAC
                " differs at byte ",
            ],
        ),
        # host_server_1 flips byte 62 (fill behind the stamp) of seq 99, 199, ...: the short
        # stream of 2.3.6 already carries some
        (
            "source-host-alters-1-in-100",
            [
                "traffic crosses the VM: every frame arrives whole and in order;",
                " altered: seq 99 on ",
                "differs at byte 62 (expected 0x",
            ],
        ),
        # polled while it migrates, the VM is seen paused (QMP stop) before the switch-over
        (
            "vm-paused-during-migration",
            [
                "guide: a live migration (the VM runs while its RAM is copied); the VM was "
                "paused at +",
                "(not the switch-over)",
                "active/paused x",
            ],
        ),
    ],
)
def test_broken_dut_fails_guide_2(tmp_path: Path, fault: str, messages: list[str]) -> None:
    verify_fault_fails(tmp_path, f"{MODULE}::{TEST}", fault, messages)


QUEUES_TEST = (
    "test_live_migration_with_the_guests_queues_changed_while_migrating[split-virtqueue-4-queues]"
)


def test_a_queue_change_that_does_not_last_fails_the_queue_variant(tmp_path: Path) -> None:
    """The plan's variant: the guest takes four queue pairs while it migrates; a guest back
    at one after the migration is seen in its ports' queue counts."""
    message = (
        "the guest's ports run 4 queue pairs after the change; P0 has 1/1 rx/tx queues, "
        "expected 4/4"
    )
    verify_fault_fails(tmp_path, f"{MODULE}::{QUEUES_TEST}", "guest-queues-back-to-one", [message])


KERNEL_TEST = (
    "test_live_migration_with_the_kernel_forwarding_in_the_guest[split-virtqueue-kernel-virtio-net]"
)


def test_a_kernel_guest_that_skips_p1_fails_the_kernel_variant(tmp_path: Path) -> None:
    """The plan's kernel guest: routed straight back out of P0 (one hop, P1 unused), every
    frame leaves with its TTL one too high, and the frame check names that byte."""
    verify_fault_fails(
        tmp_path,
        f"{MODULE}::{KERNEL_TEST}",
        "guest-kernel-skips-p1",
        [
            "traffic crosses the VM, routed by its kernel: every frame arrives whole and in order;",
            " altered: seq 0 on ",
            "differs at byte 22 (expected 0x",  # the IPv4 TTL
        ],
    )
