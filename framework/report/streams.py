"""A sequenced stream in the reports: its summary, its outages by window, and a plot."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from framework.report.attach import attach_image, attach_table, attach_text
from framework.traffic.plot import plot_stream
from framework.traffic.stream import LossWindow, StreamResult


def attach_stream(
    name: str,
    stream: StreamResult,
    windows: Sequence[LossWindow] = (),
    events: Sequence[tuple[float, str]] = (),
) -> None:
    """Attach what a stream measured: summary, loss by window, outage table and plot.

    `events` are (stream time, label) marks for the plot (QMP events, commands).
    """
    account = stream.account(*windows)
    lines = [stream.summary()]
    lines += [w.describe() for w in account.windows]
    lines.append(account.describe_outside())
    attach_text(f"{name}: stream", "\n".join(lines))
    headers, rows = account.table()
    attach_table(f"{name}: outages", headers, rows)
    with tempfile.TemporaryDirectory(prefix="howto-plot-") as tmp:
        png = plot_stream(
            stream, Path(tmp) / "stream.png", events=events, windows=windows, title=name
        )
        attach_image(f"{name}: received frames over time", png)
