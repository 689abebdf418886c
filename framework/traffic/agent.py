#!/usr/bin/env python3
"""Traffic agent: runs on the traffic generator host (TG) with nothing but python3 (3.7+).

The controller builds frames with scapy and ships them here as hex; this script only sends
and captures raw Ethernet frames with AF_PACKET sockets, so a lab TG needs no scapy.

Protocol: one JSON request on stdin, one JSON result on stdout.

  {"op": "exchange", "tx": "eth1", "frames": ["ffff...", ...], "capture": ["eth2"],
   "expect": 10, "timeout": 2.0, "idle": 0.2, "marker": "484f57544f", "pps": null}
  -> {"ok": true, "sent": 10, "tx_errors": 0, "tx_error": null, "send_duration": 0.0001,
      "ports": {"eth2": {"frames": [{"hex": "...", "t": 0.00012}], "ignored": 3,
                         "down": false}}}

  {"op": "stream", "tx": "eth1", "template": "ffff...", "rx": ["eth2"], "marker": "484f57544f",
   "pps": 5000, "duration": 2.0, "count": null, "linger": 0.3, "ignore_src": "02:..",
   "stamp_at": null, "ready_file": "/tmp/x.ready", "stop_file": "/tmp/x.stop",
   "tx_path": "auto", "expect": ["ffff..."]}
  -> {"ok": true, "sent": 10000, "tx_errors": 0, "tx_path": "mmsg", "t0_wall_ns": ...,
      "ports": {"eth2": {"n": 10000, "seq": "<b64 zlib u32[]>", "tx": "<.. i64[]>",
                         "altered": 0, ...}}}
  (see stream() for the full description)

  {"op": "interfaces", "ports": ["eth1"]}   (ports optional: all interfaces)
  -> {"ok": true, "interfaces": {"eth1": {"mac": "02:..", "up": true, "mtu": 1500}}}

A port is an interface name, or "<netns>:<ifname>" for an interface inside a named network
namespace (/run/netns/<netns>) or a netns path; Linux forbids ':' in interface names, so the
split is unambiguous. That lets one agent reach ports spread over several namespaces.

Errors: {"ok": false, "error": "<one line>"} and exit status 1.
"""

from __future__ import annotations

import array
import base64
import ctypes
import errno
import fcntl
import json
import math
import mmap
import os
import select
import signal
import socket
import struct
import sys
import time
import zlib

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_AUXDATA = 8
PACKET_OUTGOING = 4
SO_TIMESTAMPNS = 35  # the socket module does not export it; value on x86/arm/generic
SO_RCVBUFFORCE = 33
SIOCGIFHWADDR = 0x8927
SIOCGIFFLAGS = 0x8913
SIOCGIFMTU = 0x8921
IFF_UP = 0x1
CLONE_NEWNET = 0x40000000
TP_STATUS_VLAN_VALID = 1 << 4
TP_STATUS_VLAN_TPID_VALID = 1 << 6
AUXDATA = struct.Struct("IIIHHHH")  # struct tpacket_auxdata
TIMESPEC = struct.Struct("qq")
TIMESPEC32 = struct.Struct("ii")
RCVBUF = 64 * 1024 * 1024  # room for a whole burst captured while we are still sending
MAX_FRAME = 65536
RETRIES = 100  # times 0.2 ms: how long one frame waits for a full device queue


class AgentError(Exception):
    """A request the agent cannot carry out; answered as one line, {"ok": false}."""


def _split_port(port):
    if ":" in port:
        netns, ifname = port.rsplit(":", 1)
        return netns, ifname
    return None, port


def _netns_path(netns):
    return netns if netns.startswith("/") else os.path.join("/run/netns", netns)


_libc_handle = None


def _libc():
    global _libc_handle
    if _libc_handle is None:
        _libc_handle = ctypes.CDLL(None, use_errno=True)
    return _libc_handle


def _setns(fd):
    if _libc().setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise AgentError("setns failed: " + os.strerror(err))


def _open_socket(port, proto):
    """A packet socket bound to port; a socket keeps the netns it was created in."""
    netns, ifname = _split_port(port)
    own = None
    try:
        if netns is not None:
            try:
                target = os.open(_netns_path(netns), os.O_RDONLY)
            except OSError as exc:
                raise AgentError(
                    f"port {port}: network namespace {netns}: {exc.strerror}"
                ) from None
            own = os.open("/proc/self/ns/net", os.O_RDONLY)
            try:
                _setns(target)
            finally:
                os.close(target)
        try:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(proto))
        except PermissionError:
            raise AgentError(
                "raw sockets need root (CAP_NET_RAW) on the traffic generator"
            ) from None
    finally:
        if own is not None:
            _setns(own)
            os.close(own)
    try:
        sock.bind((ifname, proto))
    except OSError as exc:
        sock.close()
        raise AgentError(f"port {port}: cannot bind: {exc.strerror or exc}") from None
    return sock


def _open_capture(port):
    sock = _open_socket(port, ETH_P_ALL)
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
    # The kernel strips VLAN tags into metadata before packet taps see the frame; auxdata
    # gives the tag back so VLAN insert/strip/filter checks see what was on the wire.
    sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    # Kernel receive timestamps keep arrival times exact even when we read frames late.
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.setblocking(False)
    return sock


def _raise_unless_down(exc):
    """Re-raise a capture socket's error unless it is ENETDOWN.

    The kernel reports a port that is (or went) down once, as ENETDOWN on the socket; an
    absent frame is then the honest result, not a failure of the agent.
    """
    if exc.errno != errno.ENETDOWN:
        raise exc


def _flush(sock):
    """Drop every frame queued on a capture socket; return whether its port was down."""
    down = False
    while True:
        try:
            sock.recv(MAX_FRAME)
        except (BlockingIOError, InterruptedError):
            return down
        except OSError as exc:
            _raise_unless_down(exc)
            down = True


def _ancillary(anc, data):
    """(kernel receive time in wall-clock ns, the frame as it was on the wire).

    The kernel takes a VLAN tag off into metadata before packet sockets see the frame: it
    is put back where it was, so the frame is compared as it arrived.
    """
    stamp = None
    for level, kind, value in anc:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            spec = TIMESPEC if len(value) >= TIMESPEC.size else TIMESPEC32
            sec, nsec = spec.unpack_from(value)
            stamp = sec * 1_000_000_000 + nsec
        elif level == SOL_PACKET and kind == PACKET_AUXDATA and len(value) >= AUXDATA.size:
            status, _l, _s, _m, _n, tci, tpid = AUXDATA.unpack_from(value)
            if status & TP_STATUS_VLAN_VALID:
                if not status & TP_STATUS_VLAN_TPID_VALID:
                    tpid = 0x8100
                data = data[:12] + struct.pack("!HH", tpid, tci) + data[12:]
    return (time.time_ns() if stamp is None else stamp), data


class Capturer:
    """Reads frames from one capture socket, keeping those that carry the marker."""

    ANC = socket.CMSG_SPACE(AUXDATA.size) + socket.CMSG_SPACE(TIMESPEC.size)

    def __init__(self, port, marker):
        self.port = port
        self.marker = marker
        self.sock = _open_capture(port)
        self.frames = []
        self.ignored = 0
        self.down = False
        self.t0 = None  # wall clock of the first send; frames read before it are flushed

    def flush(self):
        """Drop everything queued so far: stale frames must not count for this send."""
        if _flush(self.sock):
            self.down = True

    def drain(self):
        """Read every queued frame without blocking; return how many were kept."""
        kept = 0
        recvmsg = self.sock.recvmsg
        while True:
            try:
                data, anc, _flags, addr = recvmsg(MAX_FRAME, self.ANC)
            except (BlockingIOError, InterruptedError):
                return kept
            except OSError as exc:
                _raise_unless_down(exc)
                self.down = True
                continue
            if addr[2] == PACKET_OUTGOING:
                continue  # our own transmissions (or the host's) are not received traffic
            stamp_ns, data = _ancillary(anc, data)
            if self.marker is not None and self.marker not in data:
                self.ignored += 1
                continue
            stamp = stamp_ns / 1e9
            self.frames.append({"hex": data.hex(), "t": round(stamp - self.t0, 9)})
            kept += 1

    def close(self):
        """Close the capture socket."""
        self.sock.close()


def _send_all(tx, frames, pps, capturers):
    """Send frames on tx, optionally paced; return (sent, errors, first_error, duration)."""
    sent = errors = 0
    first_error = None
    send = tx.send
    socks = [c.sock for c in capturers]
    by_fd = {c.sock.fileno(): c for c in capturers}
    retries = RETRIES
    start = time.perf_counter()
    interval = 1.0 / pps if pps else 0.0
    for i, frame in enumerate(frames):
        if interval:
            due = start + i * interval
            while True:
                left = due - time.perf_counter()
                if left <= 0:
                    break
                # wait for the next slot while reading what arrives, so long paced
                # streams never overflow the receive buffer
                if not socks:
                    time.sleep(left)
                    continue
                for sock in select.select(socks, [], [], left)[0]:
                    by_fd[sock.fileno()].drain()
        elif capturers and i and i % 4096 == 0:
            for c in capturers:
                c.drain()
        for attempt in range(retries):
            try:
                send(frame)
                sent += 1
                retries = RETRIES
                break
            except OSError as exc:
                # a full device queue is back-pressure, not loss: wait for it briefly.
                # A device that drops everything (veth whose peer is down) answers ENOBUFS
                # forever, so after one exhausted wait later frames get a single try.
                if exc.errno in (errno.ENOBUFS, errno.EAGAIN) and attempt < retries - 1:
                    time.sleep(0.0002)
                    continue
                errors += 1
                retries = 1
                if first_error is None:
                    name = errno.errorcode.get(exc.errno or 0, "error")
                    first_error = f"frame {i}: {name} {exc.strerror or exc}"
                    if exc.errno == errno.ENOBUFS:
                        first_error += " (the tx device dropped it: no carrier, or queue full)"
                break
    return sent, errors, first_error, time.perf_counter() - start


def exchange(req):
    """Send frames on one port while capturing on others; see the module docstring."""
    tx_port = req["tx"]
    frames = [bytes.fromhex(h) for h in req.get("frames", [])]
    capture = list(req.get("capture", []))
    expect = req.get("expect")
    timeout = float(req.get("timeout", 1.0))
    idle = float(req.get("idle", 0.2))
    pps = req.get("pps")
    marker = bytes.fromhex(req["marker"]) if req.get("marker") else None

    capturers = []
    tx = None
    try:
        # capture sockets exist before the first frame leaves, so nothing is missed
        for port in capture:
            capturers.append(Capturer(port, marker))
        tx = _open_socket(tx_port, 0)  # protocol 0: this socket sends, never receives
        for c in capturers:
            c.flush()
        t0 = time.time()
        for c in capturers:
            c.t0 = t0
        sent, errors, first_error, duration = _send_all(tx, frames, pps, capturers)

        deadline = time.monotonic() + timeout
        reached_at = None
        socks = [c.sock for c in capturers]
        by_fd = {c.sock.fileno(): c for c in capturers}
        for c in capturers:
            c.drain()
        while capturers:
            now = time.monotonic()
            total = sum(len(c.frames) for c in capturers)
            if expect is not None and total >= expect and reached_at is None:
                reached_at = now  # keep listening a little for extras and duplicates
            end = deadline if reached_at is None else min(deadline, reached_at + idle)
            if now >= end:
                break
            for sock in select.select(socks, [], [], end - now)[0]:
                by_fd[sock.fileno()].drain()
        return {
            "ok": True,
            "sent": sent,
            "tx_errors": errors,
            "tx_error": first_error,
            "send_duration": duration,
            "ports": {
                c.port: {"frames": c.frames, "ignored": c.ignored, "down": c.down}
                for c in capturers
            },
        }
    finally:
        for c in capturers:
            c.close()
        if tx is not None:
            tx.close()


def _ifreq(sock, request, ifname):
    return fcntl.ioctl(sock.fileno(), request, struct.pack("256s", ifname.encode()))


def _describe(port):
    _netns, ifname = _split_port(port)
    sock = _open_socket(port, 0)
    try:
        mac = _ifreq(sock, SIOCGIFHWADDR, ifname)[18:24]
        flags = struct.unpack_from("H", _ifreq(sock, SIOCGIFFLAGS, ifname), 16)[0]
        mtu = struct.unpack_from("i", _ifreq(sock, SIOCGIFMTU, ifname), 16)[0]
    finally:
        sock.close()
    return {"mac": ":".join(f"{b:02x}" for b in mac), "up": bool(flags & IFF_UP), "mtu": mtu}


def interfaces(req):
    """MAC address, up flag and MTU of the requested ports (default: all interfaces)."""
    ports = req.get("ports")
    if ports is None:
        ports = [name for _index, name in socket.if_nameindex()]
    return {"ok": True, "interfaces": {port: _describe(port) for port in ports}}


# --- sequenced streams ---------------------------------------------------------------------
#
# One template frame is sent over and over; each copy gets a stamp (STAMP: sequence number,
# send time, balancing word) written right after the marker. A forked child process
# receives while the parent sends, so the two run on separate cores instead of sharing one
# interpreter lock; it checks every frame it receives whole against the frame expected.
#
# Clocks: kernel receive timestamps (SO_TIMESTAMPNS) are CLOCK_REALTIME. Pacing runs on
# CLOCK_MONOTONIC (immune to clock steps); a send timestamp is monotonic ns since t0, the
# (time.time_ns(), time.monotonic_ns()) pair read at stream start. Receive times in the
# answer are absolute wall-clock ns, send times ns since t0 ("tx_since_t0"); the controller
# subtracts t0_wall_ns, the wall clock at stream start, from the first.

# seq (u32), send time in ns since the stream's t0 (48 bits, as 16 + 32), and a word that
# makes the stamp's one's-complement sum zero: every copy of the template then carries the
# template's own UDP checksum, real and valid, without a per-frame checksum computation.
# The controller imports STAMP from here.
STAMP = struct.Struct("!IHIH")
MAX_STREAM_SECONDS = 3600.0  # hard cap: no request may keep a TG busy longer than this
MAX_ALTERED = 100_000  # altered frames listed (seq, offset) at most; all are counted
MAX_ALTERED_EXAMPLES = 4  # altered frames returned whole, beside the one expected
TX_PATHS = ("auto", "mmsg", "ring", "send")  # "auto" is mmsg, or send without sendmmsg
STREAM_BATCH = 256  # frames sent back to back at most before the loop looks at the clock
STOP_POLL_NS = 10_000_000  # how often the stop file is looked for
# Closer than this to the next deadline, spin; further, sleep until SLEEP_EARLY_NS before it.
# Sleeping keeps a slow stream off the CPU (QEMU needs the cores during a migration); a
# late wake-up only delays frames, the absolute schedule keeps the rate.
SPIN_NS = 200_000
SLEEP_EARLY_NS = 100_000
ETH_VLAN_TYPES = (0x8100, 0x88A8, 0x9100)
ANNOUNCE_TYPES = (b"\x08\x06", b"\x80\x35")  # ARP, RARP
_stop_requested = False


def _on_signal(_signum, _frame):
    global _stop_requested
    _stop_requested = True


def _udp_offset(frame):
    """(udp offset, is IPv6) of an Ether/[VLAN...]/IP/UDP frame, (None, False) otherwise."""
    at = 12
    etype = struct.unpack_from("!H", frame, at)[0]
    while etype in ETH_VLAN_TYPES and len(frame) >= at + 6:
        at += 4
        etype = struct.unpack_from("!H", frame, at)[0]
    at += 2
    if etype == 0x0800 and len(frame) >= at + 20 and frame[at + 9] == 17:
        return at + (frame[at] & 0x0F) * 4, False
    if etype == 0x86DD and len(frame) >= at + 40 and frame[at + 6] == 17:
        return at + 40, True
    return None, False


def stamp_fields(seq, rel_ns):
    """The STAMP fields for frame `seq` sent `rel_ns` after t0: the last one balances them.

    A 16-bit one's-complement sum is its operand modulo 0xFFFF (2**16 = 1 modulo it), so
    the stamp's words add up to seq + rel_ns + balance, zero modulo 0xFFFF; a zero sum is
    a zero sum whether the stamp starts at an even or odd offset of the UDP segment (the
    byte-swapped sum is 256 times it). The senders inline this for speed.
    """
    return seq, rel_ns >> 32, rel_ns & 0xFFFFFFFF, -(seq + rel_ns) % 0xFFFF


def stamp_intact(seq, hi, lo, balance):
    """Whether a received stamp's words still add up to zero (see stamp_fields)."""
    return (seq + (hi << 32) + lo + balance) % 0xFFFF == 0


def _fold(total):
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _udp_checksum(frame, udp_at, v6):
    """The UDP checksum of the segment at udp_at, with the IP pseudo-header (never 0)."""
    ip_at = udp_at - 40 if v6 else _ip_at(frame)
    seg = bytes(frame[udp_at:])
    if v6:
        pseudo = bytes(frame[ip_at + 8 : ip_at + 40]) + struct.pack("!IxxxB", len(seg), 17)
    else:
        pseudo = bytes(frame[ip_at + 12 : ip_at + 20]) + struct.pack("!xBH", 17, len(seg))
    data = pseudo + seg[:6] + b"\0\0" + seg[8:]
    if len(data) % 2:
        data += b"\0"
    total = _fold(sum(struct.unpack(f"!{len(data) // 2}H", data)))
    return (~total & 0xFFFF) or 0xFFFF


def _ip_at(frame):
    at = 12
    while struct.unpack_from("!H", frame, at)[0] in ETH_VLAN_TYPES:
        at += 4
    return at + 2


def prepare_frame(frame, stamp_at):
    """A stream frame as every copy carries it but for the stamp: stamp zeroed, checksum real.

    The UDP checksum (IPv4 and IPv6) is computed over the zeroed stamp; the balanced
    stamps of stamp_fields keep it valid for every copy. Used for the template the sender
    sends and for every frame the receiver expects, so the two agree byte for byte.
    """
    frame = bytearray(frame)
    frame[stamp_at : stamp_at + STAMP.size] = bytes(STAMP.size)
    udp_at, v6 = _udp_offset(frame)
    if udp_at is not None and stamp_at >= udp_at + 8:
        struct.pack_into("!H", frame, udp_at + 6, _udp_checksum(frame, udp_at, v6))
    return frame


def first_difference(seen, expected):
    """The first byte offset at which two frames differ, or -1 if they are equal.

    A frame that is a prefix of the other differs at its end.
    """
    for i, (a, b) in enumerate(zip(seen, expected, strict=False)):
        if a != b:
            return i
    return -1 if len(seen) == len(expected) else min(len(seen), len(expected))


class _StreamReceiver:
    """Runs in the forked child: reads every rx socket and checks every marked frame whole.

    A frame is one of the stream's when it carries the marker where an expected frame has
    it (or anywhere, as a last resort). It is then compared byte for byte with the expected
    frame of that marker position, but for the stamp, whose words must still add up to zero
    (stamp_intact): a damaged stamp is a damaged frame too. Each frame is kept as
    (seq, tx, rx) when its stamp is intact; a frame that differs anywhere is also counted as
    altered, with its sequence number and the first differing byte offset.
    """

    def __init__(self, ports, socks, marker, expect, ignore_src):
        self.ports, self.socks = ports, socks
        self.marker, self.mlen = marker, len(marker)
        # marker position -> [(stamp offset, expected bytes before the stamp, after it, length)]
        self.expect: dict[int, list[tuple[int, bytes, bytes, int, bytes]]] = {}
        for stamp_at, frame in expect:
            self.expect.setdefault(stamp_at - len(marker), []).append(
                (stamp_at, frame[:stamp_at], frame[stamp_at + STAMP.size :], len(frame), frame)
            )
        self.positions = sorted(self.expect)
        self.ignore_src = ignore_src
        # room for a frame longer than expected, so a DUT that appends bytes is seen to
        self.bufsize = max(len(frame) for _at, frame in expect) + 256
        self.anc = socket.CMSG_SPACE(TIMESPEC.size) + socket.CMSG_SPACE(AUXDATA.size)
        self.seq = [array.array("I") for _ in socks]
        self.tx = [array.array("q") for _ in socks]
        self.rx = [array.array("q") for _ in socks]
        self.own = [0] * len(socks)
        self.other = [0] * len(socks)
        self.down = [False] * len(socks)
        self.altered = [0] * len(socks)
        self.altered_seq = [array.array("q") for _ in socks]  # -1: the stamp was damaged
        self.altered_at = [array.array("i") for _ in socks]
        # the first altered frames: seq, first differing byte, seen and expected
        self.examples: list[list[dict[str, object]]] = [[] for _ in socks]

    def _altered(self, k, data, pos, seq, intact):
        """Record a frame that is not what was expected, with its first differing byte."""
        self.altered[k] += 1
        if len(self.altered_seq[k]) >= MAX_ALTERED:
            return
        candidates = self.expect.get(pos) or self.expect[self.positions[0]]
        best: tuple[int, bytes] | None = None
        for stamp_at, _head, _tail, _n, frame in candidates:
            if len(data) < stamp_at + STAMP.size:
                at = first_difference(data, frame)  # cut short before the stamp ends
            else:
                # the stamp as received, so only real differences show (a damaged stamp shows
                # as a difference in its balancing word's stead)
                wanted = bytearray(frame)
                wanted[stamp_at : stamp_at + STAMP.size] = data[stamp_at : stamp_at + STAMP.size]
                at = first_difference(data, wanted)
            if at < 0:  # only the stamp's balance is off
                at = stamp_at + STAMP.size - 2
            if best is None or at > best[0]:
                best = (at, frame)
        if best is None:  # every marker position has at least one expected frame
            raise AgentError("no expected frame to compare an altered frame with")
        at, frame = best
        self.altered_seq[k].append(seq if intact else -1)
        self.altered_at[k].append(at)
        if len(self.examples[k]) < MAX_ALTERED_EXAMPLES:
            self.examples[k].append(
                {
                    "seq": seq if intact else None,
                    "at": at,
                    "seen": bytes(data).hex(),
                    "expected": frame.hex(),
                }
            )

    def drain(self, k):
        """Read every frame queued on rx socket k without blocking; return how many counted."""
        sock = self.socks[k]
        recvmsg = sock.recvmsg
        seqs, txs, rxs = self.seq[k], self.tx[k], self.rx[k]
        marker, mlen, expect, positions = self.marker, self.mlen, self.expect, self.positions
        own_mac, bufsize, anc_size = self.ignore_src, self.bufsize, self.anc
        unpack, stamp_size = STAMP.unpack_from, STAMP.size
        got = 0
        while True:
            try:
                data, anc, _flags, addr = recvmsg(bufsize, anc_size)
            except (BlockingIOError, InterruptedError):
                return got
            except OSError as exc:
                _raise_unless_down(exc)
                self.down[k] = True
                continue
            if addr[2] == PACKET_OUTGOING:
                continue
            if own_mac is not None and data[6:12] == own_mac:
                self.own[k] += 1  # a flooding switch hands the TG its own frames back
                continue
            stamp, data = _ancillary(anc, data)
            if data[12:14] in ANNOUNCE_TYPES:
                # ARP/RARP (a migration's announcements) are never stream frames, whatever
                # their padding holds: DPDK 22.11's vhost RARP is 64 bytes of which only the
                # first 42 are written, the rest stale bytes of an earlier frame (seen here:
                # a stream frame's marker and stamp)
                self.other[k] += 1
                continue
            for pos in positions:
                if data[pos : pos + mlen] == marker:
                    break
            else:
                pos = data.find(marker)
                if pos < 0 or pos + mlen + stamp_size > len(data):
                    self.other[k] += 1
                    continue
            at = pos + mlen
            seq, hi, lo, balance = unpack(data, at)
            intact = (seq + (hi << 32) + lo + balance) % 0xFFFF == 0  # stamp_intact, inlined
            whole = False
            if intact:
                for _at, head, tail, size, _frame in expect.get(pos, ()):
                    if len(data) == size and data.startswith(head) and data.endswith(tail):
                        whole = True
                        break
            if not whole:
                self._altered(k, data, pos, seq, intact)
                if not intact:
                    continue  # its sequence number and send time cannot be trusted
            seqs.append(seq)
            txs.append((hi << 32) + lo)  # ns since t0
            rxs.append(stamp)
            got += 1

    def run(self, ctl, cap_deadline):
        """Receive until the parent writes to ctl (or closes it), or the hard cap passes."""
        fds = {s.fileno(): k for k, s in enumerate(self.socks)}
        watch = [*self.socks, ctl]
        while time.monotonic() < cap_deadline:
            ready = select.select(watch, [], [], 0.5)[0]
            stop = False
            for obj in ready:
                if obj is ctl:
                    stop = True
                else:
                    self.drain(fds[obj.fileno()])
            if stop:
                break
        for k in range(len(self.socks)):
            self.drain(k)

    def results(self):
        """Per-port answer: counts, and seq/tx/rx arrays zlib-compressed in base64."""

        def pack(arr):
            return base64.b64encode(zlib.compress(arr.tobytes(), 1)).decode()

        return {
            port: {
                "n": len(self.seq[k]),
                "seq": pack(self.seq[k]),
                "tx": pack(self.tx[k]),
                "rx": pack(self.rx[k]),
                "own": self.own[k],
                "other": self.other[k],
                "down": self.down[k],
                "altered": self.altered[k],
                "altered_seq": pack(self.altered_seq[k]),
                "altered_at": pack(self.altered_at[k]),
                "altered_examples": self.examples[k],
            }
            for k, port in enumerate(self.ports)
        }


def _read_all(fd, deadline):
    chunks: list[bytes] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise AgentError("the stream receiver did not hand over its results in time")
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class ReceiverProcess:
    """A stream's receiver in a forked child, so it and the sender run on two cores.

    Sharing one interpreter lock would halve both; the benchmark runs other senders against
    this very receiver.

    `start()` opens and flushes the capture sockets (frames from before the stream must
    not count) and forks; `collect()` ends receiving and returns the per-port answer.
    Use it as a context manager: leaving kills a child that is still running.
    """

    def __init__(self, ports, marker, expect, ignore_src):
        self.ports = list(ports)
        self.args = (marker, expect, ignore_src)
        self.pid: int | None = None
        # the parent's ends: stop request out, results in
        self.ctl: int | None = None
        self.res: int | None = None

    def _started(self):
        """(child pid, stop request fd, results fd) of a started receiver."""
        if self.pid is None or self.ctl is None or self.res is None:
            raise AgentError("the stream receiver was not started")
        return self.pid, self.ctl, self.res

    def start(self, deadline):
        """Fork the receiver; it gives up by itself at `deadline` (time.monotonic())."""
        socks, fds = [], []
        try:
            for port in self.ports:
                socks.append(_open_capture(port))
            down = [_flush(sock) for sock in socks]
            ctl_r, self.ctl = os.pipe()
            fds.append(ctl_r)
            self.res, res_w = os.pipe()
            fds.append(res_w)
            self.pid = os.fork()
            if self.pid == 0:
                self._child(socks, down, ctl_r, res_w, deadline)  # never returns
        finally:
            for sock in socks:  # the child owns them now
                sock.close()
            for fd in fds:
                os.close(fd)

    def _child(self, socks, down, ctl_r, res_w, deadline):
        code = 0
        try:
            _pid, ctl_w, res_r = self._started()
            os.close(ctl_w)
            os.close(res_r)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            receiver = _StreamReceiver(self.ports, socks, *self.args)
            receiver.down = down
            with os.fdopen(ctl_r, "rb", buffering=0) as ctl:
                receiver.run(ctl, deadline)
            payload = json.dumps({"ok": True, "ports": receiver.results()}).encode()
        except BaseException as exc:  # reported to the parent
            payload = json.dumps({"ok": False, "error": f"receiver: {exc!r}"}).encode()
            code = 1
        try:
            _write_all(res_w, payload)
        finally:
            os._exit(code)

    def collect(self, timeout=60.0):
        """Stop receiving; return {port: answer} (see _StreamReceiver.results)."""
        pid, ctl_w, res_r = self._started()
        os.write(ctl_w, b"x")
        received = json.loads(_read_all(res_r, time.monotonic() + timeout))
        os.waitpid(pid, 0)
        self.pid = None
        if not received.get("ok"):
            raise AgentError(received.get("error", "receiver failed"))
        return received["ports"]

    def close(self):
        """Kill a child still running and close the pipes."""
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except OSError:
                pass
            self.pid = None
        for fd in (self.ctl, self.res):
            if fd is not None:
                os.close(fd)
        self.ctl = self.res = None

    def __enter__(self):
        return self

    def __exit__(self, *_exc):
        self.close()


class _SendTx:
    """The per-frame path: one send() per frame (on request, or where libc has no sendmmsg)."""

    path = "send"

    def __init__(self, sock, frame, stamp_at, shift):
        self.sock, self.buf = sock, bytearray(frame)
        self.stamp_at, self.shift = stamp_at, shift
        self.sent = self.errors = 0
        self.first_error = None
        self.first_tx = self.last_tx = 0
        self.broken = None  # a reason once this path cannot go on (only the ring has one)

    @property
    def written(self):
        return self.sent

    def push(self, k):
        """Hand up to k frames to the kernel, stamped one by one."""
        buf, stamp_at, shift = self.buf, self.stamp_at, self.shift
        mono, send, pack_into = time.monotonic_ns, self.sock.send, STAMP.pack_into
        sent = self.sent
        for _ in range(k):
            stamp = mono()
            seq, rel = sent & 0xFFFFFFFF, stamp + shift  # stamp_fields, inlined
            pack_into(buf, stamp_at, seq, rel >> 32, rel & 0xFFFFFFFF, -(seq + rel) % 0xFFFF)
            try:
                send(buf)
            except OSError as exc:
                # ENOBUFS: device queue full or no carrier. The sequence number is kept
                # for the next slot; a short pause stops an unpaced loop from spinning.
                self._error(sent, exc)
                time.sleep(0.0001)
                break
            if not sent:
                self.first_tx = stamp
            sent += 1
            self.last_tx = stamp
        self.sent = sent

    def _error(self, seq, exc):
        self.errors += 1
        if self.first_error is None:
            name = errno.errorcode.get(exc.errno or 0, "error")
            self.first_error = f"frame {seq}: {name} {exc.strerror or exc}"

    def finish(self):
        pass

    def close(self):
        pass


class _Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_void_p),
        ("namelen", ctypes.c_uint32),
        ("iov", ctypes.c_void_p),
        ("iovlen", ctypes.c_size_t),
        ("control", ctypes.c_void_p),
        ("controllen", ctypes.c_size_t),
        ("flags", ctypes.c_int),
    ]


class _Mmsghdr(ctypes.Structure):
    _fields_ = [("hdr", _Msghdr), ("len", ctypes.c_uint)]


class _MmsgTx(_SendTx):
    """The batched send path: the frames due leave in one sendmmsg() call (libc, ctypes).

    Each frame is stamped as it is written. The fastest path measured on a veth
    (benchmarks/stream_rate.py): one system call per batch, and the kernel's plain send
    path per frame, which costs less there than building frames from a PACKET_TX_RING.
    A frame the kernel refuses ends the call; it and the ones behind it keep their
    sequence numbers for the next call, as on the per-frame path.
    """

    path = "mmsg"

    def __init__(self, sock, frame, stamp_at, shift):
        super().__init__(sock, frame, stamp_at, shift)
        sendmmsg = _libc().sendmmsg  # AttributeError: a libc without it
        sendmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
        sendmmsg.restype = ctypes.c_int
        self.sendmmsg = sendmmsg
        size = len(frame)
        self.buf = bytearray(bytes(frame) * STREAM_BATCH)  # one copy of the frame per message
        self.cbuf = (ctypes.c_char * len(self.buf)).from_buffer(self.buf)
        self.iov = (_Iovec * STREAM_BATCH)()
        self.msgs = (_Mmsghdr * STREAM_BATCH)()
        base = ctypes.addressof(self.cbuf)
        for i in range(STREAM_BATCH):
            self.iov[i].base, self.iov[i].len = base + i * size, size
            self.msgs[i].hdr.iov, self.msgs[i].hdr.iovlen = ctypes.addressof(self.iov[i]), 1
        self.msgs_at = ctypes.addressof(self.msgs)
        self.offsets = [i * size + stamp_at for i in range(STREAM_BATCH)]
        self.stamps = [0] * STREAM_BATCH

    def push(self, k):
        """Stamp up to k frames one by one, then hand them to the kernel in one call."""
        k = min(k, STREAM_BATCH)
        if k <= 0:
            return
        buf, offsets, stamps, shift = self.buf, self.offsets, self.stamps, self.shift
        mono, pack_into = time.monotonic_ns, STAMP.pack_into
        seq = self.sent
        for i in range(k):
            stamp = mono()
            num, rel = (seq + i) & 0xFFFFFFFF, stamp + shift  # stamp_fields, inlined
            pack_into(buf, offsets[i], num, rel >> 32, rel & 0xFFFFFFFF, -(num + rel) % 0xFFFF)
            stamps[i] = stamp
        n = self.sendmmsg(self.sock.fileno(), self.msgs_at, k, 0)
        if n < 0:
            err = ctypes.get_errno()
            if err not in (errno.EINTR, errno.EAGAIN):
                self._error(seq, OSError(err, os.strerror(err)))
                time.sleep(0.0001)  # as on the per-frame path: no spinning on a dead device
            return
        if n:
            if not seq:
                self.first_tx = stamps[0]
            self.last_tx = stamps[n - 1]
            self.sent = seq + n


# PACKET_TX_RING (TPACKET_V2): frames are written into slots of a ring shared with the
# kernel, and one send() hands every slot marked TP_STATUS_SEND_REQUEST to the device: the
# system call and the per-frame Python send overhead are paid once per batch. The kernel
# still builds and transmits one skb per frame; on a veth that, with the peer's receive
# path run in the same call, is most of the cost, and building frames from the ring costs
# more there than sendmmsg's copies: the ring runs only when asked for (tx_path "ring").
PACKET_VERSION = 10
PACKET_TX_RING = 13
TPACKET_V2 = 1
TP_STATUS_AVAILABLE = 0
TP_STATUS_SEND_REQUEST = 1
TP_STATUS_SENDING = 2
TP_STATUS_WRONG_FORMAT = 4
TP_STATUS_OWNER = 0x7  # the low bits say who owns a TX slot; high bits are timestamp flags
TX_DATA_AT = 32  # TPACKET_ALIGN(sizeof(struct tpacket2_hdr)): frame data offset in a slot
SO_SNDBUFFORCE = 32
SNDBUF = 16 * 1024 * 1024  # in-flight frames count against it; a small one stalls batches
RING_FRAMES = 2048  # slots wanted: several batches in flight while the kernel frees slots
RING_BLOCK = 64 * 1024
RING_BYTES = 32 * 1024 * 1024  # at most this much ring, whatever the frame size
RING_DRAIN_NS = 1_000_000_000  # at the end, wait this long for in-flight slots to be freed


class _RingTx:
    """The batched path: a PACKET_TX_RING (TPACKET_V2) on the tx socket.

    Every slot holds the template from the start, so a frame costs only its stamp and a
    status word. Slots are used strictly in ring order, which is the
    order the kernel sends them in: its head is always slot `sent % nslots`. A frame the
    device refused stays SEND_REQUEST at the head (the kernel retries it on the next send),
    so the frames the kernel took are always sequence numbers 0..sent-1.
    """

    path = "ring"

    def __init__(self, sock, frame, stamp_at, shift):
        self.sock, self.stamp_at, self.shift = sock, stamp_at, shift
        self.sent = self.written = self.errors = 0
        self.first_error = None
        self.first_tx = self.last_tx = 0
        self.broken = None
        self.mm: mmap.mmap | None = None
        self.words: memoryview | None = None  # the ring as u32 words, for the status words
        try:
            self._setup(frame)
        except BaseException:
            self.close()
            raise

    def _ring(self):
        """(mapping, its u32 view) of a ring not yet closed."""
        if self.mm is None or self.words is None:
            raise AgentError("the TX ring was used after it was closed")
        return self.mm, self.words

    def _setup(self, frame):
        sock = self.sock
        size = len(frame)
        slot = (TX_DATA_AT + size + 15) & ~15  # TPACKET_ALIGNMENT
        block = max(RING_BLOCK, 1 << (slot - 1).bit_length())  # pages, at least one slot
        per_block = block // slot
        blocks = max(1, min(-(-RING_FRAMES // per_block), RING_BYTES // block))
        nslots = per_block * blocks
        sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V2)
        sock.setsockopt(
            SOL_PACKET, PACKET_TX_RING, struct.pack("IIII", block, blocks, slot, nslots)
        )
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, SNDBUF)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SNDBUF)
        mm = self.mm = mmap.mmap(
            sock.fileno(), block * blocks, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE
        )
        # the kernel finds slot i at block i // per_block, offset (i % per_block) * slot
        self.heads = [(i // per_block) * block + (i % per_block) * slot for i in range(nslots)]
        self.nslots = nslots
        for head in self.heads:
            mm[head + TX_DATA_AT : head + TX_DATA_AT + size] = frame
            struct.pack_into("II", mm, head, TP_STATUS_AVAILABLE, size)  # status, tp_len
        self.status_at = [head >> 2 for head in self.heads]  # index into the u32 view
        self.stamp_offsets = [head + TX_DATA_AT + self.stamp_at for head in self.heads]
        self.words = memoryview(mm).cast("I")
        self.stamps = [0] * nslots

    def push(self, k):
        """Write up to k due frames into free slots, then flush them with one send()."""
        if self.written == self.sent:  # frames still waiting at the head go first
            self._fill(k)
        if self.written > self.sent:
            self._flush()
        elif k:
            # every slot is still in flight: wait until the kernel frees the head one
            select.select([], [self.sock], [], 0.001)

    def _fill(self, k):
        mm, words = self._ring()
        status_at, stamp_offsets = self.status_at, self.stamp_offsets
        stamps = self.stamps
        shift, nslots = self.shift, self.nslots
        mono, pack_into = time.monotonic_ns, STAMP.pack_into
        seq = self.written
        end = seq + min(k, nslots)
        while seq < end:
            i = seq % nslots
            at = status_at[i]
            if words[at] & TP_STATUS_OWNER:
                break  # the kernel still owns it (SENDING): reuse only AVAILABLE slots
            # the stamp is the time the frame enters the ring; it leaves with its batch,
            # so the stamp precedes the wire time by at most one batch
            stamp = mono()
            num, rel = seq & 0xFFFFFFFF, stamp + shift  # stamp_fields, inlined
            pack_into(mm, stamp_offsets[i], num, rel >> 32, rel & 0xFFFFFFFF, -(num + rel) % 0xFFFF)
            words[at] = TP_STATUS_SEND_REQUEST
            stamps[i] = stamp
            seq += 1
        self.written = seq

    def _flush(self):
        try:
            # MSG_DONTWAIT: the kernel sends what is marked and returns without waiting for
            # the device to complete; completion shows up as slot status later
            self.sock.send(b"", socket.MSG_DONTWAIT)
            failure = None
        except OSError as exc:
            failure = exc
        _mm, words = self._ring()
        status_at, nslots = self.status_at, self.nslots
        sent, written = self.sent, self.written
        while sent < written:
            status = words[status_at[sent % nslots]] & TP_STATUS_OWNER
            if status == TP_STATUS_SEND_REQUEST:
                break  # not taken: the device refused it (or the send buffer was full)
            if status & TP_STATUS_WRONG_FORMAT:
                # the kernel rejects the frame itself (longer than the MTU allows): every
                # copy would fail the same way, and the ring cannot move past it
                self.broken = "the kernel rejected a ring frame (TP_STATUS_WRONG_FORMAT)"
                if self.first_error is None:
                    self.errors += 1
                    self.first_error = f"frame {sent}: {self.broken}"
                self.written = sent  # frames behind it were never handed over
                break
            sent += 1
        if sent > self.sent:
            if not self.sent:
                self.first_tx = self.stamps[0]
            self.last_tx = self.stamps[(sent - 1) % nslots]
            self.sent = sent
        if failure is None or self.broken:
            return
        if failure.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
            # the send buffer is full of in-flight frames: back-pressure, not an error
            time.sleep(0.00005)
            return
        # ENOBUFS: device queue full or no carrier. The frame stays at the head with its
        # sequence number and goes with the next send; a pause stops a spinning loop.
        self.errors += 1
        if self.first_error is None:
            name = errno.errorcode.get(failure.errno or 0, "error")
            self.first_error = f"frame {self.sent}: {name} {failure.strerror or failure}"
        time.sleep(0.0001)

    def finish(self):
        """Give waiting frames a last chance, then let in-flight ones complete."""
        if self.written > self.sent and not self.broken:
            self._flush()
        self.written = self.sent  # what is still waiting now was never handed over
        deadline = time.monotonic_ns() + RING_DRAIN_NS
        _mm, words = self._ring()
        status_at = self.status_at
        while time.monotonic_ns() < deadline:
            if not any(words[at] & TP_STATUS_SENDING for at in status_at):
                break
            time.sleep(0.001)

    def close(self):
        """Unmap the ring; the mapping must go before the socket, the view before it."""
        if self.words is not None:
            self.words.release()
            self.words = None
        if self.mm is not None:
            self.mm.close()
            self.mm = None


class _Transmitter:
    """The tx socket and the sender on it, for the path a request asks for."""

    def __init__(self, port, frame, stamp_at):
        self.port, self.frame, self.stamp_at = port, frame, stamp_at
        self.sock = self.sender = None
        self.note = None  # why the path is not what was asked for

    def open(self, mode):
        """Set up the sender for tx_path `mode` (one of TX_PATHS) and return it."""
        self.sock = _open_socket(self.port, 0)  # protocol 0: this socket sends, never receives
        if mode == "ring":
            try:
                self.sender = _RingTx(self.sock, self.frame, self.stamp_at, 0)
            except (OSError, ValueError) as exc:  # an old kernel, no mmap, no memory for it
                raise AgentError(f"port {self.port}: no TX ring: {exc}") from None
            return self.sender
        self.sender, why = self._plain(mode, 0)
        if mode == "auto":
            self.note = why
        return self.sender

    def _plain(self, mode, shift):
        """The sendmmsg sender, or where libc has none the per-frame one, and why."""
        if mode != "send":
            try:
                return _MmsgTx(self.sock, self.frame, self.stamp_at, shift), None
            except AttributeError as exc:
                if mode == "mmsg":
                    raise AgentError(f"no sendmmsg in this libc: {exc}") from None
                return _SendTx(self.sock, self.frame, self.stamp_at, shift), (
                    "no sendmmsg in this libc: per-frame send"
                )
        return _SendTx(self.sock, self.frame, self.stamp_at, shift), None

    def fallback(self, broken):
        """A plain sender going on from where a ring the kernel gave up on stopped."""
        broken.finish()
        broken.close()
        # a fresh socket: one with a TX ring sends from the ring only
        if self.sock is not None:
            self.sock.close()
        self.sock = _open_socket(self.port, 0)
        self.note = f"ring gave up after frame {broken.sent}: {broken.broken}"
        plain, _why = self._plain("auto", broken.shift)
        plain.sent, plain.errors, plain.first_error = broken.sent, broken.errors, broken.first_error
        plain.first_tx, plain.last_tx = broken.first_tx, broken.last_tx
        self.sender = plain
        return plain

    def close(self):
        """Release the sender (a ring's mapping goes before its socket), then the socket."""
        if self.sender is not None:
            self.sender.close()
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def _send_stream(tx, fallback, pps, count, end_ns, stop_file, t0_mono):
    """Paced (or, with pps None, flat-out) sending on absolute deadlines.

    The sequence number counts frames handed to the kernel only, so sequence numbers
    0..sent-1 are exactly the frames that left: loss is then sent minus unique received.
    `fallback()` gives a send-path sender starting at a sequence number, for a ring the
    kernel stops taking frames from mid-stream. Returns (tx, ended).
    """
    ended = "duration"
    mono = time.monotonic_ns
    limit = count if count is not None else 1 << 62
    next_poll = t0_mono + STOP_POLL_NS
    interval = 1e9 / pps if pps else 0.0
    while True:
        if tx.broken:
            tx = fallback(tx)
        now = mono()
        if now >= end_ns:
            break
        if tx.sent >= limit:
            ended = "count"
            break
        if now >= next_poll:
            next_poll = now + STOP_POLL_NS
            if _stop_requested or (stop_file and os.path.exists(stop_file)):
                ended = "stop"
                break
        written = tx.written
        if pps:
            due = min(int((now - t0_mono) * pps / 1e9) + 1, limit)
            backlog = due - written
            if backlog <= 0 and written == tx.sent:
                wait = t0_mono + int(written * interval) - now
                if wait > SPIN_NS:
                    time.sleep((wait - SLEEP_EARLY_NS) / 1e9)
                continue
            # behind schedule: catch up back to back
            tx.push(max(0, min(backlog, STREAM_BATCH)))
        else:
            tx.push(min(limit - written, STREAM_BATCH))
    tx.finish()
    return tx, ended


def _stream_length(req):
    """(count, duration) of a stream request; the duration is capped at MAX_STREAM_SECONDS."""
    duration, count = req.get("duration"), req.get("count")
    if duration is None and count is None:
        raise AgentError("a stream needs a duration or a count")
    count = None if count is None else int(count)
    duration = MAX_STREAM_SECONDS if duration is None else float(duration)
    return count, min(duration, MAX_STREAM_SECONDS)


def _stamp_offset(frame, marker, stamp_at):
    """Where the stamp goes: given, or right after the marker; it must fit the frame."""
    if stamp_at is None:
        where = frame.find(marker)
        if where < 0:
            raise AgentError("the template does not contain the marker")
        stamp_at = where + len(marker)
    stamp_at = int(stamp_at)
    if frame[stamp_at - len(marker) : stamp_at] != marker:
        raise AgentError(f"the marker does not end at stamp_at {stamp_at}")
    if stamp_at + STAMP.size > len(frame):
        raise AgentError(f"the template is too short for a {STAMP.size}-byte stamp at {stamp_at}")
    return stamp_at


def _expected_frames(req, marker, template, template_at):
    """The frames the receiver accepts: the request's `expect` list, or the template.

    Each is prepared like the template (stamp zeroed, real UDP checksum); its marker
    (first occurrence) places its stamp, which may sit elsewhere than the template's (a
    VLAN tag inserted or stripped on the way).
    """
    frames = [bytearray(bytes.fromhex(h)) for h in req.get("expect") or []]
    if not frames:
        return [(template_at, bytes(template))]
    out = []
    for k, frame in enumerate(frames):
        at = frame.find(marker)
        if at < 0 or at + len(marker) + STAMP.size > len(frame):
            raise AgentError(f"expected frame {k} has no room for the marker and stamp")
        at += len(marker)
        out.append((at, bytes(prepare_frame(frame, at))))
    return out


class _StreamRequest:
    """A stream request, checked and decoded; an AgentError names what is wrong."""

    def __init__(self, req):
        self.tx = req["tx"]
        self.frame = bytearray(bytes.fromhex(req["template"]))
        self.marker = bytes.fromhex(req["marker"])
        self.rx = list(req.get("rx", []))
        self.pps = float(req["pps"]) if req.get("pps") else None
        self.count, self.duration = _stream_length(req)
        self.linger = min(max(float(req.get("linger", 0.3)), 0.0), 10.0)
        self.stamp_at = _stamp_offset(self.frame, self.marker, req.get("stamp_at"))
        self.tx_mode = req.get("tx_path") or "auto"
        if self.tx_mode not in TX_PATHS:
            raise AgentError(f"tx_path must be one of {', '.join(TX_PATHS)}, not {self.tx_mode!r}")
        ignore = req.get("ignore_src")
        self.ignore_src = bytes.fromhex(ignore.replace(":", "")) if ignore else None
        self.ready_file, self.stop_file = req.get("ready_file"), req.get("stop_file")
        self.frame = prepare_frame(self.frame, self.stamp_at)
        self.expect = _expected_frames(req, self.marker, self.frame, self.stamp_at)

    def schedule(self, t0_mono):
        """(frame limit, end time in monotonic ns, whether the limit is the duration's)."""
        end_ns = t0_mono + int(self.duration * 1e9)
        limit, by_duration = self.count, False
        if self.pps and self.duration < MAX_STREAM_SECONDS:
            # a paced stream of D seconds is the ceil(D * pps) frames due in [0, D): a
            # sender descheduled near the end still owes them, so it gets a grace period
            due = math.ceil(self.duration * self.pps - 1e-9)
            if self.count is None or due < self.count:
                limit, by_duration = due, True
                end_ns += int(min(1.0, 0.1 * self.duration) * 1e9)
        return limit, end_ns, by_duration


def _announce(ready_file, t0_wall, t0_mono):
    """Write the clock pair to ready_file, atomically: the controller polls for it."""
    tmp = ready_file + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"t0_wall_ns": t0_wall, "t0_mono_ns": t0_mono, "pid": os.getpid()}, f)
    os.rename(tmp, ready_file)


def _linger(seconds):
    """Let in-flight frames arrive after the last send; a stop request cuts it short."""
    end = time.monotonic() + seconds
    while time.monotonic() < end and not _stop_requested:
        time.sleep(min(0.01, max(end - time.monotonic(), 0)))


def _unlink(*paths):
    for path in paths:
        if path:
            try:
                os.unlink(path)
            except OSError:
                pass


def stream(req):
    """Send a sequenced, paced stream on tx while a forked child receives on rx ports.

    Request: tx, template (hex frame containing marker), marker (hex), rx (ports),
    pps (null: as fast as possible), duration (s) and/or count (at least one; the
    duration is capped at MAX_STREAM_SECONDS), linger (s to keep receiving after the last
    send), ignore_src (MAC whose frames are not counted: the sender's own, flooded back),
    stamp_at (byte offset of the seq+timestamp; default right after the marker),
    ready_file (written with the clock pair once sending starts), stop_file (its
    appearance ends the stream early; SIGTERM/SIGINT do too), tx_path: "mmsg" sends the
    frames due in one sendmmsg() call; "ring" batches them through a PACKET_TX_RING; "send"
    makes one send() per frame; "auto" (the default) is mmsg, the fastest on a veth
    (benchmarks/stream_rate.py), or send where libc has no sendmmsg. The answer's tx_path
    says which path sent (a ring the kernel gives up on mid-stream is replaced by mmsg or
    send) and tx_path_note why it is not the one asked for.

    Send timestamps are read as each frame is written; a frame leaves with its batch (the
    frames due at that moment, at most STREAM_BATCH), so its stamp precedes its wire time
    by at most the time the kernel takes for one batch.

    UDP frames (IPv4 and IPv6) carry a real checksum, the same on every copy (the stamp is
    balanced, see stamp_fields). `expect` (hex frames, default: the template) are the
    frames the receiver accepts, as the DUT's forwarding should deliver them (MACs
    rewritten, a VLAN tag inserted or stripped); every received frame is compared with them
    whole, and one that differs anywhere is counted as altered ("altered", with
    "altered_seq"/"altered_at": sequence number, -1 for a damaged stamp, and first
    differing byte; "altered_examples": the first few, seen and expected, in hex). The
    answer's per-port arrays are zlib-compressed, base64-encoded native-endian u32 (seq),
    i64 (tx: ns since t0; rx: wall-clock ns, CLOCK_REALTIME; t0_wall_ns is the wall clock
    at the first send, tx_first_ns/tx_last_ns are relative to it), i64 altered_seq and
    i32 altered_at.
    """
    rq = _StreamRequest(req)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    receiver = ReceiverProcess(rq.rx, rq.marker, rq.expect, rq.ignore_src)
    tx = _Transmitter(rq.tx, rq.frame, rq.stamp_at)
    try:
        receiver.start(time.monotonic() + rq.duration + rq.linger + 30)
        first_sender = tx.open(rq.tx_mode)
        # t0 is read last, right before the first send: a t0 from before the fork would
        # start the stream with a catch-up burst and skew the measured rate
        t0_wall, t0_mono = time.time_ns(), time.monotonic_ns()
        if rq.ready_file:
            _announce(rq.ready_file, t0_wall, t0_mono)
        limit, end_ns, by_duration = rq.schedule(t0_mono)
        first_sender.shift = -t0_mono  # stamps are ns since t0
        sender, ended = _send_stream(
            first_sender, tx.fallback, rq.pps, limit, end_ns, rq.stop_file, t0_mono
        )
        tx.close()
        if by_duration and ended == "count":
            ended = "duration"
        if _stop_requested:
            ended = "stop"
        _linger(rq.linger)
        ports = receiver.collect()
        sent = sender.sent
        return {
            "ok": True,
            "sent": sent,
            "tx_errors": sender.errors,
            "tx_error": sender.first_error,
            "ended": ended,
            "tx_path": sender.path,
            "tx_path_note": tx.note,
            "pps": rq.pps,
            "t0_wall_ns": t0_wall,
            "t0_mono_ns": t0_mono,
            "tx_first_ns": (sender.first_tx - t0_mono) if sent else 0,
            "tx_last_ns": (sender.last_tx - t0_mono) if sent else 0,
            "stamp_at": rq.stamp_at,
            "tx_since_t0": True,
            "byteorder": sys.byteorder,
            "ports": ports,
        }
    finally:
        receiver.close()
        tx.close()
        _unlink(rq.ready_file, rq.stop_file)


OPS = {"exchange": exchange, "interfaces": interfaces, "stream": stream}


def main():
    """Answer one JSON request from stdin on stdout; exit status 1 on an error."""
    try:
        req = json.load(sys.stdin)
        op = OPS.get(req.get("op"))
        if op is None:
            raise AgentError(f"unknown op {req.get('op')!r} (known: {', '.join(OPS)})")
        result = op(req)
    except AgentError as exc:
        result = {"ok": False, "error": str(exc)}
    except (ValueError, KeyError, TypeError) as exc:
        result = {"ok": False, "error": f"bad request: {type(exc).__name__}: {exc}"}
    except OSError as exc:
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0 if result.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
