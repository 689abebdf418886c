"""The conformance summary and the Allure history, as real pytest runs leave them on disk.

The demo suite stands in for guide modules (the real ones need the virtual lab and take
minutes): it has the markers, fixture variants, figures and kinds of skip they have. Its
figures come from the environment, so a second run can make one worse on purpose and
the comparison must flag it.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from framework.report.plugin import find_allure_cli
from framework.report.summary import SUMMARY_HTML, SUMMARY_JSON

ROOT = Path(__file__).resolve().parents[2]

DEMO = textwrap.dedent(
    """
    import os

    import pytest

    from framework.report.figures import record_figure
    from framework.report.outcomes import skip_not_applicable
    from framework.report.plugin import set_environment, set_topology_name


    @pytest.fixture(scope="session", autouse=True)
    def lab(pytestconfig):
        set_topology_name(pytestconfig, "demo-lab")
        set_environment(pytestconfig, {"DPDK version": "22.11.9", "NICs": "veth"})


    @pytest.fixture(params=["split", "packed"], ids=["split-virtqueue", "packed-virtqueue"])
    def ring(request):
        return request.param


    @pytest.mark.guide(2)
    def test_migration(ring):
        downtime = float(os.environ.get("DEMO_DOWNTIME_MS", "100"))
        record_figure("migration downtime", downtime, "ms", better="lower", tolerance=0.5)
        record_figure("frames received", 5000, "frames", better="higher", tolerance=0.1)
        assert downtime <= 1000, f"downtime {downtime} ms exceeds the bound 1000 ms"


    @pytest.mark.guide(2)
    @pytest.mark.parametrize("size", [64, 1518])
    def test_sizes_are_not_variants(ring, size):
        if ring == "packed" and size == 1518:
            skip_not_applicable("packed rings are measured at 64 B only")


    @pytest.mark.guide(6)
    def test_container_forwards():
        if os.environ.get("DEMO_GUIDE6") != "pass":
            assert 0 == 256, "guide: traffic crosses the container; saw 0 of 256 frames"


    @pytest.mark.guide(6)
    def test_container_needs_a_tool():
        if os.environ.get("DEMO_GUIDE6") != "pass":
            pytest.skip("the TG has no iperf3")


    @pytest.mark.guide(3)
    def test_flow_director():
        pytest.skip("topology 'demo-lab' lacks niantic (an Intel 82599 (ixgbe) NIC)")


    def test_not_a_guide():
        pass
    """
)


# What a sign-off must not overstate: guide 1 passed only with its stand-in (the real-VF
# variant lacks its NIC), guide 4's DUT refuses a path when DEMO_REFUSE is set.
SIGN_OFF_DEMO = textwrap.dedent(
    """
    import os

    import pytest

    from framework.report.outcomes import fail_refused
    from framework.report.plugin import set_topology_name


    @pytest.fixture(scope="session", autouse=True)
    def lab(pytestconfig):
        set_topology_name(pytestconfig, "demo-lab")


    LACKS_NIANTIC = "topology 'demo-lab' lacks niantic (an Intel 82599 (ixgbe) NIC)"


    @pytest.fixture(params=[
        pytest.param("vf", id="niantic-vf", marks=[pytest.mark.skip(reason=LACKS_NIANTIC),
                                                    pytest.mark.form("SR-IOV VF of an 82599")]),
        pytest.param("e1000", id="emulated-vf",
                     marks=pytest.mark.form("emulated VF", not_proven="SR-IOV not proven")),
    ])
    def vf(request):
        return request.param


    @pytest.mark.guide(1)
    def test_migration_with_a_vf(vf):
        pass


    @pytest.mark.guide(2)
    def test_migration():
        pass


    @pytest.mark.guide(4)
    def test_vectorized_path():
        if os.environ.get("DEMO_REFUSE"):
            fail_refused("vm-split-vectorized: the virtio PMD took the split-scalar path")
    """
)
# --plan is the conformance plugin's option; the demo gives the report plugin the same.
PLAN_OPTION = textwrap.dedent(
    """
    def pytest_addoption(parser):
        parser.addoption("--plan", action="store_true", default=False)
    """
)


def run_demo(
    tmp_path: Path,
    reports: Path,
    *args: str,
    env: dict[str, str] | None = None,
    source: str = DEMO,
) -> subprocess.CompletedProcess[str]:
    """One pytest run of the demo suite with the report plugin, reports under `reports`."""
    suite = tmp_path / "test_guides_demo.py"
    suite.write_text(source)
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DEMO_"))}
    child_env["PYTHONPATH"] = os.pathsep.join([str(ROOT), child_env.get("PYTHONPATH", "")])
    child_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "framework.report.plugin", "-p",
         "no:cacheprovider", "--rootdir", str(tmp_path), "--reports-dir", str(reports),
         "-o", "markers=guide(number): guide", str(suite), *args],
        check=False, cwd=tmp_path, env=child_env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def latest_summary(reports: Path) -> dict[str, Any]:
    return json.loads((reports / "latest" / SUMMARY_JSON).read_text())


def rows_by_key(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{r['guide']}/{r['variant']}": r for r in summary["rows"]}


def test_summary_has_a_row_per_guide_and_variant(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    proc = run_demo(tmp_path, reports, "--no-allure-html")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    summary = latest_summary(reports)
    rows = rows_by_key(summary)

    # Fixture ids make the variants; the test's own parameters (sizes) do not.
    split, packed = rows["2/split-virtqueue"], rows["2/packed-virtqueue"]
    assert split["status"] == "passed" and split["tests"]["passed"] == 3
    assert packed["status"] == "passed" and packed["tests"]["skipped"] == 1
    assert packed["unexpected_skips"] == [], "a not-applicable skip is expected"
    figures = {f["name"]: f["value"] for f in split["figures"]}
    assert figures == {"migration downtime": 100.0, "frames received": 5000.0}

    guide6 = rows["6/"]
    assert guide6["status"] == "failed"
    assert guide6["message"].startswith("AssertionError: guide: traffic crosses the container")
    assert guide6["message_test"] == "test_container_forwards"
    assert guide6["unexpected_skips"] == ["test_container_needs_a_tool: the TG has no iperf3"]

    guide3 = rows["3/"]
    assert guide3["status"] == "skipped" and "lacks niantic" in guide3["message"]
    for guide in (1, 4, 5, 7):
        assert rows[f"{guide}/"]["status"] == "not run", guide
    assert all(r["guide"] is not None for r in summary["rows"]), "non-guide tests have no row"

    sign = summary["sign_off"]
    assert not sign["ok"]
    assert any("1 guide variant(s) failed: guide 6" in r for r in sign["reasons"]), sign
    assert any("1 test(s) skipped unexpectedly" in r for r in sign["reasons"]), sign
    assert summary["run"]["topology"] == "demo-lab"
    assert summary["environment"]["DPDK version"] == "22.11.9"
    assert summary["previous"] is None

    run = (reports / "latest").resolve()
    page = (run / SUMMARY_HTML).read_text()
    assert "Cannot sign off a release" in page and "22.11.9" in page
    assert 'href="report.html"' in page and 'href="allure-report/index.html"' in page
    # report.html links the summary (pytest-html keeps its summary section in page data)
    assert SUMMARY_HTML in (run / "report.html").read_text()
    assert "Conformance summary (cannot sign off)" in proc.stdout


def test_a_clean_run_may_sign_off(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    proc = run_demo(tmp_path, reports, "--no-allure-html", env={"DEMO_GUIDE6": "pass"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    sign = latest_summary(reports)["sign_off"]
    assert sign["ok"], sign
    assert sign["guides_passed"] == [2, 6]
    assert (sign["guides_skipped"], sign["guides_not_run"]) == ([3], [1, 4, 5, 7])
    assert "May sign off" in (reports / "latest" / SUMMARY_HTML).read_text()


def test_second_run_is_compared_with_the_first(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    first = run_demo(tmp_path, reports, "--no-allure-html", env={"DEMO_GUIDE6": "pass"})
    assert first.returncode == 0, first.stdout + first.stderr
    first_run = (reports / "latest").resolve().name
    # Guide 2's downtime 4x worse (tolerance 50 %), guide 6 breaks.
    second = run_demo(tmp_path, reports, "--no-allure-html", env={"DEMO_DOWNTIME_MS": "400"})
    assert second.returncode == 1, second.stdout + second.stderr
    summary = latest_summary(reports)
    assert summary["previous"]["run"] == first_run
    rows = rows_by_key(summary)
    downtime = next(
        f for f in rows["2/split-virtqueue"]["figures"] if f["name"] == "migration downtime"
    )
    assert downtime["previous"] == 100.0 and downtime["value"] == 400.0
    assert "migration downtime up 300%" in downtime["regression"]
    frames = next(f for f in rows["2/split-virtqueue"]["figures"] if f["name"] == "frames received")
    assert frames["previous"] == 5000.0 and "regression" not in frames
    assert rows["6/"]["change"] == "new failure"
    assert len(summary["regressions"]) == 3, summary["regressions"]  # 2 variants + guide 6
    page = (reports / "latest" / SUMMARY_HTML).read_text()
    assert f"Regressions against run {first_run}" in page
    assert f"../{first_run}/{SUMMARY_HTML}" in page
    assert "figure(s) regressed since the previous run" in second.stdout

    # Within the tolerance (100 -> 140 ms, 50 % allowed) nothing is flagged.
    within = {"DEMO_DOWNTIME_MS": "140", "DEMO_GUIDE6": "pass"}
    third = run_demo(tmp_path, reports, "--no-allure-html", env=within)
    assert third.returncode == 0, third.stdout + third.stderr
    summary = latest_summary(reports)
    assert summary["regressions"] == [], summary["regressions"]
    assert rows_by_key(summary)["6/"]["change"] == "fixed"


def test_collect_only_writes_no_summary(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    run_demo(tmp_path, reports, "--collect-only")
    assert not reports.exists() or not list(reports.glob(f"*/{SUMMARY_JSON}"))


def test_xdist_workers_feed_the_summary(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    proc = run_demo(tmp_path, reports, "--no-allure-html", "-n", "2")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rows = rows_by_key(latest_summary(reports))
    assert rows["2/split-virtqueue"]["tests"]["passed"] == 3
    assert rows["6/"]["status"] == "failed"
    assert rows["2/split-virtqueue"]["figures"], "figures travel from the workers"


def test_allure_report_keeps_history_and_attaches_the_summary(tmp_path: Path) -> None:
    if find_allure_cli() is None:
        pytest.skip("Allure CLI not installed (scripts/setup installs it)")
    reports = tmp_path / "reports"
    for _ in range(2):
        proc = run_demo(tmp_path, reports, env={"DEMO_GUIDE6": "pass"})
        assert proc.returncode == 0, proc.stdout + proc.stderr
    history = reports / "history" / "demo-lab" / "allure-history.jsonl"
    entries = [json.loads(line) for line in history.read_text().splitlines()]
    assert len(entries) == 2, "each run appends one entry to its topology's history"
    report = (reports / "latest" / "allure-report" / "index.html").read_text()
    # the single-file report embeds the earlier run's entry and the summary attachment
    assert entries[0]["uuid"] in report
    globals_data = re.search(r'd\("widgets/globals.json","([A-Za-z0-9+/=]+)"\)', report)
    assert globals_data, "the report has a global attachments widget"
    attached = json.loads(base64.b64decode(globals_data.group(1)))["attachments"]
    assert {a["originalFileName"] for a in attached} == {SUMMARY_HTML, SUMMARY_JSON}
    assert not (reports / "latest" / ".allurerc.json").exists()


def test_summary_renders_in_a_browser(tmp_path: Path) -> None:
    from tests.integration.test_reports import _rendered

    reports = tmp_path / "reports"
    run_demo(tmp_path, reports, "--no-allure-html")
    dom = _rendered(reports / "latest" / SUMMARY_HTML)
    assert "Cannot sign off a release" in dom
    assert "guide: traffic crosses the container; saw 0 of 256 frames" in dom
    assert "migration downtime" in dom and "packed-virtqueue" in dom


def test_a_stand_in_signs_nothing_off(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    proc = run_demo(tmp_path, reports, "--no-allure-html", source=SIGN_OFF_DEMO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = latest_summary(reports)
    sign, rows = summary["sign_off"], rows_by_key(summary)
    assert rows["1/emulated-vf"]["status"] == "passed"
    assert (rows["1/emulated-vf"]["form"], rows["1/emulated-vf"]["not_proven"]) == (
        "emulated VF", "SR-IOV not proven")  # fmt: skip
    assert rows["1/niantic-vf"]["status"] == "skipped"
    # The run may sign off what it proved, and says guide 1 is not among it.
    assert sign["ok"] and sign["guides_passed"] == [2, 4], sign
    assert sign["guides_stand_in"] == [1] and 1 not in sign["guides_skipped"], sign
    assert sign["verdict"] == (
        "may sign off guide(s) 2, 4; guide 1 is not signed off: it ran as emulated VF only "
        "(SR-IOV not proven); a variant in the guide's own form must pass: niantic-vf (skipped)"
    ), sign["verdict"]
    page = (reports / "latest" / SUMMARY_HTML).read_text()
    assert "May sign off guide(s) 2, 4:" in page and "emulated VF: SR-IOV not proven" in page
    assert f"Conformance summary ({sign['verdict']})" in proc.stdout

    # With only the stand-in selected nothing is proven: no sign-off at all.
    proc = run_demo(tmp_path, reports, "--no-allure-html", "-k", "vf", source=SIGN_OFF_DEMO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    sign = latest_summary(reports)["sign_off"]
    assert not sign["ok"] and sign["guides_passed"] == [], sign
    assert any(r.startswith("no guide passed in a form that proves it: guide 1 is not signed off")
               for r in sign["reasons"]), sign  # fmt: skip


def test_a_dut_refusal_is_a_failure_that_blocks_the_sign_off(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    proc = run_demo(
        tmp_path, reports, "--no-allure-html", env={"DEMO_REFUSE": "1"}, source=SIGN_OFF_DEMO
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    summary = latest_summary(reports)
    row = rows_by_key(summary)["4/"]
    assert row["status"] == "failed" and row["tests"]["skipped"] == 0
    assert row["refused"] == "vm-split-vectorized: the virtio PMD took the split-scalar path"
    sign = summary["sign_off"]
    assert not sign["ok"] and 4 not in sign["guides_passed"]
    assert "the DUT refused a step of guide 4 test_guides_demo: vm-split-vectorized" in " ".join(
        sign["reasons"]
    ), sign
    assert "DUT refused" in (reports / "latest" / SUMMARY_HTML).read_text()


def test_a_plan_is_planned_not_passed_and_stays_out_of_the_history(tmp_path: Path) -> None:
    if find_allure_cli() is None:
        pytest.skip("Allure CLI not installed (scripts/setup installs it)")
    (tmp_path / "conftest.py").write_text(PLAN_OPTION)
    reports = tmp_path / "reports"
    proc = run_demo(tmp_path, reports, "--plan", "-k", "not vf", source=SIGN_OFF_DEMO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (
        re.search(r"\b2 planned\b", proc.stdout) and " passed" not in proc.stdout.splitlines()[-1]
    )
    summary = latest_summary(reports)
    rows = rows_by_key(summary).items()
    statuses = {key: row["status"] for key, row in rows if row["status"] != "not run"}
    assert statuses == {"2/": "planned", "4/": "planned"}, statuses
    sign = summary["sign_off"]
    assert not sign["ok"] and sign["guides_passed"] == [] and sign["guides_planned"] == [2, 4]
    assert any("--plan run" in r for r in sign["reasons"]), sign
    junit = (reports / "latest" / "junit.xml").read_text()
    assert 'skipped="2"' in junit and "planned: its commands were recorded" in junit
    history = reports / "history" / "demo-lab" / "allure-history.jsonl"
    assert not history.exists(), "a plan judged nothing: it is not part of the history"

    # A real run afterwards starts the history; the plan is not its previous run either.
    (tmp_path / "conftest.py").write_text(PLAN_OPTION)
    proc = run_demo(tmp_path, reports, "-k", "not vf", source=SIGN_OFF_DEMO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(history.read_text().splitlines()) == 1
    assert latest_summary(reports)["previous"] is None
