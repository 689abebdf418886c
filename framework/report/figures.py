"""A guide's key figures (downtime, loss, NDR...), recorded by tests for the run's summary.

A figure travels on the test's report as a user property ("figure", JSON), so it crosses
from xdist workers to the controller and shows in JUnit too. The conformance summary
(`framework.report.summary`) puts it in the guide's row and compares it with the previous
run on the same topology: `better` says which way is a regression, `tolerance` (relative)
and `slack` (absolute, in the figure's unit) how much worse is still noise.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Literal

from framework.report.attach import current_item

FIGURE_PROPERTY = "figure"
# "info": shown and compared, never a regression (a count that depends on how long the
# steps took, such as the frames a stream carried)
Better = Literal["lower", "higher", "info"]


@dataclass(frozen=True)
class Figure:
    """One measured value of a guide, with what counts as worse."""

    name: str  # e.g. "migration downtime"; unique within a test
    value: float
    unit: str  # ms, frames, pps...
    better: Better
    tolerance: float = 0.25  # relative change tolerated before a regression is flagged
    slack: float = 0.0  # absolute change (in `unit`) always tolerated

    def to_json(self) -> str:
        """The user-property value: compact JSON."""
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Figure:
        """Parse a user-property value written by to_json."""
        data = json.loads(text)
        return cls(**data)

    def regression_from(self, previous: float) -> str | None:
        """Why this value is a regression from `previous`, or None if it is not."""
        if self.better == "info":
            return None
        worse = self.value - previous if self.better == "lower" else previous - self.value
        allowed = max(self.tolerance * abs(previous), self.slack)
        if worse <= allowed:
            return None
        direction = "up" if self.value > previous else "down"
        change = f"{abs(self.value - previous) / abs(previous):.0%}" if previous else "from 0"
        return (
            f"{self.name} {direction} {change}: {format_value(self.value, self.unit)} vs "
            f"{format_value(previous, self.unit)} (tolerated: {self.tolerance:.0%}"
            f"{f' or {format_value(self.slack, self.unit)}' if self.slack else ''})"
        )


def format_value(value: float, unit: str) -> str:
    """'126.3 ms', '21,400 pps', '0 frames'."""
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        text = f"{int(value):,}"
    elif abs(value) >= 100:
        text = f"{value:,.0f}"
    else:
        text = f"{value:.1f}"
    return f"{text} {unit}".strip()


def record_figure(
    name: str,
    value: float,
    unit: str,
    *,
    better: Better,
    tolerance: float = 0.25,
    slack: float = 0.0,
) -> Figure:
    """Record a key figure of the running test for the conformance summary.

    Call it where the test has measured the value, before its asserts on it, so that a
    failing run still shows what it measured.

    Raises:
        RuntimeError: outside a running test.
    """
    item = current_item()
    if item is None:
        raise RuntimeError(f"record_figure({name!r}) outside a test")
    figure = Figure(name, float(value), unit, better, tolerance, slack)
    item.user_properties.append((FIGURE_PROPERTY, figure.to_json()))
    return figure
