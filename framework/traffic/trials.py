"""Rate trials: a stream at an offered rate for a duration, and NDR/PDR searches.

A trial intends a number of frames (the offered rate times the duration), counts those
the generator really sent and those that came back. MLRsearch is given the intended count,
as FD.io CSIT gives it: frames the generator did not send count against the trial like
frames the DUT lost, so a rate the generator could not offer is never a loss-free rate.
When a search's bound comes from the generator (every trial above it missed only for
frames never sent), the result says so (`limit == "generator"`): the DUT's own rate is
then at least that bound, not that bound.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from MLRsearch import (
    AbstractMeasurer,
    Config,
    MeasurementResult,
    MultipleLossRatioSearch,
    SearchGoal,
)
from scapy.packet import Packet

from framework.traffic.generator import TrafficGenerator
from framework.traffic.packets import DEFAULT_MARKER, Transform, unchanged
from framework.traffic.stream import StreamResult
from framework.verify import VerifyFailed

log = logging.getLogger("howto.traffic")

# A generator that sent below this share of the offered rate did not offer it.
GENERATOR_SHORTFALL = 0.95
# What bounds a goal's result when the DUT's loss does not.
GENERATOR_BOUND = "generator"  # every trial above it missed only for frames never sent
SEARCH_CEILING = "max_pps"  # even the highest rate searched met the goal


def frames_due(pps: float, seconds: float) -> int:
    """Frames a paced stream of `seconds` at `pps` is asked to send: those due in [0, s).

    The stream engine's rule (ceil(seconds * pps)); a trial intends exactly these.
    """
    return math.ceil(seconds * pps - 1e-9)


@dataclass(frozen=True)
class Trial:
    """One trial at an offered rate."""

    offered_pps: float
    duration_s: float
    frame_bytes: int
    sent: int
    received: int
    achieved_pps: float  # what the generator really sent
    intended: int  # frames the trial was to send: the offered rate times its duration
    # frames received but not as the forwarding should deliver them (checked whole by the
    # stream engine; a generator that cannot check says 0): not forwarded, for the search
    altered: int = 0
    # the first altered frames: seq, port, first differing byte (StreamResult's words)
    altered_detail: str = field(default="", compare=False)

    @property
    def lost(self) -> int:
        """Frames sent and never received."""
        return self.sent - self.received

    @property
    def unsent(self) -> int:
        """Frames the trial intended and the generator never sent."""
        return max(self.intended - self.sent, 0)

    @property
    def loss_ratio(self) -> float:
        """Lost over sent: the DUT's loss (1.0 when nothing was sent)."""
        return self.lost / self.sent if self.sent else 1.0

    @property
    def search_loss_ratio(self) -> float:
        """What MLRsearch judges: lost and unsent frames over the intended ones."""
        total = max(self.intended, self.sent)
        return (self.lost + self.unsent) / total if total else 1.0

    @property
    def generator_limited(self) -> bool:
        """The generator did not send every intended frame, or sent them below the rate."""
        return bool(self.unsent) or self.achieved_pps < GENERATOR_SHORTFALL * self.offered_pps

    def misses(self, loss_ratio: float) -> bool:
        """Whether the trial missed a goal of this loss ratio (unsent frames count)."""
        return self.search_loss_ratio > loss_ratio

    def missed_for_the_generator(self, loss_ratio: float) -> bool:
        """It missed the goal only for frames never sent: the DUT met it on what it got."""
        return self.misses(loss_ratio) and bool(self.unsent) and self.loss_ratio <= loss_ratio

    def describe(self) -> str:
        """`offered 500 pps for 1 s: sent 500, received 498, lost 2 (0.400 %)`, unsent too."""
        text = (
            f"offered {self.offered_pps:,.0f} pps for {self.duration_s:.2g} s: sent "
            f"{self.sent:,}, received {self.received:,}, lost {self.lost:,} "
            f"({100 * self.loss_ratio:.3f} %)"
        )
        if self.altered:
            text += f", {self.altered:,} of them altered"
            if self.altered_detail:
                text += f" ({self.altered_detail})"
        if self.unsent:
            text += (
                f"; the generator sent only {self.sent:,} of the {self.intended:,} frames "
                f"intended ({self.achieved_pps:,.0f} pps)"
            )
        return text

    @property
    def received_pps(self) -> float:
        """Frames received per second of the trial."""
        return self.received / self.duration_s if self.duration_s else 0.0

    @property
    def received_mbit_s(self) -> float:
        """Received frames' bits per second (Ethernet frame with FCS), in Mbit/s."""
        return self.received_pps * self.frame_bytes * 8 / 1e6

    @classmethod
    def from_stream(
        cls, offered_pps: float, seconds: float, frame_bytes: int, stream: StreamResult
    ) -> Trial:
        """A trial from a finished sequenced stream asked for offered_pps during `seconds`."""
        span = (stream.tx_last_s or 0.0) - stream.tx_first_s
        return cls(
            offered_pps=offered_pps,
            duration_s=span if span > 0 else 0.0,
            frame_bytes=frame_bytes,
            sent=stream.sent,
            received=stream.received,
            achieved_pps=stream.rate_achieved_pps,
            intended=frames_due(offered_pps, seconds),
            altered=stream.altered,
            altered_detail=stream.describe_altered(limit=2) if stream.altered else "",
        )


@dataclass(frozen=True)
class TrialFlow:
    """One sequenced stream of a trial: sent on tx_port, counted on rx_port."""

    tx_port: str
    rx_port: str
    template: Packet
    marker: bytes
    expect: Transform = unchanged  # what the DUT's forwarding makes of a frame


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
                expect=flow.expect,
            )  # fmt: skip
            for flow in self.flows
        ]
        parts = [Trial.from_stream(share, seconds, self.frame_bytes, run.wait()) for run in runs]
        return Trial(
            offered_pps=rate_pps,
            duration_s=max(t.duration_s for t in parts),
            frame_bytes=self.frame_bytes,
            sent=sum(t.sent for t in parts),
            received=sum(t.received for t in parts),
            achieved_pps=sum(t.achieved_pps for t in parts),
            intended=sum(t.intended for t in parts),
            altered=sum(t.altered for t in parts),
            altered_detail="; ".join(t.altered_detail for t in parts if t.altered_detail),
        )


def flow_markers(n: int) -> list[bytes]:
    """N distinct stream markers as long as the default one (HOWTA, HOWTB, ...)."""
    return [DEFAULT_MARKER[:-1] + bytes([0x41 + i]) for i in range(n)]


def rate_text(pps: float | None, limit: str | None) -> str:
    """`23,700 pps`, `generator-bound: >= 14,900 pps`, `>= 40,000 pps (max_pps...)`, `none`."""
    if not pps:
        return "none"
    if limit == GENERATOR_BOUND:
        return f"generator-bound: >= {pps:,.0f} pps"
    if limit == SEARCH_CEILING:
        return f">= {pps:,.0f} pps (max_pps, the search's ceiling)"
    return f"{pps:,.0f} pps"


@dataclass(frozen=True)
class GoalBounds:
    """What the search found for one loss ratio: the highest rate meeting it and above.

    `limit` says what bounds the result when it is not the DUT: GENERATOR_BOUND (every
    trial above lower_pps missed the goal only for frames the generator never sent, so the
    DUT's rate is at least lower_pps and unknown above) or SEARCH_CEILING (even max_pps met
    it); None when the DUT's own loss bounds it.
    """

    loss_ratio: float
    lower_pps: float | None  # None: even the lowest rate lost more
    upper_pps: float | None  # None: even the highest rate met the goal
    limit: str | None = None

    @property
    def text(self) -> str:
        """The result as reported: see rate_text."""
        return rate_text(self.lower_pps, self.limit)


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
    def first_altered(self) -> Trial | None:
        """The lowest-rate trial in which frames arrived altered."""
        altered = [t for t in self.trials if t.altered]
        return min(altered, key=lambda t: t.offered_pps) if altered else None

    def first_miss(self, loss_ratio: float) -> Trial | None:
        """The lowest-rate trial that missed a goal (lost frames, or the generator's)."""
        missed = [t for t in self.trials if t.misses(loss_ratio)]
        return min(missed, key=lambda t: t.offered_pps) if missed else None

    @property
    def generator_limited(self) -> list[Trial]:
        """Trials where the generator could not send at the offered rate."""
        return [t for t in self.trials if t.generator_limited]


def goal_limit(
    loss_ratio: float, lower_pps: float | None, upper_pps: float | None, trials: list[Trial]
) -> str | None:
    """What bounds a goal's result if not the DUT: GENERATOR_BOUND, SEARCH_CEILING or None."""
    if lower_pps is None:
        return None
    if upper_pps is None:
        return SEARCH_CEILING
    above = [t for t in trials if t.offered_pps > lower_pps and t.misses(loss_ratio)]
    if above and all(t.missed_for_the_generator(loss_ratio) for t in above):
        return GENERATOR_BOUND
    return None


def search_problem(found: RateSearch, min_pps: float) -> str | None:
    """Why a search has no result to report, or None.

    A result is a loss-free rate at or above min_pps (the lowest rate the topology
    searches), and NDR at most PDR (a rate without loss also meets PDR's loss ratio). A
    frame that arrived altered, at any rate, is no forwarding: the search has no result.
    """
    damaged = found.first_altered
    if damaged is not None:
        return (
            f"frames arrived altered (not as the forwarding delivers them); first trial with "
            f"altered frames: {damaged.describe()}"
        )
    ndr, pdr = found.ndr.lower_pps, found.pdr.lower_pps
    if ndr is None or ndr < min_pps:
        first = found.first_miss(0.0)
        if first is None:
            return f"NDR: no loss-free rate at or above min_pps {min_pps:,.0f} pps, and no trial"
        why = (
            "the generator could not offer it: no measurement of the DUT"
            if first.missed_for_the_generator(0.0)
            else "the DUT lost frames"
        )
        return (
            f"NDR: no loss-free rate at or above min_pps {min_pps:,.0f} pps ({why}); first "
            f"lossy trial: {first.describe()}"
        )
    if pdr is None or ndr > pdr:
        return (
            f"NDR {ndr:,.0f} pps above PDR {pdr or 0:,.0f} pps (loss <= "
            f"{100 * found.pdr.loss_ratio:g} %): a loss-free rate meets the PDR goal too, so "
            "the search's bounds contradict each other"
        )
    return None


def trial_problems(trial: Trial) -> list[str]:
    """Why a trial is not a clean measurement of the DUT, then the trial: empty if it is."""
    if not trial.sent:
        return [f"the TG sent nothing: no measurement ({trial.describe()})"]
    problems = []
    if trial.generator_limited:
        problems.append("the TG could not offer the rate: no measurement of the DUT")
    if trial.lost:
        problems.append(f"{trial.lost:,} of {trial.sent:,} frames lost")
    if trial.altered:
        problems.append(f"{trial.altered:,} of {trial.received:,} frames arrived altered")
    return [*problems, trial.describe()] if problems else []


def verify_trial(trial: Trial, what: str) -> None:
    """The generator delivered the trial and the DUT lost and altered nothing of it."""
    if problems := trial_problems(trial):
        raise VerifyFailed(f"{what}; {'; '.join(problems)}")


def verify_search(found: RateSearch, what: str, min_pps: float) -> None:
    """The search has a result to report (see search_problem); `what` names the search."""
    if problem := search_problem(found, min_pps):
        raise VerifyFailed(f"{what}: {problem}")


class _Measurer(AbstractMeasurer):
    """MLRsearch's view of our trials: frames intended, sent and received."""

    def __init__(self, run: Callable[[float, float], Trial]) -> None:
        self.run = run
        self.trials: list[Trial] = []

    def measure(self, intended_duration: float, intended_load: float) -> MeasurementResult:
        trial = self.run(intended_load, intended_duration)
        self.trials.append(trial)
        # As CSIT does: the intended count is what the trial was to send, so frames the
        # generator never sent count against the rate like frames the DUT lost (a rate
        # nobody offered is no loss-free rate). Frames sent beyond it are no loss.
        return MeasurementResult(
            intended_duration=intended_duration,
            intended_load=intended_load,
            offered_count=trial.sent,
            forwarding_count=trial.received - trial.altered,  # a damaged frame is no forwarding
            offered_duration=trial.duration_s or intended_duration,
            intended_count=max(trial.intended, trial.sent),
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
        lower, upper = (float(low) if low else None), (float(high) if high else None)
        limit = goal_limit(goal.loss_ratio, lower, upper, measurer.trials)
        return GoalBounds(goal.loss_ratio, lower, upper, limit)

    return RateSearch(bounds(goals[0]), bounds(goals[1]), measurer.trials)
