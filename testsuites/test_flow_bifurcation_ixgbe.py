"""Guide 3.1: flow bifurcation on an Intel 82599 (Niantic) with Flow Director.

The kernel's ixgbe keeps the PF; two VFs go to DPDK; Flow Director rules send one UDP
flow to a queue of VF 0 and the reverse flow to a queue of VF 1 (the guide's
`action $queue_index_in_VFn`, computed by framework.lab.flow_filters.ixgbe_action).
Everything else, "with different hosts or different protocols", stays with the kernel.

The guide's addresses (192.0.2.2, 198.51.100.2) are documentation ranges; the suite's
frames use 198.18.60.2 and 198.18.61.2 (the benchmarking range, never routed).
"""

from __future__ import annotations

from collections.abc import Iterator

import allure
import pytest

from framework.config.model import NicFamily
from framework.dpdk.version import DpdkVersion
from framework.lab import flow_filters
from framework.lab.hosts import HostHandle
from framework.report.attach import step
from framework.scenarios.flow_bifurcation import FlowBifurcation
from framework.traffic.delivery import verify_counter, verify_received
from framework.traffic.generator import TrafficGenerator
from framework.traffic.packets import flows, tcp_frames
from framework.verify import verify

pytestmark = [
    pytest.mark.guide(3),
    pytest.mark.niantic,
    pytest.mark.sriov,
    pytest.mark.plannable,
    pytest.mark.requires("flow_bifurcation.niantic"),
    allure.parent_suite("DPDK HowTo guides"),
    allure.suite("3.1 Flow bifurcation: ixgbe Flow Director"),
]

HOST_A, HOST_B, HOST_C = "198.18.60.2", "198.18.61.2", "198.18.62.2"
QUEUE = 1  # the queue in each VF the rules name
COUNT = 32
GUIDE_RULE_VF0 = (
    "ethtool -N eth1 flow-type udp4 src-ip 192.0.2.2 dst-ip 198.51.100.2 action $queue_index_in_VF0"
)
GUIDE_RULE_VF1 = (
    "ethtool -N eth1 flow-type udp4 src-ip 198.51.100.2 dst-ip 192.0.2.2 action $queue_index_in_VF1"
)


@pytest.fixture(scope="module")
def bifurcation(
    topology,
    hosts: dict[str, HostHandle],
    traffic_generator: TrafficGenerator,
    dpdk_version: DpdkVersion,
) -> Iterator[FlowBifurcation]:
    """3.1 steps 2-6: VFs, ntuple on, VFs 0 and 1 on vfio-pci, testpmd on them."""
    with FlowBifurcation.running(
        "3.1 steps 2-6: VFs created, ntuple on, VFs bound, testpmd on VFs",
        topology,
        NicFamily.niantic,
        hosts,
        traffic_generator,
        dpdk_version,
    ) as setup:
        yield setup


@pytest.fixture
def two_rules(bifurcation: FlowBifurcation) -> Iterator[tuple[int, int]]:
    """3.1 step 3: the guide's two rules, A->B to VF 0 and B->A to VF 1, queue QUEUE."""
    dev = bifurcation.pf_dev
    with step("3.1 step 3: ethtool -N ... action $queue_index_in_VF0 / VF1"):
        to_vf0 = bifurcation.add_rule(
            flow_filters.ixgbe_udp4_rule(dev, HOST_A, HOST_B, flow_filters.ixgbe_action(QUEUE, 0)),
            GUIDE_RULE_VF0,
        )
        to_vf1 = bifurcation.add_rule(
            flow_filters.ixgbe_udp4_rule(dev, HOST_B, HOST_A, flow_filters.ixgbe_action(QUEUE, 1)),
            GUIDE_RULE_VF1,
        )
    yield to_vf0, to_vf1
    for loc in (to_vf0, to_vf1):
        if loc in bifurcation.rules:
            bifurcation.delete_rule(loc)


def _udp(setup: FlowBifurcation, src_ip: str, dst_ip: str) -> list:
    return flows(1, setup.tg_mac, setup.pf_mac, src_ip, dst_ip, packets_per_flow=COUNT)


def test_matching_flows_reach_their_vf_queue(
    bifurcation: FlowBifurcation, two_rules: tuple[int, int]
) -> None:
    """3.1: "UDP packets with the specified IP source and destination addresses will go
    through the DPDK application".

    Steps: send the A->B flow, then the B->A flow, to the PF's MAC.
    Verify: A->B arrives on VF 0 queue 1 (all of it, nowhere else), B->A on VF 1 queue 1;
    the kernel's PF does not receive them.
    """
    with step("A -> B: the rule for VF 0"):
        to_vf0, seen0 = bifurcation.send(_udp(bifurcation, HOST_A, HOST_B))
    verify_counter(to_vf0, f"queue[0,{QUEUE}]", "guide: the flow goes to VF 0's queue",
                   equals=COUNT)  # fmt: skip
    verify_counter(to_vf0, "vf_rx[1]", "VF 1 receives none of VF 0's flow", equals=0)
    # exact: the rule takes every frame of the flow, none should stay with the kernel
    verify_counter(to_vf0, "pf_rx", "the kernel does not receive the VF's flow", equals=0)
    with step("B -> A: the rule for VF 1"):
        to_vf1, _ = bifurcation.send(_udp(bifurcation, HOST_B, HOST_A))
    verify_counter(to_vf1, f"queue[1,{QUEUE}]", "guide: the reverse flow goes to VF 1's queue",
                   equals=COUNT)  # fmt: skip
    verify_counter(to_vf1, "vf_rx[0]", "VF 0 receives none of VF 1's flow", equals=0)
    verify_received(seen0, "testpmd's verbose lines show the flow on VF 0's queue 1",
                    port=0, queue=QUEUE, count=COUNT)  # fmt: skip


@pytest.mark.parametrize(
    "other",
    [
        pytest.param("other-host", id="udp-from-another-host"),
        pytest.param("tcp", id="tcp-between-the-same-hosts"),
    ],
)
def test_other_traffic_reaches_the_kernel(
    bifurcation: FlowBifurcation, two_rules: tuple[int, int], other: str
) -> None:
    """3.1: "All other traffic, with different hosts or different protocols, will go
    through the Linux networking stack".

    Steps: send UDP from a third host to B, or TCP from A to B.
    Verify: the PF's kernel netdev receives every frame; neither VF receives any.
    """
    if other == "tcp":
        frames = tcp_frames(COUNT, bifurcation.tg_mac, bifurcation.pf_mac, HOST_A, HOST_B)
    else:
        frames = _udp(bifurcation, HOST_C, HOST_B)
    delivery, _ = bifurcation.send(frames)
    verify_counter(delivery, "pf_rx", "guide: other traffic reaches the kernel",
                   at_least=COUNT)  # fmt: skip
    verify_counter(delivery, "vf_rx[0]", "no other traffic reaches VF 0", equals=0)
    verify_counter(delivery, "vf_rx[1]", "no other traffic reaches VF 1", equals=0)


def test_rules_are_listed_and_a_deleted_rule_sends_its_flow_to_the_kernel(
    bifurcation: FlowBifurcation, two_rules: tuple[int, int]
) -> None:
    """`ethtool -n` and `ethtool -N <pf> delete <loc>` (not in the guide; the natural check).

    Steps: count the rules; delete the VF 0 rule; count; send the A->B flow.
    Verify: 2 rules, then 1; the A->B flow now reaches the kernel, not VF 0.
    """
    verify(bifurcation.rule_count() == 2, "ethtool -n lists the two rules just added")
    with step("ethtool -N <pf> delete <VF 0 rule>"):
        bifurcation.delete_rule(two_rules[0])
    verify(bifurcation.rule_count() == 1, "ethtool -n lists one rule after the delete")
    delivery, _ = bifurcation.send(_udp(bifurcation, HOST_A, HOST_B))
    verify_counter(delivery, "pf_rx", "without its rule the flow reaches the kernel",
                   at_least=COUNT)  # fmt: skip
    verify_counter(delivery, "vf_rx[0]", "without its rule VF 0 receives nothing", equals=0)
