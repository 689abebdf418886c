"""Guide 5.2 (and DPDK's vf_daemon plan): the VFd cases ixgbe and i40e share.

Not a test module itself: test_vfd_ixgbe.py and test_vfd_i40e.py each subclass
CommonVfdCases with their NIC family, so the common cases run once per family, next to
that family's own cases, on one set-up (5.1) per module.

The probe path of every case: the TG sends frames to VF 0; the VF testpmd forwards them
out of VF 1 (mac mode: VF 1's source MAC, the TG as destination) back to the TG. A
command's effect is judged by what comes back and by the PF's and VFs' counters, once
switched on and once off, and the default is put back at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import pytest

from framework.config.model import NicFamily
from framework.dpdk.modes import ForwardingMode
from framework.dpdk.version import DpdkVersion
from framework.lab.hosts import HostHandle
from framework.report.attach import step
from framework.scenarios.vf_daemon import PF_PORT, VF0, VF1, VfDaemon
from framework.traffic.delivery import (
    verify_back,
    verify_counter,
    verify_none_back,
    verify_source,
    verify_vlan,
)
from framework.traffic.generator import TrafficGenerator
from framework.verify import verify

NEW_MAC = "a0:36:9f:7b:c3:51"  # 5.2.2's example address
FOREIGN_MAC = "02:00:00:5a:5a:01"  # a source no VF owns
VLAN_A, VLAN_B = 10, 20


class CommonVfdCases:
    """5.2: TX loopback, VF MAC, MAC and VLAN anti-spoofing, VLAN insert, strip, filter."""

    family: NicFamily
    # What a VF receives once `rx_vlan rm` removed its last VLAN filter: every VLAN (True),
    # or none but untagged frames (False); each family's module says why, from its PMD.
    vlan_rm_receives_every_vlan: ClassVar[bool]

    @pytest.fixture(scope="class")
    @classmethod
    def vfd(
        cls,
        topology,
        hosts: dict[str, HostHandle],
        traffic_generator: TrafficGenerator,
        dpdk_version: DpdkVersion,
    ) -> Iterator[VfDaemon]:
        """5.1: the PF under DPDK with its VFs; testpmd on the PF and on VFs 0 and 1."""
        with VfDaemon.running(
            "5.1 Preparing: PF under DPDK, VFs created, testpmd on PF and VFs",
            topology, cls.family, hosts, traffic_generator, dpdk_version,
        ) as vfd:  # fmt: skip
            yield vfd

    def test_probe_path_forwards(self, vfd: VfDaemon) -> None:
        """The set-up itself: what every case below relies on.

        Steps: the TG sends 32 frames to VF 0.
        Verify: all 32 come back from VF 1's MAC; VF 0 received and VF 1 sent 32.
        """
        with step("TG -> VF 0 -> VF testpmd -> VF 1 -> TG"):
            delivery = vfd.send(vfd.frames())
        verify_back(delivery, "every frame sent to VF 0 comes back through VF 1")
        verify_source(delivery, vfd.vf_macs[VF1], "forwarded frames leave from VF 1's MAC")
        verify_counter(delivery, f"vf_rx[{VF0}]", "VF 0 counts the frames", at_least=32)

    def test_tx_loopback(self, vfd: VfDaemon) -> None:
        """5.2.1 `set tx loopback 0 on|off`: VF-to-VF (or to the PF) traffic stays inside.

        Steps: VF 1 forwards to the PF's MAC; loopback on, send; loopback off, send.
        Verify: on: the PF receives every frame and the wire (TG) none; off: the TG sees
        every frame and the PF none.
        """
        vfd.forward(ForwardingMode.MAC, peer=vfd.pf_mac)
        try:
            with step("5.2.1 set tx loopback 0 on"):
                vfd.pf_pmd.set_tx_loopback(PF_PORT, True)
                on = vfd.send(vfd.frames())
            verify_counter(on, "pf_rx", "loopback on: the PF receives what VF 1 sends it",
                           at_least=len(on.sent))  # fmt: skip
            verify_none_back(on, "loopback on: frames between functions do not reach the wire")
            with step("5.2.1 set tx loopback 0 off"):
                vfd.pf_pmd.set_tx_loopback(PF_PORT, False)
                off = vfd.send(vfd.frames())
            verify_back(off, "loopback off: frames for the PF go out on the wire")
            verify_counter(off, "pf_rx", "loopback off: nothing reaches the PF inside", equals=0)
        finally:
            vfd.pf_pmd.set_tx_loopback(PF_PORT, True)
            vfd.forward(ForwardingMode.MAC)

    def test_vf_mac_addr(self, vfd: VfDaemon) -> None:
        """5.2.2 `set vf mac addr 0 0 A0:36:9F:7B:C3:51`.

        Steps: set VF 0's MAC from the PF; restart the VF ports; send to the new MAC, then
        to the old one; set the old MAC back.
        Verify: VF 0 reports the new MAC; frames to it come back; frames to the old do not.
        """
        old = vfd.vf_macs[VF0]
        try:
            with step(f"5.2.2 set vf mac addr 0 0 {NEW_MAC}"):
                vfd.pf_pmd.set_vf_mac_addr(PF_PORT, 0, NEW_MAC)
                vfd.vf_pmd.restart_ports((VF0, VF1))
            seen = vfd.vf_pmd.show_port_info(VF0).mac.lower()
            verify(seen == NEW_MAC, f"guide: VF 0's MAC changes to {NEW_MAC}", seen)
            with step("frames to the new MAC"):
                verify_back(vfd.send(vfd.frames(dst=NEW_MAC)), "frames to the new MAC are received")
            with step("frames to the old MAC"):
                verify_none_back(vfd.send(vfd.frames(dst=old)), "the old MAC is overwritten")
        finally:
            vfd.pf_pmd.set_vf_mac_addr(PF_PORT, 0, old)
            vfd.vf_pmd.restart_ports((VF0, VF1))

    def test_mac_anti_spoof(self, vfd: VfDaemon) -> None:
        """5.2.3 `set vf mac antispoof 0 1 on|off`.

        Steps: the VF testpmd forwards in io mode, so VF 1 sends the frames with the TG's
        source MAC (not its own); anti-spoof on VF 1 on, send; off, send; on again in mac
        mode (VF 1's own source), send.
        Verify: on + foreign source: none back; off: all back; on + own source: all back.
        """
        try:
            vfd.forward(ForwardingMode.IO)
            with step("5.2.3 set vf mac antispoof 0 1 on (VF 1 sends a foreign source)"):
                vfd.pf_pmd.set_vf_mac_antispoof(PF_PORT, 1, True)
                spoofed = vfd.send(vfd.frames(src=FOREIGN_MAC))
            verify_none_back(
                spoofed, "anti-spoof on: frames with a foreign source MAC are not sent"
            )
            with step("5.2.3 set vf mac antispoof 0 1 off"):
                vfd.pf_pmd.set_vf_mac_antispoof(PF_PORT, 1, False)
                allowed = vfd.send(vfd.frames(src=FOREIGN_MAC))
            verify_back(allowed, "anti-spoof off: frames with any source MAC are sent")
            with step("anti-spoof on, VF 1's own source MAC (mac forwarding)"):
                vfd.pf_pmd.set_vf_mac_antispoof(PF_PORT, 1, True)
                vfd.forward(ForwardingMode.MAC)
                own = vfd.send(vfd.frames())
            verify_back(own, "anti-spoof on: frames from the VF's own MAC are still sent")
        finally:
            vfd.pf_pmd.set_vf_mac_antispoof(PF_PORT, 1, False)
            vfd.forward(ForwardingMode.MAC)

    def test_vlan_anti_spoof(self, vfd: VfDaemon) -> None:
        """5.2.4 `set vf vlan antispoof 0 1 on|off`.

        Steps: VF 0 accepts VLANs 10 and 20, VF 1 is a member of VLAN 10 only; io
        forwarding keeps the tag; anti-spoof on VF 1 on: send tagged 20, then 10; off: 20.
        Verify: on: VLAN 20 (not VF 1's) none back, VLAN 10 all back; off: VLAN 20 back.
        """
        pf = vfd.pf_pmd
        try:
            pf.set_vf_vlan_filter(VLAN_A, PF_PORT, 0b11)
            pf.set_vf_vlan_filter(VLAN_B, PF_PORT, 0b01)
            vfd.forward(ForwardingMode.IO)
            with step("5.2.4 set vf vlan antispoof 0 1 on"):
                pf.set_vf_vlan_antispoof(PF_PORT, 1, True)
                foreign = vfd.send(vfd.frames(vlan=VLAN_B))
                member = vfd.send(vfd.frames(vlan=VLAN_A))
            verify_none_back(foreign, "VLAN anti-spoof on: VLAN 20 is not VF 1's, not sent")
            verify_back(member, "VLAN anti-spoof on: VF 1's own VLAN 10 is sent")
            with step("5.2.4 set vf vlan antispoof 0 1 off"):
                pf.set_vf_vlan_antispoof(PF_PORT, 1, False)
                verify_back(vfd.send(vfd.frames(vlan=VLAN_B)), "anti-spoof off: VLAN 20 is sent")
        finally:
            pf.set_vf_vlan_antispoof(PF_PORT, 1, False)
            pf.set_vf_vlan_filter(VLAN_A, PF_PORT, 0b11, on=False)
            pf.set_vf_vlan_filter(VLAN_B, PF_PORT, 0b01, on=False)
            vfd.forward(ForwardingMode.MAC)

    def test_vlan_insert(self, vfd: VfDaemon) -> None:
        """5.2.5 `set vf vlan insert 0 1 N` (0: no insertion).

        Steps: insert VLAN 10 on VF 1, send untagged frames; insert 0, send again.
        Verify: with 10 every frame back is tagged 10; with 0 every frame back untagged.
        """
        try:
            with step("5.2.5 set vf vlan insert 0 1 10"):
                vfd.pf_pmd.set_vf_vlan_insert(PF_PORT, 1, VLAN_A)
                tagged = vfd.send(vfd.frames())
            verify_vlan(tagged, VLAN_A, "guide: the hardware inserts VLAN 10 into what VF 1 sends")
            with step("5.2.5 set vf vlan insert 0 1 0"):
                vfd.pf_pmd.set_vf_vlan_insert(PF_PORT, 1, 0)
                plain = vfd.send(vfd.frames())
            verify_vlan(plain, None, "guide: VLAN id 0 disables the insertion")
        finally:
            vfd.pf_pmd.set_vf_vlan_insert(PF_PORT, 1, 0)

    def test_vlan_strip(self, vfd: VfDaemon) -> None:
        """5.2.6 `set vf vlan stripq 0 0 on|off`.

        Steps: VF 0 accepts VLAN 10; io forwarding; strip on VF 0 on, send tagged 10; off,
        send again.
        Verify: on: every frame back untagged (VF 0 took the tag off); off: tagged 10.
        """
        pf = vfd.pf_pmd
        try:
            pf.set_vf_vlan_filter(VLAN_A, PF_PORT, 0b01)
            vfd.forward(ForwardingMode.IO)
            with step("5.2.6 set vf vlan stripq 0 0 on"):
                pf.set_vf_vlan_stripq(PF_PORT, 0, True)
                stripped = vfd.send(vfd.frames(vlan=VLAN_A))
            verify_vlan(stripped, None, "strip on: VF 0 receives the frames without their tag")
            with step("5.2.6 set vf vlan stripq 0 0 off"):
                pf.set_vf_vlan_stripq(PF_PORT, 0, False)
                kept = vfd.send(vfd.frames(vlan=VLAN_A))
            verify_vlan(kept, VLAN_A, "strip off: the tag stays on the frames")
        finally:
            pf.set_vf_vlan_stripq(PF_PORT, 0, False)
            pf.set_vf_vlan_filter(VLAN_A, PF_PORT, 0b01, on=False)
            vfd.forward(ForwardingMode.MAC)

    def test_vlan_filter(self, vfd: VfDaemon) -> None:
        """5.2.7 `rx_vlan add|rm 10 port 0 vf 1` (the mask of VFs: VF 0 here).

        Steps: add VLAN 10 for VF 0, send tagged 10 and tagged 20; remove it, send tagged
        10, tagged 20 and untagged.
        Verify: with the filter VLAN 10 is received and 20 dropped. After rm untagged
        frames are received, and VLANs 10 and 20 as the PF driver leaves a VF without
        filters (`vlan_rm_receives_every_vlan`): i40e receives both, as DTS's vf_daemon
        plan expects (case 14, steps 6-9); ixgbe neither, where the suite and the plan part
        (README, "Where the suite and DTS's vf_daemon plan part").
        """
        pf = vfd.pf_pmd
        added = False
        try:
            with step("5.2.7 rx_vlan add 10 port 0 vf 0x1"):
                pf.set_vf_vlan_filter(VLAN_A, PF_PORT, 0b01)
                added = True
                listed = vfd.send(vfd.frames(vlan=VLAN_A))
                other = vfd.send(vfd.frames(vlan=VLAN_B))
            verify_back(listed, "guide: packets with the assigned VLAN id are received")
            verify_none_back(other, "guide: other packets are dropped by hardware")
            with step("5.2.7 rx_vlan rm 10 port 0 vf 0x1"):
                pf.set_vf_vlan_filter(VLAN_A, PF_PORT, 0b01, on=False)
                added = False
                removed = vfd.send(vfd.frames(vlan=VLAN_A))
                other_after = vfd.send(vfd.frames(vlan=VLAN_B))
                untagged = vfd.send(vfd.frames())
            verify_back(untagged, "after rx_vlan rm, untagged frames are received")
            if self.vlan_rm_receives_every_vlan:
                verify_back(
                    removed,
                    "after rx_vlan rm of its last VLAN the VF receives every VLAN again: VLAN 10",
                )
                verify_back(
                    other_after,
                    "after rx_vlan rm of its last VLAN the VF receives every VLAN again: VLAN 20",
                )
            else:
                verify_none_back(removed, "after rx_vlan rm, VLAN 10 is no longer received")
                verify_none_back(other_after, "after rx_vlan rm, VLAN 20 is still not received")
        finally:
            if added:
                pf.set_vf_vlan_filter(VLAN_A, PF_PORT, 0b01, on=False)

    def test_vf_mtu(self, vfd: VfDaemon) -> None:
        """vf_daemon plan: the VF's MTU bounds what it forwards, under a PF MTU of 9000.

        Steps: PF MTU 9000; VF ports MTU 1500; send 3000-byte frames; raise the VF MTU to
        9000; send again; back to 1500.
        Verify: at MTU 1500 none of the big frames is forwarded (none back); at 9000 every
        one comes back.
        """
        big = 3000
        with vfd.tg_mtu(9000):
            with step("PF: port config mtu 0 9000"):
                vfd.set_pf_mtu(9000)
            try:
                with step("VF: port config mtu 1500; 3000-byte frames"):
                    vfd.set_vf_mtu(1500)
                    small = vfd.send(vfd.frames(size=big))
                verify_none_back(small, "frames above the VF's MTU are not forwarded")
                with step("VF: port config mtu 9000; 3000-byte frames"):
                    vfd.set_vf_mtu(9000)
                    raised = vfd.send(vfd.frames(size=big))
                verify_back(raised, "after the VF's MTU is raised the same frames are forwarded")
            finally:
                vfd.set_vf_mtu(1500)
