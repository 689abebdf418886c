"""Guide 2: live migration of a VM with virtio on hosts running vhost-user (chapter 2).

Each host runs the vhost-switch role (a host testpmd serving the VM's two vhost-user
sockets and owning the host's NIC toward the switch); the VM runs testpmd on P0/P1 with
`set fwd mac retry` / `start tx_first`; a sequenced stream from the TG crosses the VM
while it migrates from host_server_1 to host_server_2, and measures the downtime.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import allure
import pytest

from framework.config.model import Topology
from framework.dpdk.verify import verify_port_traffic, verify_ports
from framework.dpdk.version import DpdkVersion
from framework.lab.hosts import HostHandle
from framework.report.attach import attach_table, attach_text, step
from framework.report.plugin import set_environment
from framework.scenarios.vhost_user_migration import (
    GUIDE_GUEST_TESTPMD,
    VhostUserMigration,
    stream_frame,
)
from framework.traffic.checks import verify_frames_intact, verify_sender
from framework.traffic.generator import StreamRun, TrafficGenerator
from framework.traffic.stream import StreamResult
from framework.traffic.windows import (
    verify_clean_outside,
    verify_window,
    with_jitter,
)
from framework.verify import wait_for_dut
from framework.virt.verify import verify_migration_live, verify_vm_status
from framework.virt.vm import VirtualMachine

pytestmark = [
    pytest.mark.guide(2),
    pytest.mark.migration,
    pytest.mark.vhost,
    pytest.mark.virtio,
    pytest.mark.virtual,
    pytest.mark.slow,
    pytest.mark.vms("vm1"),
    # downtime and loss are measured to the millisecond: no other run's guide meanwhile
    pytest.mark.cpu_exclusive,
    allure.parent_suite("DPDK HowTo guides"),
    allure.suite("2 Live migration of a VM with virtio on hosts running vhost-user"),
]

STREAM_PPS = 1000  # what a TCG guest forwards without loss here (measured: 500-1000 pps)
SETTLE_S = 2.0  # traffic before and after the migration


@pytest.fixture(params=["split", "packed"], ids=["split-virtqueue", "packed-virtqueue"])
def migration(
    request: pytest.FixtureRequest,
    topology,
    host_server_1: HostHandle,
    host_server_2: HostHandle,
    dpdk_version: DpdkVersion,
) -> Iterator[VhostUserMigration]:
    setup = VhostUserMigration(
        topology, host_server_1, host_server_2, dpdk_version, packed=request.param == "packed"
    )
    try:
        yield setup
    finally:
        setup.close()


@pytest.fixture
def through_vm(
    traffic_generator: TrafficGenerator, tg_host: HostHandle, migration: VhostUserMigration
) -> Callable[..., StreamRun]:
    """Start a stream from TG port 0 that crosses the VM and comes back on TG port 1.

    Every frame is checked whole against what the guest's mac forwarding makes of it.
    """
    tx, rx = tg_host.data_port(0).interface, tg_host.data_port(1).interface
    start = traffic_generator.starter(tx, rx, stream_frame, pps=STREAM_PPS)
    return lambda **options: start(expect=migration.arrival_forms(), **options)


def test_live_migration_with_vhost_user(
    migration: VhostUserMigration,
    topology,
    through_vm: Callable[..., StreamRun],
    pytestconfig: pytest.Config,
) -> None:
    """Live-migrate a VM that forwards traffic between two hosts running vhost-user.

    Steps:
        2.3.1-2.3.3 host_server_1: DPDK set up, the vhost switch running.
        2.3.4 Start the VM on host_server_1.
        2.3.6 In the VM: testpmd, show port info all, set fwd mac retry, start tx_first,
            show port stats all.
        2.3.7-2.3.9 host_server_2: DPDK set up, the vhost switch running.
        2.3.10-2.3.11 Start the VM on host_server_2, waiting for the migration; info status.
        2.3.12 Check that the switch is up; with a stream crossing the VM, migrate
            tcp:host_server_2:5555; info status, info migrate.
        2.3.13 In the VM, now on host_server_2: the testpmd prompt.
        2.3.14 info status on host_server_2.
        2.3.15 In the VM: show port info all, show port stats all.

    Verify:
        Virtio traffic is seen at P0 and P1 on host_server_1; the destination VM is paused
        (inmigrate); polled while it runs, the migration is active with the VM running,
        never failed, and the VM stops only for the switch-over; it completes, the source
        is paused (postmigrate) and the destination running; after it, virtio traffic is
        seen at P0 and P1 and crosses host_server_2's vhost ports, none host_server_1's.
        Every frame that arrives is the frame sent as the guest's mac forwarding rewrites
        it, byte for byte, and in order (the migration included). The stream loses,
        duplicates and reorders nothing outside the migration; inside it the outages, the
        longest, the frames lost and the span over which they were sent (one stretch: the
        switch-over) are within the topology's bounds (`loss_windows.guide2.migration`).
    """
    vm = _start_the_vm_on_host_server_1(migration, pytestconfig)
    _forward_in_the_vm(migration, through_vm)
    dest_vm = _wait_for_the_vm_on_host_server_2(migration)
    stream = _migrate_under_traffic(migration, through_vm)
    _the_vm_runs_on_host_server_2(migration, vm, dest_vm)
    _traffic_crosses_host_server_2(migration, through_vm)
    _verify_the_stream(migration, topology, stream)


# -- the guide's steps, in its order ------------------------------------------------------


def _start_the_vm_on_host_server_1(
    migration: VhostUserMigration, pytestconfig: pytest.Config
) -> VirtualMachine:
    with step("2.3.1-2.3.3 host_server_1: set up DPDK, run the vhost switch"):
        migration.start_switch(migration.source)
    with step("2.3.4 Start the VM on host_server_1"):
        vm = migration.start_vm()
        attach_text("QEMU", f"accelerator: {vm.accel} ({vm.accel_reason})\n{' '.join(vm.argv)}")
        set_environment(pytestconfig, {"QEMU accelerator": f"{vm.accel} ({vm.accel_reason})"})
    return vm


def _forward_in_the_vm(migration: VhostUserMigration, through_vm: Callable[..., StreamRun]) -> None:
    with step("2.3.6 In the VM: testpmd; show port info all; set fwd mac retry; start tx_first"):
        pmd = migration.start_guest_testpmd()
        attach_text("guest testpmd", f"guide: {GUIDE_GUEST_TESTPMD}\nran: {' '.join(pmd.argv)}")
        verify_ports(
            migration.guest_ports(),
            "the VM has two virtio ports, P0 and P1",
            present=(0, 1),
            drivers={0: "virtio", 1: "virtio"},
        )
    with step("2.3.6 show port stats all: virtio traffic is seen at P0 and P1"):
        verify_frames_intact(through_vm(duration=1.0).wait(), "traffic crosses the VM")
        verify_port_traffic(
            pmd.show_port_stats_all(), "guide: virtio traffic is seen at P0 and P1", moving=(0, 1)
        )


def _wait_for_the_vm_on_host_server_2(migration: VhostUserMigration) -> VirtualMachine:
    with step("2.3.7-2.3.9 host_server_2: set up DPDK, run the vhost switch"):
        migration.start_switch(migration.destination)
    with step("2.3.10-2.3.11 Start the VM on host_server_2; info status"):
        dest_vm = migration.start_destination_vm()
        verify_vm_status(dest_vm, "guide: VM status: paused (inmigrate)", "inmigrate")
    return dest_vm


def _migrate_under_traffic(
    migration: VhostUserMigration, through_vm: Callable[..., StreamRun]
) -> StreamResult:
    """2.3.12 with a stream crossing the VM from before `migrate` to after `completed`."""
    dst = migration.destination
    with step(f"2.3.12 Check that the switch is up; migrate tcp:{dst.session.address}:5555"):
        link = migration.check_switch_up(dst)
        verify_ports(
            {link.port: link}, "guide: the switch is up before migrating (its NIC)", link_up="all"
        )
        with through_vm(duration=SETTLE_S + 120 + SETTLE_S) as run:
            run.wait_started()
            wait_for_dut(SETTLE_S)
            # guide: "Migration status: completed": migrate() returns no other (a failed,
            # cancelled or unconverging migration raises MigrationError, naming why)
            migration.migrate()
            wait_for_dut(SETTLE_S)
        stream = run.wait()
        verify_sender(stream, "guide 2's stream judges the VM")
    with step("2.3.12 info migrate while it runs: active with the VM running, never failed"):
        verify_migration_live(
            migration.migration, "guide: a live migration (the VM runs while its RAM is copied)"
        )
    return stream


def _the_vm_runs_on_host_server_2(
    migration: VhostUserMigration, vm: VirtualMachine, dest_vm: VirtualMachine
) -> None:
    with step("2.3.12 info status on host_server_1"):
        verify_vm_status(vm, "guide: VM status: paused (postmigrate)", "postmigrate")
    with step("2.3.13 In the VM, now on host_server_2: the testpmd prompt"):
        migration.reattach_guest_testpmd()
    with step("2.3.14 info status on host_server_2"):
        verify_vm_status(dest_vm, "guide: VM status: running", "running")


def _traffic_crosses_host_server_2(
    migration: VhostUserMigration, through_vm: Callable[..., StreamRun]
) -> None:
    src, dst, pmd = migration.source, migration.destination, migration.guest_pmd
    with step("2.3.15 show port info all; show port stats all: traffic at P0 and P1"):
        verify_ports(
            migration.guest_ports(),
            "the migrated VM still has P0 and P1, links up",
            present=(0, 1),
            link_up="all",
        )
        for switch in migration.switches.values():
            switch.clear_stats()
        pmd.clear_counters()
        verify_frames_intact(through_vm(duration=1.0).wait(), "traffic crosses the migrated VM")
        guest = pmd.show_port_stats_all()
        vhost = {host.name: migration.switches[host.name].vhost_stats() for host in (src, dst)}
        attach_table(
            "vhost ports after migration",
            ["host", "port", "RX", "TX"],
            [[h, p, s.rx_packets, s.tx_packets] for h in vhost for p, s in vhost[h].items()],
        )
        verify_port_traffic(
            guest, "guide: virtio traffic is seen at P0 and P1 on host_server_2", moving=(0, 1)
        )
        verify_port_traffic(
            vhost[dst.name],
            "traffic crosses host_server_2's vhost ports after migration",
            moving="all",
        )
        verify_port_traffic(
            vhost[src.name],
            "no traffic on host_server_1's vhost ports after migration",
            idle="all",
        )


def _verify_the_stream(
    migration: VhostUserMigration, topology: Topology, stream: StreamResult
) -> None:
    """Every frame whole and in order; loss only in the migration, within its bounds."""
    bounds = topology.window_bounds(2, "migration")
    migration.attach_migration_report(stream)
    window = migration.window(stream)
    (inside,) = with_jitter(stream, topology.loss_windows.guide2.jitter_ms).account(window).windows
    # Outside the window at full resolution: with the jitter allowance, losses a steady
    # fault spreads over the whole stream join into one outage the window would claim.
    full = stream.account(window)
    migration.record_figures(stream, inside, full.windows[0])
    with step("Every frame crosses the VM whole and in order, the migration included"):
        verify_frames_intact(stream, "traffic crosses the VM while it migrates")
    with step("The stream loses, duplicates and reorders nothing outside the migration"):
        verify_clean_outside(
            full,
            "traffic crosses the VM unharmed before and after the migration",
            judged=[(inside, bounds)],
        )
    with step(f"The migration, measured from traffic: {bounds}"):
        # one stretch under TCG too: its allowance is in the bounds (measured, see model.py)
        verify_window(inside, bounds, "loss_windows.guide2.migration")
