"""Guide 4's results: line rate, the 4.4 template, results.json and the regression gate."""

from __future__ import annotations

import json
from pathlib import Path

from framework.report.benchmark import (
    PvpResult,
    ResultsTemplate,
    gate,
    line_rate_pps,
    plot_results,
    record_result,
    recorded_results,
    update_baseline,
)

TEMPLATE = ResultsTemplate(
    traffic_generator="TG", acceptable_loss_pct=0.0, validation_run_time_min=1.5,
    host_dpdk="22.11.11", guest_dpdk="22.11.11", patches="none", qemu="7.2.22",
    virtio_features="mrg_rxbuf=1", cpu="CPU, 2596 MHz", nic="niantic",
)  # fmt: skip


def result(ndr: float, size: int = 64, variant: str = "container") -> PvpResult:
    return PvpResult(variant, "split-mergeable", 1, size, ndr, ndr * 1.1, 0.005, 10.0)


def test_line_rate_is_the_textbook_figure() -> None:
    assert round(line_rate_pps(10, 64)) == 14_880_952
    assert round(line_rate_pps(10, 1518)) == 812_744
    share = result(7_440_476).line_rate_share(7_440_476)
    assert share is not None and abs(share - 0.5) < 1e-6
    assert PvpResult("vm", "p", 1, 64, 1, 1, 0, None).line_rate_share(1) is None


def test_template_reads_like_the_guide() -> None:
    text = TEMPLATE.render(4.25, [])
    assert text.splitlines()[0] == "Traffic Generator: TG"
    assert "Acceptable Loss: 0%" in text and "Validation run time: 1.5min" in text
    assert text.splitlines()[-1] == "Result: 4.2500 Mpps"
    assert TEMPLATE.render(1, ["host: no isolated CPUs"]).endswith(
        "Result: 1.0000 Mpps (untuned: host: no isolated CPUs)"
    )


def test_results_json_keeps_every_result_and_the_plot_draws_them(tmp_path: Path) -> None:
    for size, ndr in ((64, 20_000), (1518, 18_000)):
        record_result(tmp_path, result(ndr, size), TEMPLATE, {"guide": "4"})
    record_result(tmp_path, result(9_000, 64, "vm"), TEMPLATE, {"guide": "4"})
    data = json.loads((tmp_path / "results.json").read_text())
    assert sorted(data["results"]) == [
        "container/split-mergeable/q1/1518B", "container/split-mergeable/q1/64B",
        "vm/split-mergeable/q1/64B",
    ]  # fmt: skip
    assert data["results"]["vm/split-mergeable/q1/64B"]["template"]["result_mpps"] == 0.009
    assert {r.key for r in recorded_results(tmp_path)} == set(data["results"])
    png = plot_results(recorded_results(tmp_path), tmp_path / "pvp.png", "t")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_gate_fails_below_tolerance_and_names_both_figures(tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.json"
    assert gate(result(1), baseline, 0.1) is None, "no baseline file: nothing to compare"
    update_baseline(baseline, result(10_000))
    assert gate(result(9_000), baseline, 0.1) is None, "10 % below, tolerance 10 %"
    problem = gate(result(8_999), baseline, 0.1)
    assert problem is not None and problem.startswith(
        "regression: container/split-mergeable/q1/64B NDR 8,999 pps is 10% below the baseline "
        "10,000 pps of"
    )
    assert gate(result(0), baseline, 0.1) is not None, "nothing without loss: fails"
    assert gate(result(5_000, 1518), baseline, 0.1) is None, "no baseline for that key"
    update_baseline(baseline, result(5_000))
    assert gate(result(5_000), baseline, 0.1) is None, "--update-baseline moved the reference"


def test_a_generator_bound_result_is_not_reported_as_the_duts_rate(tmp_path: Path) -> None:
    bound = PvpResult("container", "split-mergeable", 1, 64, 14_900, 15_200, 0.005, None,
                      ndr_limit="generator", pdr_limit="generator")  # fmt: skip
    assert bound.ndr_text == "generator-bound: >= 14,900 pps"
    assert result(21_000).ndr_text == "21,000 pps"
    assert TEMPLATE.render(0.0149, [], "generator").endswith(
        "Result: >= 0.0149 Mpps (generator-bound: the traffic generator could not offer more; "
        "not the DUT's rate)"
    )
    record_result(tmp_path, bound, TEMPLATE, {"guide": "4"})
    (entry,) = json.loads((tmp_path / "results.json").read_text())["results"].values()
    assert entry["ndr_limit"] == "generator" and entry["template"]["result_limit"] == "generator"
    assert recorded_results(tmp_path)[0].ndr_limit == "generator"
