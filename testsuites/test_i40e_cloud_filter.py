"""Guide 3.2: flow bifurcation on an Intel X710/XL710 (Fortville): L3 VEB and cloud filters.

The kernel's i40e keeps the PF; VFs 0 and 1 go to DPDK (testpmd, rxonly, verbose), VF 2
stays with the kernel. Rules are the guide's ethtool lines with `user-def` computed by
framework.lab.flow_filters.i40e_user_def from the VF id and the VNI. As DPDK's
cloud_filter test plan does, testpmd's verbose lines show the tunnel packet type, the VNI
and the receive queue of every packet; the PF's kernel counters show what it kept.

Cloud-filter frames are VXLAN built by scapy on the guide's UDP port 8472 (step 4's vxlan0
gets Linux's default port), sent to the PF's MAC (the outer destination); the guide's
addresses are replaced by the benchmarking range 198.18.0.0/15. Each tuple's rule is also
shown frames that differ from it in exactly one field it matches (inner MAC, VNI, outer
MAC, inner VLAN), which must not reach its VF: a filter that ignored that field fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass

import allure
import pytest

from framework.config.model import NicFamily
from framework.dpdk.version import DpdkVersion
from framework.lab import flow_filters
from framework.lab.hosts import HostHandle
from framework.report.attach import step
from framework.report.outcomes import skip_lacking
from framework.scenarios.flow_bifurcation import VXLAN_PORT, FlowBifurcation
from framework.traffic.delivery import verify_counter, verify_received
from framework.traffic.generator import TrafficGenerator
from framework.traffic.packets import flows, vxlan_frames
from framework.verify import verify

pytestmark = [
    pytest.mark.guide(3),
    pytest.mark.fortville,
    pytest.mark.sriov,
    pytest.mark.plannable,
    pytest.mark.requires("flow_bifurcation.fortville"),
    allure.parent_suite("DPDK HowTo guides"),
    allure.suite("3.2 Flow bifurcation: i40e L3 VEB and cloud filters"),
]

COUNT = 16
VNI = 8  # the guide's examples
INNER_VLAN = 10
INNER_MAC = "c2:1a:e1:53:bc:57"
# One field each away from what the rules match, for the negative frames
OTHER_INNER_MAC = "c2:1a:e1:53:bc:58"
OTHER_VNI = 9
OTHER_INNER_VLAN = 11
OTHER_OUTER_MAC = "02:00:00:5a:5a:03"  # not the PF's: reaches the kernel only promiscuous
VEB_DST_IP = "198.18.63.2"  # the guide: 192.168.50.108


@pytest.fixture(scope="module")
def bifurcation(
    topology,
    hosts: dict[str, HostHandle],
    traffic_generator: TrafficGenerator,
    dpdk_version: DpdkVersion,
) -> Iterator[FlowBifurcation]:
    """3.2 steps 3-8: VFs, ntuple on, the VXLAN port, VFs 0 and 1 on vfio-pci, testpmd."""
    with FlowBifurcation.running(
        "3.2 steps 3-8: VFs, ntuple, vxlan port, VFs bound, testpmd on VFs",
        topology,
        NicFamily.fortville,
        hosts,
        traffic_generator,
        dpdk_version,
    ) as setup:
        yield setup


@dataclass(frozen=True)
class CloudTuple:
    """One of the five cloud-filter tuples of 3.2, and the guide's example of it."""

    name: str
    outer_mac: bool
    vni: bool
    inner_vlan: bool
    guide: str

    @property
    def matched(self) -> list[str]:
        """The fields the tuple's rule matches: those a negative frame changes one of."""
        fields = ["inner MAC"]
        fields += ["VNI"] if self.vni else []
        fields += ["outer MAC"] if self.outer_mac else []
        fields += ["inner VLAN"] if self.inner_vlan else []
        return fields


TUPLES = [
    CloudTuple("inner-mac", False, False, False,
               "ethtool -N <dev_name> flow-type ether dst 00:00:00:00:00:00 m ff:ff:ff:ff:ff:ff "
               "src 00:00:00:00:09:00 m 00:00:00:00:00:00 user-def 0xffffffff00000003 "
               "action 6 loc 1"),
    CloudTuple("inner-mac-vni", False, True, False,
               "ethtool -N <dev_name> flow-type ether dst 00:00:00:00:00:00 m ff:ff:ff:ff:ff:ff "
               "src 00:00:00:00:09:00 m 00:00:00:00:00:00 user-def 0x800000003 action 4 loc 4"),
    CloudTuple("outer-mac-inner-mac-vni", True, True, False,
               "ethtool -N <dev_name> flow-type ether dst 68:05:ca:24:03:8b m 00:00:00:00:00:00 "
               "src c2:1a:e1:53:bc:57 m 00:00:00:00:00:00 user-def 0x800000003 action 2 loc 2"),
    CloudTuple("inner-mac-inner-vlan-vni", False, True, True,
               "ethtool -N <dev_name> flow-type ether dst 00:00:00:00:01:00 m ff:ff:ff:ff:ff:ff "
               "src 00:00:00:00:20:00 m 00:00:00:00:00:00 vlan 10 user-def 0x800000000 "
               "action 1 loc 5"),
    CloudTuple("inner-mac-inner-vlan", False, False, True,
               "ethtool -N <dev_name> flow-type ether dst 00:00:00:00:01:00 m ff:ff:ff:ff:ff:ff "
               "src 00:00:00:00:20:00 m 00:00:00:00:00:00 vlan 10 user-def 0xffffffff00000000 "
               "action 1 loc 5"),
]  # fmt: skip


def _cloud_rule(
    setup: FlowBifurcation, spec: CloudTuple, *, vf: int, queue: int, loc: int, inner_mac: str
) -> list[str]:
    return flow_filters.i40e_cloud_rule(
        setup.pf_dev,
        inner_mac=inner_mac,
        user_def=flow_filters.i40e_user_def(vf, VNI if spec.vni else None),
        queue=queue,
        loc=loc,
        outer_mac=setup.pf_mac if spec.outer_mac else None,
        inner_vlan=INNER_VLAN if spec.inner_vlan else None,
    )


def _vxlan(setup: FlowBifurcation, spec: CloudTuple, inner_mac: str = INNER_MAC) -> list:
    return vxlan_frames(
        COUNT, outer_src=setup.tg_mac, outer_dst=setup.pf_mac, vni=VNI, inner_dst=inner_mac,
        inner_vlan=INNER_VLAN if spec.inner_vlan else None, udp_port=VXLAN_PORT,
    )  # fmt: skip


def _vxlan_but(setup: FlowBifurcation, spec: CloudTuple, field: str) -> list:
    """The frames that match spec's rule but for `field`, which takes another value."""
    return vxlan_frames(
        COUNT,
        outer_src=setup.tg_mac,
        outer_dst=OTHER_OUTER_MAC if field == "outer MAC" else setup.pf_mac,
        vni=OTHER_VNI if field == "VNI" else VNI,
        inner_dst=OTHER_INNER_MAC if field == "inner MAC" else INNER_MAC,
        inner_vlan=(OTHER_INNER_VLAN if field == "inner VLAN" else INNER_VLAN)
        if spec.inner_vlan
        else None,
        udp_port=VXLAN_PORT,
    )


def test_l3_veb_filter(bifurcation: FlowBifurcation) -> None:
    """3.2: "L3 VEB filter, for a route whose destination IP is 192.168.50.108 to VF 0's
    queue 2" (user-def 0xffffffff00000000 action 2 loc 8).

    Steps: add the rule; send UDP to that address and to another; delete the rule.
    Verify: the first arrive on VF 0 queue 2; the others reach the kernel.
    """
    rule = flow_filters.i40e_l3_veb_rule(
        bifurcation.pf_dev, VEB_DST_IP, flow_filters.i40e_user_def(0), queue=2, loc=8
    )
    loc = bifurcation.add_rule(
        rule,
        "ethtool -N <dev_name> flow-type ip4 dst-ip 192.168.50.108 "
        "user-def 0xffffffff00000000 action 2 loc 8",
    )
    try:
        frames = flows(1, bifurcation.tg_mac, bifurcation.pf_mac, "198.18.62.1", VEB_DST_IP,
                       packets_per_flow=COUNT)  # fmt: skip
        delivery, seen = bifurcation.send(frames)
        verify_received(seen, "guide: the route goes to VF 0's queue 2", port=0, queue=2,
                        count=COUNT)  # fmt: skip
        verify_counter(delivery, "pf_rx", "the kernel keeps none of it", equals=0)
        other = flows(1, bifurcation.tg_mac, bifurcation.pf_mac, "198.18.62.1", "198.18.63.3",
                      packets_per_flow=COUNT)  # fmt: skip
        elsewhere, _ = bifurcation.send(other)
        verify_counter(elsewhere, "pf_rx", "other destinations reach the kernel", at_least=COUNT)
        verify_counter(elsewhere, "vf_rx[0]", "other destinations do not reach VF 0", equals=0)
    finally:
        bifurcation.delete_rule(loc)


@pytest.mark.parametrize("spec", TUPLES, ids=[t.name for t in TUPLES])
def test_cloud_filter(bifurcation: FlowBifurcation, spec: CloudTuple) -> None:
    """3.2: a cloud filter of each of the five tuples, to VF 1's queue 3.

    Steps: add the rule (the guide's line with this VF, queue and, where the tuple has
    one, VNI 8 and the PF's MAC as outer MAC); send matching VXLAN frames; for each field
    the tuple matches, send frames that differ from the rule in that field alone (another
    inner MAC, VNI 9, another outer MAC with the PF promiscuous, inner VLAN 11); delete
    the rule.
    Verify: matching frames arrive on VF 1 queue 3, typed as a tunnel with VNI 8, and the
    kernel keeps none (the rule takes every one: none should stay); each one-field
    negative reaches the kernel, not VF 1.
    """
    rule = _cloud_rule(bifurcation, spec, vf=1, queue=3, loc=1, inner_mac=INNER_MAC)
    with step(f"3.2 {spec.name}: {' '.join(rule)}"):
        loc = bifurcation.add_rule(rule, spec.guide)
    try:
        delivery, seen = bifurcation.send(_vxlan(bifurcation, spec))
        verify_received(
            seen, f"guide: the {spec.name} filter sends the tunnel to VF 1's queue 3",
            port=1, queue=3, count=COUNT, vni=VNI, tunnel=True,
        )  # fmt: skip
        verify_counter(delivery, "pf_rx", "the kernel keeps none", equals=0)
        for field in spec.matched:
            outer = field == "outer MAC"
            with step(f"{spec.name}: frames that differ in the {field} alone"):
                with bifurcation.pf_promiscuous() if outer else nullcontext():
                    other, _ = bifurcation.send(_vxlan_but(bifurcation, spec, field))
            verify_counter(
                other, "vf_rx[1]",
                f"the {spec.name} filter matches the {field}: a frame with another "
                f"{field} does not reach VF 1", equals=0,
            )  # fmt: skip
            verify_counter(
                other, "pf_rx", f"a frame with another {field} reaches the kernel",
                at_least=COUNT,
            )  # fmt: skip
    finally:
        bifurcation.delete_rule(loc)


def test_several_rules_at_once(bifurcation: FlowBifurcation) -> None:
    """cloud_filter plan: several rules at once, each to its own VF and queue.

    Steps: inner-MAC + VNI rules for three inner MACs to (VF 0, q1), (VF 1, q2), (VF 0, q3);
    send each tunnel.
    Verify: each tunnel arrives on its own VF and queue only.
    """
    spec = TUPLES[1]  # inner MAC + VNI
    targets = [
        ("c2:1a:e1:53:bc:61", 0, 1),
        ("c2:1a:e1:53:bc:62", 1, 2),
        ("c2:1a:e1:53:bc:63", 0, 3),
    ]
    locs = [
        bifurcation.add_rule(
            _cloud_rule(bifurcation, spec, vf=vf, queue=q, loc=10 + i, inner_mac=mac), spec.guide
        )
        for i, (mac, vf, q) in enumerate(targets)
    ]
    try:
        verify(bifurcation.rule_count() == len(targets), "ethtool -n lists every rule")
        for mac, vf, queue in targets:
            _, seen = bifurcation.send(_vxlan(bifurcation, spec, mac))
            verify_received(seen, f"inner MAC {mac} goes to VF {vf} queue {queue} only",
                            port=vf, queue=queue, count=COUNT, vni=VNI)  # fmt: skip
            verify(len(seen) == COUNT, f"inner MAC {mac} reaches no other VF or queue",
                   f"{len(seen)} packets at the VFs")  # fmt: skip
    finally:
        for loc in locs:
            bifurcation.delete_rule(loc)


def test_deleted_rule_sends_the_tunnel_to_the_pf_only(bifurcation: FlowBifurcation) -> None:
    """cloud_filter plan: after a rule is deleted the frame reaches only the PF.

    Steps: add an inner-MAC + VNI rule to VF 0 queue 1; count; delete it; count; send.
    Verify: 1 rule, then 0; the tunnel reaches the kernel and no VF.
    """
    spec = TUPLES[1]
    loc = bifurcation.add_rule(
        _cloud_rule(bifurcation, spec, vf=0, queue=1, loc=20, inner_mac=INNER_MAC), spec.guide
    )
    verify(bifurcation.rule_count() == 1, "ethtool -n lists the rule")
    bifurcation.delete_rule(loc)
    verify(bifurcation.rule_count() == 0, "ethtool -n lists no rule after the delete")
    delivery, seen = bifurcation.send(_vxlan(bifurcation, spec))
    verify_counter(delivery, "pf_rx", "without its rule the tunnel reaches the PF",
                   at_least=COUNT)  # fmt: skip
    verify(not seen, "without its rule no VF receives the tunnel", f"{len(seen)} did")


def test_rule_to_the_pf_queue(bifurcation: FlowBifurcation) -> None:
    """3.2's own inner-MAC example: a VF id >= the VF count means the PF's queues.

    Steps: an inner-MAC rule with user-def's lower 32 bits = the VF count, action 6.
    Verify: the PF's kernel queue 6 (ethtool -S rx-6.packets) receives every frame.
    """
    spec = TUPLES[0]
    pf_function = bifurcation.bed.vfs  # == max_vfs: the PF
    loc = bifurcation.add_rule(
        _cloud_rule(bifurcation, spec, vf=pf_function, queue=6, loc=21, inner_mac=INNER_MAC),
        spec.guide,
    )
    try:
        before = bifurcation.pf_queue_packets(6)
        _, seen = bifurcation.send(_vxlan(bifurcation, spec))
        got = bifurcation.pf_queue_packets(6) - before
        verify(got >= COUNT, "guide: the tunnel goes to the PF's queue 6", f"rx-6 {got}")
        verify(not seen, "no VF receives the PF's tunnel", f"{len(seen)} did")
    finally:
        bifurcation.delete_rule(loc)


def test_rule_to_a_vf_left_to_the_kernel(bifurcation: FlowBifurcation) -> None:
    """cloud_filter plan: a rule whose target VF is driven by the kernel's VF driver.

    Steps: an inner-MAC + VNI rule to VF 2 (iavf) queue 0; send the tunnel.
    Verify: VF 2's kernel netdev receives every frame; the DPDK VFs none.
    """
    if bifurcation.bed.vfs < 3:
        skip_lacking("flow_bifurcation.fortville.vfs < 3: no VF is left to the kernel")
    spec = TUPLES[1]
    loc = bifurcation.add_rule(
        _cloud_rule(bifurcation, spec, vf=2, queue=0, loc=22, inner_mac=INNER_MAC), spec.guide
    )
    try:
        before = bifurcation.vf_netdev_rx_packets(2)
        _, seen = bifurcation.send(_vxlan(bifurcation, spec))
        got = bifurcation.vf_netdev_rx_packets(2) - before
        verify(got >= COUNT, "the kernel's VF 2 receives the tunnel", f"netdev rx {got}")
        verify(not seen, "the DPDK VFs receive none of VF 2's tunnel", f"{len(seen)} did")
    finally:
        bifurcation.delete_rule(loc)
