"""The traffic generator host (TG) as the controller sees it.

Frames are built with scapy here, on the controller; the TG only runs agent.py (standard
library only) through a Session, so a lab TG needs python3 and root, nothing else.
"""

from __future__ import annotations

import functools
import json
import logging
import posixpath
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from scapy.layers.l2 import Ether
from scapy.packet import Packet

from framework.errors import FrameworkError
from framework.remote.session import LocalSession, Session
from framework.traffic.agent import MAX_STREAM_SECONDS, STAMP, TX_PATHS
from framework.traffic.packets import DEFAULT_MARKER, Transform, unchanged
from framework.traffic.stream import StreamResult

log = logging.getLogger("howto.traffic")

AGENT_SOURCE = Path(__file__).with_name("agent.py")
AGENT_NAME = "howto_traffic_agent.py"
BOOT_ID = "/proc/sys/kernel/random/boot_id"  # one per kernel boot: same id, same clock


class TrafficError(FrameworkError):
    """The traffic agent could not run or could not do what it was asked."""


@dataclass(frozen=True)
class CapturedFrame:
    """One frame received on a capture port; time is seconds since the first frame was sent."""

    raw: bytes
    time: float

    @cached_property
    def packet(self) -> Ether:
        """The frame dissected by scapy, lazily: most captures are only counted."""
        return Ether(self.raw)


class Capture(dict[str, list[CapturedFrame]]):
    """Frames captured per port during one exchange, plus what happened on the send side."""

    def __init__(
        self,
        frames: dict[str, list[CapturedFrame]] | None = None,
        *,
        sent: int = 0,
        tx_errors: int = 0,
        tx_error: str | None = None,
        send_duration: float = 0.0,
        ignored: dict[str, int] | None = None,
        down: list[str] | None = None,
    ) -> None:
        super().__init__(frames or {})
        self.sent, self.tx_errors, self.tx_error = sent, tx_errors, tx_error
        self.send_duration = send_duration
        # frames on each port that did not carry the marker (background: ND, LLDP, ...)
        self.ignored = ignored or {}
        # capture ports the kernel reported down (ENETDOWN) while capturing
        self.down = down or []

    def frames(self, port: str) -> list[CapturedFrame]:
        """Frames of port ([] if it was not captured), with a clear error on a typo."""
        if port not in self:
            captured = ", ".join(self) or "none"
            raise KeyError(f"port {port!r} was not captured (captured: {captured})")
        return self[port]

    def __repr__(self) -> str:
        counts = ", ".join(f"{port}: {len(frames)}" for port, frames in self.items())
        return f"Capture(sent={self.sent}, tx_errors={self.tx_errors}, frames={{{counts}}})"


class TrafficGenerator:
    """Sends scapy packets from a TG port and captures what comes back on TG ports.

    Ports are interface names on the TG host, or "<netns>:<ifname>" for an interface in a
    named network namespace of that host.
    """

    def __init__(
        self, session: Session, agent_dir: str = "/tmp/howto", python: str = "python3"
    ) -> None:
        self.session = session
        self.agent_dir = agent_dir
        self.python = python
        self.agent_path = posixpath.join(agent_dir, AGENT_NAME)
        self._uploaded = False
        self._clock_offset: float | None = None
        self._macs: dict[str, str] = {}

    def _ensure_agent(self) -> None:
        if self._uploaded:
            return
        self.session.run(["mkdir", "-p", self.agent_dir])
        self.session.put(AGENT_SOURCE, self.agent_path)
        self._uploaded = True

    def _call(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        self._ensure_agent()
        result = self.session.run(
            [self.python, self.agent_path],
            stdin=json.dumps(request),
            check=False,
            timeout=timeout,
        )
        where = f"{self.session.name}: traffic agent {request['op']}"
        try:
            answer = json.loads(result.stdout)
        except ValueError:
            # python3 missing, a crash, or a shell error: show what the host said
            said = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise TrafficError(
                f"{where} did not answer (exit {result.exit_code}): {said[0]}"
            ) from None
        if not answer.get("ok"):
            raise TrafficError(f"{where} failed: {answer.get('error', 'unknown error')}")
        return answer

    def exchange(
        self,
        tx_port: str,
        packets: Sequence[Packet | bytes],
        capture_ports: Sequence[str],
        *,
        expect: int | None = None,
        timeout: float = 1.0,
        marker: bytes | None = None,
        pps: float | None = None,
        idle: float = 0.2,
    ) -> Capture:
        """Flush the capture ports, send packets on tx_port, and capture.

        Capture ends timeout seconds after the last send, or idle seconds after `expect`
        frames (in total over capture_ports) arrived. With a marker, only frames containing
        it are kept. Frames the TG itself transmits are never captured.
        """
        if pps is not None and pps <= 0:
            raise ValueError(f"pps must be positive, not {pps}")
        request = {
            "op": "exchange",
            "tx": tx_port,
            "frames": [bytes(p).hex() for p in packets],
            "capture": list(capture_ports),
            "expect": expect,
            "timeout": timeout,
            "idle": idle,
            "marker": marker.hex() if marker else None,
            "pps": pps,
        }
        send_time = len(packets) / pps if pps else len(packets) / 50_000
        answer = self._call(request, timeout=timeout + idle + send_time + 30)
        capture = Capture(
            sent=answer["sent"],
            tx_errors=answer["tx_errors"],
            tx_error=answer["tx_error"],
            send_duration=answer["send_duration"],
            ignored={port: seen["ignored"] for port, seen in answer["ports"].items()},
            down=[port for port, seen in answer["ports"].items() if seen.get("down")],
        )
        for port, seen in answer["ports"].items():
            capture[port] = [CapturedFrame(bytes.fromhex(f["hex"]), f["t"]) for f in seen["frames"]]
        log.info("[%s] %r", self.session.name, capture)
        return capture

    def interfaces(self, ports: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
        """{port: {"mac", "up", "mtu"}} for the given ports (all of the TG's if None)."""
        request: dict[str, Any] = {"op": "interfaces"}
        if ports is not None:
            request["ports"] = list(ports)
        return self._call(request, timeout=30)["interfaces"]

    def mac_of(self, port: str) -> str:
        """MAC address of a TG port, lower case, colon separated.

        Read once per port: every stream and trial names its sender's MAC, and each read
        is a round trip to the TG (a rate search runs dozens of trials). Nothing in a run
        changes a TG port's MAC.
        """
        if port not in self._macs:
            self._macs[port] = self.interfaces([port])[port]["mac"]
        return self._macs[port]

    def clock_offset(self) -> float:
        """Controller time.time() minus the TG's: places controller events on a stream.

        Zero for a TG on this kernel (a local one, or the virtual lab's namespace: one
        clock, known by the kernel's boot id); otherwise estimated once from the midpoint
        of a `date` round trip, so it is good to about half that round trip, which on a
        loaded machine is uneven enough to misplace events by a few hundred ms.
        """
        if self._clock_offset is None:
            if isinstance(self.session, LocalSession) or self._same_kernel():
                self._clock_offset = 0.0
            else:
                best: tuple[float, float] | None = None
                for _ in range(3):  # the fastest round trip gives the tightest bound
                    before = time.time()
                    out = self.session.run(["date", "+%s.%N"], timeout=10).stdout
                    after = time.time()
                    estimate = (before + after) / 2 - float(out.strip())
                    if best is None or after - before < best[0]:
                        best = (after - before, estimate)
                assert best is not None
                self._clock_offset = best[1]
        return self._clock_offset

    def _same_kernel(self) -> bool:
        """Whether the TG runs on the controller's own kernel (hence its clock)."""
        seen = self.session.run(["cat", BOOT_ID], check=False, timeout=10)
        try:
            own = Path(BOOT_ID).read_text().strip()
        except OSError:
            return False
        return seen.ok and seen.stdout.strip() == own

    def start_stream(
        self,
        tx_port: str,
        template: Packet | bytes,
        rx_ports: str | Sequence[str],
        *,
        pps: float | None,
        duration: float | None = None,
        count: int | None = None,
        marker: bytes = DEFAULT_MARKER,
        ignore_src: str | None = None,
        linger: float = 0.3,
        stamp_at: int | None = None,
        stall_ms: float | None = None,
        tx_path: str = "auto",
        expect: Transform | Sequence[Transform] = unchanged,
    ) -> StreamRun:
        """Start a sequenced stream in the background; see `stream`."""
        raw = bytes(template)
        transforms = [expect] if callable(expect) else list(expect)
        if not transforms:
            raise ValueError("expect names no frame the stream may arrive as")
        expected = [bytes(transform(Ether(raw))) for transform in transforms]
        if any(marker not in frame for frame in expected):
            raise ValueError("an expected frame does not carry the template's marker")
        at = raw.find(marker) + len(marker) if stamp_at is None else stamp_at
        if marker not in raw:
            raise ValueError("the template does not contain the marker")
        if at + STAMP.size > len(raw):
            raise ValueError(
                f"the template needs {STAMP.size} bytes after the marker for the stamp,"
                f" has {len(raw) - at}"
            )
        if tx_path not in TX_PATHS:
            raise ValueError(f"tx_path must be one of {', '.join(TX_PATHS)}, not {tx_path!r}")
        if pps is not None and pps <= 0:
            raise ValueError(f"pps must be positive, not {pps}")
        if duration is None and count is None:
            raise ValueError("a stream needs a duration or a count")
        if duration is not None and not 0 < duration <= MAX_STREAM_SECONDS:
            raise ValueError(f"duration must be in (0, {MAX_STREAM_SECONDS:g}] s, not {duration}")
        self._ensure_agent()
        tag = uuid.uuid4().hex[:12]
        request = {
            "op": "stream",
            "tx": tx_port,
            "template": raw.hex(),
            "rx": [rx_ports] if isinstance(rx_ports, str) else list(rx_ports),
            "marker": marker.hex(),
            "pps": pps,
            "duration": duration,
            "count": count,
            "linger": linger,
            "ignore_src": ignore_src,
            "stamp_at": stamp_at,
            "tx_path": tx_path,
            "expect": [frame.hex() for frame in expected],
            "ready_file": posixpath.join(self.agent_dir, f"stream-{tag}.ready"),
            "stop_file": posixpath.join(self.agent_dir, f"stream-{tag}.stop"),
        }
        longest = duration if duration is not None else MAX_STREAM_SECONDS
        if count is not None and pps:
            longest = min(longest, count / pps)
        return StreamRun(self, request, timeout=longest + linger + 60, stall_ms=stall_ms)

    def starter(
        self, tx_port: str, rx_port: str, frame: Callable[[str], Packet], **options: Any
    ) -> Callable[..., StreamRun]:
        """start_stream with everything but the length fixed: a DUT crossing's stream.

        `frame(mac)` builds the template from tx_port's MAC; frames carrying that MAC as
        their source (the switch flooding the TG's own frames back) are not counted.
        """
        mac = self.mac_of(tx_port)
        return functools.partial(
            self.start_stream, tx_port, frame(mac), rx_port, ignore_src=mac, **options
        )

    def stream(
        self, tx_port: str, template: Packet | bytes, rx_ports: str | Sequence[str], **options: Any
    ) -> StreamResult:
        """Send a sequenced stream of copies of `template` and measure what arrives.

        Copies go out on tx_port at `pps` (None: flat out) for `duration` s and/or `count`
        frames, each stamped with a sequence number and send time after the marker; what
        arrives on rx_ports is measured. Frames from MAC `ignore_src` (the sender's own,
        flooded back by a switch) are not counted. UDP checksums are real (the
        stamp keeps the template's valid). `linger` s of receiving follow the last send.

        expect: what the DUT's forwarding makes of a frame (packets.unchanged for io, the
        default; rewrite_macs for mac; swap_macs for macswap), or several forms any of
        which may arrive. Every frame received is compared whole with them (its stamp
        aside, which must be intact); the result counts and lists the frames that differ
        (`StreamResult.altered`).

        tx_path: "mmsg" sends the frames due in one sendmmsg() call, "ring" batches them
        through the kernel's PACKET_TX_RING, "send" makes one send() per frame; "auto" is
        mmsg, the fastest on a veth (benchmarks/stream_rate.py), or send where the TG's
        libc has no sendmmsg. `StreamRun.tx_path` tells which one ran.

        options are those of start_stream: pps, duration, count, marker, ignore_src, linger,
        stamp_at, stall_ms, tx_path, expect.
        """
        return self.start_stream(tx_port, template, rx_ports, **options).wait()


class StreamRun:
    """A stream running in the background: the agent call runs in a controller thread.

    `wait_started()` (or `started_at`) blocks until the TG is sending, so an outage or a
    migration is never started before the stream can see it. `stop()` ends it early;
    `wait()` returns the StreamResult. Use it as a context manager to never leak a stream.
    """

    def __init__(
        self,
        tg: TrafficGenerator,
        request: dict[str, Any],
        timeout: float,
        stall_ms: float | None,
    ) -> None:
        self.tg = tg
        self.request = request
        self.stall_ms = stall_ms
        self.ready_file: str = request["ready_file"]
        self.stop_file: str = request["stop_file"]
        self._answer: dict[str, Any] | None = None
        self._error: BaseException | None = None
        self._result: StreamResult | None = None
        self._t0_wall: float | None = None
        self._stop_sent = False
        # Set when the agent call has ended. Waits are on it, not on Thread.join(): in
        # Python 3.11 a join interrupted by a signal (Ctrl-C, a benchmark's SIGTERM) marks
        # the still running thread stopped, and __exit__ would then neither stop the agent
        # nor wait for it.
        self._finished = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(timeout,), name="howto-stream", daemon=True
        )
        self._thread.start()

    def _run(self, timeout: float) -> None:
        try:
            self._answer = self.tg._call(self.request, timeout=timeout)
        except BaseException as exc:  # handed to wait(), the test's thread
            self._error = exc
        finally:
            self._finished.set()

    @property
    def done(self) -> bool:
        """Whether the agent call has ended (answered or failed)."""
        return self._finished.is_set()

    def wait_started(self, timeout: float = 15.0) -> float:
        """Block until the TG sends; return started_at (controller time of t = 0)."""
        deadline = time.monotonic() + timeout
        while self._t0_wall is None:
            if self.done:
                if self._answer is None:
                    self.wait()  # raises the agent's error
                assert self._answer is not None
                self._t0_wall = self._answer["t0_wall_ns"] / 1e9
                break
            seen = self.tg.session.run(["cat", self.ready_file], check=False, timeout=10)
            if seen.ok and seen.stdout.strip():
                self._t0_wall = json.loads(seen.stdout)["t0_wall_ns"] / 1e9
                break
            if time.monotonic() > deadline:
                raise TrafficError(
                    f"{self.tg.session.name}: the stream did not start within {timeout:g} s"
                )
            time.sleep(0.01)
        return self._t0_wall + self.tg.clock_offset()

    @property
    def tx_path(self) -> str | None:
        """How the agent sent, once the stream ended: "mmsg", "ring" or "send".

        `tx_path_note` says why it is not the path asked for.
        """
        self.wait()
        return self._answer.get("tx_path") if self._answer else None

    @property
    def tx_path_note(self) -> str | None:
        """Why the stream did not run on the path asked for (None: it did)."""
        self.wait()
        return self._answer.get("tx_path_note") if self._answer else None

    @property
    def started_at(self) -> float:
        """Controller time.time() at which the stream's timeline starts (t = 0)."""
        return self.wait_started()

    def at(self, wall_time: float) -> float:
        """A controller time.time() as seconds on the stream's timeline."""
        return wall_time - self.started_at

    def stop(self) -> None:
        """Ask the agent to stop sending now (it still collects frames in flight)."""
        if not self.done:
            self.tg.session.run(["touch", self.stop_file], check=False, timeout=10)
            self._stop_sent = True

    def wait(self, timeout: float | None = None) -> StreamResult:
        """Wait for the stream to end and return what it measured."""
        if self._result is not None:
            return self._result
        if not self._finished.wait(timeout):
            raise TrafficError(f"{self.tg.session.name}: the stream is still running")
        if self._stop_sent:
            # the agent removes its stop file when it ends, but a touch can race its exit
            self.tg.session.run(["rm", "-f", self.stop_file], check=False, timeout=10)
        if self._error is not None:
            raise self._error
        assert self._answer is not None
        self._result = StreamResult.from_agent(
            self._answer, clock_offset=self.tg.clock_offset(), stall_ms=self.stall_ms
        )
        log.info("[%s] stream: %s", self.tg.session.name, self._result.summary())
        return self._result

    def __enter__(self) -> StreamRun:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
        self._finished.wait()
