"""TCP through a DUT between kernel stacks: iperf3, and an address for the TG's kernel.

The stream engine measures frames; a kernel's TCP (segmentation, checksum offloads, flow
control) needs real sockets on both ends. The TG's data ports carry no address of their
own, so a test that wants the TG's kernel to talk gives one port an address for its
duration (`peer_address`).

What TCP segmentation offload makes of a stream is seen on the wire, not in a counter
taken before the NIC: a known byte stream is sent to a receiver on the TG (`receiver`)
while the TG captures, and `wire_stream` rebuilds it from the captured segments:
their sizes, checksums and the bytes in sequence order (`verify_wire_segments`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import posixpath
import shlex
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from scapy.layers.inet import IP, TCP
from scapy.packet import Packet

from framework.errors import FrameworkError
from framework.remote.session import Session
from framework.traffic.packets import l4_checksum_ok
from framework.verify import VerifyFailed, verdict

log = logging.getLogger("howto.traffic")

IPERF3 = "iperf3"
# Seconds a client retries a server that refuses or resets it (resetting between tests).
REFUSED_GRACE_S = 3.0
PORT = 5201


class TcpError(FrameworkError):
    """iperf3 could not run or measure."""


@dataclass(frozen=True)
class TcpResult:
    """One iperf3 run as its client reports it."""

    direction: str  # "client->server" or "server->client" (-R)
    seconds: float
    bytes_received: int
    bits_per_second: float
    retransmits: int | None
    mss: int | None  # the MSS the client asked for (-M), if any

    @property
    def gbit_s(self) -> float:
        """Received goodput in Gbit/s."""
        return self.bits_per_second / 1e9


def has_iperf3(session: Session) -> bool:
    """Whether iperf3 is on the host's PATH."""
    return session.run(["bash", "-c", f"command -v {IPERF3}"], check=False).ok


def server_command(bind: str, port: int = PORT) -> str:
    """The shell line that starts an iperf3 server in the background, bound to `bind`."""
    return f"(setsid {IPERF3} -s -B {bind} -p {port} </dev/null >/dev/null 2>&1 &)"


def run_client(
    session: Session,
    server: str,
    *,
    seconds: float = 4,
    reverse: bool = False,
    mss: int | None = None,
    port: int = PORT,
) -> TcpResult:
    """iperf3 -c `server` from `session`'s host; with reverse, the server sends.

    Raises:
        TcpError: iperf3 failed (its own error, e.g. "unable to connect to server").
    """
    argv = [IPERF3, "-c", server, "-p", str(port), "-t", f"{seconds:g}", "-J"]
    argv += ["--connect-timeout", "5000"]
    if reverse:
        argv.append("-R")
    if mss is not None:
        argv += ["-M", str(mss)]
    # The server listens again only once it has reset after the last test, on a new socket:
    # a client that comes straight after one can find nobody listening for a moment (seen in
    # a TCG guest), or be queued on the old socket as it closes and reset before its test
    # began (seen once on guide 7). Either is the server's, not the path's.
    deadline = time.monotonic() + REFUSED_GRACE_S
    while True:
        report = _iperf3_report(session, argv, seconds)
        error = str(report.get("error", ""))
        refused = "Connection refused" in error
        reset_unstarted = "Connection reset by peer" in error and not report.get("intervals")
        if not (refused or reset_unstarted) or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    if report.get("error"):
        raise TcpError(f"{session.name}: {' '.join(argv)}: {report['error']}")
    end = report["end"]
    received, sent = end["sum_received"], end["sum_sent"]
    result = TcpResult(
        direction="server->client" if reverse else "client->server",
        seconds=float(received["seconds"]),
        bytes_received=int(received["bytes"]),
        bits_per_second=float(received["bits_per_second"]),
        retransmits=sent.get("retransmits"),
        mss=mss,
    )
    log.info("[%s] iperf3 %s: %.3f Gbit/s", session.name, result.direction, result.gbit_s)
    return result


def _iperf3_report(session: Session, argv: list[str], seconds: float) -> dict[str, Any]:
    """Run the iperf3 client; its JSON report (with "error" if iperf3 failed)."""
    done = session.run(argv, check=False, timeout=seconds + 30)
    try:
        # raw_decode: a line iperf3 prints after its report (a warning) is not the report.
        report, _ = json.JSONDecoder().raw_decode(done.stdout[done.stdout.find("{") :])
    except json.JSONDecodeError as exc:
        text = " ".join((done.stderr + " " + done.stdout).split())
        raise TcpError(
            f"{session.name}: {' '.join(argv)}: no JSON report (exit {done.exit_code}; "
            f"{exc.msg} at {exc.pos}; {text[:150]} ... {text[-150:]})"
        ) from exc
    return dict(report)


@contextmanager
def peer_address(session: Session, interface: str, address: str) -> Iterator[None]:
    """`address` (CIDR) on the host's `interface` for the block; neighbours flushed after."""
    session.run(["ip", "addr", "add", address, "dev", interface])
    try:
        yield
    finally:
        session.run(["ip", "addr", "del", address, "dev", interface], check=False)
        session.run(["ip", "neigh", "flush", "dev", interface], check=False)


# -- a known byte stream, as the wire carries it -------------------------------------------


@dataclass(frozen=True)
class SentStream:
    """The bytes a sender handed its socket: how many, and their SHA-256."""

    length: int
    sha256: str


# One connection accepted, read to its end, its length and SHA-256 written to a file: the
# TG's end of a known stream (python3 is all a TG has for sure: it runs the agent).
_RECEIVER = """
import hashlib, socket, sys
address, port, out, wait = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind((address, port))
server.listen(1)
server.settimeout(wait)
conn, _ = server.accept()
conn.settimeout(wait)
digest, length = hashlib.sha256(), 0
while True:
    data = conn.recv(65536)
    if not data:
        break
    digest.update(data)
    length += len(data)
with open(out, "w") as f:
    f.write(f"{length} {digest.hexdigest()}")
"""


@dataclass
class Receiver:
    """A one-connection TCP receiver on a host; `received()` once the sender closed."""

    session: Session
    out: str
    pid: int

    def received(self, wait: float = 5.0) -> SentStream | None:
        """What the receiving socket read; None if the connection did not end within `wait` s."""
        deadline = time.monotonic() + wait
        while True:
            done = self.session.run(["cat", self.out], check=False)
            if done.ok and done.stdout.strip():
                length, sha256 = done.stdout.split()
                return SentStream(int(length), sha256)
            if time.monotonic() > deadline:
                return None
            time.sleep(0.3)


@contextmanager
def receiver(
    session: Session, address: str, port: int, work_dir: str, wait: float = 60
) -> Iterator[Receiver]:
    """A receiver listening on address:port of `session`'s host, for the block.

    It gives up after `wait` s without a connection or data; it is killed and its file
    removed after the block.
    """
    out = posixpath.join(work_dir, f"tcp-receiver-{port}.out")
    argv = ["python3", "-c", _RECEIVER, address, str(port), out, f"{wait:g}"]
    started = session.run(
        ["sh", "-c", f"rm -f {shlex.quote(out)}; setsid {shlex.join(argv)} "
         "</dev/null >/dev/null 2>&1 & echo $!"]
    )  # fmt: skip
    handle = Receiver(session, out, int(started.stdout.split()[-1]))
    try:
        yield handle
    finally:
        # only if it still runs: its pid may have gone to another process once it ended
        session.run(
            ["sh", "-c", f"grep -qF {shlex.quote(out)} /proc/{handle.pid}/cmdline "
             f"2>/dev/null && kill {handle.pid}; rm -f {shlex.quote(out)}"],
            check=False,
        )  # fmt: skip


@dataclass(frozen=True)
class WireSegment:
    """One data-carrying TCP segment as captured: where its bytes sit in the stream."""

    offset: int  # of its first payload byte in the stream (0: the byte after the SYN)
    payload: bytes
    frame_len: int  # the Ethernet frame's length without FCS
    checksums_ok: bool  # its IPv4 header checksum and its TCP checksum are right


@dataclass(frozen=True)
class WireStream:
    """One direction of a TCP connection as captured, data segments in arrival order."""

    segments: tuple[WireSegment, ...]
    syn_seen: bool

    @property
    def sizes(self) -> list[int]:
        """Payload bytes of each data segment, in arrival order."""
        return [len(s.payload) for s in self.segments]

    def reassembled(self) -> tuple[bytes, int | None]:
        """The stream in sequence order from its first byte, and where its first hole is.

        The hole is None when there is none. Bytes seen twice (a retransmission) count once.
        """
        data = bytearray()
        for segment in sorted(self.segments, key=lambda s: s.offset):
            if segment.offset > len(data):
                return bytes(data), len(data)
            data += segment.payload[len(data) - segment.offset :]
        return bytes(data), None

    @property
    def retransmitted(self) -> int:
        """Segments whose every byte had arrived before (sent again by the sender)."""
        return len(self.segments) - len(self._first_arrivals())

    @property
    def out_of_order(self) -> int:
        """Segments that arrived ahead of bytes still missing before them."""
        ahead, end = 0, 0
        for segment in self._first_arrivals():
            if segment.offset > end:
                ahead += 1
            end = max(end, segment.offset + len(segment.payload))
        return ahead

    def _first_arrivals(self) -> list[WireSegment]:
        covered: list[tuple[int, int]] = []  # disjoint [start, end) spans seen, sorted
        first = []
        for segment in self.segments:
            start, end = segment.offset, segment.offset + len(segment.payload)
            if not any(a <= start and end <= b for a, b in covered):
                first.append(segment)
            merged = []
            for a, b in covered:
                if b < start or end < a:
                    merged.append((a, b))
                else:
                    start, end = min(a, start), max(b, end)
            covered = sorted([*merged, (start, end)])
        return first


def _ip_checksum_ok(packet: Packet) -> bool:
    redo = packet[IP].copy()
    del redo.chksum
    return IP(bytes(redo)).chksum == packet[IP].chksum


def wire_stream(packets: Iterable[Packet], *, src: str, dport: int) -> WireStream:
    """The segments from `src` to TCP port `dport` among `packets` (a capture, in order).

    Offsets count from the sender's SYN when it was captured, else from the first data
    segment's sequence number.
    """
    ours = [
        p for p in packets if IP in p and TCP in p and p[IP].src == src and p[TCP].dport == dport
    ]
    syn = next((p for p in ours if p[TCP].flags.S), None)
    data = [p for p in ours if len(p[TCP].payload)]
    if syn is not None:
        base = (syn[TCP].seq + 1) % 2**32
    elif data:
        base = data[0][TCP].seq
    else:
        base = 0
    segments = tuple(
        WireSegment(
            offset=(p[TCP].seq - base) % 2**32,
            payload=bytes(p[TCP].payload),
            frame_len=len(bytes(p)),
            checksums_ok=_ip_checksum_ok(p) and bool(l4_checksum_ok(p)),
        )
        for p in data
    )
    return WireStream(segments, syn_seen=syn is not None)


def size_histogram(sizes: list[int]) -> str:
    """Sizes as "<count> x <size> B", the largest first."""
    counts: dict[int, int] = {}
    for size in sizes:
        counts[size] = counts.get(size, 0) + 1
    return ", ".join(f"{n} x {size} B" for size, n in sorted(counts.items(), reverse=True))


@verdict
def verify_wire_segments(stream: WireStream, promise: str, *, mss: int, sent: SentStream) -> None:
    """The stream went out segmented to the MSS, whole and in order.

    Every segment carries at most `mss` payload bytes, with right IPv4 and TCP checksums,
    and the segments in sequence order are exactly the bytes the sender handed its socket.
    """
    if not stream.segments:
        raise VerifyFailed(
            f"{promise}; the TG captured no data segment of the stream",
            expected=f"{sent.length} bytes in segments of at most {mss} bytes",
        )
    problems = []
    over = [s for s in stream.sizes if s > mss]
    if over:
        problems.append(
            f"{len(over)} of {len(stream.segments)} segments carry more than the MSS "
            f"({mss} bytes): {size_histogram(over)}, up to {max(over)} bytes"
        )
    bad = [s for s in stream.segments if not s.checksums_ok]
    if bad:
        problems.append(
            f"{len(bad)} of {len(stream.segments)} segments arrived with a wrong IPv4 or TCP "
            f"checksum (first at stream byte {bad[0].offset})"
        )
    data, hole = stream.reassembled()
    if hole is not None or len(data) != sent.length:
        problems.append(
            f"the TG reassembled {len(data)} of the {sent.length} bytes sent"
            + (f" (bytes from {hole} on missing)" if hole is not None else "")
        )
    elif hashlib.sha256(data).hexdigest() != sent.sha256:
        problems.append(
            f"the {len(data)} bytes reassembled in sequence order are not the bytes sent "
            f"(SHA-256 {hashlib.sha256(data).hexdigest()[:16]}..., sent {sent.sha256[:16]}...)"
        )
    if problems:
        raise VerifyFailed(
            f"{promise}; {'; '.join(problems)}",
            expected=f"{sent.length} bytes in segments of at most {mss} bytes, checksums right",
            seen=f"{len(stream.segments)} segments: {size_histogram(stream.sizes)}",
        )
