"""Judging one loss window: did the DUT cost no more there than a correct DUT does?

A test names the windows in which it allows an outage (a migration, a failover; see
`LossWindow`), and the stream's account gives, per window, its outages and lost frames
(`WindowAccount`). `verify_window` holds that account against the window's bounds from the
topology (`loss_windows` in topologies/*.yaml, defaults measured on the virtual lab by
benchmarks/loss_windows.py): how many outages, the longest, the frames lost, and whether
the lost frames were sent in one stretch (the switch-over) or spread over the window.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from framework.config.model import WindowBounds
from framework.traffic.stream import LossAccount, Outage, StreamResult, WindowAccount
from framework.verify import VerifyFailed, verdict


def with_jitter(stream: StreamResult, jitter_ms: float | None) -> StreamResult:
    """The stream as its loss windows are judged: silences up to `jitter_ms` are no outage.

    A TCG guest's forwarding pauses for 10-30 ms at a time while its RAM is copied,
    without losing a frame; at the stream's own threshold (10 frame intervals) each pause
    is an outage, and a correct DUT's migration shows a dozen. The topology's jitter
    allowance (`loss_windows.guideN.jitter_ms`, measured) raises the threshold, never
    lowers it; a lost frame is an outage whatever the threshold.
    """
    if jitter_ms is None or jitter_ms <= stream.stall_threshold_ms:
        return stream
    return dataclasses.replace(stream, stall_ms=jitter_ms)


def longest_stall_ms(account: WindowAccount) -> float:
    """The window's longest outage that lost nothing (0.0: none): the jitter to allow for."""
    return max((o.duration_ms for o in account.outages if not o.lost), default=0.0)


def window_faults(account: WindowAccount, bounds: WindowBounds) -> list[str]:
    """Each figure of the window that exceeds its bound, in words; empty: within bounds."""
    faults = []
    if len(account.outages) > bounds.outages:
        faults.append(
            f"{len(account.outages)} outages, bound {bounds.outages} "
            "(one per switch-over the step makes)"
        )
    if account.downtime_ms > bounds.longest_ms:
        faults.append(
            f"longest outage {account.downtime_ms:.1f} ms, bound {bounds.longest_ms:g} ms"
        )
    if account.lost > bounds.lost:
        faults.append(f"{account.lost} frames lost, bound {bounds.lost}")
    if account.loss_span_ms > bounds.loss_span_ms:
        faults.append(
            f"the lost frames were sent over {account.loss_span_ms:.1f} ms, bound "
            f"{bounds.loss_span_ms:g} ms (one stretch: the switch-over, not spread over the "
            "window)"
        )
    return faults


def verify_window(account: WindowAccount, bounds: WindowBounds, key: str = "") -> None:
    """Assert that one loss window cost no more than its bounds allow.

    `key` names where the bounds come from (e.g. "loss_windows.guide2.migration"), so a
    failure says which topology setting it was held against.

    Raises:
        AssertionError: naming the window, every figure over its bound with the bound, and
            the window's outages.
    """
    where = f" ({key})" if key else ""
    promise = f"the {account.window.name} window{where} is within {bounds}"
    _verify_window(account, bounds, where, promise)


@verdict
def _verify_window(account: WindowAccount, bounds: WindowBounds, where: str, what: str) -> None:
    """verify_window's judgement; `what` is its promise, as a --plan run records it."""
    faults = window_faults(account, bounds)
    if not faults:
        return
    outages = "; ".join(str(o) for o in account.outages[:6])
    if len(account.outages) > 6:
        outages += f"; ... ({len(account.outages) - 6} more)"
    raise VerifyFailed(
        f"{account.window.name} window{where}: {'; '.join(faults)}. "
        f"{account.describe()}. Every outage: {outages}"
    )


def late_outages(account: WindowAccount, within_s: float) -> list[Outage]:
    """The window's outages still on `within_s` after its end, or that never ended."""
    deadline = account.window.end_s + within_s
    return [o for o in account.outages if o.open_ended or o.end_s > deadline]


@verdict
def verify_resumed(account: WindowAccount, what: str, *, within_s: float) -> None:
    """Assert that the stream came back by `within_s` after its window's end.

    An outage that touches a window is the window's, however long it runs on: without
    bounds on the window (an event of unknown length), this is the check that the stream
    did not stop for good (an open-ended outage) or come back only long after.
    """
    deadline = account.window.end_s + within_s
    if late := late_outages(account, within_s):
        raise VerifyFailed(
            f"{what}; {account.window.name} ended at {account.window.end_s:.3f} s, the "
            f"stream is back only after: {'; '.join(str(o) for o in late[:3])}",
            expected=f"every outage over by {deadline:.3f} s ({within_s:g} s after it)",
        )


@verdict
def verify_silent(stream: StreamResult, start_s: float, end_s: float, what: str) -> None:
    """Assert that none of the stream's frames arrived between two stream times.

    What a stopped path delivers: frames the ports buffered before they stopped arrive
    once they start again, not while they are stopped.
    """
    arrived = stream.arrived_between(start_s, end_s)
    if len(arrived):
        seqs = ", ".join(str(s) for s in arrived[:5]) + (", ..." if len(arrived) > 5 else "")
        raise VerifyFailed(
            f"{what}; {len(arrived)} frames arrived between {start_s:.3f} s and {end_s:.3f} s "
            f"(seq {seqs})",
            expected=f"no frame of the stream between {start_s:.3f} s and {end_s:.3f} s",
        )


@verdict
def verify_clean_outside(
    account: LossAccount,
    what: str,
    *,
    judged: Sequence[tuple[WindowAccount, WindowBounds]] = (),
) -> None:
    """Assert that nothing was lost, duplicated or reordered outside every window.

    `account` is at full resolution (no jitter allowance: it would join steady loss into
    a window). A fault that shows outside may also cost a window more than its bounds (a
    VM held paused re-delivers frames after the window): each of `judged` over its bounds
    is named in the same failure, so neither hides the other.

    Raises:
        AssertionError: `what`, then the first lost, duplicated and reordered frames
            outside, then the windows over their bounds.
    """
    if account.clean_outside:
        return
    message = f"{what}; {account.describe_outside()}"
    for inside, bounds in judged:
        if faults := window_faults(inside, bounds):
            message += f"; and in the {inside.window.name} window: {'; '.join(faults)}"
    raise VerifyFailed(message)
