"""Bites for guide checks that live in a verification helper judging captured data.

Each case takes a verify_* call of a guide module as the scanner finds it (its label: the
`what` it promises) and feeds the helper what a broken DUT produces, as the TG would have
captured it; the helper must fail with that call's own message. No traffic: the TG's
side is a capture handed back as TrafficGenerator.exchange returns it.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Packet, Raw

from framework.traffic.checks import verify_frames_intact
from framework.traffic.generator import Capture, CapturedFrame
from framework.traffic.packets import swap_macs, udp_flow
from framework.traffic.stream import AlteredFrame, synthetic
from framework.traffic.verify import verify_answers, verify_packets
from tests.bites.scan import scan

GUIDE_CALLS = [a for s in scan().values() for a in s.assertions if a.kind == "verify"]


def _calls(helper: str) -> dict[str, dict[str, object]]:
    """Every `helper(...)` call of the guide modules: its first string argument (the
    promise it checks) -> the constant keyword arguments it passes (of its first call)."""
    calls: dict[str, dict[str, object]] = {}
    for a in GUIDE_CALLS:
        if a.key.startswith(f"{helper}("):
            calls.setdefault(a.fragments[0], dict(a.keywords))
    return dict(sorted(calls.items()))


def _labels(helper: str) -> list[str]:
    return list(_calls(helper))


class CapturedBy:
    """The TG's side of one exchange: hands back what a broken DUT sent, records the call."""

    def __init__(self, answer: dict[str, list[bytes]]) -> None:
        self.answer = answer
        self.sent: list[Packet] = []

    def exchange(self, tx_port: str, packets: Sequence[Packet], ports: list[str], **_) -> Capture:
        self.sent = list(packets)
        frames = {
            port: [CapturedFrame(raw, 0.001 * i) for i, raw in enumerate(self.answer.get(port, []))]
            for port in ports
        }
        return Capture(frames, sent=len(packets))


# -- verify_frames_intact: guides 1 and 2, every stream ---------------------------------------


def _stream_with_one_altered_and_one_reordered():
    """What a DUT that flips byte 62 of seq 3 and delivers seq 6 before seq 5 leaves."""
    expected = bytes(range(64))
    seen = bytearray(expected)
    seen[62] ^= 0x01
    return synthetic(
        [0, 1, 2, 3, 4, 6, 5, 7],
        [0.001 * i for i in range(8)],
        sent=8,
        pps=1000,
        altered=1,
        altered_frames=[AlteredFrame("eth1", 3, 62, bytes(seen), expected)],
    )


@pytest.mark.parametrize("what", _labels("verify_frames_intact"))
def test_verify_frames_intact_names_an_altered_and_a_reordered_frame(what: str) -> None:
    """Called as the guide module calls it (in_order=False: order is judged elsewhere)."""
    keywords = _calls("verify_frames_intact")[what]
    with pytest.raises(AssertionError) as failed:
        verify_frames_intact(_stream_with_one_altered_and_one_reordered(), what, **keywords)  # type: ignore[arg-type]
    text = str(failed.value)
    assert text.startswith(f"{what}: every frame arrives whole"), text
    assert "1 altered: seq 3 on eth1 differs at byte 62 (expected 0x3e, seen 0x3f" in text, text
    if keywords.get("in_order", True):
        assert "1 reordered: seq 5" in text, text


# -- verify_answers: guide 7, the kernel's answers through DPDK --------------------------------

TG_MAC, TAP_MAC = "02:00:00:00:07:01", "02:00:00:00:07:02"
TG_IP, TAP_IP = "198.18.7.1", "198.18.7.2"
_TO_TAP = Ether(src=TG_MAC, dst=TAP_MAC) / IP(src=TG_IP, dst=TAP_IP)
# the requests the guide-7 module sends, per `what` of its verify_answers calls
REQUESTS = {
    "ARP reply": [
        Ether(src=TG_MAC, dst="ff:ff:ff:ff:ff:ff")
        / ARP(op=1, hwsrc=TG_MAC, psrc=TG_IP, pdst=TAP_IP)
    ],
    "echo reply": [_TO_TAP / ICMP(id=7, seq=i) / Raw(b"howto-7 ping %d" % i) for i in range(4)],
    "UDP echo": [
        _TO_TAP / UDP(sport=40000 + i, dport=7) / Raw(b"howto-7 udp %d" % i) for i in range(4)
    ],
}


def _linux_answer(request: Packet) -> bytes:
    """What the kernel behind the tap sends back (its own IP id and TTL), padded to 60."""
    request = Ether(bytes(request))
    if ARP in request:
        reply = Ether(src=TAP_MAC, dst=TG_MAC) / ARP(
            op=2, hwsrc=TAP_MAC, psrc=TAP_IP, hwdst=TG_MAC, pdst=TG_IP
        )
    elif ICMP in request:
        reply = (
            Ether(src=TAP_MAC, dst=TG_MAC) / IP(src=TAP_IP, dst=TG_IP, ttl=64, id=4242)
            / ICMP(type=0, id=request[ICMP].id, seq=request[ICMP].seq) / request[Raw]
        )  # fmt: skip
    else:
        reply = (
            Ether(src=TAP_MAC, dst=TG_MAC) / IP(src=TAP_IP, dst=TG_IP, ttl=64, id=4242)
            / UDP(sport=request[UDP].dport, dport=request[UDP].sport) / request[Raw]
        )  # fmt: skip
    return bytes(reply).ljust(60, b"\0")


def test_every_guide_answer_kind_has_requests() -> None:
    assert set(_labels("verify_answers")) <= set(REQUESTS), (
        f"a guide module checks answers this file cannot bite yet: "
        f"{sorted(set(_labels('verify_answers')) - set(REQUESTS))}"
    )


@pytest.mark.parametrize("what", _labels("verify_answers"))
def test_verify_answers_names_a_lost_answer(what: str) -> None:
    """The path loses the first answer (the kernel answered; DPDK did not forward it)."""
    requests = REQUESTS[what]
    answers = [_linux_answer(r) for r in requests[1:]]
    tg = CapturedBy({"eth1": answers})
    with pytest.raises(AssertionError) as failed:
        verify_answers(tg, requests, "eth1", "eth1", what=what, responder_mac=TAP_MAC)  # type: ignore[arg-type]
    text = str(failed.value)
    assert text.startswith("verify_answers eth1 -> eth1: "), text
    assert f": expected 1 {what}, seen 0" in text, text
    assert f"eth1 saw {len(answers)} frame(s)" in text, text


@pytest.mark.parametrize("what", _labels("verify_answers"))
def test_verify_answers_names_an_answer_damaged_on_the_way(what: str) -> None:
    """The path delivers the last answer with its source MAC's last bit flipped."""
    requests = REQUESTS[what]
    answers = [_linux_answer(r) for r in requests]
    damaged = bytearray(answers[-1])
    damaged[11] ^= 0x01
    answers[-1] = bytes(damaged)
    tg = CapturedBy({"eth1": answers})
    with pytest.raises(AssertionError) as failed:
        verify_answers(tg, requests, "eth1", "eth1", what=what, responder_mac=TAP_MAC)  # type: ignore[arg-type]
    text = str(failed.value)
    assert f": the {what} has Ether.src 02:00:00:00:07:03 (expected {TAP_MAC})" in text, text


# -- verify_packets: guide 4's end-to-end check before measuring -------------------------------


def test_verify_packets_names_frames_not_swapped_and_frames_sent_back() -> None:
    """A guest forwarding io instead of macswap, and a host echoing frames to their port."""
    frames = [
        udp_flow("02:00:00:00:04:01", "02:00:00:00:04:02", "198.18.4.1", "198.18.5.1", 1000,
                 2000, seq=i, size=64)
        for i in range(32)
    ]  # fmt: skip
    unswapped = [bytes(f) for f in frames]
    tg = CapturedBy({"tg1": unswapped, "tg0": unswapped[:1]})
    with pytest.raises(AssertionError) as failed:
        verify_packets(tg, frames, "tg0", "tg1", swap_macs, silent_ports=["tg0"])  # type: ignore[arg-type]
    text = str(failed.value)
    assert text.startswith("verify_packets tg0 -> tg1: expected 32 packets on tg1, saw 32"), text
    assert "  altered (32): seq 0-31" in text, text
    assert "verify_packets tg0 -> tg1: tg0 must see no test packets but saw 1: seq 0" in text, text
