"""Analysis of a sequenced stream: loss, duplicates, reordering and outages (downtime).

The agent's `stream` op sends frames numbered 0..sent-1 (a number is only used by a frame
that actually left the TG) and records, for every marked frame received, its sequence
number, its send time and its kernel receive time. Everything here works on those arrays,
so the same code judges a live stream and a synthetic one in a unit test.

Times are seconds since the stream started (t0, the TG's wall clock at stream start).
Events recorded on the controller with time.time() map onto that timeline with
`result.at(event_time)`.

An outage is a stretch of the timeline in which the receiver saw nothing it should have:
sequence numbers went missing between two received frames (from the receive time of the
last frame before the loss to that of the first frame after it), or the receiver saw
nothing for longer than `stall_ms` beyond what the sender's own spacing explains (frames
held in a buffer; a pause of the sender is not one). Spans that overlap or touch are one
outage, with one duration and one loss.

A test names the windows in which it allows an outage (`LossWindow`: a migration, a
failover) and asks `result.account(*windows)`: per window its outages and lost frames,
and outside every window the frames lost, duplicated and reordered, each with its time.
"""

from __future__ import annotations

import base64
import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

# A stall shorter than this many inter-frame intervals is scheduling jitter of the sender
# (Python on a shared core), not an outage; at low rates 5 ms is the floor.
STALL_INTERVALS = 10
STALL_FLOOR_MS = 5.0


@dataclass(frozen=True)
class Outage:
    """One interruption of the stream, in seconds since stream start.

    An outage is one event however it shows: frames held and delivered late, frames lost,
    or both (a VM's queue drained on the destination, then the frames sent during the
    switch-over lost) are one outage with one duration and one loss.
    """

    start_s: float  # receive time of the last frame before the outage (0.0: stream start)
    end_s: float  # receive time of the first frame after it (stream end if none came)
    lost_runs: tuple[range, ...] = ()  # runs of consecutive sequence numbers never received
    open_ended: bool = False  # nothing was received after it: the stream never recovered

    @property
    def duration_ms(self) -> float:
        """How long the receiver saw nothing it should have."""
        return (self.end_s - self.start_s) * 1000.0

    @property
    def lost(self) -> int:
        """Frames lost in this outage (exact)."""
        return sum(len(run) for run in self.lost_runs)

    def overlaps(self, t0: float, t1: float) -> bool:
        """Whether the outage touches [t0, t1] (stream seconds)."""
        return self.start_s <= t1 and self.end_s >= t0

    def __str__(self) -> str:
        lost = f", {self.lost} lost (seq {_runs(self.lost_runs)})" if self.lost else ", 0 lost"
        tail = ", never recovered" if self.open_ended else ""
        return (
            f"outage {self.duration_ms:.1f} ms at {self.start_s:.4f}-{self.end_s:.4f} s{lost}{tail}"
        )


def _runs(runs: Sequence[range], limit: int = 4) -> str:
    text = [f"{r.start}" if len(r) == 1 else f"{r.start}-{r[-1]}" for r in runs[:limit]]
    if len(runs) > limit:
        text.append(f"... ({len(runs) - limit} more runs)")
    return ", ".join(text)


@dataclass(frozen=True)
class LossWindow:
    """A stretch of the stream in which the test allows an outage.

    A migration, a bond failover, a VF detach and attach. `slack_s` widens it on both
    sides, for what the controller's clock cannot place exactly (the switch-over lands at
    the window's edge).
    """

    name: str
    start_s: float
    end_s: float
    slack_s: float = 0.5

    @property
    def span(self) -> tuple[float, float]:
        """The window with its slack, in stream seconds."""
        return self.start_s - self.slack_s, self.end_s + self.slack_s

    def holds(self, t: np.ndarray) -> np.ndarray:
        """Which of the stream times `t` fall inside the window (slack included)."""
        lo, hi = self.span
        return (t >= lo) & (t <= hi)

    def __str__(self) -> str:
        return (
            f"{self.name} window {self.start_s:.3f}-{self.end_s:.3f} s "
            f"(+/- {self.slack_s * 1000:g} ms)"
        )


@dataclass(frozen=True)
class Frames:
    """Sequence numbers and the stream times at which each happened (sent or received)."""

    what: str  # "lost" (times: when sent), "duplicated" or "reordered" (when received)
    seqs: np.ndarray
    times: np.ndarray

    def __len__(self) -> int:
        return len(self.seqs)

    def describe(self, limit: int = 5) -> str:
        """'3 lost: seq 50 (sent at 0.050 s), ...' naming the first `limit` frames."""
        verb = "sent" if self.what == "lost" else "received"
        shown = ", ".join(
            f"seq {int(s)} ({verb} at {t:.3f} s)"
            for s, t in zip(self.seqs[:limit], self.times[:limit], strict=True)
        )
        more = f", ... ({len(self) - limit} more)" if len(self) > limit else ""
        return f"{len(self)} {self.what}: {shown}{more}" if len(self) else f"0 {self.what}"


@dataclass(frozen=True)
class WindowAccount:
    """What the stream did inside one loss window."""

    window: LossWindow
    outages: list[Outage]  # every outage touching the window (slack included)
    lost_frames: Frames  # what those outages lost, with the time each frame was sent

    @property
    def lost(self) -> int:
        """Frames lost in the window's outages."""
        return sum(o.lost for o in self.outages)

    @property
    def lost_runs(self) -> tuple[range, ...]:
        """Runs of consecutive lost sequence numbers; one outage loses one run."""
        return tuple(run for o in self.outages for run in o.lost_runs)

    @property
    def loss_span_ms(self) -> float:
        """From the first to the last lost frame's send time (0.0: nothing lost).

        A switch-over loses the frames sent while it lasts: one stretch, sometimes in two
        or three runs (the first frames through a resumed VM, then a few more lost while
        its queues catch up). Loss spread over the whole window is something else.
        """
        times = self.lost_frames.times
        return float(times.max() - times.min()) * 1000.0 if len(times) else 0.0

    @property
    def downtime_ms(self) -> float:
        """The longest outage in the window (0.0: the stream ran through it)."""
        return max((o.duration_ms for o in self.outages), default=0.0)

    @property
    def outage(self) -> Outage | None:
        """The longest outage in the window."""
        return max(self.outages, key=lambda o: o.duration_ms, default=None)

    def describe(self) -> str:
        """One line: the window, its outages and what they lost."""
        if not self.outages:
            return f"{self.window}: no outage"
        text = f"{self.window}: {len(self.outages)} outage(s), longest {self.outage}"
        lossy = [o for o in self.outages if o.lost]
        if lossy:
            shown = "; ".join(str(o) for o in lossy[:4])
            more = f"; ... ({len(lossy) - 4} more)" if len(lossy) > 4 else ""
            text += (
                f"; {self.lost} lost in {len(lossy)} of them, sent over "
                f"{self.loss_span_ms:.1f} ms: {shown}{more}"
            )
        return text


@dataclass(frozen=True)
class LossAccount:
    """A stream's loss split by the windows a test allows it in, and everything outside."""

    windows: list[WindowAccount]
    outside_outages: list[Outage]  # outages that touch no window
    lost_outside: Frames
    duplicated_outside: Frames
    reordered_outside: Frames

    @property
    def clean_outside(self) -> bool:
        """No frame lost, duplicated or reordered outside every window."""
        return not (
            len(self.lost_outside) or len(self.duplicated_outside) or len(self.reordered_outside)
        )

    def describe_outside(self) -> str:
        """One line naming the first lost, duplicated and reordered frames outside."""
        parts = [
            f.describe()
            for f in (self.lost_outside, self.duplicated_outside, self.reordered_outside)
            if len(f)
        ]
        return "outside the windows: " + ("; ".join(parts) if parts else "nothing lost")

    def table(self) -> tuple[list[str], list[list[object]]]:
        """(headers, rows): every outage, with the window it belongs to, for attach_table."""
        headers = ["window", "start s", "end s", "duration ms", "lost", "lost seqs"]
        rows: list[list[object]] = []
        tagged = [(w.window.name, o) for w in self.windows for o in w.outages]
        tagged += [("(outside)", o) for o in self.outside_outages]
        for name, o in sorted(tagged, key=lambda item: item[1].start_s):
            rows.append(
                [name, f"{o.start_s:.4f}", f"{o.end_s:.4f}", f"{o.duration_ms:.2f}", o.lost,
                 _runs(o.lost_runs)]
            )  # fmt: skip
        return headers, rows


@dataclass(frozen=True)
class AlteredFrame:
    """A received frame of the stream that is not the frame its forwarding should deliver."""

    port: str
    seq: int | None  # None: the stamp itself was damaged, the number cannot be trusted
    offset: int  # first byte that differs from the expected frame
    seen: bytes | None = None  # the whole frame, for the first few of a stream
    expected: bytes | None = None

    def __str__(self) -> str:
        which = "seq ?" if self.seq is None else f"seq {self.seq}"
        text = f"{which} on {self.port} differs at byte {self.offset}"
        if self.seen is not None and self.expected is not None:
            got = self.seen[self.offset] if self.offset < len(self.seen) else None
            want = self.expected[self.offset] if self.offset < len(self.expected) else None
            text += (
                f" (expected {'end of frame' if want is None else f'0x{want:02x}'}, "
                f"seen {'end of frame' if got is None else f'0x{got:02x}'}; "
                f"{len(self.seen)} bytes, {len(self.expected)} expected)"
            )
        return text


def _decode(blob: str, kind: str, byteorder: str) -> np.ndarray:
    order = "<" if byteorder == "little" else ">"
    raw = zlib.decompress(base64.b64decode(blob))
    return np.frombuffer(raw, dtype=np.dtype(order + kind)).astype(np.int64)


@dataclass(eq=False)
class StreamResult:
    """What one sequenced stream did. Per-frame arrays are in receive-time order."""

    sent: int
    seq: np.ndarray  # sequence number of every marked frame received (all rx ports)
    rx_s: np.ndarray  # its kernel receive time, s since t0
    tx_s: np.ndarray | None = None  # its send time (from the frame's stamp), s since t0
    pps: float | None = None  # requested rate; None: as fast as possible
    tx_errors: int = 0
    tx_error: str | None = None
    ended: str = "duration"  # why sending stopped: duration, count or stop
    tx_first_s: float = 0.0
    tx_last_s: float | None = None
    t0_wall: float = 0.0  # the TG's time.time() at stream start
    clock_offset: float = 0.0  # controller time.time() minus the TG's, estimated
    port_frames: dict[str, int] = field(default_factory=dict)
    ignored_own: dict[str, int] = field(default_factory=dict)
    ignored_other: dict[str, int] = field(default_factory=dict)
    down: list[str] = field(default_factory=list)
    stall_ms: float | None = None  # None: STALL_INTERVALS intervals, at least STALL_FLOOR_MS
    altered: int = 0  # frames received that differ from what the forwarding should deliver
    altered_frames: list[AlteredFrame] = field(default_factory=list)  # the first of them

    def __post_init__(self) -> None:
        self.seq = np.asarray(self.seq, dtype=np.int64)
        self.rx_s = np.asarray(self.rx_s, dtype=np.float64)
        if self.tx_s is not None:
            self.tx_s = np.asarray(self.tx_s, dtype=np.float64)
        if len(self.seq) != len(self.rx_s):
            raise ValueError("seq and rx_s must have one entry per received frame")
        order = np.argsort(self.rx_s, kind="stable")
        self.seq, self.rx_s = self.seq[order], self.rx_s[order]
        if self.tx_s is not None:
            self.tx_s = self.tx_s[order]
        if self.tx_last_s is None:
            self.tx_last_s = (self.sent - 1) / self.pps if self.pps and self.sent else 0.0

    @classmethod
    def from_agent(
        cls, answer: Mapping[str, Any], *, clock_offset: float = 0.0, stall_ms: float | None = None
    ) -> StreamResult:
        """Build from the agent's `stream` answer (arrays merged over all rx ports)."""
        order = answer.get("byteorder", "little")
        seqs, txs, rxs = [], [], []
        altered: list[AlteredFrame] = []
        for port, seen in answer["ports"].items():
            seqs.append(_decode(seen["seq"], "u4", order))
            txs.append(_decode(seen["tx"], "i8", order))
            rxs.append(_decode(seen["rx"], "i8", order))
            altered += _altered_frames(port, seen, order)
        ports = answer["ports"]

        def cat(parts: list[np.ndarray]) -> np.ndarray:
            return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

        t0_ns = int(answer.get("t0_wall_ns", 0))
        tx_base = 0 if answer.get("tx_since_t0") else t0_ns
        return cls(
            sent=answer["sent"],
            seq=cat(seqs),
            # subtract in integers: float64 cannot hold absolute ns to the nanosecond
            rx_s=(cat(rxs) - t0_ns) / 1e9,
            tx_s=(cat(txs) - tx_base) / 1e9,
            pps=answer.get("pps"),
            tx_errors=answer.get("tx_errors", 0),
            tx_error=answer.get("tx_error"),
            ended=answer.get("ended", "duration"),
            tx_first_s=answer.get("tx_first_ns", 0) / 1e9,
            tx_last_s=answer.get("tx_last_ns", 0) / 1e9,
            t0_wall=answer.get("t0_wall_ns", 0) / 1e9,
            clock_offset=clock_offset,
            port_frames={port: seen["n"] for port, seen in ports.items()},
            ignored_own={port: seen.get("own", 0) for port, seen in ports.items()},
            ignored_other={port: seen.get("other", 0) for port, seen in ports.items()},
            down=[port for port, seen in ports.items() if seen.get("down")],
            stall_ms=stall_ms,
            altered=sum(seen.get("altered", 0) for seen in ports.values()),
            altered_frames=altered,
        )

    # --- timeline -----------------------------------------------------------------------

    @property
    def started_at(self) -> float:
        """Controller time.time() of stream start (t = 0 on the stream's timeline)."""
        return self.t0_wall + self.clock_offset

    def at(self, wall_time: float) -> float:
        """A controller time.time() as seconds on the stream's timeline."""
        return wall_time - self.started_at

    # --- counts -------------------------------------------------------------------------

    @cached_property
    def _first(self) -> np.ndarray:
        """Indexes (rx order) of each sequence number's first arrival, by number.

        Numbers >= sent (another stream's frames) are left out.
        """
        values, first = np.unique(self.seq, return_index=True)
        return first[values < self.sent]

    @property
    def frames(self) -> int:
        """Marked frames received, duplicates included."""
        return len(self.seq)

    @property
    def received(self) -> int:
        """Distinct sequence numbers received."""
        return len(self._first)

    @property
    def lost(self) -> int:
        """Sequence numbers sent and never received."""
        return self.sent - self.received

    @property
    def foreign(self) -> int:
        """Marked frames whose sequence number this stream never sent."""
        return int(np.count_nonzero(self.seq >= self.sent))

    @property
    def duplicated(self) -> int:
        """Arrivals of a sequence number already received."""
        return self.frames - self.foreign - self.received

    @property
    def reordered(self) -> int:
        """First arrivals that came after a higher sequence number had already arrived."""
        return len(self._late_arrivals)

    @property
    def reordered_frames(self) -> Frames:
        """The first arrivals that came after a higher number, with their receive times."""
        idx = self._late_arrivals
        return Frames("reordered", self.seq[idx], self.rx_s[idx])

    @cached_property
    def lost_seqs(self) -> np.ndarray:
        """Every sequence number sent and never received, ascending."""
        got = np.zeros(self.sent, dtype=bool)
        got[self.seq[self._first]] = True
        return np.flatnonzero(~got)

    @property
    def intact(self) -> bool:
        """Every frame received was the frame the forwarding should deliver, whole."""
        return not self.altered

    def altered_example(self) -> str:
        """The first altered frame whose bytes were kept: seen and expected, in hex."""
        shown = next((a for a in self.altered_frames if a.seen is not None), None)
        if shown is None or shown.seen is None or shown.expected is None:
            return ""
        return (
            f"first altered frame ({shown}):\n  seen     {shown.seen.hex()}\n"
            f"  expected {shown.expected.hex()} (stamp zeroed)"
        )

    def describe_altered(self, limit: int = 5) -> str:
        """'2 altered: seq 12 on eth1 differs at byte 34 (expected 0x0a, seen 0x0b; ...)'."""
        if not self.altered:
            return "0 altered"

        def arrivals(a: AlteredFrame) -> str:
            # a damaged copy beside an intact one points at a second path, not at the first
            n = int(np.count_nonzero(self.seq == a.seq)) if a.seq is not None else 0
            return f"{a} [arrived {n} times]" if n > 1 else str(a)

        shown = "; ".join(arrivals(a) for a in self.altered_frames[:limit])
        more = self.altered - min(limit, len(self.altered_frames))
        return f"{self.altered} altered: {shown}" + (f"; ... ({more} more)" if more > 0 else "")

    @property
    def rate_achieved_pps(self) -> float:
        """Send rate: frames per second between the first and the last send."""
        span = (self.tx_last_s or 0.0) - self.tx_first_s
        return (self.sent - 1) / span if self.sent > 1 and span > 0 else 0.0

    @property
    def resolution_ms(self) -> float:
        """Time between two frames: no gap shorter than this can be seen."""
        rate = self.pps or self.rate_achieved_pps
        return 1000.0 / rate if rate else math.inf

    @property
    def latency_ms(self) -> dict[str, float]:
        """One-way latency of first arrivals (send stamp to kernel receive time)."""
        if self.tx_s is None or not self.received:
            return {}
        lat = (self.rx_s[self._first] - self.tx_s[self._first]) * 1000.0
        return {
            "min": float(lat.min()),
            "median": float(np.median(lat)),
            "p99": float(np.percentile(lat, 99)),
            "max": float(lat.max()),
        }

    # --- outages ------------------------------------------------------------------------

    @property
    def stall_threshold_ms(self) -> float:
        """Silence longer than this (beyond the sender's own spacing) is a stall."""
        if self.stall_ms is not None:
            return self.stall_ms
        if math.isinf(self.resolution_ms):
            return STALL_FLOOR_MS
        return max(STALL_INTERVALS * self.resolution_ms, STALL_FLOOR_MS)

    def _loss_spans(self) -> list[tuple[float, float, range, bool]]:
        """(start, end, lost run, open ended) for every run of lost sequence numbers."""
        spans: list[tuple[float, float, range, bool]] = []
        stream_end = float(self.tx_last_s or 0.0)
        seqs = self.seq[self._first]  # ascending
        times = self.rx_s[self._first]
        if not len(seqs):
            return [(0.0, stream_end, range(self.sent), True)] if self.sent else []
        if seqs[0] > 0:
            spans.append((0.0, float(times[0]), range(int(seqs[0])), False))
        # traffic is back at the first arrival of any later number, which under reordering
        # need not be the next number itself
        back = np.minimum.accumulate(times[::-1])[::-1]
        for i in np.flatnonzero(np.diff(seqs) > 1):
            ta, tb = float(times[i]), float(back[i + 1])
            run = range(int(seqs[i]) + 1, int(seqs[i + 1]))
            spans.append((min(ta, tb), max(ta, tb), run, False))
        last = int(seqs[-1])
        if last < self.sent - 1:
            start = float(times[-1])
            spans.append((start, max(stream_end, start), range(last + 1, self.sent), True))
        return spans

    def _stall_spans(self) -> list[tuple[float, float]]:
        """(start, end) of every silence longer than the stall threshold."""
        order = np.argsort(self.rx_s[self._first], kind="stable")
        arrivals = self.rx_s[self._first][order]
        silence = np.diff(arrivals)
        if self.tx_s is not None:
            # a pause of the sender (descheduled on a busy TG) is silent at the receiver
            # too, yet nothing in the path stalled: only receive spacing beyond the send
            # spacing counts
            silence = silence - np.clip(np.diff(self.tx_s[self._first][order]), 0, None)
        stall_s = self.stall_threshold_ms / 1000.0
        return [
            (float(arrivals[i]), float(arrivals[i + 1])) for i in np.flatnonzero(silence > stall_s)
        ]

    @cached_property
    def outages(self) -> list[Outage]:
        """Every interruption, in time order.

        Loss spans and stalls closer together than the stall threshold are one outage:
        the stream never came back to a steady flow between them. A switch-over shows as
        a stall (frames held in the paused VM), the held frames delivered in a burst, and
        a loss span (the frames sent meanwhile) starting at the burst's last frame.
        """
        # (start, end, lost runs, open ended): a stall has no lost run
        spans: list[tuple[float, float, list[range], bool]] = [
            (a, b, [run], o) for a, b, run, o in self._loss_spans()
        ]
        spans += [(a, b, [], False) for a, b in self._stall_spans()]
        spans.sort(key=lambda w: (w[0], w[1]))
        join_s = self.stall_threshold_ms / 1000.0
        merged: list[list[Any]] = []
        for start, end, runs, open_ended in spans:
            cur = merged[-1] if merged else None
            if cur is not None and start - cur[1] < join_s:
                cur[1] = max(cur[1], end)
                # in place: a flat-out stream whose receiver falls behind has one outage
                # of 10^5 short runs, and rebuilding a tuple per run made that quadratic
                cur[2].extend(runs)
                cur[3] = cur[3] or open_ended
            else:
                merged.append([start, end, runs, open_ended])
        return [
            Outage(a, b, tuple(sorted(runs, key=lambda r: r.start)), o) for a, b, runs, o in merged
        ]

    @property
    def downtime_ms(self) -> float:
        """The longest outage, in ms (0.0 without any)."""
        return max((o.duration_ms for o in self.outages), default=0.0)

    def longest_outage(self) -> Outage | None:
        """The longest outage of the whole stream."""
        return max(self.outages, key=lambda o: o.duration_ms, default=None)

    def delivered(self, start_s: float, end_s: float) -> tuple[int, int]:
        """(sent, received) of the frames sent between two stream times.

        What the TG saw of one test step: its frames, each counted once however often it
        arrived.
        """
        if self.sent == 0 or end_s < start_s:
            return 0, 0
        when = self.send_time(np.arange(self.sent))
        sent = int(np.count_nonzero((when >= start_s) & (when <= end_s)))
        got = self.seq[self._first]
        received = int(np.count_nonzero((when[got] >= start_s) & (when[got] <= end_s)))
        return sent, received

    def arrived_between(self, start_s: float, end_s: float) -> np.ndarray:
        """Sequence numbers of this stream's frames received between two stream times."""
        mine = self.seq < self.sent
        inside = (self.rx_s >= start_s) & (self.rx_s <= end_s)
        return self.seq[mine & inside]

    # --- loss by window ---------------------------------------------------------------

    def send_time(self, seqs: np.ndarray) -> np.ndarray:
        """When frames were sent (stream seconds), lost ones included.

        Interpolated between the send stamps of the received frames around them, or taken
        from the rate when the frames carry no stamps.
        """
        seqs = np.asarray(seqs, dtype=np.int64)
        rate = self.pps or self.rate_achieved_pps
        per_frame = 1.0 / rate if rate else 0.0
        if self.tx_s is None or self.received < 2:
            return self.tx_first_s + seqs * per_frame
        known, sent_at = self.seq[self._first], self.tx_s[self._first]
        times = np.interp(seqs, known, sent_at)
        # before the first and after the last frame received: count on from the rate
        times = np.where(seqs < known[0], sent_at[0] - (known[0] - seqs) * per_frame, times)
        return np.where(seqs > known[-1], sent_at[-1] + (seqs - known[-1]) * per_frame, times)

    @cached_property
    def _extra_arrivals(self) -> np.ndarray:
        """Indexes (rx order) of every arrival of a number already received: duplicates."""
        mine = np.flatnonzero(self.seq < self.sent)
        extra = np.ones(len(self.seq), dtype=bool)
        extra[self._first] = False
        return mine[extra[mine]]

    @cached_property
    def _late_arrivals(self) -> np.ndarray:
        """Indexes (rx order) of first arrivals that came after a higher number had."""
        firsts = np.sort(self._first)
        if len(firsts) < 2:
            return np.zeros(0, dtype=np.int64)
        in_rx_order = self.seq[firsts]
        highest_before = np.maximum.accumulate(in_rx_order)[:-1]
        return firsts[1:][in_rx_order[1:] < highest_before]

    def account(self, *windows: LossWindow) -> LossAccount:
        """Split what went wrong by the windows in which the test allows it.

        An outage belongs to every window it touches (slack included); lost frames belong
        to their outage. Duplicated and reordered frames belong to a window when they
        arrived inside it. Everything else is outside, where a correct DUT loses nothing.
        """

        def lost_in(outages: list[Outage]) -> Frames:
            seqs = np.array([s for o in outages for run in o.lost_runs for s in run], np.int64)
            seqs.sort()
            return Frames("lost", seqs, self.send_time(seqs))

        inside = []
        for w in windows:
            touching = [o for o in self.outages if o.overlaps(*w.span)]
            inside.append(WindowAccount(w, touching, lost_in(touching)))
        claimed = {id(o) for w in inside for o in w.outages}
        outside = [o for o in self.outages if id(o) not in claimed]

        def arrived_outside(idx: np.ndarray, what: str) -> Frames:
            t = self.rx_s[idx]
            keep = np.ones(len(idx), dtype=bool)
            for w in windows:
                keep &= ~w.holds(t)
            return Frames(what, self.seq[idx][keep], t[keep])

        return LossAccount(
            windows=inside,
            outside_outages=outside,
            lost_outside=lost_in(outside),
            duplicated_outside=arrived_outside(self._extra_arrivals, "duplicated"),
            reordered_outside=arrived_outside(self._late_arrivals, "reordered"),
        )

    def summary(self) -> str:
        """One line for logs and reports."""
        rate = f"{self.rate_achieved_pps:.0f} pps" + (f" of {self.pps:g}" if self.pps else "")
        text = (
            f"sent {self.sent} at {rate}, received {self.received}, lost {self.lost}, "
            f"duplicated {self.duplicated}, reordered {self.reordered}, "
            f"{len(self.outages)} outage(s), longest {self.downtime_ms:.1f} ms "
            f"(resolution {self.resolution_ms:.3f} ms)"
        )
        if self.altered:
            text += f", {self.altered} altered"
        if self.tx_errors:
            text += f", {self.tx_errors} send errors ({self.tx_error})"
        return text

    def __repr__(self) -> str:
        return f"StreamResult({self.summary()})"


def _altered_frames(port: str, seen: Mapping[str, Any], order: str) -> list[AlteredFrame]:
    """The altered frames the agent listed for one port, the first with their bytes."""
    if not seen.get("altered"):
        return []
    seqs = _decode(seen["altered_seq"], "i8", order)
    offsets = _decode(seen["altered_at"], "i4", order)
    frames = [
        AlteredFrame(port, None if s < 0 else int(s), int(at))
        for s, at in zip(seqs, offsets, strict=True)
    ]
    for k, example in enumerate(seen.get("altered_examples", [])[: len(frames)]):
        frames[k] = AlteredFrame(
            port,
            example["seq"],
            example["at"],
            bytes.fromhex(example["seen"]),
            bytes.fromhex(example["expected"]),
        )
    return frames


def synthetic(
    seqs: Iterable[int],
    times: Iterable[float],
    *,
    sent: int,
    pps: float | None = None,
    **kwargs: Any,
) -> StreamResult:
    """A result from plain lists (received seqs and their receive times), for tests."""
    return StreamResult(
        sent=sent,
        seq=np.fromiter(seqs, np.int64),
        rx_s=np.fromiter(times, np.float64),
        pps=pps,
        **kwargs,
    )
