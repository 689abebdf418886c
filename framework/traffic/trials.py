"""Rate trials: a stream at an offered rate for a duration, and the zero-loss rate.

A trial offers frames at a rate and counts what came back. When the generator could not
send at the offered rate, the trial says so (`generator_limited`): what it lost then is
not the DUT's to answer for, and a search treats the rate as out of reach.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from framework.traffic.stream import StreamResult

# A generator that sent below this share of the offered rate did not offer it.
GENERATOR_SHORTFALL = 0.95


@dataclass(frozen=True)
class Trial:
    """One trial at an offered rate."""

    offered_pps: float
    duration_s: float
    frame_bytes: int
    sent: int
    received: int
    achieved_pps: float  # what the generator really sent

    @property
    def lost(self) -> int:
        """Frames sent and never received."""
        return self.sent - self.received

    @property
    def loss_ratio(self) -> float:
        """Lost over sent (1.0 when nothing was sent)."""
        return self.lost / self.sent if self.sent else 1.0

    @property
    def generator_limited(self) -> bool:
        """The generator sent below the offered rate: not a measurement of the DUT."""
        return self.achieved_pps < GENERATOR_SHORTFALL * self.offered_pps

    @property
    def received_pps(self) -> float:
        """Frames received per second of the trial."""
        return self.received / self.duration_s if self.duration_s else 0.0

    @property
    def received_mbit_s(self) -> float:
        """Received frames' bits per second (Ethernet frame with FCS), in Mbit/s."""
        return self.received_pps * self.frame_bytes * 8 / 1e6

    @classmethod
    def from_stream(cls, offered_pps: float, frame_bytes: int, stream: StreamResult) -> Trial:
        """A trial from a finished sequenced stream."""
        span = (stream.tx_last_s or 0.0) - stream.tx_first_s
        return cls(
            offered_pps=offered_pps,
            duration_s=span if span > 0 else 0.0,
            frame_bytes=frame_bytes,
            sent=stream.sent,
            received=stream.received,
            achieved_pps=stream.rate_achieved_pps,
        )


@dataclass(frozen=True)
class SearchResult:
    """The highest rate with no loss found, the lowest with loss, every trial run."""

    zero_loss: Trial | None  # highest offered rate that lost nothing
    first_loss: Trial | None  # lowest offered rate that lost frames
    trials: list[Trial]
    generator_limit_pps: float | None  # the generator could not offer this rate


def zero_loss_search(
    run: Callable[[float], Trial],
    rates: list[float],
    *,
    refine: int = 3,
) -> SearchResult:
    """Step up through `rates` until a trial loses frames, then bisect `refine` times.

    `run(rate)` runs one trial. A generator-limited trial ends the search there: rates
    beyond the generator's reach say nothing about the DUT.
    """
    trials: list[Trial] = []
    best: Trial | None = None
    worst: Trial | None = None
    limit: float | None = None
    steps = iter(sorted(rates))
    bisections = 0
    while True:
        if worst is None:  # stepping up
            rate = next(steps, None)
            if rate is None:
                break
        elif best is not None and bisections < refine:  # between the two
            rate = (best.offered_pps + worst.offered_pps) / 2
            bisections += 1
        else:
            break
        trial = run(rate)
        trials.append(trial)
        if trial.generator_limited:
            limit = rate
            break
        if trial.lost:
            worst = trial
        else:
            best = trial
    return SearchResult(best, worst, trials, limit)
