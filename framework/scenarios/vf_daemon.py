"""Guide 5 (VFd): a DPDK PF that manages its VFs, and a second testpmd on two of them.

Set-up as 5.1 on the topology's `vf_daemon.<family>` PF:

- the PF bound to a DPDK driver (vfio-pci with SR-IOV enabled; the guide's igb_uio is not
  in the kernel) and VFs created from it (`sriov_numvfs`, the guide's `max_vfs`);
- testpmd on the PF (`-a <PF>`), forwarding nothing (rxonly: it counts what reaches it);
- VFs 0 and 1 bound to vfio-pci and driven by a second testpmd: a process on the same host
  sharing the PF's VF token, or, where `vf_app` names a VM, testpmd in that VM with the VFs
  passed through (5.1 steps 4, 6, 7).

The probe path of every case: the TG sends frames to VF 0's MAC; the VF testpmd forwards
what VF 0 receives out of VF 1 (`mac` mode: VF 1's source MAC, the TG as destination), so
the frames come back to the TG. Each VFd command is then judged by what comes back (and
what the PF and VF counters say), once switched on and once off.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import ClassVar

from scapy.packet import Packet

from framework.config.model import Vm
from framework.dpdk.args import EalOptions, TestPmdOptions, testpmd_argv
from framework.dpdk.launch import LaunchRecord, launch_testpmd
from framework.dpdk.modes import ForwardingMode
from framework.dpdk.testpmd import TestPmd
from framework.dpdk.version import DpdkVersion
from framework.errors import ConfigError
from framework.lab.sriov import SriovPf, VirtualFunction
from framework.scenarios import guest_dpdk
from framework.scenarios.sriov_bed import SriovBedScenario
from framework.scenarios.stages import Made, StepOrderError
from framework.scenarios.vms import vm_on
from framework.traffic.delivery import Delivery, rate_mbps
from framework.traffic.packets import DEFAULT_MARKER, flows
from framework.verify import poll, wait_for_dut
from framework.virt.image import GuestImage
from framework.virt.vm import VirtualMachine

log = logging.getLogger("howto.vfd")

PF_PORT = 0  # the PF testpmd's only port
VF0, VF1 = 0, 1  # the VF testpmd's ports: VF 0 and VF 1 of the PF
# The probe frames' addresses: the virtual lab's benchmarking range (never routed).
SRC_IP, DST_IP = "198.18.50.1", "198.18.50.2"
PROBE_FRAMES = 32
FRAME_BYTES = 128
MBUFS = 16384
TXONLY_FRAME_BYTES = 64  # testpmd's txonly frames (TXONLY_DEF_PACKET_LEN, testpmd.h:600)


@dataclass
class VfDaemon(SriovBedScenario):
    """Guide 5's PF testpmd and VF testpmd on one NIC family's PF, and the TG facing it."""

    section: ClassVar[str] = "vf_daemon"

    vfs: list[VirtualFunction] = field(default_factory=list)
    launches: list[LaunchRecord] = field(default_factory=list)
    images: dict[str, GuestImage | None] = field(default_factory=dict)
    vf_macs: list[str] = field(default_factory=list)
    tg_mac: str = ""
    pf = Made[TestPmd]("start_pf_testpmd() (set_up())")
    vf = Made[TestPmd]("set_up()")
    vm = Made[VirtualMachine]("set_up() with a VM as vf_app")
    sriov = Made[SriovPf]("set_up()")
    pf_mac: str = ""
    token: str = field(default_factory=lambda: str(uuid.uuid4()))
    # Every probe frame of the session gets its own sequence number, so a frame released
    # late (from a ring a case filled on purpose) never counts for a later case.
    next_seq: int = 0
    guest_addresses: list[str] = field(default_factory=list)

    @property
    def vm_spec(self) -> Vm | None:
        """The VM that runs the VF testpmd, or None for a process on the host."""
        return None if self.bed.vf_app == "host" else self.topology.vms[self.bed.vf_app]

    # -- 5.1 -------------------------------------------------------------------------------

    def set_up(self, boot_timeout: float = 180.0) -> None:
        """5.1 steps 2-7: the PF under DPDK, its VFs, testpmd on both; probe forwarding on.

        Raises:
            ConfigError: the DPDK under test predates the VF token (20.08), which a PF on
                vfio-pci needs; the guide's igb_uio set-up for older releases is not built.
        """
        if self.version < DpdkVersion(20, 8):
            raise ConfigError(
                f"guide 5 with a vfio-pci PF needs DPDK >= 20.08 (--vfio-vf-token); "
                f"{self.version} would need the guide's igb_uio and max_vfs, not supported"
            )
        self.sriov = SriovPf(self.host.session, self.pf_pci, host=self.host.name)
        self.sriov.bind_pf_vfio()
        self.vfs = self.sriov.enable(self.bed.vfs)
        for vf in self.vfs[:2]:
            self.sriov.bind_vfio(vf)
        self.start_pf_testpmd()
        if self.vm_spec is None:
            self.start_vf_testpmd_on_host()
        else:
            self.start_vf_testpmd_in_vm(self.vm_spec, boot_timeout)
        self.tg_mac = self.tg.mac_of(self.tg_port)
        self.pf_mac = self.pf.show_port_info(PF_PORT).mac.lower()
        self.vf_macs = [self.vf.show_port_info(p).mac.lower() for p in (VF0, VF1)]
        # testpmd starts its ports promiscuous: the VFs are to filter by MAC as configured.
        self.vf.set_promisc("all", False)
        self.forward(ForwardingMode.MAC)

    def _eal(self, lcores: str, allow: list[str]) -> EalOptions:
        eal = EalOptions(lcores=lcores, allow=allow, memory_mb=512)
        # The PF and VF processes of one PF prove to vfio that they belong together.
        eal.extra += ["--vfio-vf-token", self.token]
        return eal

    def start_pf_testpmd(self) -> TestPmd:
        """5.1 step 5: testpmd on the PF; rxonly, so it counts what the NIC hands the PF."""
        app = TestPmdOptions(total_num_mbufs=MBUFS)
        self.pf, record = launch_testpmd(
            self.host, "vfd-pf", self._eal(self.bed.pf_lcores, [self.pf_pci]), app,
            binary=self.topology.dpdk.host_testpmd, version=self.version,
        )  # fmt: skip
        self.launches.append(record)
        self.pf.set_fwd(ForwardingMode.RXONLY)
        self.pf.start()
        return self.pf

    def _vf_app(self) -> TestPmdOptions:
        queues = self.bed.vf_queues
        return TestPmdOptions(rxq=queues, txq=queues, total_num_mbufs=MBUFS, port_topology="paired")

    def start_vf_testpmd_on_host(self) -> TestPmd:
        """5.1 step 7 as a second process on the PF's host, on VFs 0 and 1."""
        eal = self._eal(self.bed.vf_lcores, [vf.pci for vf in self.vfs[:2]])
        self.vf, record = launch_testpmd(
            self.host, "vfd-vf", eal, self._vf_app(),
            binary=self.topology.dpdk.host_testpmd, version=self.version,
        )  # fmt: skip
        self.launches.append(record)
        return self.vf

    def start_vf_testpmd_in_vm(self, spec: Vm, boot_timeout: float) -> TestPmd:
        """5.1 steps 4, 6, 7: the VM with VFs 0 and 1, bound for DPDK in it, testpmd on them."""
        nics = sorted((n for n in spec.nics if n.kind == "vf"), key=lambda n: n.vf)[:2]
        backends = {nic.id: self.vfs[nic.vf].pci for nic in nics}
        self.vm = vm_on(
            self.host, spec, f"vfd-{self.family.value}", self.images,
            self.topology.dpdk, backends=backends,
        )  # fmt: skip
        self.vm.start()
        self.vm.wait_for_shell(timeout=boot_timeout)
        guest_dpdk.reserve_hugepages(self.vm, spec.guest_hugepages)
        addresses = [guest_dpdk.guest_pci(nic, spec) for nic in nics]
        guest_dpdk.bind_for_dpdk(self.vm, spec, *addresses)
        self.guest_addresses = addresses
        return self._launch_in_vm()

    def _launch_in_vm(self) -> TestPmd:
        if self.vm_spec is None:
            raise StepOrderError("VfDaemon: the VF app runs on the host, not in a VM")
        eal = EalOptions(lcores=self.bed.vf_lcores, allow=self.guest_addresses)
        binary = guest_dpdk.guest_testpmd(self.vm_spec, self.topology.dpdk)
        argv = testpmd_argv(binary, eal, self._vf_app(), self.version)
        self.vf = self.vm.launch_testpmd(argv, version=self.version)
        self.launches.append(LaunchRecord("vfd-vf", self.vm.name, argv))
        return self.vf

    # -- the probe path ----------------------------------------------------------------------

    @property
    def vf_pmd(self) -> TestPmd:
        """The VF testpmd (VF 0 = port 0, VF 1 = port 1)."""
        return self.vf

    @property
    def pf_pmd(self) -> TestPmd:
        """The PF testpmd (the PF = port 0)."""
        return self.pf

    def forward(self, mode: ForwardingMode, *, peer: str | None = None) -> None:
        """The VF testpmd forwards VF 0 <-> VF 1 in `mode`; in mac mode toward `peer`.

        `peer` (default: the TG) is the destination MAC of what VF 1 sends on.
        """
        vf = self.vf_pmd
        vf.stop()
        vf.set_fwd(mode)
        vf.set_eth_peer(VF1, peer or self.tg_mac)
        vf.set_eth_peer(VF0, self.tg_mac)
        vf.start()

    def frames(
        self,
        count: int = PROBE_FRAMES,
        *,
        dst: str | None = None,
        src: str | None = None,
        vlan: int | None = None,
        size: int = FRAME_BYTES,
    ) -> list[Packet]:
        """Probe frames from the TG to VF 0's MAC (or `dst`), optionally tagged `vlan`.

        One flow (one 5-tuple), so RSS puts them all on one queue of the VF.
        """
        first, self.next_seq = self.next_seq, self.next_seq + count
        return flows(
            1, src or self.tg_mac, dst or self.vf_macs[VF0], SRC_IP, DST_IP,
            packets_per_flow=count, size=size, vlan=vlan, first_seq=first,
        )  # fmt: skip

    def send(self, frames: Sequence[Packet], *, timeout: float = 1.0) -> Delivery:
        """Zero the counters, send the frames from the TG, capture what comes back."""
        self.pf_pmd.clear_counters()
        self.vf_pmd.clear_counters()
        capture = self.tg.exchange(
            self.tg_port, frames, [self.tg_port], expect=len(frames), timeout=timeout,
            marker=DEFAULT_MARKER,
        )  # fmt: skip
        wait_for_dut(0.2)  # the last frames through the VF testpmd reach its counters
        stats = self.vf_pmd.show_port_stats_all()
        return Delivery(
            sent=list(frames),
            at_tg=capture.frames(self.tg_port),
            pf_rx=self.pf_pmd.show_port_stats(PF_PORT).rx_packets,
            vf_rx={p: s.rx_packets for p, s in stats.items()},
            vf_tx={p: s.tx_packets for p, s in stats.items()},
        )

    def poll_only(self, port: int) -> None:
        """Forward (mac mode) on `port` alone, back out of itself.

        The other VF's ring is left unpolled, so it fills (all-queues drop, split drop).
        """
        vf = self.vf_pmd
        vf.stop()
        vf.set_portlist([port])
        vf.set_eth_peer(port, self.tg_mac)
        vf.start()

    def poll_both(self) -> None:
        """Back to the probe path: VF 0 <-> VF 1; what waited in an unpolled ring drains."""
        vf = self.vf_pmd
        vf.stop()
        vf.set_portlist([VF0, VF1])
        self.forward(ForwardingMode.MAC)
        wait_for_dut(0.5)

    def restart_vf_testpmd(self) -> TestPmd:
        """Quit the VF testpmd and start it again (host process or in the VM)."""
        self.vf_pmd.close()
        del self.vf
        if VfDaemon.vm.peek(self) is None:
            self.start_vf_testpmd_on_host()
        else:
            self._launch_in_vm()
        self.vf_pmd.set_promisc("all", False)
        self.forward(ForwardingMode.MAC)
        return self.vf_pmd

    def set_pf_mtu(self, mtu: int) -> None:
        """`port config mtu 0 MTU` on the PF (stopped around it), which bounds its VFs'."""
        pf = self.pf_pmd
        pf.stop()
        pf.port_stop(PF_PORT)
        pf.port_config_mtu(PF_PORT, mtu)
        pf.port_start(PF_PORT)
        pf.start()

    def enable_pf_dcb(self, tcs: int = 4) -> None:
        """DCB with `tcs` traffic classes on the PF (VMDq+DCB), for 5.4.8-5.4.10.

        The i40e PF gives its VFs and the VEB only TC 0 otherwise. Stays on for the rest
        of the module. The PF testpmd needs `tcs` forwarding cores.
        """
        pf = self.pf_pmd
        pf.stop()
        pf.port_stop(PF_PORT)
        pf.port_config_dcb(PF_PORT, tcs, vt=True, pfc=False)
        pf.port_start(PF_PORT)
        pf.start()

    def set_vf_mtu(self, mtu: int) -> None:
        """`port config mtu P MTU` on both VF ports (stopped around it)."""
        with self.vf_ports_restarted():
            for port in (VF0, VF1):
                self.vf_pmd.port_config_mtu(port, mtu)

    @contextmanager
    def tg_mtu(self, mtu: int) -> Iterator[None]:
        """The TG port's MTU raised for jumbo frames (the switch must pass them too)."""
        session = self.hosts[self.topology.tg_name].session
        before = self.tg.interfaces([self.tg_port])[self.tg_port]["mtu"]
        session.run(["ip", "link", "set", "dev", self.tg_port, "mtu", str(mtu)])
        try:
            yield
        finally:
            session.run(["ip", "link", "set", "dev", self.tg_port, "mtu", str(before)])

    def rate_back_mbps(self, frame: Packet, offered_mbps: float, *, seconds: float = 3.0) -> float:
        """Stream `frame` to VF 0 at offered_mbps for `seconds`; the rate back at the TG.

        Rates are layer 2 with FCS (the frame's length + 4), as NICs' limiters count.
        """
        size = len(frame) + 4
        result = self.tg.stream(
            self.tg_port, frame, self.tg_port, pps=offered_mbps * 1e6 / (size * 8),
            duration=seconds, ignore_src=self.tg_mac,
        )  # fmt: skip
        return rate_mbps(len(set(result.seq.tolist())), size, seconds)

    def tx_queue_rates_mbps(self, port: int, seconds: float = 3.0) -> dict[int, float]:
        """The VF testpmd sends flat out (txonly) for `seconds`: Mbit/s per Tx queue of port.

        Per-queue packets are testpmd's own: `stop` prints one block per forwarding stream
        (RX port/queue -> TX port/queue) with the packets the stream's bursts handed the
        NIC, which a throttled queue takes only as fast as the scheduler frees its
        descriptors. Not the xstats tx_qN_bytes: neither VF driver fills per-queue counters
        in 22.11 (ixgbevf_dev_stats_get sets the totals only, ixgbe_ethdev.c:3815-3830;
        iavf does not set RTE_ETH_DEV_AUTOFILL_QUEUE_XSTATS, so it lists none), and a rate
        read from them would be 0 on every queue. Rates are layer 2 with FCS, as
        rate_back_mbps counts them.
        """
        vf = self.vf_pmd
        vf.stop()
        vf.set_fwd(ForwardingMode.TXONLY)
        vf.start()
        wait_for_dut(seconds)
        sent = vf.stop().tx_packets_by_queue(port)
        self.forward(ForwardingMode.MAC)
        return {
            queue: rate_mbps(sent.get(queue, 0), TXONLY_FRAME_BYTES + 4, seconds)
            for queue in range(self.bed.vf_queues)
        }

    def vf_link_up(self, port: int, *, want: bool, timeout: float = 10.0) -> bool:
        """Whether the VF testpmd reports the link of `port` as `want` within `timeout`."""
        info = poll(lambda: self.vf_pmd.show_port_info(port), lambda i: i.link_up == want, timeout)
        return info.link_up

    @contextmanager
    def vf_ports_restarted(self) -> Iterator[None]:
        """Stop the VF testpmd's ports for a change that needs it, start them after."""
        vf = self.vf_pmd
        vf.stop()
        vf.port_stop("all")
        try:
            yield
        finally:
            vf.port_start("all")
            for port in (VF0, VF1):
                vf.wait_link_up(port)
            vf.start()

    def close(self) -> None:
        """Quit both testpmds, stop the VM, give the VFs and the PF back; never raises."""
        for name, made in (("vf", VfDaemon.vf), ("pf", VfDaemon.pf)):
            if pmd := made.peek(self):
                try:
                    pmd.close()
                except Exception as exc:  # teardown goes on whatever one piece says
                    log.warning("%s testpmd did not close: %s", name, exc)
                made.__delete__(self)
        if vm := VfDaemon.vm.peek(self):
            vm.kill()
            del self.vm
        if sriov := VfDaemon.sriov.peek(self):
            try:
                sriov.restore()
            except Exception as exc:
                log.warning("%s", exc)
            del self.sriov
