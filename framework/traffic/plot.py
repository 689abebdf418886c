"""A picture of a stream: received frames per time bin, with the outage in plain sight."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # tests run headless; select before pyplot is imported

import matplotlib.pyplot as plt
import numpy as np

from framework.traffic.stream import LossWindow, StreamResult

TARGET_BINS = 400  # enough to see a 100 ms gap in a 60 s stream, few enough to stay legible


def _bin_width(span_s: float, resolution_s: float) -> float:
    """A round bin width (1, 2 or 5 x 10^k s) giving about TARGET_BINS bins.

    Never below ten inter-frame intervals, where a bin count would be mostly noise.
    """
    raw = max(span_s / TARGET_BINS, 10 * resolution_s, 1e-4)
    power = 10 ** math.floor(math.log10(raw))
    for step in (1, 2, 5, 10):
        if step * power >= raw:
            return step * power
    return 10 * power


def plot_stream(
    result: StreamResult,
    path: str | Path,
    events: Sequence[tuple[float, str]] = (),
    windows: Sequence[LossWindow] = (),
    title: str = "Sequenced stream",
) -> Path:
    """Plot received frames per bin over time (seconds since stream start) to a PNG.

    `events` are (stream time, label) marks; `windows` (a migration, a failover) are
    shaded blue. Every outage is shaded red, the longest labelled with its duration and
    loss, and frames lost outside every window are marked red at the time they were
    sent. Use `result.at(time.time())` to turn controller times into stream times.
    """
    path = Path(path)
    resolution = result.resolution_ms / 1000.0 if math.isfinite(result.resolution_ms) else 1e-3
    end = max(float(result.tx_last_s or 0.0), float(result.rx_s.max()) if result.frames else 0.0)
    end = max(end, *(t for t, _ in events), *(w.end_s for w in windows), 1e-3)
    width = _bin_width(end, resolution)
    edges = np.arange(0.0, end + width, width)
    counts, _ = np.histogram(result.rx_s, bins=edges)

    fig, ax = plt.subplots(figsize=(10, 4.5), dpi=100)
    try:
        ax.stairs(counts, edges, fill=True, color="#4c72b0", alpha=0.8, label="received")
        if result.pps:
            ax.axhline(result.pps * width, color="grey", ls=":", lw=1, label="sent (requested)")
        for index, window in enumerate(windows):
            label = "loss window" if index == 0 else None
            ax.axvspan(window.start_s, window.end_s, color="#8fb3e0", alpha=0.3, label=label)
        account = result.account(*windows)
        for index, outage in enumerate(result.outages):
            label = "outage" if index == 0 else None
            # a loss of one frame lasts two frame intervals: keep it visible at any scale
            right = max(outage.end_s, outage.start_s + width / 4)
            ax.axvspan(outage.start_s, right, color="#d62728", alpha=0.35, label=label)
        longest = result.longest_outage()
        if longest is not None and longest.duration_ms > 0:
            ax.annotate(
                f"{longest.duration_ms:.1f} ms, {longest.lost} lost",
                xy=((longest.start_s + longest.end_s) / 2, 0),
                xytext=(0, 20),
                textcoords="offset points",
                ha="center",
                color="#d62728",
                fontsize=9,
            )
        if len(account.lost_outside):
            lost = account.lost_outside
            ax.plot(
                lost.times,
                np.zeros(len(lost)),
                "|",
                color="#d62728",
                markersize=14,
                label="lost outside the windows",
            )
        top = max(counts.max() if len(counts) else 0, (result.pps or 0) * width, 1)
        if result.pps:
            # A burst of held or duplicated frames (a backup port's queue handed on at a
            # failover) would flatten the steady rate: cap the scale, and say how high
            # the clipped bins go.
            cap = 4 * result.pps * width
            if top > cap:
                top = cap
                # one label per run of clipped bins: its highest
                over = np.flatnonzero(counts > cap)
                for run in np.split(over, np.flatnonzero(np.diff(over) > 1) + 1):
                    peak = run[np.argmax(counts[run])]
                    ax.text(edges[peak] + width / 2, cap, f"{counts[peak]}", ha="center",
                            va="bottom", fontsize=7, color="#4c72b0")  # fmt: skip
        for t, label in events:
            ax.axvline(t, color="black", lw=1, ls="--")
            ax.text(t, top * 1.6, f" {label}", rotation=90, va="top", fontsize=8)
        for window in windows:
            ax.text((window.start_s + window.end_s) / 2, top * 1.58, window.name,
                    ha="center", va="top", fontsize=8, color="#3a6ea5")  # fmt: skip
        ax.set_ylim(0, top * 1.6)  # headroom for the event labels
        ax.set_xlim(0, end)
        ax.set_xlabel("time since stream start (s)")
        ax.set_ylabel(f"frames per {width * 1000:g} ms")
        ax.set_title(f"{title}\n{result.summary()}", fontsize=9)
        ax.legend(loc="lower right", fontsize=8)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return path
