"""A PMD refusing the virtio path a guide-4 variant asks for fails it as "DUT refused".

Bite: the real PVP module runs its container split-vectorized set-up with the guest's
virtio device also offering mergeable buffers (virtio-pmd-refuses-vectorized); the real
PMD then logs that it disabled the vectorized path and takes another. Before, this was a
"lacks" skip that let the run sign off guide 4; now the variant fails and the summary
names the refusal.
"""

from __future__ import annotations

import json
from pathlib import Path

from framework.report.summary import SUMMARY_JSON
from tests.integration.guide_runs import run_guide

MODULE = "testsuites/test_pvp_benchmark.py"
SELECT = "container-split-vectorized and chain"


def test_a_refused_virtio_path_fails_the_variant_as_dut_refused(tmp_path: Path) -> None:
    run = run_guide(tmp_path, MODULE, "-k", SELECT, fault="virtio-pmd-refuses-vectorized")
    assert run.returncode == 1, f"a refused path fails, never skips:\n{run.output[-2000:]}"
    refused = (
        "DUT refused: split-vectorized: the virtio PMD did not take the vectorized path: "
        "disabled split ring vectorized"
    )
    assert refused in run.output, run.why
    (found,) = [p for p in tmp_path.glob(f"*/{SUMMARY_JSON}") if not p.parent.is_symlink()]
    summary = json.loads(found.read_text())
    (row,) = [r for r in summary["rows"] if r["variant"] == "container-split-vectorized"]
    assert row["status"] == "failed" and row["refused"].startswith("split-vectorized: "), row
    sign = summary["sign_off"]
    assert not sign["ok"] and 4 not in sign["guides_passed"], sign
    assert any(r.startswith("the DUT refused a step of guide 4") for r in sign["reasons"]), sign
