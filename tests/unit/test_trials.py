"""NDR/PDR through MLRsearch on trial outcomes; generator limits are not DUT loss."""

from __future__ import annotations

from framework.traffic.trials import Trial, search_rates


def _dut(capacity_pps: float, generator_max_pps: float = 1e9, lossy_pps: float | None = None):
    """A DUT that loses what exceeds its capacity, behind a generator with a ceiling.

    With lossy_pps, it also loses 0.2 % of frames from that rate on (below its capacity).
    """

    def run(rate: float, seconds: float) -> Trial:
        achieved = min(rate, generator_max_pps)
        sent = int(achieved * seconds)
        received = min(sent, int(capacity_pps * seconds))
        if lossy_pps is not None and rate >= lossy_pps:
            received = min(received, int(sent * 0.998))
        return Trial(rate, seconds, 64, sent, received, achieved)

    return run


def test_ndr_and_pdr_bracket_the_capacity() -> None:
    found = search_rates(_dut(9_000), min_pps=500, max_pps=64_000, trial_s=2.0)
    assert found.ndr.lower_pps is not None and found.ndr.upper_pps is not None
    assert 9_000 * 0.9 <= found.ndr.lower_pps <= 9_000 < found.ndr.upper_pps
    assert found.ndr.upper_pps <= found.ndr.lower_pps * 1.06, "bounds within the width"
    assert found.first_loss is not None and found.first_loss.offered_pps > 9_000
    assert all(t.duration_s <= 2.0 for t in found.trials)


def test_pdr_tolerates_what_ndr_does_not() -> None:
    found = search_rates(_dut(20_000, lossy_pps=5_000), min_pps=500, max_pps=64_000)
    assert found.ndr.lower_pps is not None and found.pdr.lower_pps is not None
    assert found.ndr.lower_pps < 5_000 < found.pdr.lower_pps


def test_a_generator_that_cannot_offer_the_rate_is_not_dut_loss() -> None:
    found = search_rates(_dut(1e9, generator_max_pps=5_000), min_pps=500, max_pps=16_000)
    assert found.generator_limited, "trials above 5000 pps are marked as the TG's limit"
    assert found.first_loss is None, "the DUT lost nothing"
    assert all(t.lost == 0 for t in found.trials)


def test_loss_at_the_lowest_rate() -> None:
    found = search_rates(_dut(capacity_pps=100), min_pps=500, max_pps=2_000)
    assert found.ndr.lower_pps is None, "even the minimum rate loses frames"
    assert found.first_loss is not None
