"""Bites for guide 7's checks from the wire: TSO segments, Rx checksum flags, queue_size.

Each case takes a guide 7 call of the helper as the scanner finds it and feeds the helper
what a broken DUT produces: the TG's capture of a stream a NIC did not segment (or lost a
segment of, or did not checksum), testpmd's verbose lines for frames flagged valid that
are not, a burst that ran short of descriptors with queue_size=1024. The helper must fail
with that call's own message; what a correct DUT produced (measured on the virtual lab)
must pass.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import struct

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw
from scapy.utils import checksum

from framework.dpdk.parsers import RxPacket
from framework.dpdk.virtio import RingBurst, verify_descriptors_suffice
from framework.traffic.packets import with_wrong_l4_checksum
from framework.traffic.rx_checksum import DEEMED_VALID, NOT_DEEMED_VALID, verify_rx_checksums
from framework.traffic.tcp import SentStream, verify_wire_segments, wire_stream
from framework.verify import VerifyFailed
from tests.bites.scan import Assertion
from tests.unit.test_guide_helper_bites import _call_id, _guide_calls

TAP_MAC, TG_MAC = "d2:d0:d2:0e:25:d0", "c2:f5:e9:9d:0e:42"
TAP_IP, TG_IP = "198.18.7.1", "198.18.7.2"
MSS, PORT = 1448, 5207


def _promise_and_keywords(call: Assertion) -> tuple[str, dict[str, object]]:
    """The call's promise and its keyword arguments that the module defines (constants of
    the guide); a keyword the test measures at run time is left out."""
    module = vars(importlib.import_module(f"testsuites.{call.module}"))
    node = ast.parse(call.call, mode="eval").body
    assert isinstance(node, ast.Call)
    keywords = {}
    for keyword in node.keywords:
        names = {n.id for n in ast.walk(keyword.value) if isinstance(n, ast.Name)}
        if keyword.arg and names <= set(module):
            code = compile(ast.Expression(keyword.value), call.call, "eval")
            keywords[keyword.arg] = eval(code, {"__builtins__": {}}, module)
    return call.fragments[0], keywords


# -- verify_wire_segments: the kernel's stream as the TG captures it ----------------------------

# `seq 1 50000` as the guest's busybox writes it: the stream the kernel sends.
STREAM = b"".join(b"%d\n" % i for i in range(1, 50001))
SENT = SentStream(len(STREAM), hashlib.sha256(STREAM).hexdigest())


def _segment(offset: int, payload: bytes, isn: int, flags: str = "PA") -> Ether:
    return Ether(
        bytes(
            Ether(src=TAP_MAC, dst=TG_MAC)
            / IP(src=TAP_IP, dst=TG_IP)
            / TCP(sport=40123, dport=PORT, seq=(isn + 1 + offset) % 2**32, flags=flags)
            / Raw(payload)
        )
    )


def _unfinished(frame: Ether) -> Ether:
    """The frame with only the pseudo-header sum in its TCP checksum, as a NIC leaves it
    that segments without checksumming (the veth, with its checksum offload on)."""
    out = Ether(bytes(frame))
    pseudo = (
        bytes(map(int, out[IP].src.split(".")))
        + bytes(map(int, out[IP].dst.split(".")))
        + struct.pack("!BBH", 0, 6, len(out[TCP]))
    )
    out[TCP].chksum = ~checksum(pseudo) & 0xFFFF
    return Ether(bytes(out))


def _capture(sizes: list[int], data: bytes = STREAM, isn: int = 0xFFFFF000) -> list[Ether]:
    """A SYN and data segments of `sizes` carrying `data` (the ISN wraps on the way)."""
    frames = [Ether(bytes(_segment(-1, b"", isn, "S")))]
    offset = 0
    for size in sizes:
        frames.append(_segment(offset, data[offset : offset + size], isn))
        offset += size
    assert offset == len(data), "the sizes cover the stream"
    return frames


def _mss_sizes(length: int, mss: int = MSS) -> list[int]:
    return [mss] * (length // mss) + ([length % mss] if length % mss else [])


SEGMENTED = _capture(_mss_sizes(len(STREAM)))
# The kernel's 8192-byte writes handed on whole: what the TG saw through a veth with TSO on.
WHOLE = _capture(_mss_sizes(len(STREAM), 8192))
LOST = SEGMENTED[:100] + SEGMENTED[101:]  # the 100th data segment never arrived
UNFINISHED = [SEGMENTED[0], *(_unfinished(f) for f in SEGMENTED[1:])]
# Payloads swapped between two segments of the same size: every sequence number is there.
SWAPPED = list(SEGMENTED)
SWAPPED[5], SWAPPED[6] = (
    _segment(5 * MSS, STREAM[4 * MSS : 5 * MSS], 0xFFFFF000),
    _segment(4 * MSS, STREAM[5 * MSS : 6 * MSS], 0xFFFFF000),
)


@pytest.mark.parametrize("call", _guide_calls("verify_wire_segments"), ids=_call_id)
def test_verify_wire_segments_names_a_stream_not_segmented_lost_or_altered(
    call: Assertion,
) -> None:
    """Through a wire that carries the TSO frames whole, one that lost a segment, one whose
    segments keep the checksum unfinished, one that mixed up payloads, and nothing."""
    what, keywords = _promise_and_keywords(call)
    assert keywords.get("mss") == MSS, call.call
    for frames, said in (
        (WHOLE, "36 of 36 segments carry more than the MSS (1448 bytes): 35 x 8192 B, 1 x 2174 B"),
        (LOST, f"the TG reassembled {99 * MSS} of the {len(STREAM)} bytes sent (bytes from"),
        (UNFINISHED, "200 of 200 segments arrived with a wrong IPv4 or TCP checksum"),
        (SWAPPED, "bytes reassembled in sequence order are not the bytes sent"),
        ([], "the TG captured no data segment of the stream"),
    ):
        stream = wire_stream(frames, src=TAP_IP, dport=PORT)
        with pytest.raises(VerifyFailed) as failed:
            verify_wire_segments(stream, what, mss=MSS, sent=SENT)
        text = str(failed.value)
        assert text.startswith(f"{what}; ") and said in text, text


def test_verify_wire_segments_passes_the_segments_a_cable_carried() -> None:
    stream = wire_stream(SEGMENTED, src=TAP_IP, dport=PORT)
    assert stream.syn_seen and stream.retransmitted == 0 and stream.out_of_order == 0
    verify_wire_segments(stream, "the stream", mss=MSS, sent=SENT)
    # the TG's own frames and other connections are no part of the stream
    other = _segment(0, b"x" * 2000, 7)
    other[TCP].dport = PORT + 1
    verify_wire_segments(wire_stream([other, *SEGMENTED], src=TAP_IP, dport=PORT), "x",
                         mss=MSS, sent=SENT)  # fmt: skip


def test_a_retransmission_fills_a_hole_and_is_counted() -> None:
    frames = [*LOST, SEGMENTED[100]]  # the lost segment sent again, last
    stream = wire_stream(frames, src=TAP_IP, dport=PORT)
    assert (stream.retransmitted, stream.out_of_order) == (0, 1)
    verify_wire_segments(stream, "the stream", mss=MSS, sent=SENT)
    again = wire_stream([*SEGMENTED, SEGMENTED[50]], src=TAP_IP, dport=PORT)
    assert (again.retransmitted, again.out_of_order) == (1, 0)


# -- verify_rx_checksums: what virtio_user0 flags the kernel's frames ------------------------

# The ol_flags line testpmd 22.11 printed for the kernel's datagrams on virtio_user0 (with
# GUEST_CSUM: NONE), for a datagram the kernel routed back after checking it (GOOD) and for
# one with a wrong checksum it routed back (UNKNOWN), on this machine's guest.
FLAGS = {
    state: f"RTE_MBUF_F_RX_L4_CKSUM_{state} RTE_MBUF_F_RX_IP_CKSUM_UNKNOWN "
    "RTE_MBUF_F_RX_OUTER_L4_CKSUM_UNKNOWN"
    for state in ("GOOD", "BAD", "NONE", "UNKNOWN")
}
DATAGRAM = Ether(
    bytes(
        Ether(src=TAP_MAC, dst=TG_MAC)
        / IP(src=TAP_IP, dst=TG_IP)
        / UDP(sport=51177, dport=9007)
        / Raw(b"howto-7-from-the-kernel 1\n")
    )
)


def _pseudo_sum(frame: Packet) -> Ether:
    """The datagram as the kernel leaves it to the offload: the pseudo-header sum only."""
    pseudo = (
        bytes(map(int, frame[IP].src.split(".")))
        + bytes(map(int, frame[IP].dst.split(".")))
        + struct.pack("!BBH", 0, 17, frame[UDP].len)
    )
    out = Ether(bytes(frame))
    out[UDP].chksum = ~checksum(pseudo) & 0xFFFF
    return Ether(bytes(out))


def _printed(frame: Packet, state: str) -> RxPacket:
    return RxPacket(
        port=1, queue=0, src=TAP_MAC, dst=TG_MAC, ether_type=0x0800, length=len(bytes(frame)),
        hw_ptype="L2_ETHER L3_IPV4 L4_UDP", sw_ptype="L2_ETHER L3_IPV4 L4_UDP", vni=None,
        udp_port=None, ol_flags=FLAGS[state],
    )  # fmt: skip


@pytest.mark.parametrize("call", _guide_calls("verify_rx_checksums"), ids=_call_id)
def test_verify_rx_checksums_names_a_frame_flagged_against_the_promise(call: Assertion) -> None:
    """Frames flagged with each state the call does not allow (the kernel's datagrams
    flagged UNKNOWN: GUEST_CSUM not negotiated; a wrong checksum flagged NONE), a wrong
    checksum flagged GOOD, and testpmd printing fewer frames than the TG captured."""
    what, keywords = _promise_and_keywords(call)
    allowed = keywords.get("flagged")
    assert allowed in (DEEMED_VALID, NOT_DEEMED_VALID), call.call
    unfinished, wrong = _pseudo_sum(DATAGRAM), with_wrong_l4_checksum(DATAGRAM)
    cases = [
        ([_printed(wrong, state)] * 3, [wrong] * 3, f"flagged RTE_MBUF_F_RX_L4_CKSUM_{state}")
        for state in ("GOOD", "BAD", "NONE", "UNKNOWN")
        if state not in allowed or state == "GOOD"
    ]
    cases.append(
        (
            [_printed(unfinished, "NONE")] * 2,
            [unfinished] * 3,
            "testpmd printed 2 frame(s) received, the TG captured 3",
        )
    )
    assert any("CKSUM_GOOD" in said for *_, said in cases), "GOOD on a wrong checksum"
    for received, frames, said in cases:
        with pytest.raises(VerifyFailed) as failed:
            verify_rx_checksums(received, frames, what, flagged=allowed)  # type: ignore[arg-type]  # the guide's keyword, read as an object
        text = str(failed.value)
        assert text.startswith(f"{what}; ") and said in text, text


def test_verify_rx_checksums_passes_what_the_guests_virtio_user0_flagged() -> None:
    unfinished = _pseudo_sum(DATAGRAM)
    verify_rx_checksums([_printed(unfinished, "NONE")] * 3, [unfinished] * 3, "the kernel's",
                        flagged=DEEMED_VALID)  # fmt: skip
    verify_rx_checksums([_printed(DATAGRAM, "GOOD")], [DATAGRAM], "checked", flagged=DEEMED_VALID)
    wrong = with_wrong_l4_checksum(DATAGRAM)
    verify_rx_checksums([_printed(wrong, "UNKNOWN")], [wrong], "wrong", flagged=NOT_DEEMED_VALID)
    with pytest.raises(VerifyFailed, match="the TG captured 60 B, not this frame"):
        short = Ether(bytes(DATAGRAM)[:60])
        verify_rx_checksums([_printed(unfinished, "NONE")], [short], "x", flagged=DEEMED_VALID)


# -- verify_descriptors_suffice: a burst into the kernel, two ring sizes -------------------

# Measured on the virtual lab (TCG guest, 1000 64-byte frames): the default ring let 842
# of them into the kernel, queue_size=1024 all.
DEFAULT = RingBurst(queue_size=256, sent=1000, nic_rx=1000, into_kernel=842, kernel_rx=842)
INCREASED = RingBurst(queue_size=1024, sent=1000, nic_rx=1000, into_kernel=1000, kernel_rx=1000)


@pytest.mark.parametrize("call", _guide_calls("verify_descriptors_suffice"), ids=_call_id)
def test_verify_descriptors_suffice_names_a_ring_that_ran_short(call: Assertion) -> None:
    """queue_size not applied (both runs on 256 entries), a 1024 ring still short, a
    default ring of another size, a burst too small to show anything, a kernel that did
    not receive what virtio_user sent."""
    what, keywords = _promise_and_keywords(call)
    assert keywords.get("size") == 1024, call.call
    ignored = RingBurst(queue_size=256, sent=1000, nic_rx=1000, into_kernel=512, kernel_rx=512)
    for default, increased, said in (
        (DEFAULT, ignored, "the queue_size=1024 ring has 256 entries; with queue_size=1024, "
                           "488 of 1000 frames found no descriptor"),
        (INCREASED, INCREASED, "the default ring has 1024 entries, expected 256"),
        (DEFAULT, RingBurst(1024, 200, 200, 200, 200), "reached DPDK with 200 frames"),
        (DEFAULT, RingBurst(1024, 1000, 1000, 1000, 990), "the tap received 990"),
        (RingBurst(256, 1000, 1000, 1000, 1000), INCREASED, "0 of 1000 frames found no "
                                                            "descriptor, with queue_size=1024 0"),
    ):  # fmt: skip
        with pytest.raises(VerifyFailed) as failed:
            verify_descriptors_suffice(default, increased, what, size=1024)
        text = str(failed.value)
        assert text.startswith(f"{what}; ") and said in text, text
    verify_descriptors_suffice(DEFAULT, INCREASED, what, size=1024)
