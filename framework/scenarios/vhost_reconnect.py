"""DPDK's pvp_vhost_user_reconnect plan on guide 4's PVP path, one VM.

The host testpmd's two vhost-user ports and the guest's two virtio ports, as guide 4 sets
them up (framework.scenarios.pvp), in one of the plan's two forms: the host's vhost ports
as clients (client=1) of sockets QEMU serves, or serving them with QEMU connecting again
(reconnect=1). One side is then taken away and brought back while a sequenced stream
crosses the path: the host testpmd killed and relaunched, the guest's testpmd restarted,
the VM relaunched. What each event cost the stream is judged by the test; what the side
that stayed holds (fds, memory, hugepage files, sockets) is read for the stability forms.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from framework.dpdk.launch import kill_testpmd, testpmd_pids
from framework.dpdk.modes import ForwardingMode
from framework.dpdk.parsers import PortInfo, PortStats
from framework.lab.holdings import Holdings, read_holdings, together
from framework.lab.hosts import HostHandle
from framework.scenarios.pvp import Pvp
from framework.scenarios.pvvp import Pvvp
from framework.scenarios.stages import StepOrderError
from framework.scenarios.vhost_switch import VhostSwitch
from framework.scenarios.vm_to_vm import KernelVmToVm
from framework.scenarios.vms import close_vms
from framework.traffic.stream import LossWindow, StreamResult
from framework.verify import poll

log = logging.getLogger("howto.reconnect")

# How much later than an event's commands its effect may show in traffic (the controller's
# clock against the TG's).
EVENT_SLACK_S = 0.5
# A vhost-user client retries every second; a guest's link follows within a few more.
LINK_BACK_S = 15.0
# The event in which the vhost-user backend (the host testpmd) dies and comes back.
HOST_RELAUNCHED = "host testpmd killed and relaunched"
# The guest's virtqueues: QEMU's default ring size for virtio-net (rx_queue_size).
RING_SIZE = 256


@dataclass(frozen=True)
class Event:
    """A side of the connection taken away and back: what, and when (time.time())."""

    name: str
    started_at: float
    back_at: float

    def window(self, stream: StreamResult) -> LossWindow:
        """The event on the stream's timeline, from its first command to the links back."""
        return LossWindow(
            self.name, stream.at(self.started_at), stream.at(self.back_at), EVENT_SLACK_S
        )


class Reconnecting:
    """What the plan's events share: each taken, then every link waited for, then recorded.

    A set-up supplies the host's vhost ports and the guests' ports, as `show port info`
    gives them, and the events themselves.
    """

    events: list[Event]

    def host_vhost_ports(self) -> dict[int, PortInfo]:
        """`show port info` of the host testpmd's vhost-user ports."""
        raise NotImplementedError

    def guest_ports(self) -> dict[int, PortInfo]:
        """`show port info` of every guest port."""
        raise NotImplementedError

    def _event(self, name: str, action: Callable[[], None]) -> Event:
        started = time.time()
        log.info("reconnect event: %s", name)
        action()
        self.wait_links()
        event = Event(name, started, time.time())
        self.events.append(event)
        return event

    def wait_links(self, timeout: float = LINK_BACK_S) -> None:
        """Until the host's vhost ports and the guest's ports are all up (or `timeout`)."""
        poll(
            lambda: [*self.host_vhost_ports().values(), *self.guest_ports().values()],
            lambda ports: all(p.link_up for p in ports),
            timeout,
        )


def relaunch_host(host: HostHandle, switch: VhostSwitch, start: Callable[[], object]) -> None:
    """Kill -9 the host testpmd, forget it, start it again with `start`."""
    kill_testpmd(host.session, switch.pmd)
    switch.close()
    start()


def holdings_of(host: HostHandle, pid: int) -> Holdings:
    """What process `pid` on `host` holds, and the run's hugepage files and sockets there."""
    return read_holdings(
        host.session,
        pid,
        hugepage_mount=host.spec.hugepages.mount,
        prefix=host.prefix,
        work_dir=host.work_dir,
    )


def packed_ring_stall(
    packed: bool, event: Event, switch: VhostSwitch, host: dict[int, PortStats]
) -> str | None:
    """The known packed-ring defect, if that is what stopped the stream after `event`.

    When the vhost-user backend dies, QEMU cannot say where a packed virtqueue stands
    (hw/virtio/virtio.c, virtio_queue_packed_restore_last_avail_idx: "We don't have a
    reference like avail idx in shared memory"; a split ring's used index is read back
    from guest memory). The relaunched backend starts at a stale position: it hands the
    guest at most a ring's worth of frames (often none) the guest never takes, then
    nothing, while its NIC keeps receiving and it keeps forwarding io from it to the
    guest. Only that signature is named; anything else that stops the stream (the host
    not forwarding, say) stays a failure. `host`: the host testpmd's port counters.
    """
    nic, vhost = switch.nic_ports[0], switch.vhost_ports[0]
    to_guest = sum(host[p].tx_packets for p in switch.vhost_ports if p in host)
    from_tg = host[nic].rx_packets if nic in host else 0
    return _relaunched_ring_stall(
        packed, event, switch, (nic, vhost), to_guest <= RING_SIZE < from_tg / 2,
        f"of the {from_tg} frames the relaunched host testpmd received it could hand the "
        f"guest {to_guest}, and the guest took none",
    )  # fmt: skip


def _relaunched_ring_stall(
    packed: bool, event: Event, switch: VhostSwitch, io: tuple[int, int], stalled: bool,
    seen: str,
) -> str | None:  # fmt: skip
    """The packed-ring stall named, with what was `seen`, or None.

    Named only if the host testpmd was relaunched on packed rings, forwards io from port
    io[0] to io[1], and its counters show it `stalled`.
    """
    if not (packed and event.name == HOST_RELAUNCHED and stalled):
        return None
    fwd = switch.pmd.show_config_fwd()
    if fwd.mode != ForwardingMode.IO or fwd.tx_port_of(io[0]) != io[1]:
        return None
    return (
        "packed virtqueues stall once the vhost-user backend is killed and relaunched: "
        "QEMU cannot restore a packed ring's position (virtio_queue_packed_restore_"
        f"last_avail_idx): {seen}"
    )


@dataclass
class PvpReconnect(Reconnecting):
    """Guide 4's PVP in a reconnect form, and the events the plan takes it through."""

    pvp: Pvp
    events: list[Event] = field(default_factory=list)

    @property
    def form(self) -> str:
        """`vhost-user client` or `vhost-user server`: the host side's role."""
        return f"vhost-user {self.pvp.reconnect}"

    # -- the plan's events ----------------------------------------------------------------

    def relaunch_host_testpmd(self) -> Event:
        """The host testpmd killed (kill -9) and started again, the same command line."""
        pvp = self.pvp
        return self._event(
            HOST_RELAUNCHED, lambda: relaunch_host(pvp.host, pvp.switch, pvp.start_host_testpmd)
        )

    def restart_guest_testpmd(self) -> Event:
        """The guest's testpmd quit and started again, the same command line."""
        return self._event("guest testpmd restarted", self._restart_guest)

    def relaunch_vm(self) -> Event:
        """QEMU stopped and the VM started again, its testpmd too."""
        return self._event("VM relaunched", self._relaunch_vm)

    def _restart_guest(self) -> None:
        pvp = self.pvp
        argv = pvp.guest_pmd.argv
        pvp.guest_pmd.close()
        pvp.guest_pmd = pvp.vm.launch_testpmd(argv, version=pvp.version)
        pvp.guest_pmd.start()

    def _relaunch_vm(self) -> None:
        pvp = self.pvp
        pvp.guest_pmd.close()
        del pvp.guest_pmd
        close_vms([pvp.vm])
        del pvp.vm
        pvp.start_guest()

    # -- what each side shows ---------------------------------------------------------------

    def host_vhost_ports(self) -> dict[int, PortInfo]:
        """`show port info` of the host testpmd's vhost-user ports."""
        pmd = self.pvp.host_pmd
        return {port: pmd.show_port_info(port) for port in self.pvp.switch.vhost_ports}

    def guest_ports(self) -> dict[int, PortInfo]:
        """`show port info all` in the guest."""
        pmd = self.pvp.guest_pmd
        return {port: pmd.show_port_info(port) for port in pmd.port_ids()}

    def port_counters(self) -> dict[str, dict[int, PortStats]]:
        """`show port stats all` of the host and the guest testpmd."""
        return {
            "host": self.pvp.host_pmd.show_port_stats_all(),
            "guest": self.pvp.guest_pmd.show_port_stats_all(),
        }

    def packed_ring_stall(
        self, event: Event, counters: dict[str, dict[int, PortStats]]
    ) -> str | None:
        """The known packed-ring defect, if that stopped the stream (packed_ring_stall)."""
        return packed_ring_stall(self.pvp.path.packed, event, self.pvp.switch, counters["host"])

    def host_testpmd_holdings(self) -> Holdings:
        """What the host testpmd holds (the side that stays while the guest side restarts)."""
        (pid,) = testpmd_pids(self.pvp.host.session, self.pvp.host_pmd)
        return holdings_of(self.pvp.host, pid)

    def qemu_holdings(self) -> Holdings:
        """What QEMU holds (the side that stays while the host testpmd is relaunched)."""
        pid = self.pvp.vm.pid
        if pid is None:
            raise StepOrderError("PvpReconnect: the VM's QEMU has no pid: start_guest() first")
        return holdings_of(self.pvp.host, pid)


@dataclass
class PvvpReconnect(Reconnecting):
    """The plan's multi-VM cases: the host testpmd relaunched, or both VMs, under traffic."""

    pvvp: Pvvp
    events: list[Event] = field(default_factory=list)

    @property
    def form(self) -> str:
        """`vhost-user client` or `vhost-user server`: the host side's role."""
        return f"vhost-user {self.pvvp.reconnect}"

    def relaunch_host_testpmd(self) -> Event:
        """The host testpmd killed (kill -9) and started again, the same command line."""
        pvvp = self.pvvp
        return self._event(
            HOST_RELAUNCHED,
            lambda: relaunch_host(pvvp.host, pvvp.switch, pvvp.start_host_testpmd),
        )

    def relaunch_vms(self) -> Event:
        """Both VMs stopped and started again (the plan's reboot), their testpmds too."""

        def relaunch() -> None:
            self.pvvp.close_guests()
            self.pvvp.start_guests()

        return self._event("both VMs relaunched", relaunch)

    def host_vhost_ports(self) -> dict[int, PortInfo]:
        """`show port info` of the host testpmd's vhost-user ports."""
        pmd = self.pvvp.host_pmd
        return {port: pmd.show_port_info(port) for port in self.pvvp.switch.vhost_ports}

    def guest_ports(self) -> dict[int, PortInfo]:
        """Each VM's one virtio port, keyed by the VM's index (0: VM1, 1: VM2)."""
        return {i: pmd.show_port_info(0) for i, pmd in enumerate(self.pvvp.guest_pmds)}

    def port_counters(self) -> dict[str, dict[int, PortStats]]:
        """`show port stats all` of the host testpmd and of each VM's."""
        counters = {"host": self.pvvp.host_pmd.show_port_stats_all()}
        for i, pmd in enumerate(self.pvvp.guest_pmds, 1):
            counters[f"vm{i}"] = pmd.show_port_stats_all()
        return counters

    def packed_ring_stall(
        self, event: Event, counters: dict[str, dict[int, PortStats]]
    ) -> str | None:
        """The known packed-ring defect, if that is what stopped the stream."""
        return packed_ring_stall(self.pvvp.packed, event, self.pvvp.switch, counters["host"])

    def qemu_holdings(self) -> Holdings:
        """What both QEMUs hold together (the side that stays while the host is relaunched)."""
        host = self.pvvp.host
        readings = []
        for vm in self.pvvp.vms:
            if vm.pid is None:
                raise StepOrderError(f"{vm.name}: its QEMU has no pid: start_guests() first")
            readings.append(holdings_of(host, vm.pid))
        return together(readings)


@dataclass
class KernelVmToVmReconnect(PvvpReconnect):
    """The plan's VM-to-VM cases: two kernel guests, the host testpmd relaunched or the VMs."""

    pvvp: KernelVmToVm

    def guest_ports(self) -> dict[int, PortInfo]:
        """Each VM's NIC as its kernel shows it, keyed by the VM's index (0: VM1, 1: VM2)."""
        return {i: endpoint.port_info() for i, endpoint in enumerate(self.pvvp.endpoints)}

    def port_counters(self) -> dict[str, dict[int, PortStats]]:
        """`show port stats all` of the host testpmd (the guests' netdevs count for themselves)."""
        return {"host": self.pvvp.host_pmd.show_port_stats_all()}

    def packed_ring_stall_of_tcp(
        self, event: Event, counters: dict[str, dict[int, PortStats]], retransmits: int
    ) -> str | None:
        """The known packed-ring defect (packed_ring_stall), as TCP between two VMs meets it.

        The relaunched host testpmd, forwarding io between the two vhost ports, takes no
        frame (at most a ring's worth) from either VM while VM2's TCP keeps sending again
        (`retransmits`, its count over the transfer). Anything else that stops the
        stream (the host not forwarding, say) stays a failure.
        """
        switch = self.pvvp.switch
        first, second = switch.vhost_ports
        taken = sum(counters["host"][p].rx_packets for p in switch.vhost_ports)
        return _relaunched_ring_stall(
            self.pvvp.packed, event, switch, (second, first),
            taken <= RING_SIZE and retransmits >= 2,
            f"the relaunched host testpmd took {taken} frames from the two VMs while VM2's "
            f"TCP sent {retransmits} segments again",
        )  # fmt: skip
