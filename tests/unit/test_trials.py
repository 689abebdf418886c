"""NDR/PDR through MLRsearch on trial outcomes; what the generator did not send is no rate.

The run callables below model a generator and a DUT by their counts (the Trial numbers are
the search's inputs): the search logic, its bounds and its verdict are what is tested.
"""

from __future__ import annotations

from framework.traffic.trials import (
    GENERATOR_BOUND,
    SEARCH_CEILING,
    GoalBounds,
    RateSearch,
    Trial,
    frames_due,
    search_problem,
    search_rates,
)


def _dut(capacity_pps: float, generator_max_pps: float = 1e9, lossy_pps: float | None = None):
    """A DUT that loses what exceeds its capacity, behind a generator with a ceiling.

    The generator is asked for rate * seconds frames and sends at most its ceiling's worth.
    With lossy_pps, the DUT also loses 0.2 % of frames from that rate on (below capacity).
    """

    def run(rate: float, seconds: float) -> Trial:
        intended = frames_due(rate, seconds)
        sent = min(intended, int(generator_max_pps * seconds))
        received = min(sent, int(capacity_pps * seconds))
        if lossy_pps is not None and rate >= lossy_pps:
            received = min(received, int(sent * 0.998))
        return Trial(rate, seconds, 64, sent, received, sent / seconds, intended)

    return run


def test_ndr_and_pdr_bracket_the_capacity() -> None:
    found = search_rates(_dut(9_000), min_pps=500, max_pps=64_000, trial_s=2.0)
    assert found.ndr.lower_pps is not None and found.ndr.upper_pps is not None
    assert 9_000 * 0.9 <= found.ndr.lower_pps <= 9_000 < found.ndr.upper_pps
    assert found.ndr.upper_pps <= found.ndr.lower_pps * 1.06, "bounds within the width"
    assert found.first_loss is not None and found.first_loss.offered_pps > 9_000
    assert all(t.duration_s <= 2.0 for t in found.trials)
    assert found.ndr.limit is None and found.ndr.text == f"{found.ndr.lower_pps:,.0f} pps"
    assert search_problem(found, 500) is None


def test_pdr_tolerates_what_ndr_does_not() -> None:
    found = search_rates(_dut(20_000, lossy_pps=5_000), min_pps=500, max_pps=64_000)
    assert found.ndr.lower_pps is not None and found.pdr.lower_pps is not None
    assert found.ndr.lower_pps < 5_000 < found.pdr.lower_pps
    assert search_problem(found, 500) is None


def test_a_generator_short_of_the_rate_gives_no_ndr_above_what_it_sent() -> None:
    """The issue's case: a TG sending 15 kpps when asked 40 kpps, through a lossless DUT."""
    found = search_rates(_dut(1e9, generator_max_pps=15_000), min_pps=500, max_pps=40_000,
                         trial_s=1.0, relative_width=0.1)  # fmt: skip
    for goal in (found.ndr, found.pdr):
        assert goal.lower_pps is not None and goal.lower_pps <= 15_000, (
            f"no rate above what the generator sent is loss-free: {goal}"
        )
        assert goal.limit == GENERATOR_BOUND, f"the result says the generator bounds it: {goal}"
    assert found.ndr.text == f"generator-bound: >= {found.ndr.lower_pps:,.0f} pps"
    assert found.first_loss is None, "the DUT lost nothing"
    assert all(t.lost == 0 for t in found.trials)
    top = max(found.trials, key=lambda t: t.offered_pps)
    assert top.generator_limited and top.unsent and top.missed_for_the_generator(0.0)
    assert search_problem(found, 500) is None, "a generator-bound result is a result"


def test_a_dut_slower_than_the_generator_is_not_generator_bound() -> None:
    found = search_rates(_dut(9_000, generator_max_pps=15_000), min_pps=500, max_pps=40_000,
                         trial_s=1.0, relative_width=0.1)  # fmt: skip
    assert found.ndr.lower_pps is not None and found.ndr.lower_pps <= 9_000
    assert found.ndr.limit is None, "trials between 9 and 15 kpps lost frames in the DUT"


def test_a_lossless_search_to_max_pps_is_bounded_by_the_ceiling() -> None:
    found = search_rates(_dut(1e9), min_pps=500, max_pps=4_000, trial_s=1.0)
    assert found.ndr.upper_pps is None and found.ndr.limit == SEARCH_CEILING
    assert found.ndr.text.startswith(">= 4,000 pps"), found.ndr.text


def test_loss_at_the_lowest_rate_fails_naming_the_first_lossy_trial() -> None:
    found = search_rates(_dut(capacity_pps=100), min_pps=500, max_pps=2_000, trial_s=1.0)
    assert found.ndr.lower_pps is None, "even the minimum rate loses frames"
    assert found.first_loss is not None
    problem = search_problem(found, 500)
    assert problem == (
        "NDR: no loss-free rate at or above min_pps 500 pps (the DUT lost frames); first lossy "
        "trial: offered 500 pps for 1 s: sent 500, received 100, lost 400 (80.000 %)"
    ), problem


def test_a_dut_losing_one_frame_in_a_hundred_has_no_ndr() -> None:
    def run(rate: float, seconds: float) -> Trial:
        sent = frames_due(rate, seconds)
        return Trial(rate, seconds, 64, sent, sent - sent // 100, rate, sent)

    problem = search_problem(search_rates(run, min_pps=500, max_pps=40_000, trial_s=1.0), 500)
    assert problem is not None and problem.endswith(
        "first lossy trial: offered 500 pps for 1 s: sent 500, received 495, lost 5 (1.000 %)"
    ), problem


def test_a_generator_that_cannot_offer_min_pps_gives_no_result() -> None:
    found = search_rates(_dut(1e9, generator_max_pps=300), min_pps=500, max_pps=2_000,
                         trial_s=1.0)  # fmt: skip
    problem = search_problem(found, 500)
    assert problem is not None and "(the generator could not offer it" in problem, problem
    assert "the generator sent only 300 of the 500 frames intended" in problem, problem


def test_ndr_above_pdr_is_a_contradiction() -> None:
    trial = Trial(1_000, 1.0, 64, 1_000, 1_000, 1_000, 1_000)
    found = RateSearch(GoalBounds(0.0, 2_000, 2_200), GoalBounds(0.005, 1_500, 1_650), [trial])
    assert search_problem(found, 500) == (
        "NDR 2,000 pps above PDR 1,500 pps (loss <= 0.5 %): a loss-free rate meets the PDR "
        "goal too, so the search's bounds contradict each other"
    )


def test_frames_due_is_the_stream_engines_count() -> None:
    assert frames_due(250, 1.0) == 250
    assert frames_due(333.4, 1.0) == 334
    assert frames_due(20_000, 0.5) == 10_000
