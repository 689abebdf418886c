"""Guide 5 (VFd) on an Intel X710/XL710 (Fortville, i40e): 5.2 and the i40e functions of 5.4.

Set-up as 5.1 (see framework.scenarios.vf_daemon): the PF under DPDK, VFs 0 and 1 driven by
a second testpmd, the TG facing the PF through the switch. The common cases of 5.2 come
from CommonVfdCases; this module adds 5.4.1-5.4.10 and the VLAN tag to VSIs of DPDK's
vf_daemon plan. Bandwidth cases measure rates and shares with a tolerance; DPDK's own test
suites have no test for them.
"""

from __future__ import annotations

import allure
import pytest

from framework.config.model import NicFamily
from framework.errors import TestPmdError
from framework.report.attach import step
from framework.scenarios.vf_daemon import PF_PORT, VF0, VF1, VfDaemon
from framework.traffic.delivery import (
    verify_back,
    verify_counter,
    verify_rate,
    verify_shares,
)
from framework.verify import verify
from testsuites.vfd_cases import FOREIGN_MAC, VLAN_A, CommonVfdCases

pytestmark = [
    pytest.mark.guide(5),
    pytest.mark.fortville,
    pytest.mark.sriov,
    pytest.mark.plannable,
    pytest.mark.requires("vf_daemon.fortville"),
    allure.parent_suite("DPDK HowTo guides"),
    allure.suite("5 VF daemon (VFd): i40e"),
]

MULTICAST_MAC = "01:00:5e:00:00:fb"  # a group no VF joined
MAX_BW_MBPS = 100
TC_SHARES = (20, 20, 20, 40)  # 5.4.8's example
RATE_TOLERANCE = 0.10
SHARE_TOLERANCE = 0.05


class TestVfdI40e(CommonVfdCases):
    """5.2 and 5.4 on a Fortville PF."""

    family = NicFamily.fortville
    # After `rx_vlan rm` of its last VLAN an i40e VF receives every VLAN again, as DTS's
    # vf_daemon plan (case 14, steps 6-9) expects: rte_pmd_i40e_set_vf_vlan_filter turns
    # the VF VSI's VLAN promiscuous mode back on once no filter is left
    # (drivers/net/i40e/rte_pmd_i40e.c:941-950 at v22.11). The kernel's i40e PF does the
    # same: with no active VLAN a VSI "will operate in non-VLAN mode and receive all
    # traffic, tagged or untagged" (i40e_main.c, i40e_correct_mac_vlan_filters).
    vlan_rm_receives_every_vlan = True

    def test_vf_stats_and_reset(self, vfd: VfDaemon) -> None:
        """5.4.1 VF statistics, 5.4.2 VF statistics resetting (`show|clear vf stats 0 0`).

        Steps: send 32 frames to VF 0; read VF 0's counters from the PF; clear them; read.
        Verify: the PF's view counts at least the 32 frames and equals what the VF testpmd
        counted on VF 0; after clearing, every counter is 0.
        """
        with step("5.4.1 show vf stats 0 0 after 32 frames to VF 0"):
            delivery = vfd.send(vfd.frames())
            stats = vfd.pf_pmd.show_vf_stats(PF_PORT, 0)
        verify_counter(delivery, f"vf_rx[{VF0}]", "VF 0 received the frames", at_least=32)
        verify(
            stats.rx_packets == delivery.vf_rx.get(VF0),
            "guide 5.4.1: the PF reads VF 0's statistics (rx as VF 0 itself counts)",
            f"PF says rx {stats.rx_packets}, VF 0 counted {delivery.vf_rx.get(VF0)}",
        )
        with step("5.4.2 clear vf stats 0 0"):
            vfd.pf_pmd.clear_vf_stats(PF_PORT, 0)
            cleared = vfd.pf_pmd.show_vf_stats(PF_PORT, 0)
        verify(
            (cleared.rx_packets, cleared.tx_packets, cleared.rx_bytes) == (0, 0, 0),
            "guide 5.4.2: clear vf stats resets VF 0's statistics to 0",
            str(cleared),
        )

    def test_link_status_change_notification(self, vfd: VfDaemon) -> None:
        """5.4.3: the VF learns that the physical link changed.

        Steps: `set link-down port 0` on the PF; read the VF's link; `set link-up port 0`.
        Verify: VF 0 reports its link down within 10 s, then up again; frames flow after.
        """
        try:
            with step("PF: set link-down port 0"):
                vfd.pf_pmd.set_link(PF_PORT, up=False)
            verify(
                not vfd.vf_link_up(VF0, want=False),
                "guide 5.4.3: the VF is told the physical link went down",
                "VF 0 still says up after 10 s",
            )
        finally:
            with step("PF: set link-up port 0"):
                vfd.pf_pmd.set_link(PF_PORT, up=True)
        verify(vfd.vf_link_up(VF0, want=True), "VF 0 sees the link come back up")
        verify_back(vfd.send(vfd.frames()), "after the link is back, traffic flows again")

    @pytest.mark.parametrize(
        ("setting", "dst"),
        [
            pytest.param("broadcast", "ff:ff:ff:ff:ff:ff", id="5.4.4-broadcast"),
            pytest.param("allmulti", MULTICAST_MAC, id="5.4.5-allmulti"),
            pytest.param("promisc", FOREIGN_MAC, id="5.4.6-promisc"),
        ],
    )
    def test_vf_receive_mode(self, vfd: VfDaemon, setting: str, dst: str) -> None:
        """5.4.4-5.4.6 `set vf broadcast|allmulti|promisc 0 0 on|off`.

        Steps: off, send frames to the kind of address the mode admits; on, send again.
        Verify: off: VF 0 receives none of them; on: it receives every one.
        """
        command = {
            "broadcast": vfd.pf_pmd.set_vf_broadcast,
            "allmulti": vfd.pf_pmd.set_vf_allmulti,
            "promisc": vfd.pf_pmd.set_vf_promisc,
        }[setting]
        default_on = setting == "broadcast"
        try:
            with step(f"set vf {setting} 0 0 off"):
                command(PF_PORT, 0, False)
                off = vfd.send(vfd.frames(dst=dst))
            verify_counter(off, f"vf_rx[{VF0}]", f"{setting} off: VF 0 receives none", equals=0)
            with step(f"set vf {setting} 0 0 on"):
                command(PF_PORT, 0, True)
                on = vfd.send(vfd.frames(dst=dst))
            verify_counter(
                on, f"vf_rx[{VF0}]", f"{setting} on: VF 0 receives them", at_least=len(on.sent)
            )
        finally:
            command(PF_PORT, 0, default_on)

    def test_vf_max_bandwidth(self, vfd: VfDaemon) -> None:
        """5.4.7 `set vf tx max-bandwidth 0 1 100` (Mbit/s).

        Steps: cap VF 1 at 100 Mbit/s; offer 300 Mbit/s through it; lift the cap; offer again.
        Verify: capped, the rate back is 100 Mbit/s +- 10 %; uncapped, above 1.5 x the cap.
        """
        frame = vfd.frames(1)[0]
        try:
            with step(f"5.4.7 set vf tx max-bandwidth 0 1 {MAX_BW_MBPS}"):
                vfd.pf_pmd.set_vf_tx_max_bandwidth(PF_PORT, 1, MAX_BW_MBPS)
                capped = vfd.rate_back_mbps(frame, 3 * MAX_BW_MBPS)
            verify_rate(capped, MAX_BW_MBPS, RATE_TOLERANCE, "guide: VF 1's Tx is capped")
        finally:
            vfd.pf_pmd.set_vf_tx_max_bandwidth(PF_PORT, 1, 0)
        free = vfd.rate_back_mbps(frame, 3 * MAX_BW_MBPS)
        verify(
            free > 1.5 * MAX_BW_MBPS,
            "without the cap VF 1 forwards more than 1.5 x the cap",
            f"{free:.1f} Mbit/s",
        )

    def test_vlan_tag_to_vsi(self, vfd: VfDaemon) -> None:
        """vf_daemon plan: `set vf vlan tag 0 0 on|off` (i40e).

        Steps: VF 0 in VLAN 10; tag on, send untagged and tagged 10; tag off, untagged.
        Verify: on: only tagged frames reach VF 0; off: untagged frames do again. (In 22.11
        off means untagged-only, not "all" again: later cases send untagged frames only.)
        """
        pf = vfd.pf_pmd
        try:
            pf.set_vf_vlan_filter(VLAN_A, PF_PORT, 0b01)
            with step("set vf vlan tag 0 0 on"):
                pf.set_vf_vlan_tag(PF_PORT, 0, True)
                untagged = vfd.send(vfd.frames())
                tagged = vfd.send(vfd.frames(vlan=VLAN_A))
            verify_counter(untagged, f"vf_rx[{VF0}]", "tag on: untagged frames are not received",
                           equals=0)  # fmt: skip
            verify_counter(tagged, f"vf_rx[{VF0}]", "tag on: VLAN 10 frames are received",
                           at_least=len(tagged.sent))  # fmt: skip
            with step("set vf vlan tag 0 0 off"):
                pf.set_vf_vlan_tag(PF_PORT, 0, False)
                verify_back(vfd.send(vfd.frames()), "tag off: untagged frames are received")
        finally:
            pf.set_vf_vlan_tag(PF_PORT, 0, False)
            pf.set_vf_vlan_filter(VLAN_A, PF_PORT, 0b01, on=False)

    def test_tc_min_bandwidth(self, vfd: VfDaemon) -> None:
        """5.4.8 `set vf tc tx min-bandwidth 0 1 (20,20,20,40)`.

        Steps: VF 1 capped at 100 Mbit/s, its four TCs (one per Tx queue) given 20/20/20/40 %;
        VF 1 sends flat out on every queue.
        Verify: each TC's part of what VF 1 sent is its share +- 5 points.
        """
        try:
            with step("PF: port config 0 dcb vt on 4 pfc off (4 TCs for the VFs)"):
                vfd.enable_pf_dcb(len(TC_SHARES))
            with step("5.4.7 + 5.4.8: cap VF 1, share it between its TCs"):
                vfd.pf_pmd.set_vf_tx_max_bandwidth(PF_PORT, 1, MAX_BW_MBPS)
                vfd.pf_pmd.set_vf_tc_min_bandwidth(PF_PORT, 1, TC_SHARES)
                rates = vfd.tx_queue_rates_mbps(VF1)
            verify_shares(
                rates,
                {tc: share / 100 for tc, share in enumerate(TC_SHARES)},
                SHARE_TOLERANCE,
                "guide 5.4.8: the VF's bandwidth is allocated to its TCs in these shares",
            )
        finally:
            vfd.pf_pmd.set_vf_tc_min_bandwidth(PF_PORT, 1, (25, 25, 25, 25))
            vfd.pf_pmd.set_vf_tx_max_bandwidth(PF_PORT, 1, 0)

    @pytest.mark.parametrize(
        "shares",
        [
            pytest.param((20, 20, 20, 30), id="sum-90"),
            pytest.param((20, 20, 20, 50), id="sum-110"),
        ],
    )
    def test_tc_min_bandwidth_shares_must_sum_to_100(
        self, vfd: VfDaemon, shares: tuple[int, ...]
    ) -> None:
        """5.4.8: "The allocated bandwidth should be set for all the TCs. [...] The sum of
        all the bandwidth should be 100."

        Steps: the PF in DCB with 4 TCs; `set vf tc tx min-bandwidth 0 1` with four shares
        not summing to 100; then the guide's (20,20,20,40).
        Verify: testpmd refuses the first ("invalid vf_id 1 or bandwidth": the PMD's
        -EINVAL, rte_pmd_i40e.c:1192-1196 "The summary of the TC weight should be 100",
        printed by i40e_testpmd.c:1102) and accepts the guide's, so the refusal is the sum,
        not the number of TCs (which gives the same line, rte_pmd_i40e.c:1172-1181).
        """
        vfd.enable_pf_dcb(len(TC_SHARES))
        listed = ",".join(map(str, shares))
        refusal = ""
        with step(f"5.4.8 set vf tc tx min-bandwidth 0 1 ({listed}): sum {sum(shares)}"):
            try:
                vfd.pf_pmd.set_vf_tc_min_bandwidth(PF_PORT, 1, shares)
            except TestPmdError as refused:
                refusal = refused.message
        verify(
            "bandwidth" in refusal,
            f"guide 5.4.8: the shares must sum to 100: testpmd refuses ({listed})",
            refusal or "accepted",
            expected="testpmd's refusal: invalid vf_id 1 or bandwidth",
        )
        try:
            with step("5.4.8 set vf tc tx min-bandwidth 0 1 (20,20,20,40): sum 100"):
                vfd.pf_pmd.set_vf_tc_min_bandwidth(PF_PORT, 1, TC_SHARES)
        finally:
            vfd.pf_pmd.set_vf_tc_min_bandwidth(PF_PORT, 1, (25, 25, 25, 25))

    def test_tc_max_bandwidth(self, vfd: VfDaemon) -> None:
        """5.4.9 `set vf tc tx max-bandwidth 0 1 0 50`.

        Steps: cap TC 0 of VF 1 at 50 Mbit/s; VF 1 sends flat out on every queue; cap 0;
        again.
        Verify: TC 0 (queue 0) sends 50 Mbit/s +- 10 %; another TC sends more; with 0 TC 0
        is uncapped ("If bw is 0, means disable bandwidth limitation",
        rte_pmd_i40e.c:1312-1318, rte_pmd_i40e_set_vf_tc_max_bw).
        """
        try:
            vfd.enable_pf_dcb(len(TC_SHARES))
            with step("5.4.9 set vf tc tx max-bandwidth 0 1 0 50"):
                vfd.pf_pmd.set_vf_tc_max_bandwidth(PF_PORT, 1, 0, 50)
                rates = vfd.tx_queue_rates_mbps(VF1)
            verify_rate(rates[0], 50, RATE_TOLERANCE, "guide 5.4.9: TC 0 of VF 1 is capped")
            verify(
                max(rates.values()) > 50 * (1 + RATE_TOLERANCE),
                "the other TCs are not capped",
                f"Mbit/s per TC: {rates}",
            )
        finally:
            vfd.pf_pmd.set_vf_tc_max_bandwidth(PF_PORT, 1, 0, 0)
        with step("set vf tc tx max-bandwidth 0 1 0 0 (0: no limit)"):
            free = vfd.tx_queue_rates_mbps(VF1)
        verify(
            free[0] > 50 * (1 + RATE_TOLERANCE),
            "a TC max bandwidth of 0 lifts the cap: TC 0 sends above 50 Mbit/s again",
            f"Mbit/s per TC: {free}",
        )

    def test_tc_strict_priority(self, vfd: VfDaemon) -> None:
        """5.4.10 `set tx strict-link-priority 0 0x1`, then 0: "The 0 in the TC bitmap means
        disabling the strict priority scheduling for this TC."

        Steps: VF 1 capped at 100 Mbit/s with equal TC shares; TC 0 strict priority; VF 1
        sends flat out on every queue; bitmap 0 (strict priority off); again.
        Verify: with TC 0 strict, TC 0 takes more than its equal share (> 40 %); with 0,
        every TC is back to its equal share (25 % +- 5 points).
        """
        equal = (25, 25, 25, 25)
        try:
            vfd.enable_pf_dcb(len(TC_SHARES))
            with step("5.4.10 set tx strict-link-priority 0 0x1"):
                vfd.pf_pmd.set_vf_tx_max_bandwidth(PF_PORT, 1, MAX_BW_MBPS)
                vfd.pf_pmd.set_vf_tc_min_bandwidth(PF_PORT, 1, equal)
                vfd.pf_pmd.set_tx_strict_link_priority(PF_PORT, 0x1)
                rates = vfd.tx_queue_rates_mbps(VF1)
            total = sum(rates.values())
            verify(
                total > 0 and rates[0] / total > 0.40,
                "guide 5.4.10: a strict-priority TC is served first (TC 0 > 40 %)",
                f"TC 0 got {rates[0]:.1f} of {total:.1f} Mbit/s",
            )
            with step("5.4.10 set tx strict-link-priority 0 0x0"):
                vfd.pf_pmd.set_tx_strict_link_priority(PF_PORT, 0)
                shared = vfd.tx_queue_rates_mbps(VF1)
            verify_shares(
                shared,
                {tc: share / 100 for tc, share in enumerate(equal)},
                SHARE_TOLERANCE,
                "guide 5.4.10: 0 in the TC bitmap disables strict priority: TC 0 is back to "
                "its equal share",
            )
        finally:
            vfd.pf_pmd.set_tx_strict_link_priority(PF_PORT, 0)
            vfd.pf_pmd.set_vf_tx_max_bandwidth(PF_PORT, 1, 0)
