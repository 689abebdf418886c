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
from framework.dpdk.verify import verify_port_traffic, verify_ports, verify_queues
from framework.dpdk.version import DpdkVersion
from framework.lab.hosts import HostHandle
from framework.report.attach import attach_table, attach_text, step
from framework.report.plugin import set_environment
from framework.scenarios.vhost_user_migration import (
    PROBE_SPORTS,
    QemuWaited,
    QueueChange,
    VhostUserMigration,
)
from framework.traffic.checks import verify_frames_intact, verify_sender
from framework.traffic.generator import StreamRun, TrafficGenerator
from framework.traffic.stream import LossWindow, StreamResult
from framework.traffic.trials import verify_trial
from framework.traffic.windows import (
    verify_clean_outside,
    verify_resumed,
    verify_window,
    with_jitter,
)
from framework.verify import verify, wait_for_dut
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

QUEUES = 4  # the plan's queues=4
# How soon after the guest's ports started again the stream must be back.
CHANGE_RESUME_S = 1.0
STREAM_PPS = 1000  # what a TCG guest forwards without loss here (measured: 500-1000 pps)
SETTLE_S = 2.0  # traffic before and after the migration


VARIANTS = {
    "test_live_migration_with_the_switches_started_after_qemu": "switch-after-qemu",
    "test_live_migration_with_the_guests_queues_changed_while_migrating": "queues-changed",
    "test_live_migration_with_the_kernel_forwarding_in_the_guest": "kernel-guest",
    "test_live_migration_with_the_kernel_guests_queues_changed_while_migrating": (
        "kernel-queues-changed"
    ),
    "test_live_migration_of_the_kernel_guest_with_the_switches_started_after_qemu": (
        "kernel-switch-after-qemu"
    ),
}


def topology_selection(item: pytest.Item, topology: Topology) -> str | None:
    """Why the topology's declared selection leaves this test out (None: it runs).

    Called at collection (framework.plugin): the plan's variants run on the virtqueue
    layouts topology.migration_variants names, a declared choice for time, not a skip.
    """
    callspec = getattr(item, "callspec", None)
    variant = VARIANTS.get(getattr(item, "originalname", ""))
    chosen = topology.migration_variants
    if chosen is None or variant is None or callspec is None:
        return None
    layout = callspec.params["migration"]
    if f"{variant}-{layout}" in chosen:
        return None
    return (
        f"topology {topology.name}: migration_variants {chosen}, the plan's variants run "
        "in these forms only (time)"
    )


@pytest.fixture
def order() -> str:
    """Which comes first on each host: the guide's vhost switch, or QEMU (a test's choice)."""
    return "switch-first"


@pytest.fixture
def queues() -> int:
    """Queue pairs of the vhost-user NICs and the switches: the guide's one, or a test's."""
    return 1


@pytest.fixture
def guest() -> str:
    """What forwards in the VM: the guide's testpmd, or the kernel (a test's choice)."""
    return "testpmd"


@pytest.fixture(params=["split", "packed"], ids=["split-virtqueue", "packed-virtqueue"])
def migration(
    request: pytest.FixtureRequest,
    order: str,
    queues: int,
    guest: str,
    topology,
    host_server_1: HostHandle,
    host_server_2: HostHandle,
    dpdk_version: DpdkVersion,
) -> Iterator[VhostUserMigration]:
    setup = VhostUserMigration(
        topology, host_server_1, host_server_2, dpdk_version, packed=request.param == "packed",
        switch_after_qemu=order == "switch-after-qemu", queues=queues,
        kernel_guest=guest == "kernel",
    )  # fmt: skip
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

    def start(**options: object) -> StreamRun:
        # the frame is made per stream: a test may choose the flow after this fixture
        starter = traffic_generator.starter(tx, rx, migration.frame, pps=STREAM_PPS)
        return starter(expect=migration.arrival_forms(), **options)

    return start


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


@pytest.mark.parametrize("order", ["switch-after-qemu"])
def test_live_migration_with_the_switches_started_after_qemu(
    migration: VhostUserMigration,
    topology,
    through_vm: Callable[..., StreamRun],
    pytestconfig: pytest.Config,
) -> None:
    """Guide 2 with each host's vhost switch started after QEMU, which waits for it.

    DPDK's vhost_user_live_migration plan starts QEMU first with its vhost-user NICs as
    clients that connect again (reconnect=1), then the vhost switch serving the sockets.

    Steps:
        host_server_1: start the VM (QEMU waits for its vhost-user peer); after
            QEMU_WAITS_S run the vhost switch; the VM boots.
        2.3.6 In the VM: testpmd, set fwd mac retry, start tx_first, show port stats.
        host_server_2: start the VM waiting for the migration (QEMU waits for its peer);
            run the vhost switch; info status.
        2.3.12-2.3.15 As the guide: migrate with a stream crossing the VM, info status on
            both hosts, the guest's ports and counters.

    Verify:
        On each host QEMU is still starting QEMU_WAITS_S after it began, no switch there,
        and starts once the switch serves its sockets; the guest's links come up, traffic
        crosses; then everything the guide's order verifies: the migration live and
        complete, traffic through host_server_2's vhost ports only, every frame whole and
        in order, loss only in the migration and within its bounds.
    """
    vm = _qemu_then_the_switch_on_host_server_1(migration, pytestconfig)
    _forward_in_the_vm(migration, through_vm)
    dest_vm = _qemu_then_the_switch_on_host_server_2(migration)
    stream = _migrate_under_traffic(migration, through_vm)
    _the_vm_runs_on_host_server_2(migration, vm, dest_vm)
    _traffic_crosses_host_server_2(migration, through_vm)
    _verify_the_stream(migration, topology, stream)


@pytest.mark.parametrize("queues", [QUEUES], ids=[f"{QUEUES}-queues"])
def test_live_migration_with_the_guests_queues_changed_while_migrating(
    migration: VhostUserMigration,
    topology,
    through_vm: Callable[..., StreamRun],
    traffic_generator: TrafficGenerator,
    tg_host: HostHandle,
    pytestconfig: pytest.Config,
) -> None:
    """Guide 2 with four queue pairs on the vhost-user NICs; the guest takes them mid-flight.

    DPDK's vhost_user_live_migration plan changes the guest's queues (`ethtool -L <if>
    combined N`) while the migration runs; here the guest's testpmd does its equivalent.

    Steps:
        2.3.1-2.3.4 As the guide, with queues=4 on the VM's vhost-user netdevs and on each
            host's vhost switch.
        A stream flow the source host's NIC puts on queue 0 (the guide's testpmd in the VM
            serves one queue pair).
        2.3.6-2.3.11 As the guide.
        2.3.12 Migrate with the stream crossing the VM; once the migration is active, in
            the guest: stop, port stop all, port config all rxq 4 / txq 4, port start
            all, start.
        2.3.13-2.3.15 As the guide; then a flow on each queue of host_server_2's NIC
            through the VM (each found by its per-queue counters).

    Verify:
        The migration was active when the change began and when it was done, and
        completes live; every frame arrives whole and in order; the stream is back within
        CHANGE_RESUME_S of the change; nothing is lost outside the change and the
        migration, whose switch-over (after the change) is within the topology's bounds;
        after it the guest's ports run four queue pairs, a flow on each queue arrives
        whole, nothing lost, and every queue carries traffic both ways at host_server_2's
        vhost ports and in the guest.
    """
    vm = _start_the_vm_on_host_server_1(migration, pytestconfig)
    _a_flow_on_queue_zero(migration, traffic_generator, tg_host)
    _forward_in_the_vm(migration, through_vm)
    dest_vm = _wait_for_the_vm_on_host_server_2(migration)
    stream, change = _migrate_changing_queues(migration, through_vm)
    _the_vm_runs_on_host_server_2(migration, vm, dest_vm)
    _traffic_crosses_host_server_2(migration, through_vm)
    _every_queue_carries_traffic(migration, traffic_generator, tg_host)
    _verify_the_stream(migration, topology, stream, change)


@pytest.mark.parametrize("guest", ["kernel"], ids=["kernel-virtio-net"])
def test_live_migration_with_the_kernel_forwarding_in_the_guest(
    migration: VhostUserMigration,
    topology,
    through_vm: Callable[..., StreamRun],
    pytestconfig: pytest.Config,
) -> None:
    """Guide 2 with the guest's kernel forwarding on virtio-net instead of testpmd.

    DPDK's vhost_user_live_migration plan also migrates a guest that runs the kernel's
    virtio-net driver. Here the guest routes the stream with its IPv4 stack
    (framework.virt.kernel_net): in on P0, out P1 (which the vhost switch hands straight
    back), in on P1, out P0 toward the TG.

    Steps:
        2.3.1-2.3.4 As the guide.
        2.3.6 In the VM, instead of testpmd: the kernel's virtio-net takes P0 and P1; IPv4
            forwarding on, a route through P1 and back out of P0; the netdevs' counters.
        2.3.7-2.3.12 As the guide: migrate with a stream crossing the VM.
        2.3.13-2.3.15 The guest's shell on host_server_2; info status; the guest's ports
            and counters.

    Verify:
        The VM's two NICs are virtio_net netdevs; traffic is seen at P0 and P1 in the
        guest's counters before and after the migration, and crosses host_server_2's
        vhost ports, none host_server_1's; everything the guide's order verifies of the
        migration; every frame arrives as the guest's routing makes it (P0's MAC to the
        next hop's, TTL two lower, the IPv4 checksum made again), whole and in order; loss
        only in the migration and within its bounds.
    """
    vm = _start_the_vm_on_host_server_1(migration, pytestconfig)
    _route_in_the_vm(migration, through_vm)
    dest_vm = _wait_for_the_vm_on_host_server_2(migration)
    stream = _migrate_under_traffic(migration, through_vm)
    _the_vm_runs_on_host_server_2(migration, vm, dest_vm)
    _traffic_crosses_host_server_2(migration, through_vm)
    _verify_the_stream(migration, topology, stream)


@pytest.mark.parametrize("order", ["switch-after-qemu"])
@pytest.mark.parametrize("guest", ["kernel"], ids=["kernel-virtio-net"])
def test_live_migration_of_the_kernel_guest_with_the_switches_started_after_qemu(
    migration: VhostUserMigration,
    topology,
    through_vm: Callable[..., StreamRun],
    pytestconfig: pytest.Config,
) -> None:
    """The switch-after-QEMU order with the guest's kernel forwarding on virtio-net.

    Steps:
        host_server_1: start the VM (QEMU waits for its vhost-user peer); after
            QEMU_WAITS_S run the vhost switch; the VM boots.
        2.3.6 In the VM, instead of testpmd: the kernel's virtio-net routes P0 <-> P1.
        host_server_2: start the VM waiting for the migration (QEMU waits for its peer);
            run the vhost switch; info status.
        2.3.12-2.3.15 As the guide: migrate with a stream crossing the VM; the guest's
            shell on host_server_2; its ports and counters.

    Verify:
        As the testpmd form: QEMU waits on each host until its switch serves the sockets,
        the guest's links come up, traffic crosses; the migration live and complete,
        every frame as the guest's routing makes it, whole and in order, loss only in the
        migration and within its bounds.
    """
    vm = _qemu_then_the_switch_on_host_server_1(migration, pytestconfig)
    _route_in_the_vm(migration, through_vm)
    dest_vm = _qemu_then_the_switch_on_host_server_2(migration)
    stream = _migrate_under_traffic(migration, through_vm)
    _the_vm_runs_on_host_server_2(migration, vm, dest_vm)
    _traffic_crosses_host_server_2(migration, through_vm)
    _verify_the_stream(migration, topology, stream)


@pytest.mark.parametrize("queues", [QUEUES], ids=[f"{QUEUES}-queues"])
@pytest.mark.parametrize("guest", ["kernel"], ids=["kernel-virtio-net"])
def test_live_migration_with_the_kernel_guests_queues_changed_while_migrating(
    migration: VhostUserMigration,
    topology,
    through_vm: Callable[..., StreamRun],
    traffic_generator: TrafficGenerator,
    tg_host: HostHandle,
    pytestconfig: pytest.Config,
) -> None:
    """The plan's own queue change: the kernel guest's `ethtool -L <if> combined 4` mid-flight.

    DPDK's vhost_user_live_migration plan runs its multi-queue case on the kernel's
    virtio-net: queues=4 on the vhost-user netdevs, and while the migration runs the
    guest's NICs are set to four combined channels (a two-vCPU guest starts with two).

    Steps:
        2.3.1-2.3.4 As the guide, with queues=4 on the VM's vhost-user netdevs and on each
            host's vhost switch.
        A stream flow the source host's NIC puts on queue 0.
        2.3.6 In the VM, instead of testpmd: the kernel's virtio-net routes P0 <-> P1.
        2.3.7-2.3.11 As the guide.
        2.3.12 Migrate with the stream crossing the VM; once the migration is active, in
            the guest: `ethtool -L <P0> combined 4`, `ethtool -L <P1> combined 4`.
        2.3.13-2.3.15 The guest's shell on host_server_2; then a flow on each queue of
            host_server_2's NIC through the VM (each found by its per-queue counters).

    Verify:
        As the testpmd form: the change made while the migration is active, the stream
        back within CHANGE_RESUME_S of it, the switch-over within the topology's bounds,
        every frame as the guest's routing makes it; after it P0 and P1 run four queue
        pairs, a flow on each queue arrives whole, and every queue carries traffic both
        ways at host_server_2's vhost ports and in the guest (virtio_net's per-queue
        counters, `ethtool -S`).
    """
    vm = _start_the_vm_on_host_server_1(migration, pytestconfig)
    _a_flow_on_queue_zero(migration, traffic_generator, tg_host)
    _route_in_the_vm(migration, through_vm)
    dest_vm = _wait_for_the_vm_on_host_server_2(migration)
    stream, change = _migrate_changing_queues(migration, through_vm)
    _the_vm_runs_on_host_server_2(migration, vm, dest_vm)
    _traffic_crosses_host_server_2(migration, through_vm)
    _every_queue_carries_traffic(migration, traffic_generator, tg_host)
    _verify_the_stream(migration, topology, stream, change)


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


def _qemu_then_the_switch_on_host_server_1(
    migration: VhostUserMigration, pytestconfig: pytest.Config
) -> VirtualMachine:
    with step("2.3.4 before 2.3.1-2.3.3: start the VM on host_server_1, then the switch"):
        waited = migration.start_vm_before_switch()
        vm = migration.source_vm
        attach_text("QEMU", f"accelerator: {vm.accel} ({vm.accel_reason})\n{' '.join(vm.argv)}")
        set_environment(pytestconfig, {"QEMU accelerator": f"{vm.accel} ({vm.accel_reason})"})
        _verify_qemu_waited(waited, "host_server_1")
    return vm


def _qemu_then_the_switch_on_host_server_2(migration: VhostUserMigration) -> VirtualMachine:
    with step("2.3.10 before 2.3.7-2.3.9: the VM on host_server_2, then the switch"):
        waited = migration.start_destination_vm_before_switch()
        _verify_qemu_waited(waited, "host_server_2")
        verify_vm_status(migration.dest_vm, "guide: VM status: paused (inmigrate)", "inmigrate")
    return migration.dest_vm


def _verify_qemu_waited(waited: QemuWaited, host: str) -> None:
    attach_text(
        f"QEMU before the switch on {host}",
        f"QEMU still starting after {waited.before_switch_s:.1f} s without a switch: "
        f"{waited.waiting}; started {waited.after_switch_s:.1f} s after the switch",
    )
    verify(
        waited.waiting,
        f"QEMU on {host} waits for its vhost-user peer (reconnect=): still starting "
        f"{waited.before_switch_s:.1f} s on, no switch there",
        seen="QEMU had finished starting before the switch ran",
    )


def _forward_in_the_vm(migration: VhostUserMigration, through_vm: Callable[..., StreamRun]) -> None:
    with step("2.3.6 In the VM: testpmd; show port info all; set fwd mac retry; start tx_first"):
        pmd = migration.start_guest_testpmd()
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


def _route_in_the_vm(migration: VhostUserMigration, through_vm: Callable[..., StreamRun]) -> None:
    with step("2.3.6 In the VM, instead of testpmd: the kernel's virtio-net routes P0 <-> P1"):
        router = migration.start_guest_router()
        attach_text("guest netdevs", "\n".join(f"P{p}: {n}" for p, n in router.names.items()))
        verify_ports(
            migration.guest_ports(),
            "the VM's two virtio NICs are the kernel's netdevs, P0 and P1, links up",
            present=(0, 1),
            drivers={0: "virtio_net", 1: "virtio_net"},
            link_up="all",
        )
    with step("2.3.6 the guest's counters: virtio traffic is seen at P0 and P1"):
        migration.clear_guest_counters()
        verify_frames_intact(
            through_vm(duration=1.0).wait(), "traffic crosses the VM, routed by its kernel"
        )
        verify_port_traffic(
            migration.guest_port_stats(),
            "guide: virtio traffic is seen at P0 and P1 (the guest's netdev counters)",
            moving=(0, 1),
        )


def _wait_for_the_vm_on_host_server_2(migration: VhostUserMigration) -> VirtualMachine:
    with step("2.3.7-2.3.9 host_server_2: set up DPDK, run the vhost switch"):
        migration.start_switch(migration.destination)
    with step("2.3.10-2.3.11 Start the VM on host_server_2; info status"):
        dest_vm = migration.start_destination_vm()
        verify_vm_status(dest_vm, "guide: VM status: paused (inmigrate)", "inmigrate")
    return dest_vm


def _migrate_under_traffic(
    migration: VhostUserMigration,
    through_vm: Callable[..., StreamRun],
    migrate: Callable[[], object] | None = None,
) -> StreamResult:
    """2.3.12 with a stream crossing the VM from before `migrate` to after `completed`.

    `migrate`: how (the guide's `migrate`, or the plan's with a change while it runs).
    """
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
            (migrate or migration.migrate)()
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
    if migration.kernel_guest:
        with step("2.3.13 In the VM, now on host_server_2: the guest's shell"):
            migration.reattach_guest_shell()
    else:
        with step("2.3.13 In the VM, now on host_server_2: the testpmd prompt"):
            migration.reattach_guest_testpmd()
    with step("2.3.14 info status on host_server_2"):
        verify_vm_status(dest_vm, "guide: VM status: running", "running")


def _traffic_crosses_host_server_2(
    migration: VhostUserMigration, through_vm: Callable[..., StreamRun]
) -> None:
    src, dst = migration.source, migration.destination
    with step("2.3.15 show port info all; show port stats all: traffic at P0 and P1"):
        verify_ports(
            migration.guest_ports(),
            "the migrated VM still has P0 and P1, links up",
            present=(0, 1),
            link_up="all",
        )
        for switch in migration.switches.values():
            switch.clear_stats()
        migration.clear_guest_counters()
        verify_frames_intact(through_vm(duration=1.0).wait(), "traffic crosses the migrated VM")
        guest = migration.guest_port_stats()
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
    migration: VhostUserMigration,
    topology: Topology,
    stream: StreamResult,
    change: QueueChange | None = None,
) -> None:
    """Every frame whole and in order; loss only in the migration, within its bounds.

    With a queue change during the migration: loss also in the change, after which the
    stream must be back, and the migration's bounds judge its switch-over after the change.
    """
    bounds = topology.window_bounds(2, "migration")
    migration.attach_migration_report(stream)
    windows = [migration.window(stream)]
    if change is not None:
        windows = _apart(change.window(stream), windows[0])
    (*_, inside) = (
        with_jitter(stream, topology.loss_windows.guide2.jitter_ms).account(*windows).windows
    )
    # Outside the windows at full resolution: with the jitter allowance, losses a steady
    # fault spreads over the whole stream join into one outage a window would claim.
    full = stream.account(*windows)
    migration.record_figures(stream, inside, full.windows[-1])
    with step("Every frame crosses the VM whole and in order, the migration included"):
        verify_frames_intact(stream, "traffic crosses the VM while it migrates")
    if change is not None:
        with step(f"The stream is back within {CHANGE_RESUME_S:g} s of the queue change"):
            verify_resumed(
                full.windows[0], "traffic resumes once the guest's queues changed",
                within_s=CHANGE_RESUME_S,
            )  # fmt: skip
    with step("The stream loses, duplicates and reorders nothing outside the migration"):
        verify_clean_outside(
            full,
            "traffic crosses the VM unharmed before and after the migration",
            judged=[(inside, bounds)],
        )
    with step(f"The migration, measured from traffic: {bounds}"):
        # one stretch under TCG too: its allowance is in the bounds (measured, see model.py)
        verify_window(inside, bounds, "loss_windows.guide2.migration")


def _apart(changed: LossWindow, moved: LossWindow) -> list[LossWindow]:
    """The queue change, and the migration's switch-over after it, as two windows.

    The switch-over's window starts where the change's (slack included) ends: the change's
    own outages are judged by the stream's return, not by the migration's bounds.
    """
    start = changed.end_s + changed.slack_s + moved.slack_s
    after = LossWindow("migration after the queue change", start, moved.end_s, moved.slack_s)
    verify(
        after.start_s < after.end_s,
        "the migration's switch-over comes after the queue change (judged apart from it)",
        seen=f"the migration ended at {moved.end_s:.3f} s, the change's window at "
        f"{changed.end_s:.3f} s",
    )
    return [changed, after]


# -- the queue change's steps -----------------------------------------------------------------


def _a_flow_on_queue_zero(
    migration: VhostUserMigration, tg: TrafficGenerator, tg_host: HostHandle
) -> None:
    with step("The stream's flow: one the source host's NIC receives on queue 0"):
        sport = migration.use_queue_zero_flow(tg, tg_host.data_port(0).interface)
        verify(
            sport is not None,
            "a flow of the stream lands on the host NIC's queue 0 (its RSS or fanout hash)",
            seen=f"none of {len(PROBE_SPORTS)} UDP source ports tried did",
        )
        attach_text("stream flow", f"UDP source port {sport}: host NIC queue 0")


def _migrate_changing_queues(
    migration: VhostUserMigration, through_vm: Callable[..., StreamRun]
) -> tuple[StreamResult, QueueChange]:
    changes: list[QueueChange] = []
    stream = _migrate_under_traffic(
        migration, through_vm, lambda: changes.append(migration.migrate_changing_queues(QUEUES))
    )
    (change,) = changes
    with step(f"2.3.12 meanwhile the guest took {QUEUES} queue pairs"):
        attach_text(
            "the queue change",
            f"{change.queues} queue pairs; migration {change.status_before} before, "
            f"{change.status_after} after; took {change.done_at - change.started_at:.2f} s",
        )
        verify(
            change.status_before == "active" and change.status_after == "active",
            f"the guest's queues change to {QUEUES} while the migration runs",
            seen=f"migration {change.status_before} when the change began, "
            f"{change.status_after} when it was done",
        )
    return stream, change


def _every_queue_carries_traffic(
    migration: VhostUserMigration, tg: TrafficGenerator, tg_host: HostHandle
) -> None:
    tx, rx = tg_host.data_port(0).interface, tg_host.data_port(1).interface
    with step(f"A flow on each of host_server_2's {QUEUES} NIC queues through the VM: every "
              "queue carries traffic"):  # fmt: skip
        verify_ports(
            migration.guest_ports(),
            f"the guest's ports run {QUEUES} queue pairs after the change",
            queues=(QUEUES, QUEUES),
        )
        sports = migration.flows_by_queue(tg, tx, migration.destination, range(QUEUES))
        verify(
            len(sports) == QUEUES,
            f"a flow lands on each of host_server_2's {QUEUES} NIC queues",
            seen=f"queues {sorted(sports)} only, of {len(PROBE_SPORTS)} flows tried",
        )
        migration.switches[migration.destination.name].clear_stats()
        migration.clear_guest_counters()
        trial = migration.queue_trials(tg, tx, rx, sports.values())(STREAM_PPS, 1.0)
        verify_trial(trial, "a flow on each queue crosses the migrated VM whole")
        rows = migration.guest_queue_counts()
        attach_table(
            "per-queue packets on host_server_2",
            ["queue", "host vhost TX", "guest RX", "guest TX", "host vhost RX"],
            [[q, *counts] for q, counts in enumerate(rows)],
        )
        verify_queues(
            rows,
            f"after the change the flows use all {QUEUES} queues, both ways",
            ["host vhost TX", "guest RX", "guest TX", "host vhost RX"],
        )
