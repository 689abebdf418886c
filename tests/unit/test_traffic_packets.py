"""Packet builders and verification messages, on real scapy packets (no traffic)."""

from __future__ import annotations

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether

from framework.traffic.generator import Capture, CapturedFrame
from framework.traffic.packets import DEFAULT_MARKER, flows, payload_seq, swap_macs, udp_flow
from framework.traffic.verify import check_capture, count_matched_packets

MAC_A, MAC_B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"
IP_A, IP_B = "198.19.200.1", "198.19.200.2"


def flow(seq: int, size: int = 128) -> Ether:
    return udp_flow(MAC_A, MAC_B, IP_A, IP_B, 1000, 2000, seq=seq, size=size)


@pytest.mark.parametrize("size", [64, 128, 1518])
def test_ipv4_lengths_and_checksums_are_correct(size: int) -> None:
    pkt = flow(7, size)
    raw = bytes(pkt)
    assert len(raw) == size - 4  # size counts the FCS
    again = Ether(raw)
    assert again[IP].len == len(raw) - 14
    assert again[UDP].len == len(raw) - 14 - 20
    # recompute checksums from scratch and compare with what the builder froze in
    fresh = Ether(raw)
    del fresh[IP].chksum, fresh[UDP].chksum
    assert bytes(fresh) == raw


def test_ipv6_and_vlan_lengths() -> None:
    pkt = udp_flow(MAC_A, MAC_B, "2001:db8::1", "2001:db8::2", 1, 2, seq=1, size=100, vlan=42)
    raw = bytes(pkt)
    assert len(raw) == 96
    assert pkt[Dot1Q].vlan == 42
    assert pkt[IPv6].plen == len(raw) - 18 - 40 == pkt[UDP].len


@pytest.mark.parametrize(
    ("src", "dst", "vlan"),
    [(IP_A, IP_B, None), (IP_A, IP_B, 7), ("2001:db8::1", "2001:db8::2", None)],
)
def test_stamped_checksums_equal_scapy_computed(src: str, dst: str, vlan: int | None) -> None:
    # flows() patches the sequence into a template; scapy must agree with every checksum
    for pkt in flows(3, MAC_A, MAC_B, src, dst, packets_per_flow=40, vlan=vlan, size=101):
        fresh = Ether(bytes(pkt))
        del fresh[UDP].chksum
        assert bytes(fresh) == bytes(pkt), payload_seq(pkt)


def test_seq_roundtrip_through_bytes() -> None:
    for seq in (0, 1, 65535, 2**32 - 1):
        pkt = flow(seq)
        assert payload_seq(pkt) == seq
        assert payload_seq(bytes(pkt)) == seq
    assert payload_seq(Ether(dst=MAC_B) / IP(dst=IP_B) / UDP() / b"no marker here") is None
    assert payload_seq(flow(5), marker=b"OTHER") is None


def test_builder_rejects_impossible_sizes() -> None:
    with pytest.raises(ValueError, match="below the Ethernet minimum"):
        flow(1, size=60)
    with pytest.raises(ValueError, match="marker and sequence need"):
        udp_flow(MAC_A, MAC_B, IP_A, IP_B, 1, 2, seq=1, size=64, marker=b"M" * 30)
    with pytest.raises(ValueError, match="32 bits"):
        flow(2**32)


def test_flows_give_distinct_tuples_and_sequences() -> None:
    pkts = flows(4, MAC_A, MAC_B, IP_A, IP_B, packets_per_flow=3, first_seq=100)
    assert [payload_seq(p) for p in pkts] == list(range(100, 112))
    tuples = {(p[IP].src, p[IP].dst, p[UDP].sport, p[UDP].dport) for p in pkts}
    assert len(tuples) == 4
    assert pkts[0][IP].src == IP_A and pkts[1][IP].src == "198.19.200.2"
    assert (pkts[0][IP].src, pkts[0][UDP].sport) == (pkts[4][IP].src, pkts[4][UDP].sport)


def test_swap_macs() -> None:
    pkt = flow(3)
    swapped = swap_macs(pkt)
    assert (swapped.src, swapped.dst) == (MAC_B, MAC_A)
    assert bytes(swapped)[12:] == bytes(pkt)[12:]
    assert (pkt.src, pkt.dst) == (MAC_A, MAC_B)  # the original is untouched


def capture_of(port: str, frames: list[bytes], sent: int) -> Capture:
    return Capture(
        {port: [CapturedFrame(raw, 0.001 * i) for i, raw in enumerate(frames)]}, sent=sent
    )


def test_check_capture_passes_on_exact_delivery() -> None:
    pkts = [flow(i) for i in range(5)]
    capture = capture_of("b", [bytes(p) for p in reversed(pkts)], sent=5)
    check_capture(capture, "b", pkts, sent=5)  # order does not matter
    assert count_matched_packets(capture, pkts[2], "b") == 1
    assert count_matched_packets(capture, flow(9), "b") == 0


def test_failure_message_names_missing_duplicated_unexpected_and_altered() -> None:
    pkts = [flow(i) for i in range(10)]
    altered = flow(7).copy()
    altered[IP].ttl = 63
    altered[IP].chksum = None
    seen = [bytes(p) for i, p in enumerate(pkts) if i not in (3, 4, 5, 7)]
    seen += [bytes(pkts[5]), bytes(pkts[5]), bytes(altered), bytes(flow(99))]
    capture = capture_of("b", seen, sent=10)
    with pytest.raises(AssertionError) as failure:
        check_capture(capture, "b", pkts, sent=10, title="verify_packets a -> b")
    text = str(failure.value)
    print(text)
    assert text.startswith(
        "verify_packets a -> b: expected 10 packets on b, saw 10"
        f" carrying marker {DEFAULT_MARKER!r}\n"
    )
    assert "  missing (2): seq 3-4\n" in text
    assert "  duplicated (1): seq 5 x2\n" in text
    assert "  altered (1): seq 7\n" in text
    assert "  unexpected (1): seq 99\n" in text
    # the altered packet is shown on both sides, with where the bytes first differ (IP TTL)
    assert "seq 7 expected (124 bytes): Ether / IP / UDP" in text
    assert "seq 7 seen on b at 0.008000 s, first difference at byte 22 (124 bytes)" in text
    assert "0000  02 00 00 00 00 0B 02 00 00 00 00 0A 08 00 45 00" in text


def test_failure_message_for_swapped_macs_and_silent_port() -> None:
    pkts = [flow(i) for i in range(3)]
    capture = capture_of("b", [bytes(p) for p in pkts], sent=2)
    capture["c"] = [CapturedFrame(bytes(pkts[1]), 0.5)]
    with pytest.raises(AssertionError) as failure:
        check_capture(capture, "b", [swap_macs(p) for p in pkts], sent=3, silent_ports=["c"])
    text = str(failure.value)
    assert "the TG sent only 2 of 3 packets" in text
    assert "altered (3): seq 0-2" in text
    assert "first difference at byte 5" in text  # last byte of the dst MAC
    assert "c must see no test packets but saw 1: seq 1" in text


def test_packets_without_marker_are_matched_by_bytes() -> None:
    plain = [Ether(dst=MAC_B) / IP(dst=IP_B) / UDP(dport=d) / (b"x" * 30) for d in (1, 2, 2)]
    capture = capture_of("b", [bytes(plain[0]), bytes(plain[1]), b"\x00" * 60], sent=3)
    with pytest.raises(AssertionError) as failure:
        check_capture(capture, "b", plain, sent=3)
    text = str(failure.value)
    # one of the two identical packets is missing; the background frame is tolerated
    assert "missing (1): packet #2" in text
    assert "unexpected" not in text


def test_l4_checksum_ok_tells_finished_from_unfinished() -> None:
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.l2 import Ether

    from framework.traffic.packets import l4_checksum_ok

    done = Ether(
        bytes(Ether() / IP(src="198.18.7.1", dst="198.18.7.2") / UDP(sport=1, dport=2) / b"x")
    )
    assert l4_checksum_ok(done) is True
    unfinished = done.copy()
    unfinished[UDP].chksum = 0x1234
    assert l4_checksum_ok(Ether(bytes(unfinished))) is False
    no_checksum = done.copy()
    no_checksum[UDP].chksum = 0
    assert l4_checksum_ok(Ether(bytes(no_checksum))) is None
    tcp = Ether(bytes(Ether() / IP() / TCP(flags="S")))
    assert l4_checksum_ok(tcp) is True
    assert l4_checksum_ok(Ether(bytes(Ether() / IP() / b"raw"))) is None
