"""Analysis of a sequenced stream: loss, duplicates, reordering and gaps (downtime).

The agent's `stream` op sends frames numbered 0..sent-1 (a number is only used by a frame
that actually left the TG) and records, for every marked frame received, its sequence
number, its send time and its kernel receive time. Everything here works on those arrays,
so the same code judges a live stream and a synthetic one in a unit test.

Times are seconds since the stream started (t0, the TG's wall clock at stream start).
Events recorded on the controller with time.time() map onto that timeline with
`result.at(event_time)`.

A gap is a stretch of the timeline in which the receiver saw nothing it should have:
either sequence numbers went missing between two received frames (a loss gap: from the
receive time of the last frame before the loss to that of the first frame after it), or
the receiver saw nothing for longer than `stall_ms` beyond what the sender's own spacing
explains (a stall: frames held in a buffer, none lost; a pause of the sender is not one).
Overlapping windows merge, so one outage is one gap.
"""

from __future__ import annotations

import base64
import math
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

# A stall shorter than this many inter-frame intervals is scheduling jitter of the sender
# (Python on a shared core), not an outage; at low rates 5 ms is the floor.
STALL_INTERVALS = 10
STALL_FLOOR_MS = 5.0


@dataclass(frozen=True)
class Gap:
    """One interruption of the stream, in seconds since stream start."""

    start_s: float  # receive time of the last frame before the gap (0.0: stream start)
    end_s: float  # receive time of the first frame after it (stream end if none came)
    lost: int = 0  # sequence numbers never received that belong to this gap (exact)
    lost_seqs: range = range(0)  # first..last lost sequence number (a span; see `lost`)
    open_ended: bool = False  # nothing was received after it: the stream never recovered

    @property
    def duration_ms(self) -> float:
        return (self.end_s - self.start_s) * 1000.0

    def overlaps(self, t0: float, t1: float) -> bool:
        return self.start_s <= t1 and self.end_s >= t0

    def __str__(self) -> str:
        lost = ""
        if self.lost:
            span = self.lost_seqs
            seqs = f"{span.start}" if len(span) == 1 else f"{span.start}-{span[-1]}"
            lost = f", {self.lost} lost (seq {seqs})"
        tail = ", never recovered" if self.open_ended else ""
        return f"gap {self.duration_ms:.1f} ms at {self.start_s:.4f}-{self.end_s:.4f} s{lost}{tail}"


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
        for seen in answer["ports"].values():
            seqs.append(_decode(seen["seq"], "u4", order))
            txs.append(_decode(seen["tx"], "i8", order))
            rxs.append(_decode(seen["rx"], "i8", order))
        ports = answer["ports"]

        def cat(parts: list[np.ndarray]) -> np.ndarray:
            return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

        t0_ns = int(answer.get("t0_wall_ns", 0))
        return cls(
            sent=answer["sent"],
            seq=cat(seqs),
            # subtract in integers: float64 cannot hold absolute ns to the nanosecond
            rx_s=(cat(rxs) - t0_ns) / 1e9,
            tx_s=(cat(txs) - t0_ns) / 1e9,
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
        """Indexes (into the rx-ordered arrays) of each sequence number's first arrival,
        sorted by sequence number; numbers >= sent (another stream's frames) left out."""
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
        return self.sent - self.received

    @property
    def foreign(self) -> int:
        """Marked frames whose sequence number this stream never sent."""
        return int(np.count_nonzero(self.seq >= self.sent))

    @property
    def duplicated(self) -> int:
        return self.frames - self.foreign - self.received

    @cached_property
    def reordered(self) -> int:
        """First arrivals that came after a higher sequence number had already arrived."""
        in_rx_order = self.seq[np.sort(self._first)]
        if len(in_rx_order) < 2:
            return 0
        highest_before = np.maximum.accumulate(in_rx_order)[:-1]
        return int(np.count_nonzero(in_rx_order[1:] < highest_before))

    @cached_property
    def lost_seqs(self) -> np.ndarray:
        """Every sequence number sent and never received, ascending."""
        got = np.zeros(self.sent, dtype=bool)
        got[self.seq[self._first]] = True
        return np.flatnonzero(~got)

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

    # --- gaps ---------------------------------------------------------------------------

    @property
    def stall_threshold_ms(self) -> float:
        if self.stall_ms is not None:
            return self.stall_ms
        if math.isinf(self.resolution_ms):
            return STALL_FLOOR_MS
        return max(STALL_INTERVALS * self.resolution_ms, STALL_FLOOR_MS)

    @cached_property
    def gaps(self) -> list[Gap]:
        """Every interruption, in time order; their `lost` add up to `lost` exactly."""
        windows: list[tuple[float, float, int, int, int, bool]] = []
        stream_end = float(self.tx_last_s or 0.0)
        seqs = self.seq[self._first]  # ascending
        times = self.rx_s[self._first]
        if not len(seqs):
            if self.sent:
                windows.append((0.0, stream_end, self.sent, 0, self.sent - 1, True))
        else:
            if seqs[0] > 0:
                windows.append((0.0, float(times[0]), int(seqs[0]), 0, int(seqs[0]) - 1, False))
            # the gap ends when traffic is back: the first arrival of any later number,
            # which under reordering need not be the next number itself
            back = np.minimum.accumulate(times[::-1])[::-1]
            for i in np.flatnonzero(np.diff(seqs) > 1):
                a, b = int(seqs[i]), int(seqs[i + 1])
                ta, tb = float(times[i]), float(back[i + 1])
                windows.append((min(ta, tb), max(ta, tb), b - a - 1, a + 1, b - 1, False))
            last = int(seqs[-1])
            if last < self.sent - 1:
                start = float(times[-1])
                windows.append(
                    (
                        start,
                        max(stream_end, start),
                        self.sent - 1 - last,
                        last + 1,
                        self.sent - 1,
                        True,
                    )
                )
            order = np.argsort(times, kind="stable")
            arrivals = times[order]
            silence = np.diff(arrivals)
            if self.tx_s is not None:
                # a pause of the sender (descheduled on a busy TG) is silent at the
                # receiver too, yet nothing in the path stalled: only the receive spacing
                # beyond the send spacing counts
                silence = silence - np.clip(np.diff(self.tx_s[self._first][order]), 0, None)
            stall_s = self.stall_threshold_ms / 1000.0
            for i in np.flatnonzero(silence > stall_s):
                windows.append((float(arrivals[i]), float(arrivals[i + 1]), 0, -1, -1, False))
        windows.sort(key=lambda w: (w[0], w[1]))
        merged: list[list[Any]] = []
        for start, end, lost, first, last, open_ended in windows:
            cur = merged[-1] if merged else None
            if cur is not None and (start < cur[1] or start == cur[0]):
                cur[1] = max(cur[1], end)
                cur[2] += lost
                if lost:
                    cur[3] = first if cur[3] < 0 else min(cur[3], first)
                    cur[4] = max(cur[4], last)
                cur[5] = cur[5] or open_ended
            else:
                merged.append([start, end, lost, first, last, open_ended])
        return [
            Gap(s, e, n, range(f, la + 1) if n else range(0), o) for s, e, n, f, la, o in merged
        ]

    @property
    def downtime_ms(self) -> float:
        """The longest gap, in ms (0.0 without any)."""
        return max((g.duration_ms for g in self.gaps), default=0.0)

    def longest_gap(self) -> Gap | None:
        return max(self.gaps, key=lambda g: g.duration_ms, default=None)

    def gaps_between(self, t0: float, t1: float) -> list[Gap]:
        """Gaps overlapping [t0, t1] (stream seconds)."""
        return [g for g in self.gaps if g.overlaps(t0, t1)]

    def gap_around(self, t0: float, t1: float | None = None, *, slack: float = 0.0) -> Gap | None:
        """The longest gap overlapping the event window [t0 - slack, t1 + slack] (stream
        seconds: use `at()` for controller times), None if the stream ran through it."""
        t1 = t0 if t1 is None else t1
        found = self.gaps_between(t0 - slack, t1 + slack)
        return max(found, key=lambda g: g.duration_ms, default=None)

    def summary(self) -> str:
        """One line for logs and reports."""
        rate = f"{self.rate_achieved_pps:.0f} pps" + (f" of {self.pps:g}" if self.pps else "")
        text = (
            f"sent {self.sent} at {rate}, received {self.received}, lost {self.lost}, "
            f"duplicated {self.duplicated}, reordered {self.reordered}, "
            f"{len(self.gaps)} gap(s), downtime {self.downtime_ms:.1f} ms "
            f"(resolution {self.resolution_ms:.3f} ms)"
        )
        if self.tx_errors:
            text += f", {self.tx_errors} send errors ({self.tx_error})"
        return text

    def table(self) -> tuple[list[str], list[list[object]]]:
        """(headers, rows) of the gaps, for attach_table."""
        headers = ["start s", "end s", "duration ms", "lost", "lost seqs"]
        rows: list[list[object]] = [
            [
                f"{g.start_s:.4f}",
                f"{g.end_s:.4f}",
                f"{g.duration_ms:.2f}",
                g.lost,
                f"{g.lost_seqs.start}-{g.lost_seqs[-1]}" if g.lost else "",
            ]
            for g in self.gaps
        ]
        return headers, rows

    def __repr__(self) -> str:
        return f"StreamResult({self.summary()})"


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
        sent=sent, seq=np.fromiter(seqs, np.int64), rx_s=list(times), pps=pps, **kwargs
    )
