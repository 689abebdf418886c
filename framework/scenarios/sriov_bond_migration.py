"""Guide 1 (live migration of a VM with an SR-IOV VF, bonding PMD active-backup) as one object.

The VM has virtio-net (P0) on a tap bridged with the host's NIC port, and a VF (P1): a real
SR-IOV VF through vfio-pci on a lab, an emulated e1000 on a tap of its own here (see
framework.virt.vf). In the VM, testpmd bonds P0 and P1 into P2 (mode 1, active-backup, VF
primary) and forwards on P2. The VF is moved out of the way (failover to virtio, detach,
device_del), the VM migrates to host_server_2 with virtio only, and the VF comes back there.

Every step records what the guide ran next to what ran here (`drift`), the guest testpmd
and QMP transcripts of the step, and its time span, so a test can give loss windows and the
report can put each step's outage next to its commands.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from scapy.layers.l2 import Ether
from scapy.packet import Packet

from framework.config.model import Topology, Vm, VmNic
from framework.dpdk.args import (
    EalOptions,
    TestPmdOptions,
    testpmd_argv,
    translate_testpmd_command,
)
from framework.dpdk.modes import ForwardingMode
from framework.dpdk.parsers import BondingConfig, PortInfo, PortStats
from framework.dpdk.testpmd import TestPmd, default_eth_peer
from framework.dpdk.version import DpdkVersion
from framework.errors import ConfigError, ShellClosed, TestPmdError
from framework.lab.hosts import HostHandle
from framework.report.attach import attach_table, attach_text, step
from framework.report.drift import Drift, attach_drift
from framework.report.figures import record_figure
from framework.report.findings import observe
from framework.report.outcomes import known_defect
from framework.report.streams import attach_stream
from framework.scenarios import guest_dpdk
from framework.scenarios.stages import Made
from framework.scenarios.vms import close_vms, run_state_marks, vm_on
from framework.traffic.generator import TrafficGenerator
from framework.traffic.packets import (
    STREAM_DST_IP,
    STREAM_SRC_IP,
    Transform,
    rewrite_macs,
    udp_flow,
)
from framework.traffic.stream import LossAccount, LossWindow, StreamResult
from framework.traffic.windows import longest_stall_ms
from framework.verify import poll, wait_for_dut
from framework.virt.host_net import TapBridge, bridge_for
from framework.virt.hotplug import Hotplug
from framework.virt.image import GuestImage
from framework.virt.migration import MIGRATION_PORT
from framework.virt.vf import HostVf, host_vf
from framework.virt.vm import MigrationResult, VirtualMachine

log = logging.getLogger("howto.guide1")

# The guide's run_testpmd_bonding_in_vm.sh (17.05), shown next to what ran in the guest.
GUIDE_GUEST_TESTPMD = (
    "/root/dpdk/x86_64-default-linuxapp-gcc/app/testpmd -l 0-3 -n 4 --socket-mem 350 "
    "-- -i --port-topology=chained"
)
GUEST_MBUFS = 8192  # the default pool does not fit the guest's hugepages
BOND_MODE_ACTIVE_BACKUP = 1
VIRTIO_PORT, VF_PORT, BOND_PORT = 0, 1, 2  # the guide's P0, P1, P2
# The MAC the guide adds to the VF on a Niantic with a kernel PF.
GUIDE_VF_MAC = "AA:BB:CC:DD:EE:FF"
# Since 17.11 testpmd's `mac_addr add port P vf V` calls the i40e/bnxt PF APIs only.
VF_MAC_FORM_TO_PF_APIS = DpdkVersion(17, 11)
# Nobody has this MAC: every frame to it is flooded by the switch and the host bridges,
# so it reaches both bonded ports whichever is active (testpmd puts them in promiscuous mode).
STREAM_DST_MAC = "02:00:00:00:01:99"
# How much later than a step's commands its effect may show in traffic (QMP/testpmd on the
# controller's clock, frames on the TG's).
WINDOW_SLACK_S = 0.5
# What testpmd prints when its removal callback starts forwarding again (rxtx_config_display),
# and how long after it the lcores are surely launched.
FORWARDING_RESTARTED = "nb forwarding ports="
RESTART_SETTLE_S = 0.5
LINK_TIMEOUT_S = 20.0  # an e1000 under TCG takes ~3 s to report link after port start


def stream_frame(src_mac: str) -> Packet:
    """The frame guide 1's traffic is made of: UDP from the TG, through the bond and back."""
    return udp_flow(src_mac, STREAM_DST_MAC, STREAM_SRC_IP, STREAM_DST_IP, 10001, 20001, seq=0)


@dataclass
class StepRecord:
    """One guide step as it ran: commands (guide vs here), transcripts, time span."""

    title: str
    started_at: float
    window: str | None = None  # the loss window the step belongs to, if any
    finished_at: float = 0.0
    drift: list[Drift] = field(default_factory=list)
    testpmd: str = ""
    qmp: list[str] = field(default_factory=list)


@dataclass
class SriovBondMigration:
    """Guide 1: the hosts' VF and bridge set-up, the VM, the bond in it, the migration."""

    topology: Topology
    source: HostHandle
    destination: HostHandle
    version: DpdkVersion
    vm_name: str
    images: dict[str, GuestImage | None] = field(default_factory=dict)
    bridges: dict[str, TapBridge] = field(default_factory=dict)
    vfs: dict[str, HostVf] = field(default_factory=dict)
    hotplugs: list[Hotplug] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)
    _current: StepRecord | None = None
    vf_mac_added: bool = False  # the VF port took the guide's AA:BB:CC:DD:EE:FF (1.3.3)
    # each port's MAC as testpmd started it, before any bond: the members' own addresses
    own_macs: dict[int, str] = field(default_factory=dict)
    hot_plug_peer: str = STREAM_DST_MAC  # where the hot-plug cases' testpmd forwards to
    # the VM starts with a vIOMMU (the topology's hot_plug_viommu, for the vm_hotplug cases)
    with_viommu: bool = False
    source_vm = Made[VirtualMachine]("start_vm()")
    dest_vm = Made[VirtualMachine]("start_destination_vm()")
    guest_pmd = Made[TestPmd]("start_guest_testpmd()")
    bond = Made[int]("create_bond()")
    migration = Made[MigrationResult]("migrate()")

    # -- the topology's VM -------------------------------------------------------------------

    @property
    def spec(self) -> Vm:
        """The guide's VM as the topology describes it (with a vIOMMU if asked for)."""
        spec = self.topology.vms[self.vm_name]
        return spec.model_copy(update={"viommu": True}) if self.with_viommu else spec

    def for_hot_plug(self) -> None:
        """The VM as the vm_hotplug cases start it: with a vIOMMU if the topology says so."""
        self.with_viommu = self.topology.vms[self.vm_name].hot_plug_viommu

    @property
    def vf_nic(self) -> VmNic:
        """The NIC in the VF's role."""
        nic = self.spec.vf_nic
        if nic is None:
            raise ConfigError(f"vms.{self.vm_name} has no NIC with role vf (guide 1)")
        return nic

    @property
    def virtio_nic(self) -> VmNic:
        """The virtio NIC (the other one)."""
        return next(n for n in self.spec.nics if n.role != "vf")

    @property
    def vf_emulated(self) -> bool:
        """Whether an emulated NIC stands in for the VF (the virtual lab)."""
        return self.vf_nic.kind != "vf"

    @property
    def vm(self) -> VirtualMachine:
        """The VM where it runs now (the destination once migrated)."""
        return self.dest_vm if self.migrated else self.source_vm

    @property
    def migrated(self) -> bool:
        """Whether the VM has moved to host_server_2."""
        return SriovBondMigration.migration.peek(self) is not None

    @property
    def host(self) -> HostHandle:
        """The host the VM is on now."""
        return self.destination if self.migrated else self.source

    @property
    def pmd(self) -> TestPmd:
        """The guest testpmd."""
        return self.guest_pmd

    # -- steps: what the guide ran next to what ran ------------------------------------------

    @contextmanager
    def step(self, title: str, window: str | None = None) -> Iterator[StepRecord]:
        """A guide step: a report step that records its commands, transcripts and span.

        Steps that change the data path name their loss `window` (failover, vf_detach,
        migration, vf_attach): traffic may be lost only within those steps' spans.
        """
        record = StepRecord(title, time.time(), window)
        pmd = SriovBondMigration.guest_pmd.peek(self)
        mark = len(pmd.shell.transcript) if pmd else 0
        self._current = record
        try:
            with step(title):
                yield record
        finally:
            record.finished_at = time.time()
            if pmd := SriovBondMigration.guest_pmd.peek(self):
                record.testpmd = pmd.shell.transcript[mark:]
            for vm in self._vms():
                record.qmp += [
                    f"{vm.name}: {line}"
                    for t, line in vm.qmp_log
                    if record.started_at <= t <= record.finished_at
                ]
            self._current = None
            self.steps.append(record)
            self._attach_step(record)

    def drift(self, guide: str, ran: str, why: str = "") -> None:
        """Record a guide command and what ran in its place (and why), in the current step."""
        if self._current is not None:
            self._current.drift.append(Drift(guide, ran, why))

    def _attach_step(self, record: StepRecord) -> None:
        attach_drift(record.drift)
        if record.testpmd.strip():
            attach_text("guest testpmd", record.testpmd)
        if record.qmp:
            attach_text("QEMU (QMP)", "\n".join(record.qmp))

    # -- 1.3.1 / 1.3.6: the host's VF (1.4.1 / 1.4.5) ----------------------------------------

    def set_up_vf(self, host: HostHandle) -> HostVf:
        """setup_vf_on_*.sh: a VF for the VM on this host (or its stand-in)."""
        vf = host_vf(host, self.vf_nic)
        self.vfs[host.name] = vf
        vf.set_up()
        for guide, ran in vf.steps:
            self.drift(guide, ran)
        return vf

    # -- 1.3.2 / 1.3.7: the bridge joining the NIC port and the VM's tap (1.4.3 / 1.4.7) -----

    def set_up_bridge(self, host: HostHandle) -> TapBridge:
        """setup_bridge_on_*.sh: the VM's virtio tap bridged with the host's NIC port."""
        bridge = bridge_for(host, self.virtio_nic, "br0")
        self.bridges[host.name] = bridge
        bridge.create()
        for guide, ran in bridge.steps:
            self.drift(guide, ran)
        return bridge

    def _vm(self, host: HostHandle, suffix: str, spec: Vm) -> VirtualMachine:
        backends = {self.virtio_nic.id: self.bridges[host.name].tap}
        if any(n.id == self.vf_nic.id for n in spec.nics):
            backends[self.vf_nic.id] = self.vfs[host.name].backend()
        return vm_on(
            host,
            spec,
            f"{self.vm_name}-{suffix}",
            self.images,
            self.topology.dpdk,
            backends=backends,
        )

    # -- 1.3.1: the VM with virtio and the VF (1.4.2) ----------------------------------------

    def start_vm(self, boot_timeout: float = 120) -> VirtualMachine:
        """vm_virtio_vf_one_*.sh: the VM with virtio and the VF, on host_server_1."""
        self.source_vm = self._vm(self.source, "src", self.spec)
        self.source_vm.start()
        self.drift(
            "taskset -c 1-5 qemu-system-x86_64 -enable-kvm ... -device virtio-net-pci,"
            "netdev=net1 -device pci-assign,host=09:10.0,id=vf1 -monitor telnet::3333",
            " ".join(self.source_vm.argv),
        )
        self.source_vm.wait_for_shell(timeout=boot_timeout)
        return self.source_vm

    # -- 1.3.3: DPDK in the VM (1.5.1) ---------------------------------------------------------

    def guest_pci(self, nic: VmNic) -> str:
        """The guest PCI address of a NIC (its fixed slot)."""
        return guest_dpdk.guest_pci(nic, self.spec)

    def set_up_dpdk_in_vm(self) -> dict[str, str | None]:
        """setup_dpdk_in_vm.sh over the guest shell: hugepages, NICs bound for DPDK.

        Returns the guest driver of each NIC's PCI address.
        """
        self.drift(*guest_dpdk.reserve_hugepages(self.vm, self.spec.guest_hugepages))
        addresses = [self.guest_pci(n) for n in self.spec.nics]
        self.bind_in_guest(*addresses)
        return {a: self.guest_driver(a) for a in addresses}

    @property
    def guest_dpdk_driver(self) -> str:
        """The kernel driver guest NICs are bound to for DPDK."""
        return guest_dpdk.dpdk_driver(self.spec)

    def bind_in_guest(self, *addresses: str) -> None:
        """Bind guest NICs for DPDK, as the guide's dpdk-devbind.py -b igb_uio does."""
        self.drift(*guest_dpdk.bind_for_dpdk(self.vm, self.spec, *addresses))

    def guest_driver(self, address: str) -> str | None:
        """The kernel driver a guest PCI device is bound to; None if unbound or absent."""
        return guest_dpdk.bound_driver(self.vm, address)

    def guest_sees(self, address: str) -> bool:
        """Whether the guest's PCI bus has a device at this address."""
        status, _ = self.vm.shell.run(f"test -e /sys/bus/pci/devices/{address}")
        return status == 0

    def wait_guest_sees(self, address: str, timeout: float = 15.0) -> bool:
        """Whether a hot-plugged device shows up on the guest's PCI bus within `timeout`."""
        return poll(lambda: self.guest_sees(address), bool, timeout)

    def guest_hugepages(self) -> int:
        """HugePages_Total in the guest."""
        return guest_dpdk.hugepages_total(self.vm)

    # -- 1.3.3: testpmd and the bond -----------------------------------------------------------

    def guest_testpmd_argv(self, *, hot_plug: bool = False) -> list[str]:
        """run_testpmd_bonding_in_vm.sh as the DPDK under test spells it.

        hot_plug: with `--hot-plug` (DPDK's vm_hotplug plan): testpmd watches the kernel's
        device events and detaches a port whose device is removed under it.
        """
        eal = EalOptions(lcores="0-1", allow=[self.guest_pci(n) for n in self.spec.nics])
        app = TestPmdOptions(
            total_num_mbufs=GUEST_MBUFS, nb_cores=1, port_topology="chained",
            extra=["--hot-plug"] if hot_plug else [],
        )  # fmt: skip
        binary = guest_dpdk.guest_testpmd(self.spec, self.topology.dpdk)
        return testpmd_argv(binary, eal, app, self.version)

    def start_guest_testpmd(self, *, hot_plug: bool = False) -> TestPmd:
        """Testpmd in the VM on P0 (virtio) and P1 (the VF)."""
        argv = self.guest_testpmd_argv(hot_plug=hot_plug)
        self.guest_pmd = self.vm.launch_testpmd(argv, version=self.version)
        self.drift(GUIDE_GUEST_TESTPMD, " ".join(self.guest_pmd.argv))
        self.own_macs = {port: info.mac.lower() for port, info in self.guest_ports().items()}
        return self.guest_pmd

    def guest_ports(self) -> dict[int, PortInfo]:
        """`show port info all`: the guest's ports as testpmd sees them."""
        return {port: self.pmd.show_port_info(port) for port in self.pmd.port_ids()}

    def add_vf_mac(self) -> bool:
        """The guide's `mac_addr add port 1 vf 0 AA:BB:CC:DD:EE:FF`, as this DPDK takes it.

        Up to 17.08 testpmd called rte_eth_dev_mac_addr_add(port, mac, pool = vf) for
        this form (app/test-pmd/cmdline.c, cmd_vf_mac_addr_parsed): on the VF's own port,
        the VF's PMD asks its PF for the address (a kernel PF; "only works with kernel PF
        for Niantic"). Since 17.11 the form goes to the i40e and bnxt PF APIs alone
        (v22.11 cmdline.c 7807-7831) and a VF's port answers "Operation not supported";
        `mac_addr add 1 MAC` is the 17.05 call with pool 0. Returns whether the port took
        the address (a refusal is shown as drift with testpmd's answer).
        """
        guide = f"mac_addr add port {VF_PORT} vf 0 {GUIDE_VF_MAC}"
        if self.version < VF_MAC_FORM_TO_PF_APIS:
            ran, note = guide, ""
        else:
            ran = f"mac_addr add {VF_PORT} {GUIDE_VF_MAC}"
            note = " (since 17.11 the `port 1 vf 0` form goes to i40e/bnxt PF APIs only)"
        try:
            if self.version < VF_MAC_FORM_TO_PF_APIS:
                self.pmd.vf_mac_addr_add(VF_PORT, 0, GUIDE_VF_MAC)
            else:
                self.pmd.mac_addr_add(VF_PORT, GUIDE_VF_MAC)
        except TestPmdError as refused:
            self.drift(guide, f"{ran}: refused by the {self.vf_kind}: {refused.message}{note}")
            self.vf_mac_added = False
            return False
        self.drift(guide, ran + note)
        self.vf_mac_added = True
        return True

    @property
    def vf_kind(self) -> str:
        """What stands as the VF, as reports name it."""
        return "emulated VF" if self.vf_emulated else "SR-IOV VF"

    def vf_macs(self) -> list[str]:
        """`show port 1 macs`: the VF port's MAC addresses."""
        return self.pmd.show_port_macs(VF_PORT)

    def create_bond(self) -> int:
        """Create bonded device 1 0; add bonding slave 0 2; add bonding slave 1 2."""
        self.bond = self.pmd.create_bonded_device(BOND_MODE_ACTIVE_BACKUP, 0)
        for port in (VIRTIO_PORT, VF_PORT):
            self.pmd.add_bonding_slave(port, self.bond)
        word = self.pmd.member_word
        guide = ["create bonded device 1 0", "add bonding slave 0 2", "add bonding slave 1 2"]
        whys = [c for g in guide for c in translate_testpmd_command(g, self.version).changes]
        self.drift(
            "; ".join(guide),
            f"create {self.pmd.device_word} device 1 0; add bonding {word} 0 {self.bond}; "
            f"add bonding {word} 1 {self.bond}",
            "; ".join(dict.fromkeys(whys)),
        )
        return self.bond

    def set_primary(self, port: int) -> None:
        """Set bonding primary <port> 2."""
        self.pmd.set_bonding_primary(port, self.bond)

    def set_bond_mac(self, mac: str) -> None:
        """Set bonding mac_addr 2 <mac>: the bond's own address, not its primary's."""
        self.pmd.set_bonding_mac_addr(self.bond, mac)

    def set_bond_promisc(self, on: bool) -> None:
        """Set promisc 2 on|off."""
        self.pmd.set_promisc(self.bond, on)

    def bonding_config(self) -> BondingConfig:
        """Show bonding config 2."""
        return self.pmd.show_bonding_config(self.bond)

    def start_bond(self) -> dict[int, PortInfo]:
        """Port start 2; the link of every port, waited for (the VF's takes seconds)."""
        self.pmd.port_start(self.bond)
        return self.wait_links(self.pmd.port_ids())

    def wait_links(self, ports: list[int]) -> dict[int, PortInfo]:
        """Each port's info once its link is up, or when the wait gave up (link down)."""
        return {p: self.pmd.wait_link_up(p, timeout=LINK_TIMEOUT_S, check=False) for p in ports}

    def arrival_form(self) -> Transform:
        """What the bond's `set fwd mac` makes of a stream frame.

        The bond sends it out with its own MAC as source (the primary's when the bond was
        made, kept over every failover) and its peer as destination: testpmd's default
        peer, as the guide sets none. Nothing else in the path (bridges, taps, the switch)
        may change a byte. Read before forwarding starts: the stream starts first.
        """
        return rewrite_macs(self.pmd.show_port_info(self.bond).mac, default_eth_peer(self.bond))

    def forward_on_bond(self) -> None:
        """Set portlist 2; set fwd mac; start."""
        self.pmd.set_portlist([self.bond])
        self.pmd.set_fwd(ForwardingMode.MAC)
        self.pmd.start()

    def port_traffic(self, seconds: float = 1.0) -> dict[int, PortStats]:
        """Clear port stats all; traffic for `seconds`; show port stats all."""
        self.pmd.clear_port_stats()
        wait_for_dut(seconds)
        return self.pmd.show_port_stats_all()

    # -- beyond the guide: DPDK's vm_hotplug plan (surprise removal under --hot-plug) ------------

    def bring_up_hot_plug(self, peer: str) -> None:
        """The VM on host_server_1, its testpmd with --hot-plug on P0 and P1.

        It forwards with `set fwd mac` between them (no bond), to `peer` (the TG's MAC).
        """
        self.hot_plug_peer = peer
        self.set_up_vf(self.source)
        self.set_up_bridge(self.source)
        self.start_vm()
        self.set_up_dpdk_in_vm()
        self.start_hot_plug_testpmd()

    def start_hot_plug_testpmd(self) -> TestPmd:
        """The guest's testpmd with --hot-plug, `set fwd mac`, forwarding.

        A running one quits first (the plan's "+ reset").
        """
        if running := SriovBondMigration.guest_pmd.peek(self):
            running.close()
        pmd = self.start_guest_testpmd(hot_plug=True)
        pmd.set_fwd(ForwardingMode.MAC)
        self._no_loops()
        pmd.start()
        return pmd

    def _no_loops(self) -> None:
        """Every port out of promiscuous mode, its peer the TG.

        Both ports hang off the flooding switch: promiscuous, each took in what the other
        forwarded and sent it back (131,866 frames captured for a burst of 20). Now a port
        takes only frames to its own MAC and forwards to the TG's, which neither takes.
        testpmd turns promiscuous mode on again for a port it attaches.
        """
        for port in self.pmd.port_ids():
            self.pmd.set_promisc(port, False)
            self.pmd.set_eth_peer(port, self.hot_plug_peer)

    def surprise_unplug(self, *nics: VmNic) -> list[Hotplug]:
        """`device_del` of each NIC with its port started: no port stop, close or detach."""
        records = [self.vm.unplug_nic(nic) for nic in nics]
        self.hotplugs += records
        return records

    def plug_back(self, *nics: VmNic) -> list[Hotplug]:
        """`device_add` of each NIC again, at its slot, on this host's backend."""
        records = [self.vm.plug_nic(nic, self._backend(nic)) for nic in nics]
        self.hotplugs += records
        return records

    def _backend(self, nic: VmNic) -> str:
        if nic.id == self.vf_nic.id:
            return self.vfs[self.host.name].backend()
        return self.bridges[self.host.name].tap

    def wait_ports(self, ports: list[int], timeout: float = 15.0) -> list[int]:
        """Testpmd's port ids once it has handled a surprise removal (or after `timeout` s).

        Handled: the ports are `ports` and testpmd has restarted forwarding. Its removal
        callback (an alarm thread) detaches the port, then starts forwarding again; a
        `quit` or `stop` typed while that restart is under way can leave an lcore polling
        a closed port ("called rx_pkt_burst for not ready port"), and testpmd 22.11 then
        did not exit within 10 s (measured in a vIOMMU guest, the "+ reset" form).
        """

        def handled(found: list[int]) -> bool:
            after_detach = self.removals_reported().rsplit("Now total ports is", 1)[-1]
            return found == ports and FORWARDING_RESTARTED in after_detach

        found = poll(self.pmd.port_ids, handled, timeout)
        # the restart prints its configuration, then launches the lcores at once
        time.sleep(RESTART_SETTLE_S)
        return found

    def attach_ports(self, *nics: VmNic) -> list[int]:
        """Bind each NIC for DPDK again; `port attach <its address>`; `port start all`."""
        addresses = [self.guest_pci(nic) for nic in nics]
        self.bind_in_guest(*addresses)
        ports = [self.pmd.port_attach(address, timeout=60) for address in addresses]
        self.pmd.stop()
        self.pmd.port_start("all")
        self._no_loops()
        self.pmd.start()
        return ports

    def removals_reported(self) -> str:
        """What testpmd printed by itself so far: device removal events, its detaches."""
        pmd = self.pmd
        return "\n".join([*pmd.events, *pmd.shell.interruptions])

    def bring_up_bond(self) -> None:
        """1.3.1-1.3.3 in one go, for the tests beyond the guide.

        The VM on host_server_1 with P2 bonding P0 and P1 (VF primary), forwarding with
        `set fwd mac`.
        """
        self.set_up_vf(self.source)
        self.set_up_bridge(self.source)
        self.start_vm()
        self.set_up_dpdk_in_vm()
        self.start_guest_testpmd()
        self.create_bond()
        self.set_primary(VF_PORT)
        self.start_bond()
        self.forward_on_bond()

    def probe(
        self, tg: TrafficGenerator, tx: str, rx: str, count: int = 20, to: Sequence[str] = ()
    ) -> list[str]:
        """Send `count` frames from the TG; the source MACs of those the VM forwarded back.

        `to`: the frames' destinations, in turn (the guest's ports' own MACs when they are
        not promiscuous); none: the stream's. The switch floods the TG's own frames to its
        other port too: those (the TG's source MAC) are not the VM's and are left out.
        """
        mine = tg.mac_of(tx).lower()
        frames = [stream_frame(mine) for _ in range(count)]
        for frame, dst in zip(frames, itertools.cycle(to), strict=False):
            frame[Ether].dst = dst
        capture = tg.exchange(tx, frames, [rx], timeout=1.5, pps=200)
        sources = [f.packet.src.lower() for f in capture.frames(rx)]
        return [mac for mac in sources if mac != mine]

    def set_vf_link(self, up: bool) -> None:
        """The VF's link down (or up) from outside the guest: its PF, or QEMU for a stand-in."""
        self.vfs[self.host.name].set_link(self.vm, up)

    def set_virtio_link(self, up: bool) -> None:
        """The virtio NIC's link down (or up), from QEMU."""
        self.vm.set_link(self.virtio_nic.id, up)

    def wait_bond(self, active: list[int], timeout: float = 10.0) -> BondingConfig:
        """Show bonding config until these ports are the active ones (or the time is up)."""
        return poll(
            self.bonding_config, lambda c: sorted(c.active_members) == sorted(active), timeout
        )

    # -- 1.3.3: failover to virtio, then the VF out of the bond and out of the VM -------------

    def remove_from_bond(self, port: int) -> None:
        """Remove bonding slave <port> 2."""
        self.pmd.remove_bonding_slave(port, self.bond)

    def add_to_bond(self, port: int) -> None:
        """Add bonding slave <port> 2."""
        self.pmd.add_bonding_slave(port, self.bond)

    def add_back_to_memberless_bond(self, port: int) -> None:
        """Add bonding slave <port> 2 to the forwarding bond its members all left; stop.

        DPDK 24.11.8's testpmd sometimes dies here with a segmentation fault, at the add
        or at the stop after it (or hangs): once in the virtual lab's guide-1 suite run of
        2026-12-07, in the guest; on the host, a fresh testpmd per try with two net_null
        members (mode 1, primary 1, mac forwarding on the bond alone, both removed, port 0
        added back, stop), 24.11.8 in 8 of 85 tries (one a hang), 22.11.11 in none of 80.
        What testpmd said (or its last words) is recorded for the findings; a segmentation
        fault ends the test as that known defect (a failure for the sign-off); any other
        end is raised.
        """
        what = "a member added back to a forwarding bond left without members"
        said = f"add bonding slave {port} {self.bond}; stop"
        try:
            self.pmd.add_bonding_slave(port, self.bond)
            self.pmd.stop()
        except ShellClosed as died:
            observe(what, said, died.last_output)
            if "Segmentation fault" in died.last_output:
                known_defect(
                    f"DPDK {self.pmd.version}'s testpmd crashed (segmentation fault) adding "
                    f"port {port} back to the forwarding bond P{self.bond} left without "
                    "members, or stopping it after"
                )
            raise
        observe(what, said, "testpmd went on")

    def detach_port(self, port: int) -> str:
        """The guide's `port stop; port close; [mac_addr remove;] port detach`, as given.

        Since 20.11 `port close` releases the port id with its addresses, so the guide's
        `mac_addr remove` and `port detach` of that id answer "Invalid port_id":
        testpmd's answer is shown, and the device (still probed) is detached by name.
        Returns the port's own MAC address before the close: a VF's perm_addr (the PMD
        copies it to the port's first address at probe; `mac_addr add` adds others).
        """
        info = self.pmd.show_port_info(port)
        device = info.device_name
        self.pmd.port_stop(port)
        self.pmd.port_close(port)
        guide = [f"port stop {port}", f"port close {port}"]
        ran = list(guide)
        if port == VF_PORT:
            remove = f"mac_addr remove {port} {GUIDE_VF_MAC}"
            guide.append(remove)
            ran.append(self._remove_vf_mac(remove))
        self.pmd.device_detach(device)
        guide.append(f"port detach {port}")
        ran.append(f"device detach {device} (the port id was released by `port close`)")
        self.drift("; ".join(guide), "; ".join(ran))
        return info.mac.upper()

    def vf_address_at_pf(self) -> str | None:
        """The address host_server_1's kernel PF keeps for the VM's VF (its perm_addr).

        None where a stand-in has no PF (the virtual lab's emulated VF).
        """
        return self.vfs[self.host.name].pf_address()

    def _remove_vf_mac(self, command: str) -> str:
        """1.3.3's `mac_addr remove` after `port close`: what testpmd answers, as drift."""
        if not self.vf_mac_added:
            return f"{command}: not run (the VF port did not take the address)"
        try:
            self.pmd.mac_addr_remove(VF_PORT, GUIDE_VF_MAC)
        except TestPmdError as refused:
            return f"{command}: refused: {refused.message}"
        return command

    def hot_unplug_vf(self) -> Hotplug:
        """1.3.4 `(qemu) device_del vf1`, done when the guest has let the device go."""
        record = self.vm.unplug_nic(self.vf_nic)
        self.hotplugs.append(record)
        self.drift(f"(qemu) device_del {self.vf_nic.id}", "; ".join(record.commands) + " (QMP)")
        return record

    # -- 1.3.6-1.3.8: the destination and the migration ---------------------------------------

    def start_destination_vm(self) -> VirtualMachine:
        """vm_virtio_one_migrate.sh: the same VM without the VF, waiting (-incoming)."""
        self.dest_vm = self._vm(self.destination, "dst", self.spec.without(self.vf_nic.id))
        self.dest_vm.start(incoming=f"tcp:{self.destination.session.address}:{MIGRATION_PORT}")
        self.drift(
            "qemu-system-x86_64 ... (no VF) -incoming tcp:0:5555",
            " ".join(self.dest_vm.argv),
        )
        return self.dest_vm

    def switch_port_up(self, host: HostHandle) -> bool:
        """The guide's check that the switch is up: the bridged NIC port has carrier."""
        port = self.bridges[host.name].port
        # iproute2, not /sys/class/net: a virtual lab host's sysfs is the machine's.
        out = host.session.run(["ip", "-j", "link", "show", "dev", port], check=False)
        if not out.ok:
            return False
        (link,) = json.loads(out.stdout)
        return "LOWER_UP" in link.get("flags", [])

    def migration_refusal(self) -> str | None:
        """QEMU's answer to `migrate tcp:<host_server_2>:5555` with the VF still assigned.

        None: QEMU started the migration (cancelled at once; nothing waits there).
        """
        uri = f"tcp:{self.destination.session.address}:{MIGRATION_PORT}"
        return self.source_vm.migration_refusal(uri)

    def migrate(self, timeout: float = 180) -> MigrationResult:
        """`migrate tcp:<host_server_2>:5555` on host_server_1, until it ends."""
        self.migration = self.source_vm.migrate_to(
            self.dest_vm, port=MIGRATION_PORT, timeout=timeout
        )
        self.drift(
            f"(qemu) migrate tcp:{self.destination.name}:5555",
            f"QMP migrate uri=tcp:{self.destination.session.address}:{MIGRATION_PORT}",
        )
        return self.migration

    def reattach_guest(self) -> TestPmd:
        """1.3.9: the VM's testpmd prompt and shell, now on host_server_2."""
        self.dest_vm.wait_for_shell(timeout=30)
        self.guest_pmd = self.dest_vm.attach_testpmd(self.pmd)
        return self.guest_pmd

    # -- 1.3.10-1.3.11: the VF back, on host_server_2 -----------------------------------------

    def hot_plug_vf(self) -> Hotplug:
        """1.3.10 `(qemu) device_add ...,id=vf1` with the VF of the host the VM is on."""
        vf = self.vfs[self.host.name]
        record = self.vm.plug_nic(self.vf_nic, vf.backend())
        self.hotplugs.append(record)
        self.drift(
            "(qemu) device_add pci-assign,host=06:10.0,id=vf1",
            "; ".join(record.commands) + " (QMP; pci-assign is gone from QEMU)",
        )
        return record

    def attach_vf_port(self) -> int:
        """`port attach 0000:00:04.0`; `port start 1`: the VF back in testpmd."""
        address = self.guest_pci(self.vf_nic)
        port = self.pmd.port_attach(address, timeout=60)
        self.pmd.port_start(port)
        self.keep_forwarding_on_bond()
        return port

    def keep_forwarding_on_bond(self) -> None:
        """Forward on P2 only again after `port attach` (stop; set portlist 2; start).

        testpmd (22.11) takes an attached port into its forwarding port list, although
        `show config fwd` still shows the old streams: the VF could then not be stopped
        later ("Please remove port 1 from forwarding configuration").
        """
        self.pmd.stop()
        self.pmd.set_portlist([self.bond])
        self.pmd.start()
        self.drift(
            "show config fwd",
            f"stop; set portlist {self.bond}; start (port attach put every port back in "
            "testpmd's forwarding list)",
        )

    def windows(self, stream: StreamResult) -> list[LossWindow]:
        """The loss windows on the stream's timeline: each spans the steps that name it."""
        spans: dict[str, tuple[float, float]] = {}
        for record in self.steps:
            if record.window is not None:
                start, end = spans.get(record.window, (record.started_at, record.finished_at))
                spans[record.window] = (min(start, record.started_at), max(end, record.finished_at))
        return [
            LossWindow(name, stream.at(start), stream.at(end), slack_s=WINDOW_SLACK_S)
            for name, (start, end) in spans.items()
        ]

    # -- reports --------------------------------------------------------------------------------

    def record_figures(self, stream: StreamResult, account: LossAccount) -> None:
        """The run's figures: frames received; per window its stall, outage, loss, span."""
        record_figure("frames received", stream.received, "frames", better="info")
        raw_windows = stream.account(*(w.window for w in account.windows)).windows
        for inside, raw in zip(account.windows, raw_windows, strict=True):
            name = inside.window.name
            # what the jitter allowance must cover: pauses without loss at full resolution
            record_figure(f"{name} stall", longest_stall_ms(raw), "ms", better="info")
            record_figure(f"{name} outage", inside.downtime_ms, "ms", better="lower",
                          tolerance=0.5, slack=50)  # fmt: skip
            record_figure(f"{name} lost", inside.lost, "frames", better="lower", slack=100)
            record_figure(f"{name} outages", len(inside.outages), "outages", better="lower",
                          slack=1)  # fmt: skip
            record_figure(f"{name} loss span", inside.loss_span_ms, "ms", better="lower",
                          tolerance=0.5, slack=50)  # fmt: skip

    def attach_report(self, stream: StreamResult) -> None:
        """Per step: its commands, and the outage its window saw; QEMU's info migrate; plot."""
        windows = self.windows(stream)
        account = stream.account(*windows)
        by_name = {w.window.name: w for w in account.windows}
        rows = []
        for record in self.steps:
            t0, t1 = stream.at(record.started_at), stream.at(record.finished_at)
            inside = by_name.get(record.window) if record.window else None
            sent, received = stream.delivered(t0, t1)
            rows.append(
                [
                    record.title,
                    f"{t0:+.2f} .. {t1:+.2f}",
                    f"{received} / {sent}" if sent else "",
                    record.window or "(none: no loss allowed)",
                    f"{inside.downtime_ms:.1f}" if inside else "",
                    inside.lost if inside else "",
                    "; ".join(d.ran for d in record.drift)[:300],
                ]
            )
        attach_table(
            "steps, loss windows and outages",
            [
                "step",
                "stream time (s)",
                "TG: received / sent in the step",
                "window",
                "longest outage (ms)",
                "lost",
                "ran",
            ],  # fmt: skip
            rows,
        )
        if m := SriovBondMigration.migration.peek(self):
            attach_table(
                "info migrate vs traffic",
                ["field (guide: info migrate)", "QEMU", "measured from traffic"],
                [
                    ["Migration status", m.status, ""],
                    ["total time (ms)", m.total_time_ms, ""],
                    [
                        "downtime (ms)",
                        m.downtime_ms,
                        f"{by_name['migration'].downtime_ms:.1f}" if "migration" in by_name else "",
                    ],
                    ["setup (ms)", m.setup_time_ms, ""],
                    ["transferred ram (kbytes)", (m.transferred_ram_bytes or 0) // 1024, ""],
                    ["throughput (mbps)", m.throughput_mbps, ""],
                    ["dirty sync count", m.dirty_sync_count, ""],
                ],
            )
        events = [(stream.at(h.started_at), f"{h.action} {h.nic_id}") for h in self.hotplugs]
        events += run_state_marks(stream, self._vms())
        attach_stream(f"{self.vm_name} bonded virtio + {self.vf_kind}", stream, windows, events)

    def _vms(self) -> tuple[VirtualMachine, ...]:
        """The VMs started so far: the source's, then the destination's."""
        vms = (SriovBondMigration.source_vm.peek(self), SriovBondMigration.dest_vm.peek(self))
        return tuple(vm for vm in vms if vm is not None)

    # -- teardown -------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the VMs; remove the bridges and taps; give the VFs back."""
        close_vms(tuple(reversed(self._vms())))
        for bridge in self.bridges.values():
            bridge.close()
        for vf in self.vfs.values():
            try:
                vf.close()
            except Exception as exc:  # the other hosts still need theirs back
                log.warning("%s: giving the VF back failed: %s", vf.host.name, exc)
