"""A picture of a stream: received frames per time bin, with the outage in plain sight."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # tests run headless; select before pyplot is imported

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from framework.traffic.stream import StreamResult  # noqa: E402

TARGET_BINS = 400  # enough to see a 100 ms gap in a 60 s stream, few enough to stay legible


def _bin_width(span_s: float, resolution_s: float) -> float:
    """A round bin width (1, 2 or 5 x 10^k s) giving about TARGET_BINS bins, and never
    below ten inter-frame intervals, where a bin count would be mostly noise."""
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
    window: tuple[float, float] | None = None,
    title: str = "Sequenced stream",
) -> Path:
    """Plot received frames per bin over time (seconds since stream start) to a PNG.

    `events` are (stream time, label) marks, `window` an event window (a migration)
    shaded in blue; the longest gap is shaded red and labelled with its duration. Use
    `result.at(time.time())` to turn controller times into stream times.
    """
    path = Path(path)
    resolution = result.resolution_ms / 1000.0 if math.isfinite(result.resolution_ms) else 1e-3
    end = max(float(result.tx_last_s or 0.0), float(result.rx_s.max()) if result.frames else 0.0)
    end = max(end, *(t for t, _ in events), window[1] if window else 0.0, 1e-3)
    width = _bin_width(end, resolution)
    edges = np.arange(0.0, end + width, width)
    counts, _ = np.histogram(result.rx_s, bins=edges)

    fig, ax = plt.subplots(figsize=(10, 4.5), dpi=100)
    try:
        ax.stairs(counts, edges, fill=True, color="#4c72b0", alpha=0.8, label="received")
        if result.pps:
            ax.axhline(result.pps * width, color="grey", ls=":", lw=1, label="sent (requested)")
        if window is not None:
            ax.axvspan(*window, color="#8fb3e0", alpha=0.3, label="event window")
        gap = result.longest_gap()
        if gap is not None and gap.duration_ms > 0:
            ax.axvspan(gap.start_s, gap.end_s, color="#d62728", alpha=0.35, label="longest gap")
            ax.annotate(
                f"{gap.duration_ms:.1f} ms, {gap.lost} lost",
                xy=((gap.start_s + gap.end_s) / 2, 0),
                xytext=(0, 20),
                textcoords="offset points",
                ha="center",
                color="#d62728",
                fontsize=9,
            )
        top = max(counts.max() if len(counts) else 0, (result.pps or 0) * width, 1)
        for t, label in events:
            ax.axvline(t, color="black", lw=1, ls="--")
            ax.text(t, top * 1.6, f" {label}", rotation=90, va="top", fontsize=8)
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
