"""The zero-loss search steps and bisects on trial outcomes; generator limits end it."""

from __future__ import annotations

from framework.traffic.trials import Trial, zero_loss_search


def _dut(capacity_pps: float, generator_max_pps: float = 1e9):
    """A DUT that loses what exceeds its capacity, behind a generator with a ceiling."""
    ran: list[float] = []

    def run(rate: float) -> Trial:
        ran.append(rate)
        achieved = min(rate, generator_max_pps)
        sent = int(achieved * 2)
        received = min(sent, int(capacity_pps * 2))
        return Trial(rate, 2.0, 64, sent, received, achieved)

    return run, ran


def test_steps_up_until_loss_then_bisects() -> None:
    run, ran = _dut(capacity_pps=9_000)
    result = zero_loss_search(run, [1000, 2000, 4000, 8000, 16000], refine=3)
    assert ran == [1000, 2000, 4000, 8000, 16000, 12000, 10000, 9000]
    assert result.zero_loss is not None and result.zero_loss.offered_pps == 9000
    assert result.first_loss is not None and result.first_loss.offered_pps == 10000
    assert result.generator_limit_pps is None


def test_a_generator_that_cannot_offer_the_rate_is_not_dut_loss() -> None:
    run, ran = _dut(capacity_pps=1e9, generator_max_pps=5000)
    result = zero_loss_search(run, [1000, 4000, 8000, 16000])
    assert ran == [1000, 4000, 8000], "the search stops at the generator's limit"
    assert result.generator_limit_pps == 8000
    assert result.first_loss is None, "nothing the DUT lost"
    assert result.zero_loss is not None and result.zero_loss.offered_pps == 4000
    assert result.trials[-1].generator_limited


def test_loss_at_the_first_rate() -> None:
    run, _ = _dut(capacity_pps=500)
    result = zero_loss_search(run, [1000, 2000])
    assert result.zero_loss is None and result.first_loss is not None
    assert result.first_loss.loss_ratio == 0.5
    assert result.first_loss.received_mbit_s == 500 * 64 * 8 / 1e6
