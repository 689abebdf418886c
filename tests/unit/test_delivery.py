"""Guides 3 and 5's verdicts on captures built with scapy: each passes on what a correct
DUT delivers and fails, saying expected and seen, on what a broken one does."""

from __future__ import annotations

import pytest
from scapy.layers.inet import UDP
from scapy.layers.l2 import Dot1Q, Ether

from framework import plan
from framework.dpdk.parsers import RxPacket
from framework.traffic.delivery import (
    Delivery,
    rate_mbps,
    verify_back,
    verify_counter,
    verify_none_back,
    verify_rate,
    verify_received,
    verify_shares,
    verify_source,
    verify_vlan,
    vlan_ids,
)
from framework.traffic.generator import CapturedFrame
from framework.traffic.packets import flows, vxlan_frames
from framework.verify import VerifyFailed, verify

TG, VF0, VF1 = "02:00:00:00:0a:01", "02:00:00:00:0b:00", "02:00:00:00:0b:01"


def _sent(count: int = 8, **kw) -> list:
    return flows(1, TG, VF0, "198.18.50.1", "198.18.50.2", packets_per_flow=count, **kw)


def _forwarded(frames: list, *, src: str = VF1, vlan: int | None = None) -> list[CapturedFrame]:
    """What VF 1 sends back to the TG: mac forwarding, optionally with a tag put on/left."""
    out = []
    for frame in frames:
        pkt = Ether(bytes(frame))
        pkt.src, pkt.dst = src, TG
        if pkt.haslayer(Dot1Q):
            inner = pkt[Dot1Q].payload
            pkt = Ether(src=pkt.src, dst=pkt.dst, type=pkt[Dot1Q].type) / inner
        if vlan is not None:
            pkt = Ether(src=pkt.src, dst=pkt.dst) / Dot1Q(vlan=vlan, type=pkt.type) / pkt.payload
        out.append(CapturedFrame(bytes(pkt), 0.0))
    return out


def test_every_frame_back_passes_and_a_missing_one_is_named() -> None:
    sent = _sent()
    verify_back(Delivery(sent, _forwarded(sent)), "all back")
    with pytest.raises(
        AssertionError, match=r"all back\n  expected: 8 of 8 .*\n  seen: 6; missing seq 3, 5"
    ):
        verify_back(
            Delivery(sent, [f for i, f in enumerate(_forwarded(sent)) if i not in (3, 5)]),
            "all back",
        )


def test_none_back_fails_on_a_single_frame_and_ignores_stale_sequence_numbers() -> None:
    sent = _sent()
    verify_none_back(Delivery(sent, []), "dropped")
    stale = _forwarded(_sent(first_seq=100))  # another case's frames released late
    verify_none_back(Delivery(sent, stale), "dropped")
    with pytest.raises(
        AssertionError, match=r"dropped\n  expected: no frame back at the TG\n  seen: 1 back: seq 2"
    ):
        verify_none_back(Delivery(sent, _forwarded(sent[2:3])), "dropped")


def test_vlan_verdict_tells_tagged_from_untagged() -> None:
    sent = _sent()
    tagged = Delivery(sent, _forwarded(sent, vlan=10))
    verify_vlan(tagged, 10, "insert 10")
    assert vlan_ids(tagged.at_tg) == [10] * 8
    with pytest.raises(
        AssertionError, match=r"expected: every frame back untagged\n  seen: 8 x VLAN 10"
    ):
        verify_vlan(tagged, None, "insert 0 disables the insertion")
    untagged = Delivery(sent, _forwarded(_sent(vlan=10)))  # the tag stripped on the way
    verify_vlan(untagged, None, "stripped")
    with pytest.raises(AssertionError, match=r"seen: no frame back"):
        verify_vlan(Delivery(sent, []), 10, "insert 10")


def test_source_verdict_catches_a_spoofed_source() -> None:
    sent = _sent()
    verify_source(Delivery(sent, _forwarded(sent)), VF1, "from VF 1")
    spoofed = _forwarded(sent, src="02:00:00:5a:5a:01")
    with pytest.raises(
        AssertionError, match=r"expected: source 02:00:00:00:0b:01\n  seen: 02:00:00:5a:5a:01"
    ):
        verify_source(Delivery(sent, spoofed), VF1, "from VF 1")


def test_counters_by_name() -> None:
    delivery = Delivery(_sent(), [], pf_rx=3, vf_rx={0: 8}, queues={(1, 3): 8})
    verify_counter(delivery, "vf_rx[0]", "VF 0", at_least=8)
    verify_counter(delivery, "queue[1,3]", "VF 1 queue 3", equals=8)
    verify_counter(delivery, "vf_rx[1]", "VF 1 none", equals=0)
    with pytest.raises(AssertionError, match=r"expected: pf_rx <= 0\n  seen: pf_rx = 3"):
        verify_counter(delivery, "pf_rx", "the kernel none", at_most=0)
    with pytest.raises(ValueError, match=r"no counter 'vf\[0\]'"):
        verify_counter(delivery, "vf[0]", "x", equals=0)


def test_rates_and_shares() -> None:
    assert rate_mbps(10_000, 125, 1.0) == 10.0
    verify_rate(10.4, 10, 0.05, "limited")
    with pytest.raises(
        AssertionError, match=r"expected: 10 Mbit/s \+- 5% \(9.5..10.5\)\n  seen: 12.0"
    ):
        verify_rate(12.0, 10, 0.05, "limited")
    shares = {0: 0.2, 1: 0.2, 2: 0.2, 3: 0.4}
    verify_shares({0: 20.5, 1: 19.0, 2: 20.0, 3: 40.5}, shares, 0.05, "TC shares")
    with pytest.raises(AssertionError, match=r"seen: TC0 25.0% .*TC3 25.0%"):
        verify_shares({0: 25, 1: 25, 2: 25, 3: 25}, shares, 0.05, "TC shares")


def _rx(port: int, queue: int, vni: int | None, tunnel: bool = True) -> RxPacket:
    hw = "L2_ETHER L3_IPV4_EXT_UNKNOWN TUNNEL_GRENAT INNER_L2_ETHER" if tunnel else None
    return RxPacket(port, queue, TG, VF0, 0x0800, 120, hw, None, vni, 4789 if vni else None)


def test_received_verdict_on_verbose_lines_of_vxlan_frames() -> None:
    frames = vxlan_frames(4, outer_src=TG, outer_dst=VF0, vni=8, inner_dst="c2:1a:e1:53:bc:57",
                          inner_vlan=10)  # fmt: skip
    inner = frames[0]["VXLAN"].payload
    assert (frames[0]["VXLAN"].vni, inner.dst, inner[Dot1Q].vlan) == (8, "c2:1a:e1:53:bc:57", 10)
    good = [_rx(1, 3, 8) for _ in frames]
    verify_received(good, "to VF 1 q3", port=1, queue=3, count=4, vni=8, tunnel=True)
    with pytest.raises(
        AssertionError, match=r"seen: 3 on port 1 queue 3; others on \(port, queue\) \[\(0, 0\)\]"
    ):
        verify_received([*good[:3], _rx(0, 0, 8)], "to VF 1 q3", port=1, queue=3, count=4)
    with pytest.raises(AssertionError, match=r"VNI \[9\]"):
        verify_received([_rx(1, 3, 9)], "vni", port=1, queue=3, count=1, vni=8)
    with pytest.raises(AssertionError, match=r"hw ptype \['\(none\)'\]"):
        verify_received([_rx(1, 3, None, tunnel=False)], "t", port=1, queue=3, count=1, tunnel=True)


def test_vxlan_frames_on_the_guides_port_are_vxlan_with_each_field_as_asked() -> None:
    # Guide 3.2's vxlan0 is on Linux's default port 8472; a negative frame of a cloud filter
    # changes one field: each must land in the header a filter matches.
    frames = vxlan_frames(2, outer_src=TG, outer_dst="02:00:00:5a:5a:03", vni=9,
                          inner_dst="c2:1a:e1:53:bc:58", inner_vlan=11, udp_port=8472)  # fmt: skip
    frame = frames[0]
    assert frame[UDP].dport == 8472 and frame.haslayer("VXLAN")
    inner = frame["VXLAN"].payload
    assert (frame.dst, frame["VXLAN"].vni) == ("02:00:00:5a:5a:03", 9)
    assert (inner.dst, inner[Dot1Q].vlan) == ("c2:1a:e1:53:bc:58", 11)
    assert vxlan_frames(1, outer_src=TG, outer_dst=VF0, vni=8, inner_dst=VF0)[0][UDP].dport == 4789


def test_a_plan_records_the_promise_instead_of_judging() -> None:
    recording = plan.Plan()
    with recording.recording_test("t"):
        verify_back(Delivery(_sent(), []), "guide: all back")
        verify(False, "guide: the MAC changes")
    assert recording.lines["t"] == ["[verify] guide: all back", "[verify] guide: the MAC changes"]
    with pytest.raises(VerifyFailed, match="the MAC changes"):
        verify(False, "guide: the MAC changes")
    with pytest.raises(VerifyFailed, match="all back"):
        verify_back(Delivery(_sent(), []), "guide: all back")
