"""A known byte stream over TCP between two guests' kernels, as it crosses a vhost path.

DPDK's reconnect plan runs iperf between two kernel guests and asks only that it works
again after each relaunch. Here the sender writes random bytes at a steady pace, keeping
a copy (`tee`), and socat carries them to a socat on the receiver that writes them to a
file; the receiver's progress (bytes on file, by its uptime) is sampled every PROGRESS_S.
At the end both sides give the length and SHA-256 of what they hold: the stream arrived
whole and in order if they agree, and the progress shows where it stalled and when it
resumed. The guests' clocks are their uptimes: `uptime(vm)` at an event's ends puts the
event on the receiver's timeline.

Every file lives in the guest's tmpfs; the guest is a busybox initramfs with socat
(framework.virt.image GUEST_TOOLS).
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import pairwise

from framework.errors import FrameworkError
from framework.traffic.tcp import SentStream
from framework.verify import VerifyFailed
from framework.virt.vm import VirtualMachine

PORT = 5300
CHUNK = 8192  # bytes the sender writes each PACE_S: about 100 kB/s under TCG
PACE_S = 0.05
PROGRESS_S = 0.1
BLOCK = 65536  # where two copies differ is told to this granularity

_DIR = "/tmp/howto-tcp"
TX, RX = f"{_DIR}/tx.bin", f"{_DIR}/rx.bin"
GO, WATCH = f"{_DIR}/go", f"{_DIR}/watch"
PROGRESS = f"{_DIR}/progress"
TX_DONE, RX_DONE = f"{_DIR}/tx.status", f"{_DIR}/rx.status"


class GuestTcpError(FrameworkError):
    """The guests could not set up the byte stream."""


def uptime(vm: VirtualMachine) -> float:
    """The guest's uptime in seconds (/proc/uptime): its clock for the progress samples."""
    return float(vm.shell.check("cut -d' ' -f1 /proc/uptime").split()[0])


def parse_progress(text: str) -> list[tuple[float, int]]:
    """The receiver's "UPTIME BYTES" lines, in order (a line cut short is left out)."""
    samples = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            try:
                samples.append((float(parts[0]), int(parts[1])))
            except ValueError:
                continue
    return samples


def parse_retransmits(snmp: str) -> int:
    """RetransSegs of /proc/net/snmp's two "Tcp:" lines (names, then values)."""
    lines = [line.split()[1:] for line in snmp.splitlines() if line.startswith("Tcp:")]
    if len(lines) != 2 or "RetransSegs" not in lines[0]:
        raise GuestTcpError(f"no TCP RetransSegs in /proc/net/snmp: {snmp[:200]!r}")
    return int(lines[1][lines[0].index("RetransSegs")])


@dataclass(frozen=True)
class Stall:
    """A time the receiver's byte count did not grow, on its uptime clock."""

    start: float  # the last sample before it, still at the old count
    end: float  # the first sample with more bytes

    @property
    def seconds(self) -> float:
        """How long the byte count stood still (to within a sample)."""
        return self.end - self.start


@dataclass(frozen=True)
class GuestTransfer:
    """One byte stream as both ends hold it, and the receiver's progress."""

    sent: SentStream
    received: SentStream
    progress: list[tuple[float, int]]  # (receiver's uptime, bytes on file)
    retransmits: int  # TCP segments the sender's kernel sent again meanwhile
    differs_at: int | None = None  # the first BLOCK-aligned offset whose bytes differ
    # socat's exit status on the sender and the receiver; None: it had not ended in time
    statuses: tuple[int | None, int | None] = (0, 0)
    # the sender's first `received.length` bytes (all it sent, if the receiver has no fewer)
    sent_prefix: SentStream | None = None
    # what the guests printed, by what it is: for the report
    readouts: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def bytes_at(self, t: float) -> int:
        """Bytes on the receiver's file at its uptime `t` (the last sample not after it)."""
        before = [count for at, count in self.progress if at <= t]
        return before[-1] if before else 0

    def first_growth_after(self, t: float) -> float | None:
        """When the receiver's byte count first grew after its uptime `t` (None: never)."""
        base = self.bytes_at(t)
        return next((at for at, count in self.progress if at > t and count > base), None)

    def stalls(self) -> list[Stall]:
        """Every run of samples at one byte count, to the sample where it grew again.

        A run still standing at the last sample ends there (it never grew again).
        """
        found: list[Stall] = []
        since: float | None = None
        for (a, before), (b, after) in pairwise(self.progress):
            if after == before:
                since = a if since is None else since
            elif since is not None:
                found.append(Stall(since, b))
                since = None
        if since is not None:
            found.append(Stall(since, self.progress[-1][0]))
        return found

    def longest_stall(self, start: float, end: float) -> Stall | None:
        """The longest stall that overlaps [start, end] of the receiver's uptime."""
        inside = [s for s in self.stalls() if s.end >= start and s.start <= end]
        return max(inside, key=lambda s: s.seconds, default=None)


@dataclass
class GuestTcpStream:
    """The byte stream from `sender` to `address` (the receiver's) while it runs."""

    sender: VirtualMachine
    receiver: VirtualMachine
    address: str
    port: int = PORT
    _retransmits_before: int = 0

    def start(self) -> None:
        """The receiver listening, sampling its progress; then the sender writing."""
        listen = (
            f"socat -u TCP-LISTEN:{self.port},bind={self.address},reuseaddr "
            f"OPEN:{RX},creat,trunc; echo $? > {RX_DONE}"
        )
        watch = (
            f'while [ -e {WATCH} ]; do echo "$(cut -d" " -f1 /proc/uptime) '
            f'$(stat -c %s {RX})"; sleep {PROGRESS_S}; done > {PROGRESS}'
        )
        self.receiver.shell.check(
            f"rm -rf {_DIR}; mkdir -p {_DIR}; : > {RX}; touch {WATCH}; "
            f"{_background(listen)} {_background(watch)}"
        )
        self._retransmits_before = parse_retransmits(self.sender.shell.check("cat /proc/net/snmp"))
        send = (
            f"while [ -e {GO} ]; do head -c {CHUNK} /dev/urandom; sleep {PACE_S}; done "
            f"| tee {TX} | socat -u - TCP:{self.address}:{self.port},retry=100,interval=0.1; "
            f"echo $? > {TX_DONE}"
        )
        self.sender.shell.check(f"rm -rf {_DIR}; mkdir -p {_DIR}; touch {GO}; {_background(send)}")

    def wait_flowing(self, promise: str, timeout: float = 30.0) -> None:
        """Until the receiver holds some bytes: the connection is up and carrying.

        Raises:
            VerifyFailed: no byte arrived within `timeout` (the path does not carry TCP).
        """
        deadline = time.monotonic() + timeout
        while _size(self.receiver, RX) == 0:
            if time.monotonic() > deadline:
                raise VerifyFailed(
                    promise,
                    expected=f"bytes at {self.receiver.name} ({self.address}:{self.port})",
                    seen=f"none within {timeout:g} s of {self.sender.name}'s start",
                )
            time.sleep(0.5)

    def stop(self, timeout: float = 15.0) -> GuestTransfer:
        """The sender stops writing; once both sockets closed (or `timeout`), what each holds.

        A connection that cannot deliver what was written in time (the path lost it) is
        cut: the transfer then shows the receiver short of the sender.
        """
        self.sender.shell.check(f"rm -f {GO}")
        sent_status = _wait_for(self.sender, TX_DONE, timeout)
        received_status = _wait_for(self.receiver, RX_DONE, 5 if sent_status is None else timeout)
        self.receiver.shell.check(f"rm -f {WATCH}")
        for vm, status in ((self.sender, sent_status), (self.receiver, received_status)):
            if status is None:
                vm.shell.run("killall socat", timeout=10)
        sent, received = _digest(self.sender, TX), _digest(self.receiver, RX)
        snmp = self.sender.shell.check("cat /proc/net/snmp")
        progress = self.receiver.shell.check(f"cat {PROGRESS}")
        prefix = sent
        if received.length < sent.length:
            prefix = _digest(self.sender, TX, received.length)
        differs_at = None
        if received != prefix and received.length:
            differs_at = _first_difference(
                _block_digests(self.sender, TX), _block_digests(self.receiver, RX)
            )
        return GuestTransfer(
            sent,
            received,
            parse_progress(progress),
            parse_retransmits(snmp) - self._retransmits_before,
            differs_at,
            (sent_status, received_status),
            prefix,
            {"the sender's /proc/net/snmp": snmp, "the receiver's progress": progress},
        )

    def abandon(self) -> None:
        """Stop both ends without judging (teardown after a failure); the VMs may be gone."""
        for vm, path in ((self.sender, GO), (self.receiver, WATCH)):
            try:
                vm.shell.run(f"rm -f {path}; killall socat 2>/dev/null", timeout=5)
            except Exception:  # noqa: BLE001 - the VM may have died with the failure
                continue


@contextmanager
def guest_tcp_stream(
    sender: VirtualMachine, receiver: VirtualMachine, address: str
) -> Iterator[GuestTcpStream]:
    """A byte stream from `sender` to the receiver's `address` for the block.

    The block calls `stop()` for its transfer; if it leaves early the stream is abandoned.
    """
    stream = GuestTcpStream(sender, receiver, address)
    stream.start()
    try:
        yield stream
    except BaseException:
        stream.abandon()
        raise


def verify_transfer(transfer: GuestTransfer, promise: str, *, whole: bool = True) -> None:
    """What the receiver holds is every byte the sender wrote, in order, and not nothing.

    whole=False: only that what arrived is the start of what was sent, in order (a
    stream a known defect cut short).
    """
    sent, got = transfer.sent, transfer.received
    if sent.length > 0 and got == sent and transfer.statuses == (0, 0):
        return
    if not whole and got.length and got == transfer.sent_prefix:
        return
    problems = []
    if sent.length == 0:
        problems.append("the sender wrote nothing")
    elif got.length != sent.length:
        problems.append(f"the receiver holds {got.length} of the {sent.length} bytes sent")
    if got.length and got != transfer.sent_prefix:
        problems.append(
            "the receiver's bytes are not the bytes sent"
            if got.length >= sent.length
            else f"its {got.length} bytes are not the first {got.length} sent"
        )
        if transfer.differs_at is not None:
            problems[-1] += f" (first in the {BLOCK}-byte block at byte {transfer.differs_at})"
    problems += [
        f"{side}'s socat " + ("never ended: cut" if status is None else f"ended with {status}")
        for side, status in zip(("the sender", "the receiver"), transfer.statuses, strict=True)
        if status != 0
    ]
    problem = "; ".join(problems)
    raise VerifyFailed(
        f"{promise}; {problem}",
        expected=f"{sent.length} bytes, SHA-256 {sent.sha256[:16]}...",
        seen=f"{got.length} bytes, SHA-256 {got.sha256[:16]}...",
    )


def _background(command: str) -> str:
    """`command` in a shell of its own, detached from the console (setsid)."""
    return f"setsid sh -c {shlex.quote(command)} </dev/null >/dev/null 2>&1 &"


def _wait_for(vm: VirtualMachine, status_file: str, timeout: float) -> int | None:
    """The exit status socat left in `status_file`; None if it did not end within `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        status, out = vm.shell.run(f"cat {status_file}", timeout=10)
        if status == 0 and out.strip().isdigit():
            return int(out.strip())
        if time.monotonic() > deadline:
            return None
        time.sleep(0.5)


def _size(vm: VirtualMachine, path: str) -> int:
    return int(vm.shell.check(f"stat -c %s {path}").strip() or 0)


def _digest(vm: VirtualMachine, path: str, length: int | None = None) -> SentStream:
    """The file's length and SHA-256, or of its first `length` bytes."""
    if length is None:
        size, sha256 = vm.shell.check(f"stat -c %s {path}; sha256sum {path}").split()[:2]
        return SentStream(int(size), sha256)
    sha256 = vm.shell.check(f"head -c {length} {path} | sha256sum").split()[0]
    return SentStream(length, sha256)


def _block_digests(vm: VirtualMachine, path: str) -> list[str]:
    """The SHA-256 of each BLOCK of the file, in order."""
    out = vm.shell.check(
        f"n=$(( ($(stat -c %s {path}) + {BLOCK} - 1) / {BLOCK} )); i=0; "
        f"while [ $i -lt $n ]; do dd if={path} bs={BLOCK} skip=$i count=1 2>/dev/null "
        "| sha256sum; i=$((i + 1)); done",
        timeout=120,
    )
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _first_difference(a: list[str], b: list[str]) -> int:
    for index, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return index * BLOCK
    return min(len(a), len(b)) * BLOCK
