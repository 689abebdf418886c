"""Guide 3 (flow bifurcation): the kernel keeps the PF, filters hand chosen flows to DPDK VFs.

Set-up as 3.1 / 3.2 on the topology's `flow_bifurcation.<family>` PF, which the kernel's
ixgbe or i40e drives: VFs created (`sriov_numvfs`), `ethtool -K <pf> ntuple on`, for i40e
a VXLAN device on the PF so the NIC parses VXLAN (3.2 step 4), VFs 0 and 1 bound to
vfio-pci and testpmd on them (3.1 step 6: `-a VF0 -a VF1`), `vf_queues` queues each,
rxonly with `set verbose 1` so every packet's port, queue, type and VNI are printed. VFs
beyond the first two stay with the kernel's VF driver.

Rules are ethtool lines built by framework.lab.flow_filters from the guide's encodings.
The TG sends frames to the PF's MAC through the switch; a Delivery then says which VF
port and queue received them (testpmd's per-queue counters and verbose lines) and how many
reached the kernel (the PF netdev's rx_packets, which counts only the PF's own rings).
"""

from __future__ import annotations

import logging
import re
import shlex
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import ClassVar

from scapy.packet import Packet

from framework.config.model import NicFamily
from framework.dpdk.args import EalOptions, TestPmdOptions
from framework.dpdk.launch import LaunchRecord, launch_testpmd
from framework.dpdk.modes import ForwardingMode
from framework.dpdk.parsers import RxPacket
from framework.dpdk.testpmd import TestPmd
from framework.errors import FrameworkError
from framework.lab import flow_filters
from framework.lab.sriov import SriovPf, VirtualFunction
from framework.scenarios.sriov_bed import SriovBedScenario
from framework.scenarios.stages import Made
from framework.traffic.delivery import Delivery

log = logging.getLogger("howto.flow_bifurcation")

# 3.2 step 4's port: `ip li add vxlan0 type vxlan id 42 ...` names none, so Linux's vxlan
# driver uses its default, 8472 (its udp_port module parameter), the port of the guide's
# "add vxlan port 8472" log line. Any port works: the PF's i40e offloads whichever port a
# VXLAN device announces (i40e_udp_tunnel_set_port, any UDP port) and testpmd prints a
# VXLAN line by the NIC's tunnel packet type, not by the port (app/test-pmd/util.c:234-274
# at v22.11). Given as `dstport 8472`, so a host whose module default differs still runs
# the guide's port.
VXLAN_PORT = 8472
VXLAN_ID = 42  # 3.2 step 4's vxlan0
MBUFS = 16384


class FilterError(FrameworkError):
    """ethtool refused or could not parse a rule; names the host, the line and the reason."""


@dataclass
class FlowBifurcation(SriovBedScenario):
    """Guide 3's PF under the kernel, its VFs under DPDK, and the TG facing the PF."""

    section: ClassVar[str] = "flow_bifurcation"

    vfs: list[VirtualFunction] = field(default_factory=list)
    pf_dev: str = ""
    pf_mac: str = ""
    tg_mac: str = ""
    vxlan_dev: str | None = None
    rules: list[int] = field(default_factory=list)
    launches: list[LaunchRecord] = field(default_factory=list)
    # (what the guide ran, what ran here), for the report
    steps: list[tuple[str, str]] = field(default_factory=list)
    sriov = Made[SriovPf]("set_up()")
    pmd = Made[TestPmd]("set_up()")

    @property
    def vf_pmd(self) -> TestPmd:
        """Testpmd on VF 0 (port 0) and VF 1 (port 1)."""
        return self.pmd

    def _run(self, guide: str, argv: Sequence[str]) -> str:
        result = self.host.session.run(list(argv), check=False)
        self.steps.append((guide, shlex.join(argv)))
        if not result.ok:
            raise FilterError(
                f"{self.host.name}: {shlex.join(argv)}: "
                f"{(result.stderr or result.stdout).strip() or f'exit {result.exit_code}'}"
            )
        return result.stdout

    # -- 3.1 / 3.2 ------------------------------------------------------------------------

    def set_up(self) -> None:
        """Steps 2-6 (3.1) / 3-8 (3.2)."""
        self.sriov = SriovPf(self.host.session, self.pf_pci, host=self.host.name)
        self.pf_dev = self.sriov.pf_interface()
        self.vfs = self.sriov.enable(self.bed.vfs)
        self._run("ethtool -K eth1 ntuple on", flow_filters.ntuple_on(self.pf_dev))
        if self.family is NicFamily.fortville:
            self.add_vxlan_port()
        for vf in self.vfs[:2]:
            self.sriov.bind_vfio(vf)
        self.start_testpmd()
        self.pf_mac = self._read(f"/sys/class/net/{self.pf_dev}/address").lower()
        self.tg_mac = self.tg.mac_of(self.tg_port)

    def add_vxlan_port(self) -> None:
        """3.2 step 4: a VXLAN device on the PF, so i40e parses VXLAN on its UDP port, 8472."""
        name = f"{self.host.prefix}vx"[:15]
        self._run(
            "ip li add vxlan0 type vxlan id 42 group 239.1.1.1 local 10.16.43.214 dev <name>",
            ["ip", "link", "add", name, "type", "vxlan", "id", str(VXLAN_ID),
             "dstport", str(VXLAN_PORT), "dev", self.pf_dev],
        )  # fmt: skip
        self.vxlan_dev = name
        self._run("ifconfig vxlan0 up", ["ip", "link", "set", name, "up"])

    def start_testpmd(self) -> TestPmd:
        """3.1 step 6 / 3.2 step 8: testpmd on VFs 0 and 1; rxonly, verbose."""
        eal = EalOptions(lcores=self.bed.vf_lcores, allow=[vf.pci for vf in self.vfs[:2]])
        queues = self.bed.vf_queues
        app = TestPmdOptions(rxq=queues, txq=queues, total_num_mbufs=MBUFS)
        self.pmd, record = launch_testpmd(
            self.host, "bifurcation-vf", eal, app,
            binary=self.topology.dpdk.host_testpmd, version=self.version,
        )  # fmt: skip
        self.launches.append(record)
        self.steps.append(
            ("testpmd -l 0-7 -n 4 -- -i -w 01:10.0 -w 01:10.1 --forward-mode=mac",
             " ".join(record.argv) + "; set fwd rxonly; set verbose 1; start")
        )  # fmt: skip
        self.pmd.set_fwd(ForwardingMode.RXONLY)
        self.pmd.set_verbose(1)
        self.pmd.start()
        return self.pmd

    # -- rules ----------------------------------------------------------------------------

    def add_rule(self, argv: list[str], guide: str) -> int:
        """Add an ethtool rule; its location (the `loc` given, or the one ethtool chose)."""
        out = self._run(guide, argv)
        if "loc" in argv:
            loc = int(argv[argv.index("loc") + 1])
        else:
            m = re.search(r"Added rule with ID (\d+)", out)
            if not m:
                raise FilterError(f"{self.host.name}: {shlex.join(argv)}: no rule ID in {out!r}")
            loc = int(m.group(1))
        self.rules.append(loc)
        return loc

    def delete_rule(self, loc: int) -> None:
        """`ethtool -N <pf> delete <loc>`."""
        self._run("(not in the guide)", flow_filters.delete_rule(self.pf_dev, loc))
        self.rules.remove(loc)

    def rule_count(self) -> int:
        """The number of rules `ethtool -n <pf>` lists."""
        out = self._run("(not in the guide)", flow_filters.list_rules(self.pf_dev))
        m = re.search(r"Total (\d+) rules", out)
        return int(m.group(1)) if m else 0

    @contextmanager
    def pf_promiscuous(self) -> Iterator[None]:
        """The PF's kernel netdev promiscuous within the block.

        With VFs the kernel's i40e makes its VSI the port's default one instead
        (i40e_set_promiscuous: "set defport ON for Main VSI instead of true promisc"):
        frames to any outer MAC that no filter takes reach the kernel, none is copied
        from a VF. A cloud filter's outer-MAC negative needs it to show where it went.
        """
        self._run("(not in the guide)", ["ip", "link", "set", "dev", self.pf_dev, "promisc", "on"])
        try:
            yield
        finally:
            self._run(
                "(not in the guide)", ["ip", "link", "set", "dev", self.pf_dev, "promisc", "off"]
            )

    # -- traffic --------------------------------------------------------------------------

    def _read(self, path: str) -> str:
        return self.host.session.run(["cat", path]).stdout.strip()

    def pf_rx_packets(self) -> int:
        """Packets the PF's kernel netdev received (its own rings only)."""
        return int(self._read(f"/sys/class/net/{self.pf_dev}/statistics/rx_packets"))

    def pf_queue_packets(self, queue: int) -> int:
        """Packets the PF's kernel queue `queue` received (`ethtool -S`: rx-Q.packets)."""
        out = self.host.session.run(["ethtool", "-S", self.pf_dev]).stdout
        m = re.search(rf"^\s*rx-{queue}\.packets:\s*(\d+)", out, re.M)
        if not m:
            raise FilterError(
                f"{self.host.name}: ethtool -S {self.pf_dev} has no rx-{queue}.packets"
            )
        return int(m.group(1))

    def vf_netdev_rx_packets(self, index: int) -> int:
        """Packets a VF left to the kernel received (its netdev under the VF's device)."""
        vf = self.vfs[index]
        names = self.host.session.run(["ls", f"/sys/bus/pci/devices/{vf.pci}/net"]).stdout
        return int(self._read(f"/sys/class/net/{names.split()[0]}/statistics/rx_packets"))

    def send(
        self, frames: Sequence[Packet], *, settle: float = 0.5
    ) -> tuple[Delivery, list[RxPacket]]:
        """Send frames to the PF's port; where they went, and testpmd's verbose lines.

        The Delivery's pf_rx is what the PF's kernel netdev received meanwhile, every frame
        (the NIC gives no count of one flow's): exact only on a quiet PF port, a link of
        its own to the TG, as a lab wires it (guide 5's PF counts assume the same).
        """
        pmd = self.vf_pmd
        pmd.clear_counters()
        pmd.verbose_received(settle=0)  # drop what was printed before
        before = self.pf_rx_packets()
        self.tg.exchange(self.tg_port, frames, [], timeout=0.1)
        seen = pmd.verbose_received(settle=settle)
        queues: dict[tuple[int, int], int] = {}
        rx: dict[int, int] = {}
        for port in (0, 1):
            xstats = pmd.show_port_xstats(port)
            rx[port] = xstats.get("rx_good_packets", 0)
            for queue in range(self.bed.vf_queues):
                queues[(port, queue)] = xstats.get(f"rx_q{queue}_packets", 0)
        delivery = Delivery(
            sent=list(frames), at_tg=[], pf_rx=self.pf_rx_packets() - before,
            vf_rx=rx, queues=queues,
        )  # fmt: skip
        return delivery, seen

    def close(self) -> None:
        """Delete the rules, quit testpmd, remove the VXLAN device, give the VFs back."""
        for loc in list(self.rules):
            try:
                self.delete_rule(loc)
            except FrameworkError as exc:
                log.warning("%s", exc)
        if pmd := FlowBifurcation.pmd.peek(self):
            pmd.close()
            del self.pmd
        if self.vxlan_dev is not None:
            self.host.session.run(["ip", "link", "del", self.vxlan_dev], check=False)
            self.vxlan_dev = None
        if sriov := FlowBifurcation.sriov.peek(self):
            try:
                sriov.restore()
            except FrameworkError as exc:
                log.warning("%s", exc)
            del self.sriov
