"""A guest whose kernel forwards: its virtio NICs on virtio-net, IPv4 routing between them.

DPDK's vhost_user_live_migration plan also migrates a guest that runs the kernel's
virtio-net driver instead of testpmd. Here the guest routes the stream: in on P0, out P1,
in on P1 again, out P0. Guide 2's vhost switch hands whatever P1 sends straight back to
P1 (framework.scenarios.vhost_switch), so the route out of P1 is addressed to P1's own MAC
and a policy rule sends what comes in on P1 out of P0, toward the TG. Each pass is a
routing hop: the frame leaves with P0's MAC as source, the next hop's as destination, its
TTL HOPS lower and its IPv4 checksum made again. The counters are the
netdevs' own (/sys/class/net/*/statistics), read in the guest.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from framework.dpdk.parsers import PortInfo, PortStats
from framework.errors import FrameworkError
from framework.lab.netdev import KernelInterface, read_interface, read_statistics
from framework.virt.vm import VirtualMachine

DRIVER = "virtio_net"
# The routing table that sends what comes back in on P1 out of P0.
RETURN_TABLE = 100
HOPS = 2  # P0 -> P1, then P1 -> P0
# The netdev counters port_stats() reads.
COUNTERS = (
    "rx_packets", "rx_bytes", "rx_errors", "rx_dropped", "rx_missed_errors",
    "tx_packets", "tx_bytes", "tx_errors", "tx_dropped",
)  # fmt: skip


class KernelNetError(FrameworkError):
    """The guest's kernel could not take or route the NICs."""


def parse_kernel_net(text: str) -> dict[str, str]:
    """howto-kernel-net's "PCI IFNAME" lines: the netdev of each PCI address."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].count(":") == 2:
            found[parts[0]] = parts[1]
    return found


def take_nics(vm: VirtualMachine, pcis: list[str]) -> dict[str, str]:
    """Hand the NICs at `pcis` to the guest kernel's virtio-net: the netdev of each."""
    status, out = vm.shell.run(f"howto-kernel-net {' '.join(pcis)}", timeout=60)
    found = parse_kernel_net(out)
    if status != 0 or set(found) != set(pcis):
        raise KernelNetError(
            f"{vm.name}: the kernel did not take the NICs {pcis}: {out.strip()[-300:]}"
        )
    return found


def read_netdevs(vm: VirtualMachine, names: list[str]) -> dict[str, KernelInterface]:
    """The netdevs `names` as the guest's kernel shows them now."""
    return {name: read_interface(vm.shell.check, name) for name in names}


@dataclass
class KernelRouter:
    """IPv4 forwarding in a guest between its P0 and P1, on the kernel's virtio-net."""

    vm: VirtualMachine
    names: dict[int, str]  # port id (P0, P1) -> netdev
    dst_ip: str
    next_hop_mac: str  # where P0 sends the stream (the TG's side)
    macs: dict[int, str] = field(default_factory=dict)  # each port's MAC, read at start
    _baseline: dict[int, dict[str, int]] = field(default_factory=dict)
    _queue_baseline: dict[str, dict[str, int]] = field(default_factory=dict)

    @classmethod
    def start(
        cls, vm: VirtualMachine, pcis: list[str], dst_ip: str, next_hop_mac: str
    ) -> KernelRouter:
        """Hand the NICs at `pcis` (P0, P1) to virtio-net and route `dst_ip` through them."""
        found = take_nics(vm, pcis)
        router = cls(vm, {port: found[pci] for port, pci in enumerate(pcis)}, dst_ip, next_hop_mac)
        router._configure()
        return router

    def _configure(self) -> None:
        p0, p1 = self.names[0], self.names[1]
        netdevs = self.netdevs()
        self.macs = {port: netdevs[name].mac for port, name in self.names.items()}
        own = self.macs[1]
        conf = "/proc/sys/net/ipv4/conf"
        commands = [
            "echo 1 > /proc/sys/net/ipv4/ip_forward",
            # the stream's source is not routed back the way it came (P1): no reverse-path drop
            *(f"echo 0 > {conf}/{n}/rp_filter" for n in ("all", "default", p0, p1)),
            f"ip link set {p0} up",
            f"ip link set {p1} up",
            f"ip route add {self.dst_ip}/32 dev {p1}",
            f"arp -i {p1} -s {self.dst_ip} {own}",
            f"ip rule add iif {p1} table {RETURN_TABLE}",
            f"ip route add {self.dst_ip}/32 dev {p0} table {RETURN_TABLE}",
            f"arp -i {p0} -s {self.dst_ip} {self.next_hop_mac}",
        ]
        for command in commands:
            self.vm.shell.check(command)

    def netdevs(self) -> dict[str, KernelInterface]:
        """The ports' netdevs as the guest's kernel shows them now."""
        return read_netdevs(self.vm, list(self.names.values()))

    def ports(self) -> dict[int, PortInfo]:
        """P0 and P1 in the terms `show port info` gives a testpmd port."""
        netdevs = self.netdevs()
        return {port: _port_info(port, netdevs[name]) for port, name in self.names.items()}

    def clear_counters(self) -> None:
        """Count from now on (a netdev's own counters cannot be reset)."""
        netdevs = self.netdevs()
        self._baseline = {port: netdevs[name].counters for port, name in self.names.items()}
        self._queue_baseline = self._queue_stats()

    def port_stats(self) -> dict[int, PortStats]:
        """Each port's counters since clear_counters(), as `show port stats` gives them."""
        netdevs = self.netdevs()
        stats = {}
        for port, name in self.names.items():
            now, before = netdevs[name].counters, self._baseline.get(port, {})
            missing = [key for key in COUNTERS if key not in now]
            if missing:
                raise KernelNetError(
                    f"{self.vm.name}: {name} shows no {', '.join(missing)} in its sysfs statistics"
                )
            c = {key: value - before.get(key, 0) for key, value in now.items()}
            stats[port] = PortStats(
                port,
                rx_packets=c["rx_packets"],
                rx_missed=c["rx_missed_errors"],
                rx_bytes=c["rx_bytes"],
                rx_errors=c["rx_errors"] + c["rx_dropped"],
                rx_nombuf=0,
                tx_packets=c["tx_packets"],
                tx_errors=c["tx_errors"] + c["tx_dropped"],
                tx_bytes=c["tx_bytes"],
            )
        return stats

    def set_queues(self, queues: int) -> None:
        """`ethtool -L <if> combined N` on P0 and P1, as DPDK's migration plan changes them.

        Then each routed frame leaves on the queue it came in on: virtio_net maps each TX
        queue to CPUs (XPS), and a guest without MSI-X takes every interrupt on one CPU,
        whose queues alone would carry what it forwards; with the maps cleared the kernel
        picks the TX queue by the RX queue it recorded.
        """
        for name in self.names.values():
            self.vm.shell.check(
                f"ethtool -L {name} combined {queues} && "
                f"for q in /sys/class/net/{name}/queues/tx-*; do echo 0 > $q/xps_cpus; done"
            )

    def queue_packets(self, queues: int) -> list[tuple[int, int]]:
        """Per queue: what P0 and P1 received and sent on it since clear_counters().

        virtio_net's own counters (`ethtool -S`: rx_queue_N_packets, tx_queue_N_packets).
        """
        now = self._queue_stats()
        stats = [
            {key: value - self._queue_baseline.get(name, {}).get(key, 0)
             for key, value in now[name].items()}
            for name in self.names.values()
        ]  # fmt: skip
        return [
            (sum(s.get(f"rx_queue_{q}_packets", 0) for s in stats),
             sum(s.get(f"tx_queue_{q}_packets", 0) for s in stats))
            for q in range(queues)
        ]  # fmt: skip

    def _queue_stats(self) -> dict[str, dict[str, int]]:
        return {name: read_statistics(self.vm.shell.check, name) for name in self.names.values()}

    def moved_to(self, vm: VirtualMachine) -> KernelRouter:
        """The same router, read through the migrated VM's shell (its state is in guest RAM)."""
        self.vm = vm
        return self


@dataclass
class KernelEndpoint:
    """One guest NIC on the kernel's virtio-net with an IPv4 address: a VM-to-VM peer.

    As DPDK's reconnect plan sets up its VM-to-VM cases: the address on the NIC and the
    peer's MAC as a static ARP entry, so no ARP exchange is needed on the path.
    """

    vm: VirtualMachine
    name: str  # the netdev
    address: str
    prefix: int = 24
    mac: str = ""

    @classmethod
    def start(cls, vm: VirtualMachine, pci: str, address: str, prefix: int = 24) -> KernelEndpoint:
        """Hand the NIC at `pci` to virtio-net, give it `address`/`prefix` and bring it up."""
        name = take_nics(vm, [pci])[pci]
        vm.shell.check(f"ip addr add {address}/{prefix} dev {name} && ip link set {name} up")
        endpoint = cls(vm, name, address, prefix)
        endpoint.mac = endpoint.netdev().mac
        return endpoint

    def add_neighbour(self, peer: KernelEndpoint) -> None:
        """`peer`'s address resolved to its MAC for good (arp -s)."""
        self.vm.shell.check(f"arp -i {self.name} -s {peer.address} {peer.mac}")

    def netdev(self) -> KernelInterface:
        """The NIC's netdev as the guest's kernel shows it now."""
        return read_netdevs(self.vm, [self.name])[self.name]

    def port_info(self) -> PortInfo:
        """The NIC in the terms `show port info` gives a testpmd port (port 0)."""
        return _port_info(0, self.netdev())


def _port_info(port: int, netdev: KernelInterface) -> PortInfo:
    return PortInfo(
        port=port,
        mac=netdev.mac,
        device_name=netdev.name,
        driver=DRIVER,
        link_status="up" if netdev.operstate == "up" else "down",
        link_speed="",
        link_duplex="",
        mtu=netdev.mtu,
        promiscuous=netdev.promiscuous,
        allmulticast=False,
        nb_rx_queues=netdev.rx_queues,
        nb_tx_queues=netdev.tx_queues,
        max_rx_queues=None,
        max_tx_queues=None,
    )
