"""The guides' vhost-switch role, played by testpmd on a DUT host.

The guide runs DPDK's vhost-switch sample; the virtual lab has no such binary, so a host
testpmd serves the VM's vhost-user sockets and owns the host's NIC port toward the switch.
Ports are ordered NIC, vhost0[, vhost1] and forwarded `paired`: NIC <-> vhost0, and a
second vhost port back to itself. With a NIC per vhost port (guide 4's PVP) the list is
NIC0, vhost0, NIC1, vhost1: the guide's `set portlist 0,2,1,3`; chained (two VMs, one
vhost port each) NIC0 -> vhost0 -> vhost1 -> NIC1; with no NIC (two VMs talking through
the host) vhost0 <-> vhost1. With guide 2's two
sockets a frame from the TG enters the guest on P0, is forwarded by the guest to P1,
comes straight back into P1, is forwarded to P0 and leaves through the NIC; a tx_first
burst of the guest leaves the same way instead of circulating for ever. Guide 6 uses
one socket with several queues.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from framework.dpdk.args import EalOptions, TestPmdOptions
from framework.dpdk.launch import LaunchRecord, launch_testpmd
from framework.dpdk.modes import ForwardingMode
from framework.dpdk.parsers import PortStats
from framework.dpdk.testpmd import TestPmd
from framework.dpdk.version import DpdkVersion
from framework.lab.hosts import HostHandle, PortHandle
from framework.lab.tuning import cpu_list
from framework.scenarios.stages import Made

MEMORY_MB = 256
MBUFS = 16384


@dataclass
class VhostSwitch:
    """A host testpmd serving vhost-user sockets and owning the host's NIC port."""

    host: HostHandle
    version: DpdkVersion
    testpmd: str
    sockets: list[str]
    name: str = "vhost-switch"
    forward_mode: ForwardingMode = ForwardingMode.IO
    queues: int = 1  # queue pairs of the NIC port and of every vhost-user port
    memory_mb: int = MEMORY_MB
    # The host's NIC ports by topology name, in port order; none: its first data port.
    nics: list[str] = field(default_factory=list)
    lcores: str = "0-1"  # the first is testpmd's main lcore, the others forward
    # vhost-user client mode (`client=1`): the other side (QEMU, virtio_user server=1)
    # owns the sockets and the switch reconnects to them when either restarts.
    client: bool = False
    # Chained instead of paired: NIC 0 -> every vhost port in turn -> the last NIC (DPDK's
    # reconnect plan with two VMs: TG -> NIC -> VM1 -> VM2 -> NIC -> TG).
    chained: bool = False
    # No NIC port: the vhost ports forward to each other (DPDK's reconnect plan VM to VM).
    vm_to_vm: bool = False
    nic_ports: list[int] = field(default_factory=list)
    vhost_ports: list[int] = field(default_factory=list)
    pmd = Made[TestPmd]("VhostSwitch.start()")
    launch = Made[LaunchRecord]("VhostSwitch.start()")

    @property
    def running(self) -> bool:
        """Whether the switch's testpmd was started and not closed since."""
        return VhostSwitch.pmd.peek(self) is not None

    def socket_path(self, socket: str) -> str:
        """Where a socket named in the topology lives on the host."""
        return socket if socket.startswith("/") else f"{self.host.work_dir}/{socket}"

    @property
    def nic_port(self) -> int:
        """The testpmd port id of the (first) NIC port."""
        return self.nic_ports[0]

    def nic_handles(self) -> list[PortHandle]:
        """The host's NIC ports this testpmd owns."""
        return [self.host.port(n) for n in self.nics] or [self.host.data_port(0)]

    def start(self) -> TestPmd:
        """Start the testpmd: NIC port(s), vhost-user ports, paired io forwarding."""
        eal = EalOptions(lcores=self.lcores, memory_mb=self.memory_mb)
        eal.no_pci = True
        for index, nic in enumerate([] if self.vm_to_vm else self.nic_handles()):
            if nic.spec.pci and nic.spec.nic.value != "virtual":
                eal.no_pci = False
                eal.allow.append(nic.spec.pci)
            else:
                # qdisc_bypass: what this port sends is not looped back into its capture.
                eal.vdevs.append(
                    f"net_af_packet{index},iface={nic.interface},qpairs={self.queues},"
                    "qdisc_bypass=1"
                )
        paths = [self.socket_path(s) for s in self.sockets]
        client = ",client=1" if self.client else ""
        for index, path in enumerate(paths):
            eal.vdevs.append(f"net_vhost{index},iface={path},queues={self.queues}{client}")
        if not self.client:  # a client's sockets are its peer's
            self.host.session.run(["rm", "-f", *paths])
        app = TestPmdOptions(
            rxq=self.queues, txq=self.queues, total_num_mbufs=MBUFS,
            nb_cores=max(len(cpu_list(self.lcores)) - 1, 1),
            port_topology="chained" if self.chained else "paired",
        )  # fmt: skip
        self.pmd, self.launch = launch_testpmd(
            self.host, self.name, eal, app, binary=self.testpmd, version=self.version
        )
        drivers = {i: self.pmd.show_port_info(i).driver for i in self.pmd.port_ids()}
        self.vhost_ports = sorted(i for i, d in drivers.items() if d == "net_vhost")
        self.nic_ports = sorted(i for i in drivers if i not in self.vhost_ports)
        if self.chained:
            self.pmd.set_portlist([*self.nic_ports[:1], *self.vhost_ports, *self.nic_ports[1:]])
        else:
            # paired: NIC i <-> vhost i; a vhost port without a NIC pairs with the next one
            pairs = [
                p for pair in zip(self.nic_ports, self.vhost_ports, strict=False) for p in pair
            ]
            rest = self.vhost_ports[len(self.nic_ports) :]
            self.pmd.set_portlist([*pairs, *rest])
        self.pmd.set_fwd(self.forward_mode)
        self.pmd.start()
        return self.pmd

    def vhost_stats(self) -> dict[int, PortStats]:
        """`show port stats` of every vhost-user port."""
        return {port: self.pmd.show_port_stats(port) for port in self.vhost_ports}

    def queue_counts(self, guest: TestPmd) -> list[list[int]]:
        """Per queue pair, from both testpmds' xstats: what the vhost ports sent.

        Then what the guest's ports received and sent, and what the vhost ports received.
        """
        seen = [guest.show_port_xstats(p) for p in guest.port_ids()]
        return self.queue_counts_with(
            [
                (sum(x.get(f"rx_q{q}_good_packets", 0) for x in seen),
                 sum(x.get(f"tx_q{q}_good_packets", 0) for x in seen))
                for q in range(self.queues)
            ]
        )  # fmt: skip

    def queue_counts_with(self, guest: list[tuple[int, int]]) -> list[list[int]]:
        """Per queue pair: the vhost ports' TX, the guest's (RX, TX) as given, the vhost RX."""
        host = [self.pmd.show_port_xstats(p) for p in self.vhost_ports]

        def total(key: str) -> int:
            return sum(x.get(key, 0) for x in host)

        return [
            [
                total(f"tx_q{q}_good_packets"),
                *(guest[q] if q < len(guest) else (0, 0)),
                total(f"rx_q{q}_good_packets"),
            ]
            for q in range(self.queues)
        ]

    def clear_stats(self) -> None:
        """Zero every port's counters."""
        self.pmd.clear_counters()

    def close(self) -> None:
        """Quit the testpmd and remove the sockets it served (a client's are its peer's)."""
        if self.running:
            self.pmd.close()
            del self.pmd
        if not self.client:
            self.host.session.run(
                ["rm", "-f", *(self.socket_path(s) for s in self.sockets)], check=False
            )
