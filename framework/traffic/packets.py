"""Scapy builders for test flows.

Every frame carries a marker and a sequence number in its UDP payload, so a capture can
tell test frames from background traffic and say exactly which packet was lost,
duplicated or altered. IP and UDP lengths and checksums are computed once and frozen
into the packet: bridges with br_netfilter trim frames whose lengths disagree, and a
frozen packet keeps the same bytes through copies and transforms.

Sizes follow RFC 2544 and DTS: `size` is the frame length on the wire including the
4-byte FCS, so a 64-byte frame is 60 bytes handed to the NIC.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Packet
from scapy.utils import checksum

DEFAULT_MARKER = b"HOWTO"
# What a DUT's forwarding makes of a frame: verify_* calls and streams take one to know the
# exact bytes that must arrive.
Transform = Callable[[Packet], Packet]
FCS_LEN = 4
MIN_FRAME_SIZE = 64  # shorter frames get padded by NICs, which would change their bytes
_SEQ = struct.Struct("!I")
_LEN16 = struct.Struct("!H")


def _fill(n: int) -> bytes:
    # a counting pattern, not zeros: trimming or corruption shows in a hexdump
    return bytes(i & 0xFF for i in range(n))


@dataclass(frozen=True)
class _Template:
    """A flow's frame with sequence 0 and offsets to stamp other sequence numbers in.

    scapy takes about 1 ms to build a packet, a stamp plus a dissection about 0.1 ms.
    """

    raw: bytes
    udp_at: int
    seq_at: int
    pseudo: bytes  # the IP pseudo-header the UDP checksum covers


def _template(
    src_mac: str,
    dst_mac: str,
    src_ip: str,
    dst_ip: str,
    sport: int,
    dport: int,
    size: int,
    marker: bytes,
    vlan: int | None,
) -> _Template:
    if size < MIN_FRAME_SIZE:
        raise ValueError(f"frame size {size} is below the Ethernet minimum {MIN_FRAME_SIZE}")
    v6 = ipaddress.ip_address(src_ip).version == 6
    l3 = IPv6(src=src_ip, dst=dst_ip) if v6 else IP(src=src_ip, dst=dst_ip)
    l2 = Ether(src=src_mac, dst=dst_mac)
    if vlan is not None:
        l2 = l2 / Dot1Q(vlan=vlan)
    udp_at = len(l2 / l3)
    room = size - FCS_LEN - udp_at - 8
    tag_len = len(marker) + _SEQ.size
    if room < tag_len:
        raise ValueError(
            f"frame size {size} leaves {room} payload bytes, the marker and sequence need {tag_len}"
        )
    payload = marker + _SEQ.pack(0) + _fill(room - tag_len)
    raw = bytes(l2 / l3 / UDP(sport=sport, dport=dport, chksum=0) / payload)
    udp_len = _LEN16.pack(len(raw) - udp_at)
    if v6:
        v6_addr = socket.inet_pton
        addrs = v6_addr(socket.AF_INET6, src_ip) + v6_addr(socket.AF_INET6, dst_ip)
        pseudo = addrs + b"\0\0" + udp_len + b"\0\0\0\x11"
    else:
        pseudo = socket.inet_aton(src_ip) + socket.inet_aton(dst_ip) + b"\0\x11" + udp_len
    return _Template(raw, udp_at, udp_at + 8 + len(marker), pseudo)


def _stamp(template: _Template, seq: int) -> Packet:
    if not 0 <= seq < 2**32:
        raise ValueError(f"seq {seq} does not fit in 32 bits")
    raw = bytearray(template.raw)
    _SEQ.pack_into(raw, template.seq_at, seq)
    chksum = checksum(template.pseudo + bytes(raw[template.udp_at :]))
    _LEN16.pack_into(raw, template.udp_at + 6, chksum or 0xFFFF)  # 0 means "no checksum"
    # dissected from bytes, so lengths and checksums are explicit fields from now on
    return Ether(bytes(raw))


def udp_flow(
    src_mac: str,
    dst_mac: str,
    src_ip: str,
    dst_ip: str,
    sport: int,
    dport: int,
    *,
    seq: int,
    size: int = 128,
    marker: bytes = DEFAULT_MARKER,
    vlan: int | None = None,
) -> Packet:
    """One Ether/[Dot1Q]/IP or IPv6/UDP frame of `size` bytes (FCS included).

    Its payload is marker + 32-bit sequence number + fill.
    """
    return _stamp(
        _template(src_mac, dst_mac, src_ip, dst_ip, sport, dport, size, marker, vlan), seq
    )


# The addresses of the guides' sequenced streams through a VM or a container (guides 1, 2
# and 6), from the TG's side to the far one, in the benchmarking range.
STREAM_SRC_IP, STREAM_DST_IP = "198.18.1.1", "198.18.2.1"
# Where the sequence number sits in an untagged IPv4 frame of udp_flow (right after the
# marker), whatever its addresses: the BPF programs of the faults read it there.
STREAM_SEQ_OFFSET = bytes(
    udp_flow("02:00:00:00:00:01", "02:00:00:00:00:02", STREAM_SRC_IP, STREAM_DST_IP, 1, 2, seq=0)
).find(DEFAULT_MARKER) + len(DEFAULT_MARKER)


def flows(
    n_flows: int,
    src_mac: str,
    dst_mac: str,
    src_ip: str,
    dst_ip: str,
    *,
    packets_per_flow: int = 1,
    sport: int = 10000,
    dport: int = 20000,
    vary: Sequence[str] = ("src_ip", "sport"),
    size: int = 128,
    marker: bytes = DEFAULT_MARKER,
    first_seq: int = 0,
    vlan: int | None = None,
) -> list[Packet]:
    """Frames of n_flows distinct 5-tuples, interleaved round robin.

    Flow i adds i to each field named in `vary` (src_ip, dst_ip, sport, dport); sequence
    numbers count up from first_seq. Varying IPs matters: testpmd's default RSS hashes IP
    addresses only.
    """
    unknown = set(vary) - {"src_ip", "dst_ip", "sport", "dport"}
    if unknown:
        raise ValueError(f"cannot vary {', '.join(sorted(unknown))}")
    if n_flows < 1:
        raise ValueError("n_flows must be at least 1")
    src, dst = ipaddress.ip_address(src_ip), ipaddress.ip_address(dst_ip)
    templates = [
        _template(
            src_mac,
            dst_mac,
            str(src + i if "src_ip" in vary else src),
            str(dst + i if "dst_ip" in vary else dst),
            (sport + i if "sport" in vary else sport) & 0xFFFF,
            (dport + i if "dport" in vary else dport) & 0xFFFF,
            size,
            marker,
            vlan,
        )
        for i in range(n_flows)
    ]
    packets = []
    seq = first_seq
    for _round in range(packets_per_flow):
        for template in templates:
            packets.append(_stamp(template, seq))
            seq += 1
    return packets


def payload_seq(pkt: Packet | bytes, marker: bytes = DEFAULT_MARKER) -> int | None:
    """The sequence number following the marker in a frame, None if it has none."""
    raw = bytes(pkt)
    at = raw.find(marker)
    if at < 0 or at + len(marker) + _SEQ.size > len(raw):
        return None
    return _SEQ.unpack_from(raw, at + len(marker))[0]


def l4_checksum_ok(pkt: Packet) -> bool | None:
    """Whether a frame's TCP or UDP checksum is right (None: neither, or UDP without one).

    A sender that leaves the checksum to an offload puts only the pseudo-header sum there;
    this tells such a frame from a finished one.
    """
    for layer in (TCP, UDP):
        if layer in pkt:
            seen = pkt[layer].chksum
            if layer is UDP and seen == 0:
                return None
            redo = pkt.copy()
            del redo[layer].chksum
            return Ether(bytes(redo))[layer].chksum == seen
    return None


def with_wrong_l4_checksum(pkt: Packet) -> Ether:
    """The frame with its TCP or UDP checksum one off: a frame damaged on the way."""
    frame = Ether(bytes(pkt))  # its checksums computed
    layer = TCP if TCP in frame else UDP
    frame[layer].chksum = (frame[layer].chksum % 0xFFFF) + 1  # never 0: "no UDP checksum"
    return Ether(bytes(frame))


VXLAN_UDP_PORT = 4789  # IANA's; Linux's vxlan driver defaults to 8472 (guide 3.2's)


def vxlan_frames(
    count: int,
    *,
    outer_src: str,
    outer_dst: str,
    vni: int,
    inner_dst: str,
    inner_src: str = "02:00:00:00:0e:01",
    inner_vlan: int | None = None,
    outer_ips: tuple[str, str] = ("198.18.70.1", "198.18.70.2"),
    inner_ips: tuple[str, str] = ("198.18.71.1", "198.18.71.2"),
    udp_port: int = VXLAN_UDP_PORT,
    first_seq: int = 0,
    marker: bytes = DEFAULT_MARKER,
) -> list[Packet]:
    """VXLAN frames, guide 3.2's cloud-filter traffic.

    Outer Ether/IP/UDP `udp_port`/VXLAN, then the inner Ether[/Dot1Q]/IP/UDP whose payload
    is the marker and a sequence number. A NIC types them as a tunnel only on a UDP port
    its driver was told of (guide 3.2 step 4).
    """
    from scapy.layers.vxlan import VXLAN

    frames: list[Packet] = []
    for seq in range(first_seq, first_seq + count):
        inner = Ether(src=inner_src, dst=inner_dst)
        if inner_vlan is not None:
            inner = inner / Dot1Q(vlan=inner_vlan)
        inner = inner / IP(src=inner_ips[0], dst=inner_ips[1]) / UDP(sport=10000, dport=20000)
        frame = (
            Ether(src=outer_src, dst=outer_dst)
            / IP(src=outer_ips[0], dst=outer_ips[1])
            / UDP(sport=40000 + seq % 1000, dport=udp_port)
            / VXLAN(vni=vni)
            / inner
            / (marker + _SEQ.pack(seq) + _fill(16))
        )
        frames.append(Ether(bytes(frame)))
    return frames


def tcp_frames(
    count: int, src_mac: str, dst_mac: str, src_ip: str, dst_ip: str, *, first_seq: int = 0,
    marker: bytes = DEFAULT_MARKER,
) -> list[Packet]:  # fmt: skip
    """TCP frames between the same hosts as a UDP flow (guide 3.1: "different protocols")."""
    return [
        Ether(
            bytes(
                Ether(src=src_mac, dst=dst_mac)
                / IP(src=src_ip, dst=dst_ip)
                / TCP(sport=10000, dport=20000, flags="A")
                / (marker + _SEQ.pack(seq) + _fill(16))
            )
        )  # fmt: skip
        for seq in range(first_seq, first_seq + count)
    ]


# --- what forwarding makes of a frame (testpmd's forwarding modes) -------------------------


def unchanged(pkt: Packet) -> Packet:
    """The packet as an io forwarder (testpmd io, a bridge) delivers it: byte for byte."""
    return pkt


def swap_macs(pkt: Packet) -> Packet:
    """The packet as a MAC-swapping forwarder (testpmd macswap) returns it."""
    out = pkt.copy()
    out[Ether].src, out[Ether].dst = pkt[Ether].dst, pkt[Ether].src
    return out


def rewrite_macs(src: str, dst: str) -> Transform:
    """What testpmd mac forwarding delivers: source MAC its port's, destination the peer's."""

    def rewrite(pkt: Packet) -> Packet:
        out = pkt.copy()
        out[Ether].src, out[Ether].dst = src, dst
        return out

    rewrite.__qualname__ = f"rewrite_macs(src={src}, dst={dst})"
    return rewrite


def routed(src: str, dst: str, hops: int = 1) -> Transform:
    """What an IPv4 router makes of a frame: its own MAC to the next hop's, TTL one less.

    `hops`: routed that many times (the last hop's MACs). The IP header checksum follows
    the TTL; the UDP checksum does not cover it.
    """

    def route(pkt: Packet) -> Packet:
        out = Ether(bytes(pkt))
        out[Ether].src, out[Ether].dst = src, dst
        out[IP].ttl -= hops
        del out[IP].chksum
        return Ether(bytes(out))

    route.__qualname__ = f"routed(src={src}, dst={dst}" + (f", hops={hops})" if hops != 1 else ")")
    return route
