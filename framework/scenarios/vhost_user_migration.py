"""Guide 2 (live migration of a VM with virtio on hosts running vhost-user) as one object.

host_server_1 and host_server_2 each run the vhost-switch role (framework.scenarios.
vhost_switch) serving the VM's two vhost-user sockets; the VM runs testpmd on its two
virtio ports (P0, P1) with `set fwd mac retry` and `start tx_first`, as the guide does;
then the VM moves to host_server_2 over the management network.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from scapy.packet import Packet

from framework.config.model import Topology, Vm
from framework.dpdk.args import EalOptions, TestPmdOptions, testpmd_argv
from framework.dpdk.modes import ForwardingMode
from framework.dpdk.parsers import PortInfo, PortStats
from framework.dpdk.testpmd import TestPmd
from framework.dpdk.version import DpdkVersion
from framework.lab.hosts import HostHandle
from framework.report.attach import attach_table, attach_text
from framework.report.drift import Drift, attach_drift, launch_drift
from framework.report.figures import record_figure
from framework.report.streams import attach_stream
from framework.scenarios import guest_dpdk
from framework.scenarios.stages import Made, StepOrderError
from framework.scenarios.vhost_switch import VhostSwitch
from framework.scenarios.vms import close_vms, kernel_guest_spec, run_state_marks, vm_on
from framework.traffic.generator import TrafficGenerator
from framework.traffic.packets import (
    DEFAULT_MARKER,
    STREAM_DST_IP,
    STREAM_SRC_IP,
    Transform,
    rewrite_macs,
    routed,
    udp_flow,
)
from framework.traffic.stream import LossWindow, StreamResult, WindowAccount
from framework.traffic.trials import StreamTrials, TrialFlow, flow_markers
from framework.traffic.windows import longest_stall_ms
from framework.verify import poll
from framework.virt.errors import VmError
from framework.virt.image import GuestImage
from framework.virt.kernel_net import HOPS, KernelRouter
from framework.virt.migration import MIGRATION_PORT
from framework.virt.vm import MigrationResult, VirtualMachine

log = logging.getLogger("howto.guide2")

# The guide's run_testpmd_in_vm.sh (17.05), reported next to what ran in the guest.
GUIDE_GUEST_TESTPMD = (
    "/root/dpdk/x86_64-default-linuxapp-gcc/app/testpmd -l 0-5 -n 4 --socket-mem 350 "
    "-- --burst=64 --i --disable-hw-vlan-filter"
)
GUEST_MBUFS = 4096  # the default pool does not fit the guest's 512 MB of hugepages
# The switch floods and the host NIC ports are promiscuous: any destination reaches the VM.
STREAM_DST_MAC = "02:00:00:00:00:99"
# How much later than `migrate` and its completion the switch-over may show in traffic:
# the controller reads QEMU's state over QMP, the TG stamps frames on its own clock.
WINDOW_SLACK_S = 0.5
STREAM_SPORT = 10000
# How long after the guest's ports started with more queues the host may still be taking
# them (see QueueChange.window).
HOST_FOLLOWS_S = 1.0
# bytes/s while the guest changes its queues (~150 MB would take 9 s)
CHANGE_BANDWIDTH = 16 << 20
# With several queues, the host NIC's queue of a flow is its hash's: the UDP source ports
# tried for one on a given queue (queue 0: the only one a single-queue guest serves).
PROBE_SPORTS = range(STREAM_SPORT, STREAM_SPORT + 32)
PROBE_FRAMES = 4
# QEMU as a vhost-user client started before the switch: how often it tries the socket
# (reconnect=, seconds), how long it must be seen waiting, how long it may take once the
# switch serves its sockets.
RECONNECT_S = 1
QEMU_WAITS_S = 3.0
QEMU_START_S = 60.0


def stream_frame(
    src_mac: str,
    sport: int = STREAM_SPORT,
    marker: bytes = DEFAULT_MARKER,
    dst_mac: str = STREAM_DST_MAC,
) -> Packet:
    """The frame guide 2's traffic is made of: UDP from the TG, through the VM and back."""
    return udp_flow(
        src_mac, dst_mac, STREAM_SRC_IP, STREAM_DST_IP, sport, 20000, seq=0, marker=marker
    )


# Where the stream's sequence number sits in that frame (right after the marker).


@dataclass(frozen=True)
class QueueChange:
    """The guest's queue pairs changed during the migration: to how many, and when."""

    queues: int
    status_before: str  # the migration's status when the change began
    status_after: str  # and when it was done
    started_at: float  # time.time()
    done_at: float

    def window(self, stream: StreamResult) -> LossWindow:
        """The change on the stream's timeline: its first command to the host following.

        The host's vhost ports take the guest's new vrings after the guest's ports start
        (QEMU passes the enables on): measured here, a second short outage ~0.65 s later.
        """
        return LossWindow(
            f"guest queues changed to {self.queues}",
            stream.at(self.started_at),
            stream.at(self.done_at) + HOST_FOLLOWS_S,
            slack_s=WINDOW_SLACK_S,
        )


@dataclass(frozen=True)
class QemuWaited:
    """QEMU started before its host's vhost switch: whether it waited, and how long."""

    waiting: bool  # still starting QEMU_WAITS_S after it was started, no switch yet
    before_switch_s: float  # from QEMU's start to the switch's
    after_switch_s: float  # from the switch's start to QEMU's start returning


@dataclass
class VhostUserMigration:
    """Guide 2: the two hosts' vhost switches, the VM on each side, and the migration."""

    topology: Topology
    source: HostHandle
    destination: HostHandle
    version: DpdkVersion
    vm_name: str = "vm1"
    packed: bool = False
    # Each host's vhost switch started after QEMU (QEMU a vhost-user client that waits for
    # it) rather than before, as the guide orders them.
    switch_after_qemu: bool = False
    # Queue pairs of the vhost-user NICs and the switches (the guest's testpmd starts with
    # one, as the guide's does).
    queues: int = 1
    # The guest forwards with the kernel's virtio-net (IPv4 routing) instead of testpmd.
    kernel_guest: bool = False
    stream_sport: int = STREAM_SPORT
    switches: dict[str, VhostSwitch] = field(default_factory=dict)
    images: dict[str, GuestImage | None] = field(default_factory=dict)
    source_vm = Made[VirtualMachine]("start_vm()")
    dest_vm = Made[VirtualMachine]("start_destination_vm()")
    guest_pmd = Made[TestPmd]("start_guest_testpmd()")
    router = Made[KernelRouter]("start_guest_router()")
    migration = Made[MigrationResult]("migrate()")

    @property
    def spec(self) -> Vm:
        """The topology's VM, with the virtqueue layout (split or packed) of this run.

        With the switches started after QEMU, QEMU's vhost-user NICs connect again every
        RECONNECT_S (reconnect=): without it QEMU fails at once when no switch serves the
        socket yet.
        """
        spec = self.topology.vms[self.vm_name]
        update: dict[str, object] = {"packed": self.packed, "queues": self.queues}
        if self.switch_after_qemu:
            update["reconnect"] = RECONNECT_S
        nics = [
            nic.model_copy(update=update if nic.kind == "vhost-user" else {"packed": self.packed})
            for nic in spec.nics
        ]
        spec = spec.model_copy(update={"nics": nics})
        return kernel_guest_spec(self.source, spec) if self.kernel_guest else spec

    @property
    def testpmd(self) -> str:
        """The hosts' testpmd."""
        return self.topology.dpdk.host_testpmd

    # -- 2.3.1-2.3.3 / 2.3.7-2.3.9: DPDK and the vhost switch on a host ----------------

    def start_switch(self, host: HostHandle) -> VhostSwitch:
        """Run the vhost switch on a host (the guide's run_vhost_switch_on_host.sh)."""
        # the model requires a socket of every vhost-user NIC
        sockets = [nic.socket for nic in self.spec.nics if nic.kind == "vhost-user" and nic.socket]
        switch = VhostSwitch(
            host, self.version, self.testpmd, sockets, name=f"{self.vm_name}-switch",
            queues=self.queues,
        )  # fmt: skip
        self.switches[host.name] = switch
        switch.start()
        return switch

    def _vm(self, host: HostHandle, suffix: str) -> VirtualMachine:
        return vm_on(host, self.spec, f"{self.vm_name}-{suffix}", self.images, self.topology.dpdk)

    # -- 2.3.4: the VM on host_server_1 --------------------------------------------------

    def start_vm(self, boot_timeout: float = 120) -> VirtualMachine:
        """Boot the VM on host_server_1 and wait for its shell."""
        self.source_vm = self._vm(self.source, "src")
        self.source_vm.start()
        self.source_vm.wait_for_shell(timeout=boot_timeout)
        return self.source_vm

    def start_vm_before_switch(self, boot_timeout: float = 120) -> QemuWaited:
        """2.3.4 before 2.3.1-2.3.3: QEMU first, then the vhost switch; the VM boots."""
        self.source_vm = self._vm(self.source, "src")
        waited = self._before_switch(self.source, self.source_vm, self.source_vm.start)
        self.source_vm.wait_for_shell(timeout=boot_timeout)
        return waited

    def start_destination_vm_before_switch(self) -> QemuWaited:
        """2.3.10 before 2.3.7-2.3.9: QEMU waiting for the migration, then the switch."""
        self.dest_vm = vm = self._vm(self.destination, "dst")
        incoming = f"tcp:{self.destination.session.address}:{MIGRATION_PORT}"
        return self._before_switch(self.destination, vm, lambda: vm.start(incoming=incoming))

    def _before_switch(
        self, host: HostHandle, vm: VirtualMachine, start: Callable[[], None]
    ) -> QemuWaited:
        """Start QEMU, see that it waits for its vhost-user peer, start the host's switch.

        QEMU sets its vhost-user netdevs up before it daemonizes and, as a client with
        reconnect=, tries their sockets until a server answers: its start returns only
        once the switch serves them. It runs in a thread meanwhile.
        """
        failed: list[BaseException] = []

        def run() -> None:
            try:
                start()
            except BaseException as exc:  # handed to the caller below
                failed.append(exc)

        began = time.monotonic()
        thread = threading.Thread(target=run, name=f"qemu-{vm.name}", daemon=True)
        thread.start()
        thread.join(QEMU_WAITS_S)
        waiting = thread.is_alive()
        switch_at = time.monotonic()
        try:
            self.start_switch(host)
        finally:
            thread.join(QEMU_START_S)
            if thread.is_alive():
                # Never connected: QEMU would retry for ever. Its pid is in its pidfile.
                vm.session.run(["pkill", "-9", "-F", vm.pidfile], check=False)
                thread.join(10)
        if thread.is_alive():
            raise VmError(
                f"{vm.name}: QEMU had not started {QEMU_START_S:g} s after the vhost switch "
                f"on {host.name} served its sockets"
            )
        if failed:
            raise failed[0]
        return QemuWaited(waiting, switch_at - began, time.monotonic() - switch_at)

    # -- 2.3.6: testpmd in the VM ----------------------------------------------------------

    def guest_version(self) -> DpdkVersion:
        """The release of the VM's testpmd (a mix's guest build, else the hosts')."""
        return guest_dpdk.guest_version(self.source_vm, self.spec, self.topology.dpdk, self.version)

    def guest_testpmd_argv(self, version: DpdkVersion) -> list[str]:
        """The guide's run_testpmd_in_vm.sh as the guest's DPDK (`version`) spells it."""
        eal = EalOptions(lcores="0-1", allow=self.guest_pcis())
        app = TestPmdOptions(total_num_mbufs=GUEST_MBUFS, nb_cores=1, extra=["--burst=64"])
        binary = guest_dpdk.guest_testpmd(self.spec, self.topology.dpdk)
        return testpmd_argv(binary, eal, app, version)

    def start_guest_testpmd(self) -> TestPmd:
        """Testpmd in the VM: `set fwd mac retry`, `start tx_first`."""
        version = self.guest_version()
        self.guest_pmd = self.source_vm.launch_testpmd(
            self.guest_testpmd_argv(version), version=version
        )
        fitted = "the guest's 2 vCPUs (-l 0-1), its two virtio NICs (-a), mbufs for 512 MB"
        attach_drift([launch_drift(GUIDE_GUEST_TESTPMD, self.guest_pmd.argv, version, fitted)])
        self.guest_pmd.set_fwd(ForwardingMode.MAC, retry=True)
        self.guest_pmd.start_tx_first()
        return self.guest_pmd

    def guest_pcis(self) -> list[str]:
        """The guest's PCI addresses of P0 and P1 (the topology's slots, in NIC order)."""
        return [self.spec.guest_pci(nic) for nic in self.spec.nics if nic.slot is not None]

    def start_guest_router(self) -> KernelRouter:
        """The kernel's virtio-net on P0 and P1, routing the stream in P0, out P1, back, out P0."""
        self.router = KernelRouter.start(
            self.source_vm, self.guest_pcis(), STREAM_DST_IP, STREAM_DST_MAC
        )
        return self.router

    # -- 2.3.10: the VM on host_server_2, waiting for the migration -------------------

    def start_destination_vm(self) -> VirtualMachine:
        """Start the VM on host_server_2, waiting for the migration (-incoming)."""
        self.dest_vm = self._vm(self.destination, "dst")
        self.dest_vm.start(incoming=f"tcp:{self.destination.session.address}:{MIGRATION_PORT}")
        return self.dest_vm

    # -- 2.3.12: migrate ------------------------------------------------------------------

    def migrate(self, timeout: float = 120) -> MigrationResult:
        """`migrate tcp:<host_server_2>:5555` on host_server_1, until it ends."""
        self.migration = self.source_vm.migrate_to(
            self.dest_vm, port=MIGRATION_PORT, timeout=timeout
        )
        uri = f"tcp:{self.dest_vm.address}:{MIGRATION_PORT}"
        attach_drift(
            [
                Drift(f"(qemu) migrate tcp:10.237.212.131:{MIGRATION_PORT}",
                      f'QMP migrate {{"uri": "{uri}"}}',
                      "QMP, not the telnet monitor: typed answers; host_server_2's address"),
                Drift("(qemu) info migrate", "QMP query-migrate, polled until it ends",
                      "QMP, not the telnet monitor"),
            ]
        )  # fmt: skip
        return self.migration

    def migrate_changing_queues(self, queues: int, timeout: float = 120) -> QueueChange:
        """`migrate`, and while it is active the guest takes `queues` queue pairs.

        A kernel guest: `ethtool -L <if> combined N` on P0 and P1, the plan's own step.
        The guide's testpmd: its equivalent, stop, port stop all, port config all rxq/txq
        N, port start all, start. The migration's status is read before and after.
        """
        change: list[QueueChange] = []
        # ~150 MB of guest RAM moves in 1.5-3 s here. A change still running when the
        # source pauses for the switch-over would hang on its paused console, and a
        # switch-over inside the change's window could not be judged apart from it: the
        # copy is held to CHANGE_BANDWIDTH until that window is over, then sped up again.
        speed = self.source_vm.qmp("query-migrate-parameters").get("max-bandwidth")

        def reconfigure() -> None:
            before = self.source_vm.qmp("query-migrate").get("status", "none")
            began = time.time()
            if self.kernel_guest:
                self.router.set_queues(queues)
            else:
                pmd = self.guest_pmd
                pmd.stop()
                pmd.port_stop("all")
                pmd.port_config_queues(queues, queues)
                pmd.port_start("all")
                pmd.start()
            done = time.time()
            after = self.source_vm.qmp("query-migrate").get("status", "none")
            change.append(QueueChange(queues, before, after, began, done))
            time.sleep(HOST_FOLLOWS_S + 2 * WINDOW_SLACK_S + 0.5)
            if speed is not None:
                self.source_vm.qmp("migrate-set-parameters", max_bandwidth=speed)

        self.migration = self.source_vm.migrate_to(
            self.dest_vm,
            port=MIGRATION_PORT,
            timeout=timeout,
            max_bandwidth=CHANGE_BANDWIDTH,
            while_active=reconfigure,
        )
        if not change:
            raise StepOrderError(
                f"{self.vm_name}: the migration never showed active: the queues were not changed"
            )
        return change[0]

    def flows_by_queue(
        self, tg: TrafficGenerator, tx_port: str, host: HostHandle, queues: Iterable[int]
    ) -> dict[int, int]:
        """A stream source port for each of `queues` of a host's NIC, as far as found.

        The NIC's queue of a flow is its hash's (RSS, AF_PACKET's fanout): the flows of
        PROBE_SPORTS are tried one at a time, a few frames each, and the NIC's per-queue
        counters say where each went.
        """
        switch = self.switches[host.name]
        mac = tg.mac_of(tx_port)
        wanted, found = set(queues), dict[int, int]()

        def received(xstats: dict[str, int]) -> int:
            return sum(xstats.get(f"rx_q{q}_packets", 0) for q in range(switch.queues))

        for sport in PROBE_SPORTS:
            switch.clear_stats()
            tg.exchange(tx_port, [stream_frame(mac, sport)] * PROBE_FRAMES, [], timeout=0.3)
            # every frame of this probe in before the counters are read: one still on its
            # way would be counted for the next flow's queue (CI saw a flow put on the
            # wrong queue so)
            xstats = poll(
                lambda: switch.pmd.show_port_xstats(switch.nic_port),
                lambda x: received(x) >= PROBE_FRAMES,
                timeout=2.0,
                interval=0.05,
            )
            for queue in wanted - found.keys():
                if xstats.get(f"rx_q{queue}_packets", 0) >= PROBE_FRAMES:
                    found[queue] = sport
            if found.keys() == wanted:
                break
        return found

    def use_queue_zero_flow(self, tg: TrafficGenerator, tx_port: str) -> int | None:
        """The stream's flow: one the source host's NIC receives on queue 0 (None: none)."""
        found = self.flows_by_queue(tg, tx_port, self.source, [0])
        if 0 in found:
            self.stream_sport = found[0]
        return found.get(0)

    def queue_trials(
        self, tg: TrafficGenerator, tx_port: str, rx_port: str, sports: Iterable[int]
    ) -> StreamTrials:
        """Trials of one sequenced flow per source port, each frame checked as it leaves P0."""
        form = self.exit_form()
        sports = list(sports)
        dst = self.router.macs[0] if self.kernel_guest else STREAM_DST_MAC
        return StreamTrials(
            tg,
            [
                TrialFlow(tx_port, rx_port, stream_frame(tg.mac_of(tx_port), sport, marker, dst),
                          marker, expect=form)
                for sport, marker in zip(sports, flow_markers(len(sports)), strict=True)
            ],
            64,
        )  # fmt: skip

    def frame(self, src_mac: str) -> Packet:
        """The stream's frame, on the flow chosen for it.

        A kernel guest takes in only frames addressed to it: the stream goes to P0's MAC
        (the guest's testpmd is promiscuous, and is sent a MAC nobody owns).
        """
        dst = self.router.macs[0] if self.kernel_guest else STREAM_DST_MAC
        return stream_frame(src_mac, self.stream_sport, dst_mac=dst)

    def guest_queue_counts(self) -> list[list[int]]:
        """Per queue: host_server_2's vhost ports and the guest's ports (VhostSwitch)."""
        switch = self.switches[self.destination.name]
        if self.kernel_guest:
            return switch.queue_counts_with(self.router.queue_packets(self.queues))
        return switch.queue_counts(self.guest_pmd)

    def exit_form(self) -> Transform:
        """What the guest makes of a frame that leaves it toward the TG (out of P0)."""
        if self.kernel_guest:
            return routed(self.router.macs[0], self.router.next_hop_mac, HOPS)
        fwd = self.guest_pmd.show_config_fwd()
        peer = next((s.peer for s in fwd.streams if s.tx_port == 0), None) or ""
        return rewrite_macs(self.guest_pmd.show_port_info(0).mac, peer)

    def check_switch_up(self, host: HostHandle, timeout: float = 10.0) -> PortInfo:
        """2.3.12 "Check that switch is up": the host's vhost switch owns a NIC with link."""
        switch = self.switches[host.name]
        return switch.pmd.wait_link_up(switch.nic_port, timeout=timeout, check=False)

    def guest_ports(self) -> dict[int, PortInfo]:
        """`show port info all` in the VM: the guest's ports as testpmd (or sysfs) sees them."""
        if self.kernel_guest:
            return self.router.ports()
        return {port: self.guest_pmd.show_port_info(port) for port in self.guest_pmd.port_ids()}

    def guest_port_stats(self) -> dict[int, PortStats]:
        """`show port stats all` in the VM, or the kernel netdevs' counters."""
        if self.kernel_guest:
            return self.router.port_stats()
        return self.guest_pmd.show_port_stats_all()

    def clear_guest_counters(self) -> None:
        """`clear port stats all` in the VM (a kernel guest: count from now on)."""
        if self.kernel_guest:
            self.router.clear_counters()
        else:
            self.guest_pmd.clear_counters()

    def arrival_forms(self) -> list[Transform]:
        """What the guest's `set fwd mac` makes of a stream frame, for each way through it.

        A frame leaves the VM through P1 (in on P0) or P0 (in on P1) with that port's MAC
        as source and its peer as destination; nothing else in the path (the vhost
        switches forward io, the switch floods) may change a byte. A kernel guest routes
        it: P0's MAC to the next hop's, the TTL lower by each of its hops.
        """
        if self.kernel_guest:
            return [routed(self.router.macs[0], self.router.next_hop_mac, HOPS)]
        return [rewrite_macs(src, dst) for src, dst in self.guest_pmd.mac_forwarding_addresses()]

    def window(self, stream: StreamResult) -> LossWindow:
        """The migration on the stream's timeline: from `migrate` to `completed`."""
        return LossWindow(
            "migration",
            stream.at(self.migration.started_at),
            stream.at(self.migration.finished_at),
            slack_s=WINDOW_SLACK_S,
        )

    # -- 2.3.13: back to the testpmd prompt, now on host_server_2 ------------------------

    def reattach_guest_testpmd(self) -> TestPmd:
        """The testpmd prompt of the VM, now on host_server_2 (state carried over)."""
        self.guest_pmd = self.dest_vm.attach_testpmd(self.guest_pmd)
        return self.guest_pmd

    def reattach_guest_shell(self) -> KernelRouter:
        """The kernel guest's shell, now on host_server_2 (its routes carried over)."""
        self.dest_vm.wait_for_shell(timeout=30)
        self.router = self.router.moved_to(self.dest_vm)
        return self.router

    # -- reports ----------------------------------------------------------------------------

    def record_figures(
        self, stream: StreamResult, inside: WindowAccount, raw: WindowAccount
    ) -> None:
        """The run's figures: the migration's outage, loss, span, stall; QEMU's downtime.

        Outage, loss and span as the jitter allowance joins them (`inside`), the longest
        stall at full resolution (`raw`): what the allowance must cover.
        """
        # what the jitter allowance must cover: pauses without loss at full resolution
        record_figure("migration stall", longest_stall_ms(raw), "ms", better="info")
        record_figure("migration downtime", inside.downtime_ms, "ms", better="lower",
                      tolerance=0.5, slack=50)  # fmt: skip
        record_figure("frames lost", inside.lost, "frames", better="lower", slack=100)
        record_figure("migration outages", len(inside.outages), "outages", better="lower",
                      slack=1)  # fmt: skip
        record_figure("migration loss span", inside.loss_span_ms, "ms", better="lower",
                      tolerance=0.5, slack=50)  # fmt: skip
        record_figure("frames received", stream.received, "frames", better="info")
        if self.migration.downtime_ms is not None:
            record_figure("QEMU downtime", self.migration.downtime_ms, "ms", better="lower",
                          tolerance=0.5, slack=50)  # fmt: skip

    def attach_migration_report(self, stream: StreamResult) -> None:
        """QEMU's `info migrate` next to what traffic measured, and the stream itself."""
        result = self.migration
        window = self.window(stream)
        inside = stream.account(window).windows[0]
        outage = inside.outage
        attach_table(
            "info migrate vs traffic",
            ["field (guide: info migrate)", "QEMU", "measured from traffic"],
            [
                ["Migration status", result.status, ""],
                ["status / VM while it ran (polled)", result.timeline(), ""],
                [
                    "total time (ms)",
                    result.total_time_ms,
                    f"{(window.end_s - window.start_s) * 1000:.0f}",
                ],
                [
                    "downtime (ms)",
                    result.downtime_ms,
                    f"{outage.duration_ms:.1f}" if outage else "no outage",
                ],
                ["setup (ms)", result.setup_time_ms, ""],
                ["transferred ram (kbytes)", (result.transferred_ram_bytes or 0) // 1024, ""],
                ["throughput (mbps)", result.throughput_mbps, ""],
                ["remaining ram (kbytes)", (result.remaining_ram or 0) // 1024, ""],
                ["dirty sync count", result.dirty_sync_count, ""],
                [
                    "frames sent / received / lost / duplicated",
                    "",
                    f"{stream.sent} / {stream.received} / {stream.lost} / {stream.duplicated}",
                ],
                ["frames lost in the migration", "", inside.lost],
                [
                    "outage start / end after `migrate` (ms)",
                    "",
                    f"{(outage.start_s - window.start_s) * 1000:+.1f} / "
                    f"{(outage.end_s - window.start_s) * 1000:+.1f}"
                    if outage
                    else "no outage",
                ],
                ["resolution (ms)", "", f"{stream.resolution_ms:.3f}"],
            ],
        )
        events = run_state_marks(stream, self._vms())
        queues = "packed" if self.packed else "split"
        queues += ", the guest's kernel forwarding" if self.kernel_guest else ""
        attach_stream(f"{self.vm_name} migrating ({queues} virtqueues)", stream, [window], events)

    def _vms(self) -> tuple[VirtualMachine, ...]:
        """The VMs started so far: the source's, then the destination's."""
        vms = (VhostUserMigration.source_vm.peek(self), VhostUserMigration.dest_vm.peek(self))
        return tuple(vm for vm in vms if vm is not None)

    # -- teardown ---------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the VMs and the switches; their consoles and transcripts go to the report."""
        close_vms(tuple(reversed(self._vms())))
        for switch in self.switches.values():
            if switch.running:
                attach_text(
                    f"{switch.host.name} vhost switch transcript", switch.pmd.shell.transcript
                )
            switch.close()
