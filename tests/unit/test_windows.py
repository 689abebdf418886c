"""verify_window bites: fed what a broken DUT's stream looks like, each bound fails alone.

The streams are synthetic (`synthetic` in framework/traffic/stream.py) in the shape a
correct DUT showed in guide 2 on the virtual lab: 1000 pps, the VM's queue held and
delivered late on the destination, then the frames sent during the switch-over lost. Each
broken shape adds one thing a correct DUT does not do, and the failure names the window,
the figure, its bound and the outages.
"""

from __future__ import annotations

import re

import pytest

from framework.config.model import WindowBounds
from framework.traffic.stream import LossWindow, StreamResult, WindowAccount, synthetic
from framework.traffic.windows import (
    longest_stall_ms,
    verify_silent,
    verify_window,
    window_faults,
    with_jitter,
)

PPS = 1000
SENT = 12_000
WINDOW = LossWindow("migration", 5.0, 8.2, slack_s=0.5)
KEY = "loss_windows.guide2.migration"
# What the correct shape costs (1 outage of 371 ms, 259 lost, sent over 258 ms), with room.
BOUNDS = WindowBounds(outages=1, longest_ms=500, lost=400, loss_span_ms=400)


def _stream(drop: set[int] = frozenset(), hold: dict[int, float] | None = None) -> StreamResult:
    """A correct migration, minus the frames in `drop`, with `hold`'s frames arriving late.

    The correct shape: frames 7701-7811 held in the paused VM and delivered in a burst at
    8.0705 s, frames 7812-8070 (sent during the switch-over) lost, everything else received
    0.2 ms after it was sent.
    """
    arrival = {s: s / PPS + 0.0002 for s in range(SENT)}
    for s in range(7701, 7812):
        arrival[s] = 8.0705 + (s - 7701) * 1e-6
    arrival.update(hold or {})
    kept = [s for s in range(SENT) if not 7812 <= s <= 8070 and s not in drop]
    return synthetic(
        kept, [arrival[s] for s in kept], sent=SENT, pps=PPS, tx_s=[s / PPS for s in kept]
    )


def _window(stream: StreamResult) -> WindowAccount:
    (inside,) = stream.account(WINDOW).windows
    return inside


def _failure(stream: StreamResult, bounds: WindowBounds = BOUNDS) -> tuple[str, str]:
    """(the figures over their bounds, the whole message) of verify_window's failure."""
    with pytest.raises(AssertionError) as info:
        verify_window(_window(stream), bounds, KEY)
    message = str(info.value)
    return message.split(". ", 1)[0], message


def test_a_correct_migration_is_within_its_bounds() -> None:
    inside = _window(_stream())
    assert (len(inside.outages), inside.lost) == (1, 259)
    assert inside.downtime_ms == pytest.approx(371.0, abs=0.1)
    assert inside.loss_span_ms == pytest.approx(258.0)
    assert window_faults(inside, BOUNDS) == []
    verify_window(inside, BOUNDS, KEY)


def test_a_second_outage_in_the_window_fails_the_outage_count() -> None:
    # the VM stops for 100 ms at 6.0 s, 2 s before the switch-over, and loses nothing:
    # every other figure stays within its bound
    held = {s: 6.1 + (s - 6000) * 1e-6 for s in range(6000, 6100)}
    head, message = _failure(_stream(hold=held))
    assert (
        head == f"migration window ({KEY}): 2 outages, bound 1 (one per switch-over the step makes)"
    )
    # the outages named, the stall among them
    assert "migration window 5.000-8.200 s (+/- 500 ms): 2 outage(s)" in message
    assert re.search(r"Every outage: outage 10\d\.\d ms at 5\.99\d+-6\.100\d s, 0 lost", message)


def test_too_many_frames_lost_fails_the_loss_bound() -> None:
    bounds = WindowBounds(outages=1, longest_ms=500, lost=200, loss_span_ms=400)
    head, message = _failure(_stream(), bounds)
    assert head == f"migration window ({KEY}): 259 frames lost, bound 200"
    assert "259 lost in 1 of them, sent over 258.0 ms" in message


def test_a_longer_outage_fails_the_longest_outage_bound() -> None:
    bounds = WindowBounds(outages=1, longest_ms=300, lost=400, loss_span_ms=400)
    head, message = _failure(_stream(), bounds)
    assert head == f"migration window ({KEY}): longest outage 371.0 ms, bound 300 ms"
    assert "longest outage 371.0 ms at 7.7002-8.0712 s, 259 lost" in message


def test_loss_spread_over_the_window_fails_the_loss_span() -> None:
    # the destination drops 1 frame in 100 from 5.5 s until the switch-over: 22 frames,
    # each its own short outage, spread over 2.5 s. Allow the outages, so only the span
    # (the one-stretch check) is left to fail.
    drop = {s for s in range(5500, 7700) if s % 100 == 0}
    bounds = WindowBounds(outages=50, longest_ms=500, lost=400, loss_span_ms=400)
    head, message = _failure(_stream(drop=drop), bounds)
    assert head == (
        f"migration window ({KEY}): the lost frames were sent over 2570.0 ms, bound 400 ms "
        "(one stretch: the switch-over, not spread over the window)"
    )
    assert "23 outage(s)" in message and "281 lost in 23 of them" in message


def test_every_figure_over_its_bound_is_named() -> None:
    drop = {s for s in range(5500, 7700) if s % 100 == 0}
    tight = WindowBounds(outages=1, longest_ms=100, lost=10, loss_span_ms=10)
    head, message = _failure(_stream(drop=drop), tight)
    for part in ("23 outages, bound 1", "longest outage 371.0 ms, bound 100 ms",
                 "281 frames lost, bound 10", "sent over 2570.0 ms, bound 10 ms"):  # fmt: skip
        assert part in head
    assert "... (17 more)" in message, "the outage list is cut, and says so"


def test_jitter_allowance_hides_loss_free_stalls_not_loss() -> None:
    # a TCG guest pausing 25 ms at a time without loss while its RAM is copied
    pauses = {s: (s // 50) * 50 / PPS + 0.025 for s in range(5000, 7500) if s % 250 < 25}
    stream = _stream(hold=pauses)
    raw = _window(stream)
    assert len(raw.outages) == 11 and longest_stall_ms(raw) == pytest.approx(25.0, abs=1.5)
    judged = _window(with_jitter(stream, 40))
    assert len(judged.outages) == 1 and judged.lost == 259
    verify_window(judged, BOUNDS, KEY)
    # the allowance never lowers the stream's own threshold, and loss is an outage anyway
    assert with_jitter(stream, 1).stall_threshold_ms == stream.stall_threshold_ms
    lossy = _window(with_jitter(_stream(drop={6000}), 40))
    assert len(lossy.outages) == 2
    assert "2 outages, bound 1" in _failure(with_jitter(_stream(drop={6000}), 40))[0]


def test_frames_arriving_while_ports_are_stopped_fail_the_silence() -> None:
    """Ports that ignore `port stop`: frames sent meanwhile arrive inside the stopped span;
    frames the stopped ports held arrive after it and are no fault."""
    stopped = set(range(2000, 2500))  # sent 2.0-2.5 s, while the ports are stopped
    held = {s: 2.6 for s in range(2000, 2100)}  # buffered, delivered on start
    seqs = [s for s in range(5000) if s not in stopped or s in held]
    times = [held.get(s, s / PPS + 0.0002) for s in seqs]
    quiet = synthetic(seqs, times, sent=5000, pps=PPS)
    verify_silent(quiet, 2.05, 2.5, "stopped ports deliver nothing")  # passes
    leaking = synthetic(range(5000), [s / PPS + 0.0002 for s in range(5000)], sent=5000, pps=PPS)
    with pytest.raises(AssertionError) as failed:
        verify_silent(leaking, 2.05, 2.5, "stopped ports deliver nothing")
    text = str(failed.value)
    assert text.startswith("stopped ports deliver nothing; 450 frames arrived between "), text
    assert "(seq 2050, 2051, 2052, 2053, 2054, ...)" in text, text
