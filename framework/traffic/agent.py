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
   "stamp_at": null, "ready_file": "/tmp/x.ready", "stop_file": "/tmp/x.stop"}
  -> {"ok": true, "sent": 10000, "tx_errors": 0, "t0_wall_ns": ..., "tx_last_ns": ...,
      "ports": {"eth2": {"n": 10000, "seq": "<b64 zlib u32[]>", "tx": "<.. i64[]>", ...}}}
  (see stream() for the full description)

  {"op": "interfaces", "ports": ["eth1"]}   (ports optional: all interfaces)
  -> {"ok": true, "interfaces": {"eth1": {"mac": "02:..", "up": true, "mtu": 1500}}}

A port is an interface name, or "<netns>:<ifname>" for an interface inside a named network
namespace (/run/netns/<netns>) or a netns path; Linux forbids ':' in interface names, so the
split is unambiguous. That lets one agent reach ports spread over several namespaces.

Errors: {"ok": false, "error": "<one line>"} and exit status 1.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import os
import select
import socket
import struct
import sys
import time

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
    pass


def _split_port(port):
    if ":" in port:
        netns, ifname = port.rsplit(":", 1)
        return netns, ifname
    return None, port


def _netns_path(netns):
    return netns if netns.startswith("/") else os.path.join("/run/netns", netns)


_libc = None


def _setns(fd):
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.setns(fd, CLONE_NEWNET) != 0:
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
        while True:
            try:
                self.sock.recv(MAX_FRAME)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._socket_error(exc)

    def _socket_error(self, exc):
        # the kernel reports a port that is (or went) down once as ENETDOWN on the socket;
        # an absent frame is then the honest result, not a failure of the agent
        if exc.errno != errno.ENETDOWN:
            raise exc
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
                self._socket_error(exc)
                continue
            if addr[2] == PACKET_OUTGOING:
                continue  # our own transmissions (or the host's) are not received traffic
            stamp = None
            for level, kind, value in anc:
                if level == SOL_PACKET and kind == PACKET_AUXDATA and len(value) >= AUXDATA.size:
                    status, _l, _s, _m, _n, tci, tpid = AUXDATA.unpack_from(value)
                    if status & TP_STATUS_VLAN_VALID:
                        if not status & TP_STATUS_VLAN_TPID_VALID:
                            tpid = 0x8100
                        data = data[:12] + struct.pack("!HH", tpid, tci) + data[12:]
                elif level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    # struct timespec: two longs, 8 bytes each on 64-bit hosts, 4 on 32-bit
                    spec = TIMESPEC if len(value) >= TIMESPEC.size else TIMESPEC32
                    sec, nsec = spec.unpack_from(value)
                    stamp = sec + nsec / 1e9
            if self.marker is not None and self.marker not in data:
                self.ignored += 1
                continue
            if stamp is None:
                stamp = time.time()
            self.frames.append({"hex": data.hex(), "t": round(stamp - self.t0, 9)})
            kept += 1

    def close(self):
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
                ready = select.select(socks, [], [], left)[0] if socks else time.sleep(left)
                for sock in ready or ():
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
    ports = req.get("ports")
    if ports is None:
        ports = [name for _index, name in socket.if_nameindex()]
    return {"ok": True, "interfaces": {port: _describe(port) for port in ports}}


OPS = {"exchange": exchange, "interfaces": interfaces}


def main():
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
