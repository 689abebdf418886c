"""Guide 7 (virtio_user as the exceptional path, vhost-net backend) as one object.

testpmd has two ports: a NIC port toward the outside, and virtio_user0 on /dev/vhost-net,
for which the kernel makes a tap (tap0). With io forwarding, what arrives at the NIC enters
the kernel's stack through the tap, and what the kernel sends out of the tap leaves through
the NIC.

The guide needs a kernel with vhost_net and a NIC port DPDK can drive. A lab host has both.
The virtual lab's hosts are network namespaces of one machine without /dev/vhost-net, so
there the guide runs inside a guest: the framework's VM, whose kernel loads vhost_net and
tun, with a virtio-net NIC (on a tap bridged with host_server_1's NIC port) as the
"physical" port. `where` says which, and why.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from scapy.layers.l2 import Ether
from scapy.packet import Raw

from framework.config.model import Topology, Vm, VmNic
from framework.dpdk.args import EalOptions, TestPmdOptions, testpmd_argv, translate_guide_command
from framework.dpdk.parsers import PortInfo, PortStats, RxPacket
from framework.dpdk.testpmd import TestPmd
from framework.dpdk.version import DpdkVersion
from framework.dpdk.virtio import (
    NEGOTIATION_LOG_LEVEL,
    Negotiation,
    RingBurst,
    port_negotiation,
    vdev_queue_sizes,
)
from framework.errors import FrameworkError
from framework.lab.hosts import HostHandle
from framework.lab.netdev import (
    KernelInterface,
    read_driver,
    read_interface,
    read_offloads,
    tap_names,
)
from framework.lab.tuning import Tuning, read_tuning
from framework.report.attach import attach_text
from framework.report.drift import Drift, attach_drift
from framework.scenarios import guest_dpdk
from framework.scenarios.stages import Made, StepOrderError
from framework.scenarios.vms import close_vms, vm_on
from framework.traffic import tcp
from framework.traffic.generator import TrafficGenerator
from framework.traffic.packets import routed, udp_flow
from framework.traffic.trials import StreamTrials, TrialFlow, flow_markers
from framework.verify import poll
from framework.virt.host_net import TapBridge, bridge_for
from framework.virt.image import GuestImage
from framework.virt.vm import VirtualMachine

log = logging.getLogger("howto.guide7")

# The guide's two testpmd lines (7.1, DPDK 17.05 spelling).
GUIDE_TESTPMD = {
    1: "$(testpmd) -l 2-3 -n 4 --vdev=virtio_user0,path=/dev/vhost-net,queue_size=1024 "
    "-- -i --txqflags=0x0 --disable-hw-vlan --enable-lro --enable-rx-cksum --rxd=1024 "
    "--txd=1024",
    2: "$(testpmd) -l 2-3 -n 4 --vdev=virtio_user0,path=/dev/vhost-net,queues=2,"
    "queue_size=1024 -- -i --txqflags=0x0 --disable-hw-vlan --enable-lro --enable-rx-cksum "
    "--txq=2 --rxq=2 --rxd=1024 --txd=1024",
}
QUEUE_SIZE = 1024
NIC_PORT, USER_PORT = 0, 1  # testpmd: the NIC first (probed before vdevs), virtio_user0 next
# The guide's `ifconfig tap0 1.1.1.1/24 up`, in the lab's own range.
TAP_ADDRESS, TAP_PREFIX, TAP_NETMASK = "198.18.7.1", 24, "255.255.255.0"
PEER_ADDRESS = "198.18.7.2"  # the TG's side of the tap's subnet
# Traffic to ROUTED_NET is routed back out of the tap (the exceptional path both ways),
# through a gateway whose MAC is set to the TG's, as DPDK's exceptional-path test plan does.
ROUTED_NET, ROUTED_PREFIX = "198.18.8.0/24", "198.18.8"
ROUTE_GATEWAY = "198.18.7.254"
KERNEL_PAYLOAD = "howto-7-from-the-kernel"
KERNEL_UDP_PORT = 9007
TSO_MSS = 1448  # the test plan's `tso set 1448`
# The kernel's known TCP stream to the TG: `seq 1 STREAM_LINES` (about 289 kB, some 200
# segments of TSO_MSS), large enough for the kernel to hand DPDK TSO frames of many MSS.
STREAM_LINES = 50000
STREAM_PORT = 5207
STREAM_FILE = "/tmp/howto-7-stream.txt"
# A frame for the kernel's tap of an EtherType no protocol of the kernel takes (IEEE 802
# local experimental): the tap counts it and the kernel drops it, answering nothing.
BURST_ETHERTYPE = 0x88B5
GUEST_MBUFS = 16384  # two ports x 1024 descriptors x 2 queues, with room to spare
# The guest's testpmd runs on vCPUs 0-1 (main, forwarding). A queue has a core of its own
# when its vhost kernel thread does, as DPDK's test plan pins them: a vCPU beyond those,
# itself pinned to a host CPU, under KVM.
TESTPMD_VCPUS = 2
TAP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class QueueCores:
    """Whether each queue's vhost thread has a core of its own; why not, if not."""

    vcpus: tuple[int, ...]  # the guest vCPUs the vhost threads are pinned to, one each
    bound: str  # what bounds the queues instead ("" when each has its core)

    @property
    def own(self) -> bool:
        """Each queue on a core of its own: its scaling is the test plan's to judge."""
        return not self.bound


@dataclass
class ExceptionalPath:
    """Guide 7 on one host, or in a guest where the host's kernel cannot (see `where`)."""

    topology: Topology
    host: HostHandle
    version: DpdkVersion
    vm_name: str
    images: dict[str, GuestImage | None] = field(default_factory=dict)
    queues: int = 1
    # virtio_user0's queue_size devarg: the guide's 1024, or None for the PMD's default
    queue_size: int | None = QUEUE_SIZE
    lro: bool = True
    rx_cksum: bool = True
    tap: str | None = None
    where: str = ""
    nic_driver: str | None = None
    reconfig_output: str = ""
    _services: list[str] = field(default_factory=list)  # kernel-side programs started
    # (what the guide ran, what ran here), in order, for the report
    drift: list[Drift | tuple[str, str]] = field(default_factory=list)
    bridge = Made[TapBridge]("start_guest()")
    vm = Made[VirtualMachine]("start_guest()")
    pmd = Made[TestPmd]("start_testpmd()")

    @property
    def spec(self) -> Vm:
        """The guest the guide runs in on this topology."""
        return self.topology.vms[self.vm_name]

    @property
    def nic(self) -> VmNic:
        """The guest's NIC that plays the guide's physical NIC."""
        return self.spec.nics[0]

    @property
    def dpdk_driver(self) -> str:
        """The kernel driver the NIC is bound to for DPDK in the guest."""
        return guest_dpdk.dpdk_driver(self.spec)

    @property
    def testpmd(self) -> TestPmd:
        """The guide's testpmd."""
        return self.pmd

    @property
    def guest(self) -> VirtualMachine:
        """The guest."""
        return self.vm

    def run(self, command: str) -> str:
        """A shell command in the kernel the tap lives in; its output."""
        return self.guest.shell.check(command)

    # -- where it runs -------------------------------------------------------------------

    def host_has_vhost_net(self) -> bool:
        """Whether the host's kernel offers /dev/vhost-net to its processes."""
        return self.host.session.run(["test", "-c", "/dev/vhost-net"], check=False).ok

    def guest_has_vhost_net(self) -> bool:
        """Whether the guest's kernel offers /dev/vhost-net (vhost_net loaded)."""
        status, _ = self.guest.shell.run("test -c /dev/vhost-net")
        return status == 0

    # -- prerequisites: the bridge, the guest, DPDK in it ---------------------------------

    def start_guest(self, boot_timeout: float = 120) -> VirtualMachine:
        """The guest with its NIC on a tap bridged with the host's NIC port."""
        self.where = (
            f"in VM {self.vm_name} on {self.host.name}"
            + (
                ""
                if self.host_has_vhost_net()
                else f": {self.host.name} has no /dev/vhost-net (a network namespace of "
                "this machine), the guest's kernel has vhost_net and tun"
            )
            + f"; the guest's {self.nic.model} NIC ({self.nic.queues} queue pair(s)) is "
            "the guide's physical NIC"
        )
        self.bridge = bridge_for(self.host, self.nic, "br7")
        self.bridge.create()
        self.drift += self.bridge.steps
        self.vm = vm_on(
            self.host,
            self.spec,
            self.vm_name,
            self.images,
            self.topology.dpdk,
            backends={self.nic.id: self.bridge.tap},
        )
        self.vm.start()
        self.vm.wait_for_shell(timeout=boot_timeout)
        return self.vm

    def set_up_dpdk(self) -> str | None:
        """7.1 step 1: hugepages and the NIC bound for DPDK; returns the NIC's driver.

        IPv6 is turned off for interfaces made from now on, so that the tap's kernel sends
        nothing of its own (router solicitations, MLD) into the counted traffic.
        """
        self.drift.append(guest_dpdk.reserve_hugepages(self.guest, self.spec.guest_hugepages))
        address = guest_dpdk.guest_pci(self.nic, self.spec)
        self.drift.append(guest_dpdk.bind_for_dpdk(self.guest, self.spec, address))
        self.run("echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6")
        self.drift.append(
            ("(nothing)", "sysctl net.ipv6.conf.default.disable_ipv6=1: no IPv6 chatter on tap0")
        )
        return guest_dpdk.bound_driver(self.guest, address)

    # -- 7.1 step 2: testpmd with the NIC and virtio_user on vhost-net ----------------------

    def vdev(self) -> str:
        """The guide's virtio_user devargs for this queue count."""
        queues = f",queues={self.queues}" if self.queues > 1 else ""
        size = f",queue_size={self.queue_size}" if self.queue_size is not None else ""
        return f"virtio_user0,path=/dev/vhost-net{queues}{size}"

    def testpmd_argv(self) -> list[str]:
        """The guide's testpmd line as the DPDK under test runs it in the guest."""
        binary = guest_dpdk.guest_testpmd(self.spec, self.topology.dpdk)
        eal = EalOptions(
            lcores="0-1",
            allow=[guest_dpdk.guest_pci(self.nic, self.spec)],
            vdevs=[self.vdev()],
            log_level=[NEGOTIATION_LOG_LEVEL],
        )
        app = TestPmdOptions(
            rxd=QUEUE_SIZE,
            txd=QUEUE_SIZE,
            rxq=self.queues if self.queues > 1 else None,
            txq=self.queues if self.queues > 1 else None,
            total_num_mbufs=GUEST_MBUFS,
            txqflags="0x0",
            disable_hw_vlan=True,
            enable_lro=self.lro,
        )
        notes: list[str] = []
        argv = testpmd_argv(binary, eal, app, self.version, notes)
        guide = translate_guide_command(GUIDE_TESTPMD[self.queues], self.version, binary)
        fitted = (
            "-l 0-1: the guest's CPUs; -a: the guest NIC; virtio init logs at debug: the "
            "negotiated features"
            + ("; --enable-rx-cksum: on virtio_user0 alone, see below" if self.rx_cksum
               else "; without --enable-rx-cksum")
            + ("" if self.lro else "; without --enable-lro")
        )  # fmt: skip
        why = "; ".join([*guide.changes, *notes, fitted])
        self.drift.append(Drift(GUIDE_TESTPMD[self.queues], " ".join(argv), why))
        return argv

    def start_testpmd(self) -> TestPmd:
        """7.1 step 2: testpmd with the NIC port and virtio_user0 on /dev/vhost-net.

        --enable-rx-cksum asks every port for IPv4, UDP and TCP Rx checksum offloads, and
        no virtio port of DPDK 22.11 has the IPv4 one (measured: "requested Rx offloads 0x1e
        doesn't match Rx offloads capabilities 0x221d", then "Fail to configure port 0").
        What negotiates GUEST_CSUM is the UDP/TCP checksum offload of virtio_user0, so that
        is what is configured, on that port alone, before forwarding starts.
        """
        self.reconfig_output = ""
        self.pmd = self.guest.launch_testpmd(self.testpmd_argv(), version=self.version)
        if self.rx_cksum:
            commands = [
                f"port stop {USER_PORT}",
                f"port config {USER_PORT} rx_offload udp_cksum on",
                f"port config {USER_PORT} rx_offload tcp_cksum on",
                f"port start {USER_PORT}",
            ]
            self.reconfig_output = "\n".join(self.pmd.command(c) for c in commands)
            self.drift.append(("--enable-rx-cksum", "; ".join(commands)))
        return self.pmd

    def start_forwarding(self) -> None:
        """7.1 "Start testpmd": `start` (io forwarding, the NIC and the tap paired)."""
        self.testpmd.start()

    def ports(self) -> dict[int, PortInfo]:
        """`show port info` of the NIC port and the virtio_user port."""
        return {p: self.testpmd.show_port_info(p) for p in (NIC_PORT, USER_PORT)}

    def negotiation(self) -> Negotiation | None:
        """virtio_user0's last feature negotiation, from the PMD's log.

        Its own re-configuration (the Rx checksum offloads) if that renegotiated; else its
        configuration at startup ("Configuring Port 1") if that did; else its probe.
        """
        return port_negotiation(self.testpmd.startup_output, USER_PORT, self.reconfig_output)

    def user_queue_sizes(self) -> list[int]:
        """The sizes of virtio_user0's virtqueues, from the PMD's init log (queue_size)."""
        return vdev_queue_sizes(self.testpmd.startup_output)

    def vhost_threads(self) -> list[str]:
        """The vhost-net kernel threads serving testpmd ("Each queue ... by a kthread")."""
        out = self.run("ps | grep -F '[vhost-'; true")
        return re.findall(r"\[vhost-\d+\]", out)

    # -- 7.1 "Configure IP address and start tap" -----------------------------------------

    def find_tap(self, timeout: float = TAP_TIMEOUT_S) -> str | None:
        """The tap the kernel made for virtio_user0 (tap0, tap1...); None if none came."""
        taps = poll(
            lambda: [t for t in tap_names(self.run) if t.startswith("tap")], bool, timeout, 0.3
        )
        self.tap = taps[0] if taps else None
        return self.tap

    def made_tap(self) -> str:
        """The tap find_tap() found; StepOrderError if it found none yet."""
        if self.tap is None:
            raise StepOrderError("ExceptionalPath: no tap yet: find_tap() must find one first")
        return self.tap

    def configure_tap(self) -> None:
        """The guide's `ifconfig tap0 1.1.1.1/24 up`, with the lab's address."""
        tap = self.made_tap()
        # busybox's ifconfig takes no prefix length: the same address and mask, spelled out
        ran = f"ifconfig {tap} {TAP_ADDRESS} netmask {TAP_NETMASK} up"
        self.run(ran)
        self.drift.append(("ifconfig tap0 1.1.1.1/24 up", ran))

    def tap_interface(self) -> KernelInterface:
        """The tap as its kernel shows it (flags, address, queues, offloads)."""
        return read_interface(self.run, self.made_tap())

    def route_back(self, gateway_mac: str) -> None:
        """Make the kernel send traffic for ROUTED_NET back out of the tap, to gateway_mac.

        As DPDK's exceptional-path test plan does: a route through a gateway on the tap's
        subnet whose neighbour entry is fixed to the TG's MAC, and IPv4 forwarding on.
        """
        self.made_tap()
        self.run("echo 1 > /proc/sys/net/ipv4/ip_forward")
        # Routed back out of the interface it came in on, a datagram makes the kernel send
        # its source an ICMP redirect quoting it (TOS 0xc0; up to 9, backing off) once the
        # TG's address has a neighbour entry (the kernel-sends test makes one): a copy of
        # the stream frame inside another frame, which the receiver rightly counts as
        # altered. The set-up routes this way on purpose, so it asks for no redirects.
        for conf in ("all", self.tap):
            self.run(f"echo 0 > /proc/sys/net/ipv4/conf/{conf}/send_redirects")
        self.run(f"arp -i {self.tap} -s {ROUTE_GATEWAY} {gateway_mac}")
        self.run(f"ip route replace {ROUTED_NET} via {ROUTE_GATEWAY} dev {self.tap}")

    def start_udp_echo(self, port: int) -> None:
        """A UDP socket on the tap's address that sends back each datagram it receives."""
        self.run(
            f"(setsid socat UDP4-RECVFROM:{port},bind={TAP_ADDRESS},fork PIPE "
            "</dev/null >/dev/null 2>&1 &)"
        )
        self._services.append("socat")

    def kernel_sends(self, peer_mac: str, pings: int, datagrams: int, delay: float) -> None:
        """After `delay` s, the kernel sends to the TG: ICMP echo requests, UDP datagrams.

        The TG has no address in the tap's subnet, so its MAC is given to the kernel as a
        fixed neighbour entry. Runs in the background: the caller captures meanwhile. No
        ping runs when `pings` is 0 (busybox's `ping -c 0` pings for ever).
        """
        self.made_tap()
        self.run(f"arp -i {self.tap} -s {PEER_ADDRESS} {peer_mac}")
        udp = (
            f"for i in $(seq {datagrams}); do echo {KERNEL_PAYLOAD} $i | "
            f"socat - UDP4-SENDTO:{PEER_ADDRESS}:{KERNEL_UDP_PORT}; done"
        )
        ping = f"ping -c {pings} -i 0.2 -W 1 {PEER_ADDRESS}; " if pings else ""
        self.run(f"( ( sleep {delay}; {ping}{udp} ) </dev/null >/dev/null 2>&1 & )")

    # -- DPDK's exceptional-path test plan: TCP through the offloads ----------------------

    def csum_forwarding(self, peer_mac: str, mss: int = TSO_MSS) -> list[str]:
        """Checksum forwarding with TSO, as DPDK's exceptional-path test plan sets it up.

        With GUEST_CSUM the kernel leaves TCP/UDP checksums to DPDK, and io forwarding
        sends them out unfinished (measured: the TG's TCP ignores the SYN-ACKs); the csum
        engine finishes them and segments with TSO. The csum engine rewrites MAC addresses
        (the test plan patches testpmd not to): each port's peer is set instead, the TG's
        MAC toward the NIC and the tap's toward virtio_user0. Reconfiguring the ports makes
        virtio_user0 renegotiate, which gives the kernel a new tap: it is configured again.
        Returns the testpmd commands that ran.
        """
        pmd = self.testpmd
        pmd.stop()
        commands = [
            "port stop all",
            "set fwd csum",
            f"port config {NIC_PORT} tx_offload tcp_cksum on",
            f"port config {NIC_PORT} tx_offload tcp_tso on",
            f"port config {USER_PORT} tx_offload tcp_cksum on",
            f"port config {USER_PORT} tx_offload tcp_tso on",
            f"csum set ip sw {NIC_PORT}",
            f"csum set tcp hw {NIC_PORT}",
            f"csum set ip sw {USER_PORT}",
            f"csum set tcp hw {USER_PORT}",
            f"tso set {mss} {NIC_PORT}",
            f"tso set {mss} {USER_PORT}",
            f"set eth-peer {NIC_PORT} {peer_mac}",
            "port start all",
        ]
        for command in commands:
            pmd.command(command)
        self.tap = None
        if self.find_tap() is not None:
            self.configure_tap()
            tap_mac = self.tap_interface().mac
            commands.append(f"set eth-peer {USER_PORT} {tap_mac}")
            pmd.command(commands[-1])
        pmd.start()
        commands.append("start")
        self.drift.append(("(DPDK test plan) set fwd csum; csum set ...; tso set 1448 ...",
                           "; ".join(commands)))  # fmt: skip
        return commands

    def has_program(self, name: str) -> bool:
        """Whether the tap's kernel side has the program (tools the guest image may lack)."""
        status, _ = self.guest.shell.run(f"command -v {name}")
        return status == 0

    def start_iperf3_server(self) -> None:
        """An iperf3 server on the tap's address, in the tap's kernel."""
        self.run(tcp.server_command(TAP_ADDRESS))
        self._services.append(tcp.IPERF3)

    def kernel_sends_stream(self, port: int, delay: float) -> tcp.SentStream:
        """After `delay` s, the kernel sends the TG a known byte stream over TCP.

        `seq 1 STREAM_LINES` into a file, then socat from it to PEER_ADDRESS:port (the TG
        receives: tcp.receiver). Returns its length and SHA-256 as the tap's kernel reads
        the file. Runs in the background: the caller captures meanwhile.
        """
        self.made_tap()
        out = self.run(
            f"seq 1 {STREAM_LINES} > {STREAM_FILE}; wc -c < {STREAM_FILE}; sha256sum {STREAM_FILE}"
        ).split()
        self.run(
            f"( ( sleep {delay}; socat -u FILE:{STREAM_FILE} TCP4:{PEER_ADDRESS}:{port} ) "
            "</dev/null >/dev/null 2>&1 & )"
        )
        return tcp.SentStream(int(out[0]), out[1])

    @staticmethod
    def stream_frames(sent: tcp.SentStream) -> int:
        """Frames the stream takes on the wire in segments of TSO_MSS, its SYN and FIN."""
        return math.ceil(sent.length / TSO_MSS) + 2

    @contextmanager
    def cable(self) -> Iterator[str]:
        """For the block, what leaves the guest's NIC reaches the TG as a cable carries it.

        The guest's NIC is virtio-net: its TSO and checksum offload are carried out by its
        backend, the host's kernel, which segments a TSO frame to the MSS the NIC was given
        and finishes its checksums only when the next port cannot take the frame whole. A
        host's physical port cannot, and puts segments on the wire itself: nothing changes.
        A veth (the virtual lab's port toward the switch) takes anything: with its TSO and
        checksum offload off for the block, the host's kernel segments and checksums there,
        and the TG sees the segments a physical NIC would put on the wire; restored after.
        Yields what was done, for the report.
        """
        port, session = self.bridge.port, self.host.session

        def run(script: str) -> str:
            return session.run(["sh", "-c", script]).stdout

        driver = read_driver(run, port)
        if driver != "veth":
            yield f"{self.host.name}: {port} ({driver}) segments on the wire: nothing changed"
            return
        offloads = read_offloads(run, port)
        switches = (("tx-checksumming", "tx"), ("tcp-segmentation-offload", "tso"))
        restore = [argument for offload, argument in switches if offloads.get(offload)]
        session.run(["ethtool", "-K", port, "tx", "off", "tso", "off"])
        try:
            yield f"{self.host.name}: ethtool -K {port} tx off tso off (a veth; restored after)"
        finally:
            if restore:
                session.run(
                    ["ethtool", "-K", port, *(a for r in restore for a in (r, "on"))], check=False
                )

    # -- Rx checksum flags, as testpmd prints them ------------------------------------------

    def watch_rx(self, on: bool) -> None:
        """`set verbose 1` (on) or 0: testpmd prints each packet it receives, its Rx flags."""
        self.testpmd.set_verbose(1 if on else 0)
        if on:
            self.testpmd.verbose_received(settle=0)  # what it printed before

    def received_from_kernel(self, settle: float = 1.0) -> list[RxPacket]:
        """What virtio_user0 received from the kernel since the last call, as testpmd printed it."""
        return [p for p in self.testpmd.verbose_received(settle=settle) if p.port == USER_PORT]

    # -- a burst into the kernel, for the queue size ---------------------------------------

    def tap_rx_packets(self) -> int:
        """Frames the tap has received from vhost-net (the kernel's counter)."""
        return int(self.run(f"cat /sys/class/net/{self.made_tap()}/statistics/rx_packets"))

    def burst_into_kernel(
        self, tg: TrafficGenerator, port: str, count: int, settle: float = 2.0
    ) -> RingBurst:
        """`count` 64-byte frames at once from the TG to the tap: what each stage counted.

        The frames are of BURST_ETHERTYPE: the kernel counts them and answers nothing. The
        TG sends them as fast as it can; `settle` s later the counters are read (the
        vhost-net thread drains the ring at its pace).
        """
        frame = Ether(src=tg.mac_of(port), dst=self.tap_interface().mac, type=BURST_ETHERTYPE)
        frame /= Raw(bytes(range(46)))  # 60 bytes without the FCS: a 64-byte frame
        self.clear_stats()
        before = self.tap_rx_packets()
        capture = tg.exchange(port, [frame] * count, [], timeout=0.0)
        time.sleep(settle)
        stats = self.stats()
        sizes = self.user_queue_sizes()
        burst = RingBurst(
            queue_size=sizes[0] if sizes else None,
            sent=capture.sent,
            nic_rx=stats[NIC_PORT].rx_packets,
            into_kernel=stats[USER_PORT].tx_packets,
            kernel_rx=self.tap_rx_packets() - before,
        )
        log.info("burst: %s", burst.line())
        return burst

    def bursts_until_short(
        self, tg: TrafficGenerator, port: str, count: int, tries: int
    ) -> list[RingBurst]:
        """burst_into_kernel up to `tries` times, until one runs short of descriptors.

        How fast the vhost-net thread drains the ring against a burst varies from run to
        run (TCG guest, 2 CPUs): a 256-entry ring let 256-842 of 1000 frames in, once all
        of them. A burst that shows no shortage is sent again before the ring is judged.
        """
        bursts = [self.burst_into_kernel(tg, port, count)]
        while not bursts[-1].short and len(bursts) < tries:
            bursts.append(self.burst_into_kernel(tg, port, count))
        return bursts

    # -- throughput: the kernel routes the traffic back out of the tap ----------------------

    def trials(
        self, tg: TrafficGenerator, port: str, *, flows: int = 1, frame_bytes: int = 64
    ) -> StreamTrials:
        """Rate trials from the TG into the kernel, routed back out of the tap, counted.

        Each flow has its own destination address in ROUTED_NET, so the kernel and
        vhost-net can put it on a queue of its own. The tap must route ROUTED_NET back
        (route_back).
        """
        tg_mac, tap_mac = tg.mac_of(port), self.tap_interface().mac
        flow_list = [
            TrialFlow(
                port,
                port,
                udp_flow(
                    tg_mac,
                    tap_mac,
                    PEER_ADDRESS,
                    f"{ROUTED_PREFIX}.{flow + 1}",
                    40000 + flow,
                    9,
                    seq=0,
                    size=frame_bytes,
                    marker=marker,
                ),
                marker,
                expect=routed(tap_mac, tg_mac),  # the tap's kernel routes it back
            )  # fmt: skip
            for flow, marker in enumerate(flow_markers(flows))
        ]
        return StreamTrials(tg, flow_list, frame_bytes)

    def queue_cores(self) -> QueueCores:
        """Whether the topology gives each queue's vhost thread a core of its own."""
        spec, vm = self.spec, self.guest
        spare = tuple(range(TESTPMD_VCPUS, spec.vcpus))[: self.queues]
        bounds = []
        if vm.accel != "kvm":
            bounds.append(f"the guest runs under {vm.accel} ({vm.accel_reason})")
        if spec.vcpu_pins is None:
            bounds.append("its vCPUs are not pinned to host CPUs (no vcpu_pins)")
        if len(spare) < self.queues:
            bounds.append(
                f"{spec.vcpus} vCPUs: testpmd takes {TESTPMD_VCPUS}, {len(spare)} left for "
                f"{self.queues} vhost threads"
            )
        cpus = self.host.session.run(["nproc"]).stdout.strip()
        if bounds:
            bounds.append(f"{self.host.name} has {cpus} CPUs for the guest, QEMU and the TG")
        return QueueCores(spare, "; ".join(bounds))

    def pin_vhost_threads(self, vcpus: tuple[int, ...]) -> list[str]:
        """Each vhost kernel thread of the guest's testpmd onto a vCPU of its own.

        Returns what was pinned, `vhost-<pid> <tid> -> vCPU n`, for the report.
        """
        pid = self.run("pidof dpdk-testpmd").split()[0]
        tids = self.run(
            f"for t in /proc/[0-9]*; do grep -qx vhost-{pid} $t/comm 2>/dev/null && "
            "echo ${t#/proc/}; done"
        ).split()
        if len(tids) < len(vcpus):
            raise FrameworkError(
                f"guest testpmd (pid {pid}) has {len(tids)} vhost threads, {len(vcpus)} to pin"
            )
        for tid, vcpu in zip(tids, vcpus, strict=False):
            self.run(f"taskset -p -c {vcpu} {tid}")
        return [f"vhost-{pid} {tid} -> vCPU {vcpu}" for tid, vcpu in zip(tids, vcpus, strict=False)]

    def tuning(self) -> dict[str, Tuning]:
        """Guide 4's tuning (4.2.1, 4.3.1) of the host and of the kernel the tap lives in."""
        host = read_tuning(lambda script: self.host.session.run(["sh", "-c", script]).stdout)
        return {self.host.name: host, f"guest {self.vm_name}": read_tuning(self.run)}

    # -- counters -----------------------------------------------------------------------

    def clear_stats(self) -> None:
        """Zero both ports' counters and extended counters."""
        self.testpmd.clear_port_stats()
        self.testpmd.clear_port_xstats()

    def stats(self) -> dict[int, PortStats]:
        """Both ports' counters."""
        return {p: self.testpmd.show_port_stats(p) for p in (NIC_PORT, USER_PORT)}

    def queue_packets(self, port: int) -> dict[str, list[int]]:
        """Per-queue good packets of a port: {"rx": [q0, q1...], "tx": [...]}."""
        xstats = self.testpmd.show_port_xstats(port)
        return {
            d: [xstats.get(f"{d}_q{q}_good_packets", 0) for q in range(self.queues)]
            for d in ("rx", "tx")
        }

    def queue_counts(self) -> list[list[int]]:
        """Per queue: packets the NIC port received and sent, then virtio_user0's."""
        per_port = {p: self.queue_packets(p) for p in (NIC_PORT, USER_PORT)}
        return [
            [per_port[p][d][q] for p in (NIC_PORT, USER_PORT) for d in ("rx", "tx")]
            for q in range(self.queues)
        ]

    def size_counts(self, port: int, direction: str) -> tuple[int, int]:
        """(good packets, of which longer than 1518 bytes) of a port, summed over queues."""
        xstats = self.testpmd.show_port_xstats(port)
        total = xstats.get(f"{direction}_good_packets", 0)
        large = sum(
            xstats.get(f"{direction}_q{q}_size_1519_max_packets", 0) for q in range(self.queues)
        )
        return total, large

    # -- the report and the end ---------------------------------------------------------

    def attach_setup(self) -> None:
        """Where the guide ran and what ran in place of each guide command."""
        attach_text("where the guide ran", self.where)
        attach_drift(self.drift)

    def restart_testpmd(
        self, *, lro: bool, rx_cksum: bool, queue_size: int | None = QUEUE_SIZE
    ) -> None:
        """Restart testpmd with or without the guide's options; set the tap up.

        queue_size None: virtio_user0 without the devarg, at the PMD's default.
        """
        self.stop_testpmd()
        self.lro, self.rx_cksum, self.queue_size = lro, rx_cksum, queue_size
        self.start_testpmd()
        self.start_forwarding()
        if self.find_tap() is not None:
            self.configure_tap()

    def stop_testpmd(self) -> None:
        """Quit testpmd (the kernel removes the tap with it) and the tap's services."""
        if vm := ExceptionalPath.vm.peek(self):
            for program in self._services:
                vm.shell.run(f"killall {program}")
        self._services.clear()
        if pmd := ExceptionalPath.pmd.peek(self):
            try:
                attach_text(f"guest testpmd (queues={self.queues})", pmd.shell.transcript)
            except Exception as exc:  # reporting must not stop teardown
                log.warning("could not attach testpmd transcript: %s", exc)
            pmd.close()
            del self.pmd
            self.tap = None

    def close(self) -> None:
        """Quit testpmd, stop the guest, remove the bridge; never raises."""
        try:
            self.stop_testpmd()
        finally:
            close_vms([ExceptionalPath.vm.peek(self)])
            del self.vm
            if bridge := ExceptionalPath.bridge.peek(self):
                bridge.close()
