"""Guide 5 (VFd) on an Intel 82599 (Niantic, ixgbe): 5.2 and the ixgbe functions of 5.3.

Set-up as 5.1 (see framework.scenarios.vf_daemon): the PF under DPDK, VFs 0 and 1 driven by
a second testpmd (in a VM where the topology names one), the TG facing the PF through the
switch. The common cases of 5.2 come from CommonVfdCases; this module adds 5.3.1-5.3.6 and
the VF jumbo-frame case of DPDK's vf_daemon plan.
"""

from __future__ import annotations

import allure
import pytest

from framework.config.model import NicFamily
from framework.dpdk.modes import VfRxMode
from framework.report.attach import step
from framework.report.outcomes import skip_lacking
from framework.scenarios.vf_daemon import PF_PORT, VF0, VF1, VfDaemon
from framework.traffic.delivery import (
    verify_back,
    verify_counter,
    verify_none_back,
    verify_rate,
)
from framework.verify import verify
from testsuites.vfd_cases import FOREIGN_MAC, CommonVfdCases

pytestmark = [
    pytest.mark.guide(5),
    pytest.mark.niantic,
    pytest.mark.sriov,
    pytest.mark.plannable,
    pytest.mark.requires("vf_daemon.niantic"),
    allure.parent_suite("DPDK HowTo guides"),
    allure.suite("5 VF daemon (VFd): ixgbe"),
]

FILL_RING = 4096  # more frames than a VF's receive ring holds
RATE_MBPS = 10  # 5.3.3's example
RATE_TOLERANCE = 0.10
MULTICAST_MAC = "01:00:5e:00:00:fb"
JUMBO = 3000
AFTER_RESTART = 2000  # the vf_daemon plan's size: above MTU 1500, within one 2048-byte mbuf


class TestVfdIxgbe(CommonVfdCases):
    """5.2 and 5.3 on a Niantic PF."""

    family = NicFamily.niantic
    # After `rx_vlan rm` of its last VLAN an 82599 VF receives no tagged frame, where DTS's
    # vf_daemon plan (case 14, steps 7-8) expects every VLAN, as i40e does. DPDK 22.11:
    # rte_pmd_ixgbe_set_vf_vlan_filter -> ixgbe_set_vfta_generic clears the VLAN's VFTA bit
    # and its VLVF pool entry once no pool uses it (drivers/net/ixgbe/base/
    # ixgbe_common.c:4037-4050: "Clear VFTA first, then disable VLVF. Otherwise we run the
    # risk of stray packets leaking into the PF via the default pool"): a tagged frame with
    # no VLVF entry goes to the PF's default pool, never to a VF. The kernel's ixgbe PF
    # works the same way: it gives each VF a VLVF entry for VLAN 0 on reset and refuses to
    # remove it (ixgbe_sriov.c: ixgbe_vf_reset_event, ixgbe_set_vf_vlan_msg), or the VF
    # would not even get priority-tagged frames. DTS's code for that case sends to a
    # foreign MAC, which needs VF unicast promiscuous mode, refused on an 82599
    # (ixgbe_pf.c:763, ixgbe_set_vf_mc_promisc): it can only have passed on i40e.
    vlan_rm_receives_every_vlan = False

    def _vf1_behind_a_full_vf0(self, vfd: VfDaemon):
        """VF 0's ring filled (VF 0 not polled), then frames to VF 1 (polled alone)."""
        vfd.poll_only(VF1)
        vfd.send(vfd.frames(FILL_RING), timeout=0.5)
        return vfd.send(vfd.frames(dst=vfd.vf_macs[VF1]))

    def test_all_queues_drop(self, vfd: VfDaemon) -> None:
        """5.3.1 `set all queues drop 0 on|off` (the port id is testpmd's syntax since 17.05).

        Steps (vf_daemon plan): VF 1 alone is polled; a burst larger than its ring goes to
        VF 0; then frames to VF 1. Once with drop off, once on.
        Verify: off: VF 0's full ring blocks VF 1 (none back); on: VF 1's frames come back.
        """
        try:
            with step("5.3.1 set all queues drop 0 off"):
                vfd.pf_pmd.set_all_queues_drop(PF_PORT, False)
                blocked = self._vf1_behind_a_full_vf0(vfd)
            verify_none_back(blocked, "drop off: one full queue blocks the others")
            vfd.poll_both()
            with step("5.3.1 set all queues drop 0 on"):
                vfd.pf_pmd.set_all_queues_drop(PF_PORT, True)
                free = self._vf1_behind_a_full_vf0(vfd)
            verify_back(free, "guide: with all queues drop a full queue blocks no other")
        finally:
            vfd.poll_both()
            vfd.pf_pmd.set_all_queues_drop(PF_PORT, True)

    def test_vf_split_drop(self, vfd: VfDaemon) -> None:
        """5.3.2 `set vf split drop 0 0 on|off`: the same, for VF 0 alone.

        Steps: all queues drop off; VF 1 alone polled; a burst larger than the ring to VF 0,
        then frames to VF 1; once with VF 0's split drop off, once on.
        Verify: off: VF 1 is blocked (none back); on: VF 0 drops its excess, VF 1's come back.
        """
        try:
            vfd.pf_pmd.set_all_queues_drop(PF_PORT, False)
            with step("5.3.2 set vf split drop 0 0 off"):
                vfd.pf_pmd.set_vf_split_drop(PF_PORT, 0, False)
                blocked = self._vf1_behind_a_full_vf0(vfd)
            verify_none_back(blocked, "split drop off: VF 0's full ring blocks VF 1")
            vfd.poll_both()
            with step("5.3.2 set vf split drop 0 0 on"):
                vfd.pf_pmd.set_vf_split_drop(PF_PORT, 0, True)
                free = self._vf1_behind_a_full_vf0(vfd)
            verify_back(free, "split drop on: VF 0 drops what it cannot take, VF 1 is served")
        finally:
            vfd.poll_both()
            vfd.pf_pmd.set_vf_split_drop(PF_PORT, 0, False)
            vfd.pf_pmd.set_all_queues_drop(PF_PORT, True)

    def test_vf_rate_limit(self, vfd: VfDaemon) -> None:
        """5.3.3 `set port 0 vf 1 rate 10 queue_mask 0xf` (Mbit/s per queue).

        Steps: limit every queue of VF 1 to 10 Mbit/s; offer 50 Mbit/s of one flow (one
        queue) through it; lift the limit (rate 0); offer again.
        Verify: limited, the rate back is 10 Mbit/s +- 10 %; unlimited, above 2 x 10.
        """
        frame = vfd.frames(1)[0]
        mask = (1 << vfd.bed.vf_queues) - 1
        try:
            with step(f"5.3.3 set port 0 vf 1 rate {RATE_MBPS} queue_mask {mask:#x}"):
                vfd.pf_pmd.set_vf_rate_limit(PF_PORT, 1, RATE_MBPS, mask)
                limited = vfd.rate_back_mbps(frame, 5 * RATE_MBPS)
            verify_rate(limited, RATE_MBPS, RATE_TOLERANCE, "guide: every queue is limited")
        finally:
            vfd.pf_pmd.set_vf_rate_limit(PF_PORT, 1, 0, mask)
        free = vfd.rate_back_mbps(frame, 5 * RATE_MBPS)
        verify(free > 2 * RATE_MBPS, "without the limit VF 1 forwards more than 2 x 10",
               f"{free:.1f} Mbit/s")  # fmt: skip

    def test_vf_rate_limit_is_per_queue(self, vfd: VfDaemon) -> None:
        """5.3.3: "It is not used to set the summary of the rate limit. The rate limit of
        every queue will be set equally to the assigned rate limit."

        Steps: limit every queue of VF 1 to 10 Mbit/s (queue_mask: all its queues); the VF
        testpmd sends flat out (txonly) on every queue; lift the limit (rate 0); again.
        Verify: limited, each queue of VF 1 sends 10 Mbit/s +- 10 % and VF 1 in all the
        number of queues x 10, not 10; unlimited, every queue more than 2 x 10.
        """
        queues = vfd.bed.vf_queues
        if queues < 2:
            skip_lacking(
                "vf_daemon.niantic.vf_queues < 2: one queue cannot tell each queue's "
                "limit from the sum"
            )
        mask = (1 << queues) - 1
        try:
            with step(f"5.3.3 set port 0 vf 1 rate {RATE_MBPS} queue_mask {mask:#x}; txonly"):
                vfd.pf_pmd.set_vf_rate_limit(PF_PORT, 1, RATE_MBPS, mask)
                limited = vfd.tx_queue_rates_mbps(VF1)
            for queue, rate in sorted(limited.items()):
                verify_rate(
                    rate,
                    RATE_MBPS,
                    RATE_TOLERANCE,
                    f"guide 5.3.3: queue {queue} of VF 1 is itself limited to 10 Mbit/s",
                )
            verify_rate(
                sum(limited.values()),
                queues * RATE_MBPS,
                RATE_TOLERANCE,
                f"guide 5.3.3: the limit is per queue, not the sum: VF 1's {queues} "
                f"queues send {queues} x 10 Mbit/s in all",
            )
        finally:
            vfd.pf_pmd.set_vf_rate_limit(PF_PORT, 1, 0, mask)
        with step("5.3.3 set port 0 vf 1 rate 0 (no limit); txonly"):
            free = vfd.tx_queue_rates_mbps(VF1)
        verify(
            min(free.values()) > 2 * RATE_MBPS,
            "rate 0 lifts the limit of every queue of VF 1 (each above 2 x 10 Mbit/s)",
            f"Mbit/s per queue: {free}",
        )

    def test_vf_rx_enable(self, vfd: VfDaemon) -> None:
        """5.3.4 `set port 0 vf 0 rx off|on`.

        Verify: rx off: VF 0 receives nothing (none back); rx on: every frame back.
        """
        try:
            with step("5.3.4 set port 0 vf 0 rx off"):
                vfd.pf_pmd.set_vf_rx(PF_PORT, 0, False)
                off = vfd.send(vfd.frames())
            verify_none_back(off, "rx off: the VF stops receiving")
            verify_counter(off, f"vf_rx[{VF0}]", "rx off: VF 0 counts nothing", equals=0)
            with step("5.3.4 set port 0 vf 0 rx on"):
                vfd.pf_pmd.set_vf_rx(PF_PORT, 0, True)
                verify_back(vfd.send(vfd.frames()), "rx on: the VF receives again")
        finally:
            vfd.pf_pmd.set_vf_rx(PF_PORT, 0, True)

    def test_vf_tx_enable(self, vfd: VfDaemon) -> None:
        """5.3.5 `set port 0 vf 1 tx off|on`.

        Verify: tx off: VF 0 still receives but nothing leaves VF 1; tx on: every frame back.
        """
        try:
            with step("5.3.5 set port 0 vf 1 tx off"):
                vfd.pf_pmd.set_vf_tx(PF_PORT, 1, False)
                off = vfd.send(vfd.frames())
            verify_counter(off, f"vf_rx[{VF0}]", "tx off on VF 1: VF 0 still receives",
                           at_least=len(off.sent))  # fmt: skip
            verify_none_back(off, "tx off: the VF stops transmitting")
            with step("5.3.5 set port 0 vf 1 tx on"):
                vfd.pf_pmd.set_vf_tx(PF_PORT, 1, True)
                verify_back(vfd.send(vfd.frames()), "tx on: the VF transmits again")
        finally:
            vfd.pf_pmd.set_vf_tx(PF_PORT, 1, True)

    @pytest.mark.parametrize(
        ("mode", "dst", "default_on"),
        [
            pytest.param(VfRxMode.AUPE, None, True, id="AUPE-untagged"),
            pytest.param(VfRxMode.ROPE, FOREIGN_MAC, False, id="ROPE-unicast-hash"),
            pytest.param(VfRxMode.BAM, "ff:ff:ff:ff:ff:ff", True, id="BAM-broadcast"),
            pytest.param(VfRxMode.MPE, MULTICAST_MAC, False, id="MPE-multicast"),
        ],
    )
    def test_vf_rxmode(
        self, vfd: VfDaemon, mode: VfRxMode, dst: str | None, default_on: bool
    ) -> None:
        """5.3.6 `set port 0 vf 0 rxmode AUPE|ROPE|BAM|MPE on|off`.

        Steps: frames of the kind the mode admits (untagged to VF 0's MAC; to an address
        in the PF's unicast hash table; broadcast; to an unjoined multicast group) with the
        mode off, then on.
        Verify: off: VF 0 receives none; on: VF 0 receives every one.
        """
        pf = vfd.pf_pmd
        if mode == VfRxMode.ROPE:
            # as DPDK's sriov_kvm plan: the address in the unicast hash, the PF promiscuous
            pf.set_promisc(PF_PORT, True)
            pf.set_uta(PF_PORT, FOREIGN_MAC, True)
        try:
            with step(f"5.3.6 set port 0 vf 0 rxmode {mode} off"):
                pf.set_vf_rxmode(PF_PORT, 0, mode, False)
                off = vfd.send(vfd.frames(dst=dst))
            verify_counter(off, f"vf_rx[{VF0}]", f"{mode} off: VF 0 accepts none", equals=0)
            with step(f"5.3.6 set port 0 vf 0 rxmode {mode} on"):
                pf.set_vf_rxmode(PF_PORT, 0, mode, True)
                on = vfd.send(vfd.frames(dst=dst))
            verify_counter(on, f"vf_rx[{VF0}]", f"{mode} on: VF 0 accepts them",
                           at_least=len(on.sent))  # fmt: skip
        finally:
            pf.set_vf_rxmode(PF_PORT, 0, mode, default_on)
            if mode == VfRxMode.ROPE:
                pf.set_uta(PF_PORT, FOREIGN_MAC, False)
                pf.set_promisc(PF_PORT, False)

    def test_vf_jumbo_frames_after_restart(self, vfd: VfDaemon) -> None:
        """vf_daemon plan, case 15: a VF testpmd restarted at MTU 1500 still receives
        2000-byte frames once a VF raised the port's maximum frame size.

        Steps: PF MTU 9000; VF MTU 9000, 3000-byte frames; restart the VF testpmd (its
        MTU back to 1500); 2000-byte frames.
        Verify: at MTU 9000 every jumbo frame back; after the restart every 2000-byte
        frame back too, as the plan expects (step 5), not dropped.

        Why, from DPDK 22.11: an 82599 has one maximum frame size for the port and its
        VFs (MAXFRS). The PF's MTU 9000 sets it to 9018 (ixgbe_ethdev.c:5254-5257,
        ixgbe_dev_mtu_set); a VF's request (IXGBE_VF_SET_LPE, sent by ixgbevf_dev_rx_init
        at every start, ixgbe_rxtx.c:5672) only ever raises it (ixgbe_pf.c:598,
        ixgbe_set_vf_lpe: `if (max_frs < max_frame)`), so the restarted VF's 1518 leaves
        9018 in place. The kernel's ixgbe PF does the same for the 82599 ("we have to keep
        all PFs and VFs operating with the same max_frame value", ixgbe_sriov.c,
        ixgbe_set_vf_lpe). 2000 bytes, as the plan, fit one 2048-byte mbuf of the VF's
        non-scattered receive path at MTU 1500 (ixgbe_rxtx.c:5729-5731); a 3000-byte frame
        would reach that path as two descriptors, which ixgbe_recv_pkts_vec hands up as
        two packets (no EOP handling: ixgbe_rxtx_vec_sse.c:599-603), so 3000 says nothing.
        """
        with vfd.tg_mtu(9000):
            vfd.set_pf_mtu(9000)
            with step("VF MTU 9000: 3000-byte frames"):
                vfd.set_vf_mtu(9000)
                verify_back(vfd.send(vfd.frames(size=JUMBO)), "jumbo frames pass at MTU 9000")
            with step("restart the VF testpmd (MTU 1500): 2000-byte frames"):
                vfd.restart_vf_testpmd()
                verify_back(
                    vfd.send(vfd.frames(size=AFTER_RESTART)),
                    "vf_daemon plan: after a restart the VF still receives 2000-byte frames "
                    "(the port's maximum frame size stays raised)",
                )
