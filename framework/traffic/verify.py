"""Send-and-verify vocabulary (in the spirit of PTF's verify_* calls).

Each verify_* call sends packets from a TG port, captures on TG ports and raises
AssertionError whose text says what was expected and what was seen: counts, which
sequence numbers were missing, duplicated, unexpected or altered, and hexdumps of the first
offending packets. check_capture() is the same judgement on a capture already taken.

Identity: packets built by framework.traffic.packets carry a marker and a sequence number,
so a received frame is matched to the packet it came from even if the DUT changed it, and
anything else carrying the marker is an extra. Packets without the marker are matched by
their exact bytes, and unrelated frames are then tolerated (they cannot be told apart
from background traffic).
"""

from __future__ import annotations

import struct
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from socket import inet_aton

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Packet
from scapy.utils import hexdump

from framework.traffic.generator import Capture, CapturedFrame, TrafficGenerator
from framework.traffic.packets import DEFAULT_MARKER, Transform, payload_seq
from framework.verify import VerifyFailed, verdict

MAX_DUMPS = 4  # hexdumps of more packets drown the message; counts say the rest


def count_matched_packets(
    capture: Capture | dict[str, list[CapturedFrame]], expected: Packet | bytes, port: str
) -> int:
    """How many frames captured on port are byte-for-byte equal to expected."""
    want = bytes(expected)
    return sum(1 for frame in capture.get(port, []) if frame.raw == want)


def ranges(numbers: Sequence[int]) -> str:
    """[1, 2, 3, 7] -> '1-3, 7': a lost burst of 500 should read as one range."""
    parts: list[str] = []
    ordered = sorted(set(numbers))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ", ".join(parts)


def _first_difference(a: bytes, b: bytes) -> int:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return min(len(a), len(b))


def _dump(title: str, raw: bytes) -> str:
    try:
        summary = Ether(raw).summary()
    except Exception:  # a malformed frame still deserves its hexdump
        summary = "(not dissectable)"
    return f"{title} ({len(raw)} bytes): {summary}\n{hexdump(raw, dump=True)}"


@dataclass
class Comparison:
    """Expected packets against frames seen on one port."""

    by_seq: bool
    seen: int
    seqs: list[int] = field(default_factory=list)  # each expected packet's, when by_seq
    missing: list[int] = field(default_factory=list)  # indexes into expected
    duplicated: dict[int, list[CapturedFrame]] = field(default_factory=dict)
    altered: list[tuple[int, CapturedFrame]] = field(default_factory=list)
    unexpected: list[CapturedFrame] = field(default_factory=list)
    matched: int = 0

    @property
    def ok(self) -> bool:
        """Whether every expected frame arrived once, unaltered, and nothing else did."""
        return not (self.missing or self.duplicated or self.altered or self.unexpected)


def compare(
    expected: Sequence[Packet | bytes],
    seen: Sequence[CapturedFrame],
    marker: bytes | None = DEFAULT_MARKER,
    strict: bool = True,
) -> Comparison:
    """Match seen frames to expected packets.

    By sequence number when every expected packet has a distinct one, else by exact
    bytes. strict: frames matching nothing are errors.
    """
    want = [bytes(p) for p in expected]
    want_set = set(want)
    seqs = [payload_seq(raw, marker) for raw in want] if marker else []
    known = [seq for seq in seqs if seq is not None]
    # By sequence number only when every expected packet has one of its own.
    by_seq = bool(want) and len(set(known)) == len(want)
    result = Comparison(by_seq=by_seq, seen=len(seen))
    if by_seq and marker:
        result.seqs = known
        index_of = {seq: i for i, seq in enumerate(known)}
        groups: dict[int, list[CapturedFrame]] = defaultdict(list)
        for frame in seen:
            seq = payload_seq(frame.raw, marker)
            i = index_of.get(seq) if seq is not None else None
            if i is None:
                result.unexpected.append(frame)
            else:
                groups[i].append(frame)
        for i, raw in enumerate(want):
            got = groups.get(i, [])
            if not got:
                result.missing.append(i)
            elif len(got) > 1:
                result.duplicated[i] = got
            elif got[0].raw != raw:
                result.altered.append((i, got[0]))
            else:
                result.matched += 1
    else:
        groups_b: dict[bytes, list[CapturedFrame]] = defaultdict(list)
        for frame in seen:
            if frame.raw in want_set:
                groups_b[frame.raw].append(frame)
            elif strict:
                result.unexpected.append(frame)
        positions: dict[bytes, list[int]] = defaultdict(list)
        for i, raw in enumerate(want):
            positions[raw].append(i)
        for raw, indexes in positions.items():
            got = groups_b.get(raw, [])
            if len(got) > len(indexes):
                result.duplicated[indexes[0]] = got
            # identical expected packets: the ones beyond what arrived are missing
            result.missing += indexes[len(got) :]
            result.matched += min(len(got), len(indexes))
        result.missing.sort()
    return result


def _describe_failure(
    title: str,
    expected: Sequence[Packet | bytes],
    comparison: Comparison,
    port: str,
    marker: bytes | None,
) -> list[str]:
    want = [bytes(p) for p in expected]

    def label(i: int) -> str:
        return f"seq {comparison.seqs[i]}" if comparison.by_seq else f"packet #{i}"

    def labels(indexes: Sequence[int]) -> str:
        if comparison.by_seq:
            return "seq " + ranges([comparison.seqs[i] for i in indexes])
        return "packet #" + ranges(indexes)

    lines = [
        f"{title}: expected {len(want)} packets on {port}, saw {comparison.seen}"
        + (f" carrying marker {marker!r}" if marker else "")
    ]
    if comparison.missing:
        lines.append(f"  missing ({len(comparison.missing)}): {labels(comparison.missing)}")
    if comparison.duplicated:
        dups = ", ".join(
            f"{label(i)} x{len(frames)}" for i, frames in sorted(comparison.duplicated.items())
        )
        lines.append(f"  duplicated ({len(comparison.duplicated)}): {dups}")
    if comparison.altered:
        idx = [i for i, _ in comparison.altered]
        lines.append(f"  altered ({len(idx)}): {labels(idx)}")
    if comparison.unexpected:
        seqs = [payload_seq(f.raw, marker) if marker else None for f in comparison.unexpected]
        known = [s for s in seqs if s is not None]
        what = f"seq {ranges(known)}" if known else ""
        if len(known) < len(seqs):
            what += (", " if what else "") + f"{len(seqs) - len(known)} without sequence number"
        lines.append(f"  unexpected ({len(seqs)}): {what}")

    dumps: list[str] = []
    for i, frame in comparison.altered:
        at = _first_difference(want[i], frame.raw)
        dumps.append(_dump(f"{label(i)} expected", want[i]))
        dumps.append(
            _dump(
                f"{label(i)} seen on {port} at {frame.time:.6f} s, first difference at byte {at}",
                frame.raw,
            )
        )
    for i in comparison.missing:
        dumps.append(_dump(f"{label(i)} expected, never seen on {port}", want[i]))
    for i, frames in sorted(comparison.duplicated.items()):
        dumps.append(_dump(f"{label(i)} seen {len(frames)} times on {port}", frames[0].raw))
    for frame in comparison.unexpected:
        seq = payload_seq(frame.raw, marker) if marker else None
        name = f"seq {seq}" if seq is not None else "frame"
        dumps.append(_dump(f"{name} unexpected on {port} at {frame.time:.6f} s", frame.raw))
    # an altered packet needs both sides, so count dump pairs as one
    limit = MAX_DUMPS + min(len(comparison.altered), MAX_DUMPS)
    if len(dumps) > limit:
        dumps = dumps[:limit] + [f"... {len(dumps) - limit} more packets not shown"]
    return lines + dumps


def check_capture(
    capture: Capture,
    rx_port: str,
    expected: Sequence[Packet | bytes],
    *,
    marker: bytes | None = DEFAULT_MARKER,
    sent: int | None = None,
    silent_ports: Sequence[str] = (),
    title: str = "check_capture",
) -> None:
    """Assert what a capture shows is exact delivery.

    rx_port saw every expected packet exactly once and unaltered and nothing else with
    the marker, the silent ports saw nothing with the marker, and the TG sent all `sent`
    packets.
    """
    # Strict (nothing else carrying the marker may arrive) when every expected packet has it.
    strict_marker = _filter_marker(expected, marker)
    problems: list[str] = []
    if sent is not None and capture.sent < sent:
        problems.append(
            f"{title}: the TG sent only {capture.sent} of {sent} packets"
            + (f" (first tx error: {capture.tx_error})" if capture.tx_error else "")
        )
    comparison = compare(
        expected, capture.frames(rx_port), strict_marker, strict=strict_marker is not None
    )
    if not comparison.ok:
        problems += _describe_failure(title, expected, comparison, rx_port, strict_marker)
    for port in silent_ports:
        frames = capture.frames(port)
        if strict_marker is not None and frames:
            seqs = [s for s in (payload_seq(f.raw, strict_marker) for f in frames) if s is not None]
            problems.append(
                f"{title}: {port} must see no test packets but saw {len(frames)}"
                + (f": seq {ranges(seqs)}" if seqs else "")
            )
            problems.append(
                _dump(f"first frame seen on {port} at {frames[0].time:.6f} s", frames[0].raw)
            )
    if problems:
        raise VerifyFailed("\n".join(problems))


def _expected_list(
    packets: Sequence[Packet], expected: Sequence[Packet] | Transform | None
) -> list[Packet]:
    if expected is None:
        return list(packets)
    if callable(expected):
        return [expected(p) for p in packets]
    return list(expected)


def _filter_marker(packets: Sequence[Packet | bytes], marker: bytes | None) -> bytes | None:
    # the agent drops frames without the marker, so only filter when every packet has it
    if marker is not None and all(marker in bytes(p) for p in packets):
        return marker
    return None


def verify_packets(
    tg: TrafficGenerator,
    packets: Sequence[Packet],
    tx_port: str,
    rx_port: str,
    expected: Sequence[Packet] | Transform | None = None,
    *,
    timeout: float = 2.0,
    marker: bytes | None = DEFAULT_MARKER,
    pps: float | None = None,
    silent_ports: Sequence[str] = (),
) -> Capture:
    """Send packets on tx_port and assert each expected one arrives once on rx_port.

    Expected is the packets themselves by default, a list, or a transform such as
    swap_macs applied to each. Each arrives exactly once with exactly its bytes, nothing
    else carrying the marker does, and silent_ports see no packet carrying it.
    """
    want = _expected_list(packets, expected)
    filt = _filter_marker(packets, marker)
    capture = tg.exchange(
        tx_port,
        packets,
        [rx_port, *silent_ports],
        expect=len(want),
        timeout=timeout,
        marker=filt,
        pps=pps,
    )
    check_capture(
        capture,
        rx_port,
        want,
        marker=filt,
        sent=len(packets),
        silent_ports=silent_ports,
        title=f"verify_packets {tx_port} -> {rx_port}",
    )
    return capture


def verify_packet(
    tg: TrafficGenerator,
    pkt: Packet,
    tx_port: str,
    rx_port: str,
    expected: Packet | Transform | None = None,
    *,
    timeout: float = 1.0,
    marker: bytes | None = DEFAULT_MARKER,
) -> Capture:
    """Send pkt on tx_port; assert expected (default pkt) arrives on rx_port exactly once."""
    want: Sequence[Packet] | Transform | None = (
        [expected] if isinstance(expected, (Packet, bytes)) else expected
    )
    want = _expected_list([pkt], want)
    filt = _filter_marker([pkt], marker)
    capture = tg.exchange(tx_port, [pkt], [rx_port], expect=1, timeout=timeout, marker=filt)
    check_capture(
        capture, rx_port, want, marker=filt, sent=1, title=f"verify_packet {tx_port} -> {rx_port}"
    )
    return capture


def verify_no_packet(
    tg: TrafficGenerator,
    pkt: Packet,
    tx_port: str,
    rx_port: str,
    *,
    timeout: float = 1.0,
    marker: bytes | None = DEFAULT_MARKER,
    require_sent: bool = True,
) -> Capture:
    """Send pkt on tx_port and assert no copy of it arrives on rx_port within timeout.

    A copy is recognised by its sequence number even if altered, else by its bytes.
    Fails too if the TG could not send it, since a packet never sent proves nothing,
    unless require_sent is False: for a test that takes a link down on purpose (on a veth
    pair whose peer just went down, sends fail with ENOBUFS until the kernel's link watch
    deactivates the device, about 1 s; after that frames are dropped silently).
    """
    filt = _filter_marker([pkt], marker)
    capture = tg.exchange(tx_port, [pkt], [rx_port], expect=None, timeout=timeout, marker=filt)
    title = f"verify_no_packet {tx_port} -> {rx_port}"
    problems = []
    if capture.sent < 1 and require_sent:
        problems.append(
            f"{title}: the TG could not send the packet ({capture.tx_error}), so its absence"
            " proves nothing"
        )
    raw = bytes(pkt)
    seq = payload_seq(raw, filt) if filt else None
    if filt and seq is not None:
        hits = [f for f in capture.frames(rx_port) if payload_seq(f.raw, filt) == seq]
        name = f"seq {seq}"
    else:
        hits = [f for f in capture.frames(rx_port) if f.raw == raw]
        name = "the packet"
    if hits:
        problems.append(
            f"{title}: {name} must not arrive on {rx_port} but was seen {len(hits)} time(s)"
        )
        problems.append(_dump(f"{name} sent", raw))
        problems.append(_dump(f"{name} seen on {rx_port} at {hits[0].time:.6f} s", hits[0].raw))
    if problems:
        raise VerifyFailed("\n".join(problems))
    return capture


@verdict
def verify_forwarded(sources: Sequence[str], what: str, *, source_mac: str | None = None) -> None:
    """A probe's frames came back through the DUT.

    `sources` are the source MACs of the frames that came back (the TG's own frames, which
    a switch may flood back, left out); with `source_mac`, every one must carry it (the
    sender the guide names: the bond's MAC).
    """
    if not sources:
        raise VerifyFailed(f"{what}; no frame came back")
    if source_mac is not None:
        wanted = source_mac.lower()
        others = [m for m in sources if m.lower() != wanted]
        if others:
            raise VerifyFailed(
                f"{what}; {len(others)} of {len(sources)} frames came back from "
                f"{sorted(set(others))}, expected all from {wanted}"
            )


@verdict
def verify_not_forwarded(sources: Sequence[str], what: str) -> None:
    """No frame of a probe came back through the DUT (`sources`: as verify_forwarded)."""
    if sources:
        raise VerifyFailed(
            f"{what}; {len(sources)} frame(s) came back, from {sorted(set(sources))}"
        )


@dataclass
class Answers:
    """Requests sent and what answered each (scapy's `answers`), from one capture."""

    capture: Capture
    port: str
    requests: list[Packet]
    answers: list[list[CapturedFrame]]  # per request, every captured frame answering it
    unfinished: int = 0  # answers whose UDP/TCP checksum was left for an offload (allowed)

    @property
    def frames(self) -> list[CapturedFrame]:
        """Every frame captured on the port, answers or not."""
        return self.capture.frames(self.port)


def unfinished_l4_checksum(pkt: Packet) -> bool:
    """Whether an IPv4 UDP/TCP checksum holds only the pseudo-header's sum.

    That is what a kernel leaves for a checksum offload (CHECKSUM_PARTIAL): the NIC, or
    here DPDK, was to finish it over the segment.
    """
    layer = UDP if UDP in pkt else TCP if TCP in pkt else None
    if layer is None or IP not in pkt:
        return False
    ip = pkt[IP]
    length = ip.len - ip.ihl * 4
    pseudo = inet_aton(ip.src) + inet_aton(ip.dst) + struct.pack("!xBH", ip.proto, length)
    total = sum(struct.unpack("!6H", pseudo))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return bool(pkt[layer].chksum == total)


def _checksums_ok(pkt: Packet, unfinished_ok: bool) -> list[str]:
    """The IPv4 header and ICMP/UDP checksums of a frame that are wrong (or missing)."""
    wrong = []
    for layer in (IP, ICMP, UDP):
        if layer not in pkt:
            continue
        seen = pkt[layer].chksum
        redo = pkt.copy()
        del redo[layer].chksum
        right = Ether(bytes(redo))[layer].chksum
        if seen != right and not (layer is UDP and unfinished_ok and unfinished_l4_checksum(pkt)):
            wrong.append(f"{layer.__name__}.chksum 0x{seen:04x} (right: 0x{right:04x})")
    return wrong


def answer_problems(
    request: Packet, answer: Packet, responder_mac: str, *, unfinished_ok: bool = False
) -> list[str]:
    """How a kernel's answer to an ARP request, ICMP echo or UDP echo differs, field by field.

    What a correct responder sends back: from its own MAC to the requester's; ARP: a
    reply (op 2) giving its MAC for the address asked for, to the asker's MAC and address;
    IPv4: addresses swapped, a valid header checksum and a live TTL; ICMP: an echo reply
    (type 0, code 0) with the request's id, sequence and payload; UDP: ports swapped, the
    request's payload, its length and a real checksum. Fields the responder chooses (the IP
    id, TTL value, DF flag) are not compared. unfinished_ok accepts a UDP checksum left
    for an offload (unfinished_l4_checksum), and nothing else wrong in it.
    """
    problems: list[str] = []

    def expect(name: str, seen: object, wanted: object) -> None:
        if str(seen).lower() != str(wanted).lower():
            problems.append(f"{name} {seen} (expected {wanted})")

    expect("Ether.src", answer[Ether].src, responder_mac)
    expect("Ether.dst", answer[Ether].dst, request[Ether].src)
    if ARP in request:
        asked, got = request[ARP], answer[ARP] if ARP in answer else None
        if got is None:
            return [*problems, f"not an ARP frame: {answer.summary()}"]
        for name, seen, wanted in (
            ("op", got.op, 2), ("hwtype", got.hwtype, asked.hwtype),
            ("ptype", got.ptype, asked.ptype), ("hwlen", got.hwlen, 6), ("plen", got.plen, 4),
            ("hwsrc", got.hwsrc, responder_mac), ("psrc", got.psrc, asked.pdst),
            ("hwdst", got.hwdst, asked.hwsrc), ("pdst", got.pdst, asked.psrc),
        ):  # fmt: skip
            expect(f"ARP.{name}", seen, wanted)
        return problems
    if IP not in answer:
        return [*problems, f"not an IPv4 frame: {answer.summary()}"]
    ip, asked_ip = answer[IP], request[IP]
    expect("IP.src", ip.src, asked_ip.dst)
    expect("IP.dst", ip.dst, asked_ip.src)
    expect("IP.proto", ip.proto, asked_ip.proto)
    if ip.ttl == 0:
        problems.append("IP.ttl 0")
    # what the IP total length covers, without the Ethernet padding of a short frame
    l4 = bytes(ip)[ip.ihl * 4 : ip.len]
    if ICMP in request:
        got, asked_icmp = answer[ICMP], request[ICMP]
        for name, seen, wanted in (
            ("type", got.type, 0), ("code", got.code, 0),
            ("id", got.id, asked_icmp.id), ("seq", got.seq, asked_icmp.seq),
        ):  # fmt: skip
            expect(f"ICMP.{name}", seen, wanted)
        expect("ICMP payload", l4[8:].hex(), bytes(asked_icmp.payload).hex())
    elif UDP in request:
        got, asked_udp = answer[UDP], request[UDP]
        expect("UDP.sport", got.sport, asked_udp.dport)
        expect("UDP.dport", got.dport, asked_udp.sport)
        expect("UDP.len", got.len, 8 + len(bytes(asked_udp.payload)))
        expect("UDP payload", l4[8 : got.len].hex(), bytes(asked_udp.payload).hex())
    return problems + _checksums_ok(answer, unfinished_ok)


def verify_answers(
    tg: TrafficGenerator,
    requests: Sequence[Packet],
    tx_port: str,
    rx_port: str,
    *,
    timeout: float = 2.0,
    pps: float | None = None,
    what: str = "answer",
    responder_mac: str | None = None,
    unfinished_ok: bool = False,
) -> Answers:
    """Send requests (ARP, ICMP echo, UDP...) on tx_port; assert each is answered once.

    An answer is a frame on rx_port that scapy says answers the request (an ARP reply for
    its address, the echo reply with its id and sequence, UDP with the ports swapped...).
    With `responder_mac`, each answer is also checked field by field (answer_problems):
    addresses, payload, lengths, checksums; unfinished_ok accepts UDP checksums left for
    an offload, counted in the result's `unfinished`. The message names each request left
    unanswered, answered more than once or answered wrongly, and what the port saw.
    """
    capture = tg.exchange(
        tx_port, requests, [rx_port], expect=len(requests), timeout=timeout, pps=pps
    )
    frames = capture.frames(rx_port)
    parsed = [(f, f.packet) for f in frames]
    found = [[f for f, p in parsed if p.answers(r)] for r in requests]
    result = Answers(capture, rx_port, list(requests), found)
    problems = []
    if capture.sent < len(requests):
        problems.append(f"the TG sent only {capture.sent} of {len(requests)} requests")
    for request, hits in zip(requests, found, strict=True):
        if len(hits) != 1:
            problems.append(f"{request.summary()}: expected 1 {what}, seen {len(hits)}")
        elif responder_mac is not None:
            answer = hits[0].packet
            wrong = answer_problems(request, answer, responder_mac, unfinished_ok=unfinished_ok)
            result.unfinished += not wrong and unfinished_l4_checksum(answer)
            if wrong:
                problems.append(f"{request.summary()}: the {what} has " + ", ".join(wrong))
    if problems:
        seen = [f"{f.time:.6f} s {p.summary()}" for f, p in parsed[: MAX_DUMPS * 2]]
        more = len(parsed) - len(seen)
        raise VerifyFailed(
            f"verify_answers {tx_port} -> {rx_port}: "
            + "; ".join(problems)
            + f"\n{rx_port} saw {len(parsed)} frame(s)"
            + (":\n  " + "\n  ".join(seen) if seen else "")
            + (f"\n  ... {more} more" if more > 0 else "")
        )
    return result
