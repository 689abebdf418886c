"""Guide 4's regression gate bites: a DUT forwarding only part of the traffic fails it.

The real PVP module runs twice in child pytests on a copy of the virtual topology whose
pvp section names a baseline file in a temporary directory (and short trials): first on a
correct DUT with --update-baseline, which writes the baseline and passes; then with the
host testpmd dropping 1 frame in 20 (pvp-forwards-part), which must lower NDR and fail
the gate with a message naming the result, the NDR and the baseline.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from framework.lab.leftovers import snapshot
from tests.integration.guide_runs import ROOT, run_guide

MODULE = "testsuites/test_pvp_benchmark.py"
SELECT = "container-split-mergeable and ndr"
KEY = "container/split-mergeable/q1/64B"

pytestmark = pytest.mark.slow


def _topology_with_baseline(directory: Path) -> tuple[Path, Path]:
    data = yaml.safe_load((ROOT / "topologies" / "virtual.yaml").read_text())
    baseline = directory / "baseline.json"
    data["pvp"].update(
        frame_sizes=[64], trial_s=1, relative_width=0.25, baseline=str(baseline), tolerance=0.5
    )
    topology = directory / "virtual-gate.yaml"
    topology.write_text(yaml.safe_dump(data))
    return topology, baseline


def test_partial_forwarding_lowers_ndr_and_trips_the_gate(tmp_path: Path) -> None:
    topology, baseline = _topology_with_baseline(tmp_path)
    before = snapshot()
    good = run_guide(
        tmp_path / "good", MODULE, "-k", SELECT, "--topology", str(topology), "--update-baseline"
    )
    assert good.returncode == 0, f"a correct DUT passes and writes the baseline:\n{good.why}"
    reference = json.loads(baseline.read_text())["results"][KEY]["ndr_pps"]
    assert reference > 0, f"the correct DUT's NDR is above zero ({reference})"

    bad = run_guide(
        tmp_path / "bad", MODULE, "-k", SELECT, "--topology", str(topology),
        fault="pvp-forwards-part",
    )  # fmt: skip
    assert snapshot().new_since(before) == {}, "testpmds, container and sockets are gone"
    assert bad.returncode == 1, f"a DUT losing 1 frame in 20 fails the gate:\n{bad.why}"
    assert f"FAILED {MODULE}::test_ndr_and_pdr[64B-container-split-mergeable]" in bad.output
    assert f"regression: {KEY} NDR " in bad.output, f"the gate says why:\n{bad.why}"
    assert f"below the baseline {reference:,.0f} pps of {baseline}" in bad.output, bad.why
    results = json.loads(next((tmp_path / "bad").glob("*/pvp/results.json")).read_text())
    assert results["results"][KEY]["ndr_pps"] < reference * 0.5, (
        f"partial forwarding lowers NDR: {results['results'][KEY]['ndr_pps']} vs {reference}"
    )
