"""framework.traffic.checks: a stream whose sender failed cannot pass guides 1 and 2.

Bites: each case is what the TG hands back when its sender broke (nothing sent, send
errors); the loss account alone passes it (the old verdict), sender_problem does not.
"""

from __future__ import annotations

from framework.traffic.checks import sender_problem
from framework.traffic.stream import LossWindow, synthetic


def _old_verdict_passes(stream) -> bool:
    """What guides 1 and 2 asserted before: bounded outages inside, nothing outside."""
    account = stream.account(LossWindow("migration", 1.0, 2.0))
    return account.clean_outside and all(w.downtime_ms <= 1000 for w in account.windows)


def test_a_stream_that_sent_nothing_fails_with_one_line() -> None:
    silent = synthetic([], [], sent=0, pps=500)
    assert _old_verdict_passes(silent), "the loss account alone cannot see an empty stream"
    problem = sender_problem(silent)
    assert problem is not None and "sent no frame" in problem
    assert "\n" not in problem


def test_a_sender_that_reported_errors_fails_naming_the_first() -> None:
    seqs = list(range(0, 1000, 2))  # every other frame never left the TG
    stream = synthetic(seqs, [s / 500 for s in seqs], sent=1000, pps=500,
                       tx_errors=500, tx_error="ENOBUFS")  # fmt: skip
    problem = sender_problem(stream)
    assert problem is not None and "500 send error(s)" in problem and "ENOBUFS" in problem


def test_a_sender_that_worked_is_no_problem() -> None:
    seqs = list(range(1000))
    assert sender_problem(synthetic(seqs, [s / 500 for s in seqs], sent=1000, pps=500)) is None
