"""Rate trials: a stream at an offered rate for a duration, and NDR/PDR searches.

A trial offers frames at a rate and counts what came back. When the generator could not
send at the offered rate, the trial says so (`generator_limited`): what it lost then is
not the DUT's to answer for, and a search treats the rate as out of reach.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from MLRsearch import (
    AbstractMeasurer,
    Config,
    MeasurementResult,
    MultipleLossRatioSearch,
    SearchGoal,
)
from scapy.packet import Packet

from framework.traffic.generator import TrafficGenerator
from framework.traffic.packets import DEFAULT_MARKER
from framework.traffic.stream import StreamResult

log = logging.getLogger("howto.traffic")

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
class TrialFlow:
    """One sequenced stream of a trial: sent on tx_port, counted on rx_port."""

    tx_port: str
    rx_port: str
    template: Packet
    marker: bytes


class TrialRunner(Protocol):
    """What runs rate trials: `runner(rate_pps, seconds) -> Trial`.

    StreamTrials (the stream engine on the TG host) runs them here; a lab whose TG must
    reach line rate plugs in a DPDK-based generator with the same call.
    """

    frame_bytes: int

    def __call__(self, rate_pps: float, seconds: float) -> Trial:
        """One trial at rate_pps for `seconds`."""
        ...


@dataclass
class StreamTrials:
    """Trials with the stream engine on the TG host: `trials(rate_pps, seconds)`.

    One sequenced stream per flow, each at an equal share of the rate and with its own
    marker, so that flows can take different queues or directions and are counted apart.
    Frames from a flow's own tx port MAC (flooded back by a switch) are not counted.
    """

    tg: TrafficGenerator
    flows: list[TrialFlow]
    frame_bytes: int

    def __call__(self, rate_pps: float, seconds: float) -> Trial:
        """One trial: every flow for `seconds` at rate_pps in total."""
        share = rate_pps / len(self.flows)
        runs = [
            self.tg.start_stream(
                flow.tx_port,
                flow.template,
                flow.rx_port,
                pps=share,
                duration=seconds,
                marker=flow.marker,
                ignore_src=self.tg.mac_of(flow.tx_port),
            )  # fmt: skip
            for flow in self.flows
        ]
        parts = [Trial.from_stream(share, self.frame_bytes, run.wait()) for run in runs]
        return Trial(
            offered_pps=rate_pps,
            duration_s=max(t.duration_s for t in parts),
            frame_bytes=self.frame_bytes,
            sent=sum(t.sent for t in parts),
            received=sum(t.received for t in parts),
            achieved_pps=sum(t.achieved_pps for t in parts),
        )


def flow_markers(n: int) -> list[bytes]:
    """N distinct stream markers as long as the default one (HOWTA, HOWTB, ...)."""
    return [DEFAULT_MARKER[:-1] + bytes([0x41 + i]) for i in range(n)]


@dataclass(frozen=True)
class GoalBounds:
    """What the search found for one loss ratio: the highest rate meeting it and above."""

    loss_ratio: float
    lower_pps: float | None  # None: even the lowest rate lost more
    upper_pps: float | None  # None: even the highest rate met the goal


@dataclass(frozen=True)
class RateSearch:
    """NDR (no loss) and PDR (loss ratio <= pdr_loss_ratio), and every trial run."""

    ndr: GoalBounds
    pdr: GoalBounds
    trials: list[Trial]

    @property
    def first_loss(self) -> Trial | None:
        """The lowest-rate trial that lost frames (not for the generator's shortfall)."""
        lossy = [t for t in self.trials if t.lost and not t.generator_limited]
        return min(lossy, key=lambda t: t.offered_pps) if lossy else None

    @property
    def generator_limited(self) -> list[Trial]:
        """Trials where the generator could not send at the offered rate."""
        return [t for t in self.trials if t.generator_limited]


class _Measurer(AbstractMeasurer):
    """MLRsearch's view of our trials: frames sent and received, nothing else."""

    def __init__(self, run: Callable[[float, float], Trial]) -> None:
        self.run = run
        self.trials: list[Trial] = []

    def measure(self, intended_duration: float, intended_load: float) -> MeasurementResult:
        trial = self.run(intended_load, intended_duration)
        self.trials.append(trial)
        # Loss is what the DUT lost of what was sent: a generator that sent less than
        # asked shows up as generator_limited in the trial list, not as DUT loss.
        return MeasurementResult(
            intended_duration=intended_duration,
            intended_load=intended_load,
            offered_count=trial.sent,
            forwarding_count=trial.received,
            offered_duration=trial.duration_s or intended_duration,
        )


def search_rates(
    run: Callable[[float, float], Trial],
    *,
    min_pps: float,
    max_pps: float,
    pdr_loss_ratio: float = 0.005,
    trial_s: float = 2.0,
    relative_width: float = 0.05,
    timeout_s: float = 600.0,
) -> RateSearch:
    """NDR and PDR between min_pps and max_pps with MLRsearch (the method FD.io CSIT uses).

    `run(rate_pps, seconds)` runs one trial. Trials last trial_s (one per bound: a lab
    wanting more confidence raises it); the search stops when each goal's bounds are
    within relative_width of each other.
    """
    goals = [
        SearchGoal(
            loss_ratio=ratio,
            relative_width=relative_width,
            initial_trial_duration=min(1.0, trial_s),
            final_trial_duration=trial_s,
            duration_sum=trial_s,
            preceding_targets=1,
            fail_fast=False,
        )
        for ratio in (0.0, pdr_loss_ratio)
    ]
    config = Config()
    config.goals = goals
    config.min_load = min_pps
    config.max_load = max_pps
    config.search_duration_max = timeout_s
    config.warmup_duration = None
    measurer = _Measurer(run)
    found = MultipleLossRatioSearch(config).search(measurer, debug=log.debug)

    def bounds(goal: SearchGoal) -> GoalBounds:
        result = found[goal]
        low, high = result.relevant_lower_bound, result.relevant_upper_bound
        return GoalBounds(
            goal.loss_ratio, float(low) if low else None, float(high) if high else None
        )

    return RateSearch(bounds(goals[0]), bounds(goals[1]), measurer.trials)
