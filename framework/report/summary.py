"""The conformance summary of a run: one row per guide and variant, and a sign-off verdict.

Written as `summary.json` and `summary.html` in the run directory, from the test reports
the controller receives (on xdist too). A row's identity comes from the test module's
`guide(N)` marker, the module and the ids of the module's parametrized fixtures (its
variants: `emulated-vf`, `packed-virtqueue`, `container-split-mergeable`...); its figures
from `framework.report.figures`. The previous real run on the same topology (not a plan,
no injected fault) found under the reports root is the reference the figures are compared
with.
"""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from framework.dpdk.ledger import Sent
from framework.report.commands import command_table, sent_of
from framework.report.drift import Drift, drift_table, drifts_of
from framework.report.figures import FIGURE_PROPERTY, Figure, format_value
from framework.report.findings import Observation, findings_table, observations_of
from framework.report.outcomes import (
    LACKS,
    NOT_APPLICABLE,
    PLANNED,
    refusal,
    short_reason,
    skip_kind,
)

SUMMARY_JSON = "summary.json"
SUMMARY_HTML = "summary.html"
SCHEMA = 1

# DPDK 17.05 HowTo Guides, by chapter.
GUIDES: dict[int, str] = {
    1: "Live Migration of VM with SR-IOV VF",
    2: "Live Migration of VM with Virtio on host running vhost_user",
    3: "Flow Bifurcation How-to Guide",
    4: "PVP reference benchmark setup using testpmd",
    5: "VF daemon (VFd)",
    6: "Virtio_user for Container Networking",
    7: "Virtio_user as Exceptional Path",
}

FIGURE_FIELDS = ("name", "value", "unit", "better", "tolerance", "slack")
GUIDE_PROPERTY = "guide"
VARIANT_PROPERTY = "variant"
TESTBED_PROPERTY = "testbed"
DPDK_PROPERTY = "dpdk"
BUILD_PROPERTY = "dpdk_build"  # the name of the DPDK build the test ran on
# The form a variant runs the guide in (pytest.mark.form), and what a stand-in does not
# prove: a guide passed only by stand-ins is not signed off.
FORM_PROPERTY = "form"
NOT_PROVEN_PROPERTY = "not_proven"
OUTCOMES = ("passed", "failed", "error", "skipped", "planned", "not selected", "not run")

# Environment keys shown first in "What was tested", in this order.
HEADER_KEYS = ("DPDK version", "testpmd", "Topology", "NICs", "QEMU", "Controller kernel")


def item_identity(item: pytest.Item) -> tuple[int | None, str]:
    """(guide number or None, variant) of a test item.

    The variant is made of the ids of the item's parametrized fixtures (a guide module's
    set-ups), not of the test's own parameters (frame sizes, cases), which are measurements
    within a variant.
    """
    marker = item.get_closest_marker("guide")
    guide = int(marker.args[0]) if marker is not None and marker.args else None
    ids: list[str] = []
    # Only a parametrized Function has a callspec (pytest sets the attribute then).
    callspec = getattr(item, "callspec", None)
    if isinstance(item, pytest.Function) and callspec is not None:
        defs = item._fixtureinfo.name2fixturedefs
        for name, index in callspec.indices.items():
            fixturedef = defs.get(name, [None])[-1]
            if fixturedef is None or fixturedef.params is None:
                continue  # a test's own @parametrize argument
            ids.append(_param_id(fixturedef, index))
        if "dpdk_build" in callspec.params:  # parametrized by the plugin, one per DPDK build
            ids.append(str(callspec.params["dpdk_build"]))
    return guide, "-".join(ids)


def item_form(item: pytest.Item) -> tuple[str, str]:
    """(form, what it does not prove) from the item's `form` marker; ("", "") without one.

    `@pytest.mark.form("emulated VF", not_proven="SR-IOV not proven")` on a variant that
    stands in for what the guide describes; `form("SR-IOV VF of an 82599")` on one that
    is the real thing.
    """
    marker = item.get_closest_marker("form")
    if marker is None or not marker.args:
        return "", ""
    return str(marker.args[0]), str(marker.kwargs.get("not_proven", ""))


def _param_id(fixturedef: Any, index: int) -> str:
    param = fixturedef.params[index]
    given = getattr(param, "id", None)  # pytest.param(..., id=...)
    if given:
        return str(given)
    ids = fixturedef.ids
    if isinstance(ids, Sequence) and not isinstance(ids, str) and index < len(ids):
        return str(ids[index])
    if callable(ids):
        made = ids(param)
        if made is not None:
            return str(made)
    return str(getattr(param, "values", [param])[0])


def module_of(nodeid: str) -> str:
    """'testsuites/test_vfd_i40e.py::...' -> 'test_vfd_i40e'."""
    return nodeid.split("::", 1)[0].rsplit("/", 1)[-1].removesuffix(".py")


@dataclass
class TestRecord:
    """What became of one test of the run."""

    nodeid: str
    guide: int | None
    variant: str
    outcome: str = "not run"  # one of OUTCOMES
    message: str = ""  # a failure's first line, a skip's reason, why it was not selected
    skip_kind: str = ""  # LACKS, NOT_APPLICABLE or "" (unexpected)
    testbed: str = ""
    dpdk: str = ""  # the release found on the DUT, once a test of the process asked
    build: str = ""  # the topology's name of that DPDK build
    drift: list[Drift] = field(default_factory=list)  # guide commands and what ran
    observed: list[Observation] = field(default_factory=list)  # answers, for the findings
    sent: list[Sent] = field(default_factory=list)  # lines sent to testpmds, for the ledger
    duration_s: float = 0.0
    figures: list[Figure] = field(default_factory=list)
    form: str = ""  # the form the variant runs the guide in, where it names one
    not_proven: str = ""  # what a stand-in form does not prove ("" for the real thing)

    @property
    def module(self) -> str:
        """The test module's name."""
        return module_of(self.nodeid)

    @property
    def name(self) -> str:
        """The test's name within its module (class and parameters included)."""
        return self.nodeid.split("::", 1)[-1]


def _first_line(text: str, limit: int = 400) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    line = lines[0] if lines else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _failure_line(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        # "framework.verify.VerifyFailed: ..." reads as "VerifyFailed: ..." in the summary
        return _first_line(re.sub(r"^(?:\w+\.)+(?=\w+(?:: |$))", "", crash.message))
    return _first_line(str(report.longrepr))


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return _first_line(str(longrepr[2]).removeprefix("Skipped: "))
    return _first_line(str(longrepr))


class Collector:
    """Folds the reports of a run's tests into one TestRecord per test."""

    def __init__(self) -> None:
        self.records: dict[str, TestRecord] = {}
        self._seen: set[tuple[str, str]] = set()

    def add_not_run(
        self, nodeid: str, guide: int | None, variant: str, not_selected: str = ""
    ) -> None:
        """A test collected but not run: deselected, or left out by the topology's selection.

        `not_selected` says which declared selection left it out ("" for -k, -m...).
        """
        record = self.records.setdefault(nodeid, TestRecord(nodeid, guide, variant))
        if not_selected:
            record.outcome, record.message = "not selected", not_selected

    def add_report(self, report: pytest.TestReport) -> None:
        """Fold in one phase's report (setup, call or teardown); a repeat is ignored."""
        if (report.nodeid, report.when) in self._seen:
            return
        self._seen.add((report.nodeid, report.when))
        props = dict(report.user_properties)
        guide = props.get(GUIDE_PROPERTY)
        record = self.records.get(report.nodeid)
        if record is None:
            record = TestRecord(report.nodeid, None, "")
            self.records[report.nodeid] = record
        if guide not in (None, ""):
            record.guide = int(str(guide))
            record.variant = str(props.get(VARIANT_PROPERTY, ""))
        record.testbed = str(props.get(TESTBED_PROPERTY, record.testbed))
        record.dpdk = str(props.get(DPDK_PROPERTY, record.dpdk))
        record.build = str(props.get(BUILD_PROPERTY, record.build))
        if drift := drifts_of(report.user_properties):
            record.drift = drift  # a later phase carries every entry of the earlier
        if observed := observations_of(report.user_properties):
            record.observed = observed
        if sent := sent_of(report.user_properties):
            record.sent = sent
        record.form = str(props.get(FORM_PROPERTY, record.form))
        record.not_proven = str(props.get(NOT_PROVEN_PROPERTY, record.not_proven))
        record.duration_s += float(getattr(report, "duration", 0.0) or 0.0)
        figures = [
            Figure.from_json(str(v)) for k, v in report.user_properties if k == FIGURE_PROPERTY
        ]
        if figures:
            record.figures = figures  # a later phase carries every figure of the earlier
        if getattr(report, "wasxfail", ""):
            # outcomes.known_defect: a guide promise broken by a known defect is a failure
            # for the sign-off, whatever pytest's XFAIL says about the run's exit status
            record.outcome, record.message = "failed", _first_line(str(report.wasxfail))
        elif report.failed:
            if record.outcome not in ("failed", "error"):
                record.outcome = "failed" if report.when == "call" else "error"
                prefix = "" if report.when == "call" else f"{report.when}: "
                record.message = prefix + _failure_line(report)
        elif report.skipped:
            if record.outcome in ("not run", "passed"):
                record.message = _skip_reason(report)
                record.skip_kind = skip_kind(record.message)
                # a --plan test recorded its commands and judged nothing: not a pass
                record.outcome = "planned" if record.skip_kind == PLANNED else "skipped"
        elif report.when == "call" and record.outcome == "not run":
            record.outcome = "passed"


@dataclass
class Row:
    """One guide and variant of the run."""

    guide: int
    title: str
    module: str
    variant: str
    status: str  # passed | failed | skipped | planned | not selected | not run
    tests: dict[str, int]
    message: str = ""  # the first failure's line, or why it was skipped
    message_test: str = ""
    unexpected_skips: list[str] = field(default_factory=list)  # "test: reason"
    figures: list[dict[str, Any]] = field(default_factory=list)
    testbeds: list[str] = field(default_factory=list)
    dpdk: list[str] = field(default_factory=list)  # DPDK releases the tests ran on
    duration_s: float = 0.0
    change: str = ""  # vs the previous run: "new failure", "fixed", ""
    form: str = ""  # the form the variant ran the guide in (e.g. "emulated VF")
    not_proven: str = ""  # a stand-in's: what its pass does not prove; it signs nothing off
    refused: str = ""  # the failure is the DUT refusing a step: what it refused
    not_selected: list[str] = field(default_factory=list)  # "test: the selection's reason"

    @property
    def stand_in(self) -> bool:
        """Whether the row ran a stand-in for what the guide describes."""
        return bool(self.not_proven)

    @property
    def key(self) -> str:
        """What a row is matched by across runs."""
        return f"{self.guide}/{self.module}/{self.variant}"


def _row_status(records: list[TestRecord]) -> tuple[str, str, str]:
    for wanted in ("failed", "error"):
        bad = [r for r in records if r.outcome == wanted]
        if bad:
            return "failed", bad[0].message, bad[0].name
    if any(r.outcome == "passed" for r in records):
        return "passed", "", ""
    planned = [r for r in records if r.outcome == "planned"]
    if planned:
        return "planned", "--plan: commands recorded, no verdict judged", ""
    skipped = [r for r in records if r.outcome == "skipped"]
    if skipped:
        lacking = [r for r in skipped if r.skip_kind == LACKS] or skipped
        return "skipped", lacking[0].message, lacking[0].name
    left_out = [r for r in records if r.outcome == "not selected"]
    if left_out and len(left_out) == len(records):
        return "not selected", left_out[0].message, left_out[0].name
    return "not run", "deselected", ""


def build_rows(records: Iterable[TestRecord]) -> list[Row]:
    """Rows per guide, module and variant, plus a 'not run' row per guide with none."""
    groups: dict[tuple[int, str, str], list[TestRecord]] = {}
    for record in records:
        if record.guide is None:
            continue  # not a guide test (framework self-tests run through the plugin too)
        groups.setdefault((record.guide, record.module, record.variant), []).append(record)
    rows = []
    for (guide, module, variant), members in sorted(groups.items()):
        status, message, message_test = _row_status(members)
        counts = {k: sum(r.outcome == k for r in members) for k in OUTCOMES}
        unexpected = [
            f"{r.name}: {r.message}"
            for r in members
            if r.outcome == "skipped" and r.skip_kind not in (LACKS, NOT_APPLICABLE)
        ]
        figures = [
            {"test": r.name, "key": f"{r.nodeid}::{f.name}", **asdict(f)}
            for r in members
            for f in r.figures
        ]
        formed = next((r for r in members if r.form), None)
        rows.append(
            Row(
                guide, GUIDES.get(guide, f"guide {guide}"), module, variant, status, counts,
                message, message_test, unexpected, figures,
                sorted({r.testbed for r in members if r.testbed}),
                sorted({r.dpdk for r in members if r.dpdk}),
                round(sum(r.duration_s for r in members), 3),
                form=formed.form if formed else "",
                not_proven=formed.not_proven if formed else "",
                refused=refusal(message) if status == "failed" else "",
                not_selected=[f"{r.name}: {r.message}" for r in members
                              if r.outcome == "not selected"],
            )
        )  # fmt: skip
    seen = {row.guide for row in rows}
    for guide, title in GUIDES.items():
        if guide not in seen:
            rows.append(Row(guide, title, "", "", "not run", {}, "not selected in this run"))
    rows.sort(key=lambda r: (r.guide, r.module, r.variant))
    return rows


def _names(rows: Iterable[Row]) -> str:
    return ", ".join(f"guide {r.guide} {r.module} {r.variant}".rstrip() for r in rows)


def _stand_in_line(guide: int, rows: list[Row]) -> str:
    """'guide 1 is not signed off: it ran as emulated VF only (SR-IOV not proven)'."""
    ran = [r for r in rows if r.guide == guide and r.status == "passed" and r.stand_in]
    forms = "; ".join(dict.fromkeys(f"{r.form} only ({r.not_proven})" for r in ran))
    real = [r for r in rows if r.guide == guide and not r.stand_in and r.variant]
    needs = ", ".join(f"{r.variant} ({r.status})" for r in real)
    line = f"guide {guide} is not signed off: it ran as {forms}"
    return line + (f"; a variant in the guide's own form must pass: {needs}" if needs else "")


def _sign_off(rows: list[Row], run: Mapping[str, Any]) -> dict[str, Any]:
    reasons = []
    if run.get("stopped"):
        reasons.append(f"the run stopped: {run['stopped']}")
    if run.get("plan"):
        reasons.append(
            "a --plan run: nothing was sent to a DUT and no verdict was judged "
            "(its tests are planned, not passed)"
        )
    if run.get("faults"):
        reasons.append(f"faults injected on purpose: {', '.join(run['faults'])}")
    if run.get("exit_status") == 2:
        reasons.append("the run was interrupted")
    refused = [r for r in rows if r.status == "failed" and r.refused]
    failed = [r for r in rows if r.status == "failed" and not r.refused]
    if failed:
        reasons.append(f"{len(failed)} guide variant(s) failed: {_names(failed)}")
    for row in refused:
        reasons.append(f"the DUT refused a step of {_names([row])}: {row.refused}")
    unexpected = sum(len(r.unexpected_skips) for r in rows)
    if unexpected:
        reasons.append(f"{unexpected} test(s) skipped unexpectedly (not for a missing capability)")
    failed_guides = {r.guide for r in failed + refused}
    passed_rows = [r for r in rows if r.status == "passed"]
    # A guide is signed off only by a variant in its own form, never by a stand-in alone.
    passed = sorted({r.guide for r in passed_rows if not r.stand_in} - failed_guides)
    stand_in = sorted({r.guide for r in passed_rows if r.stand_in} - set(passed) - failed_guides)
    stand_in_lines = [_stand_in_line(g, rows) for g in stand_in]
    if not passed and not run.get("plan"):
        reasons.append(
            "no guide passed in a form that proves it: " + "; ".join(stand_in_lines)
            if stand_in
            else "no guide passed"
        )
    planned = sorted({r.guide for r in rows if r.status == "planned"} - failed_guides)
    done = set(passed) | failed_guides | set(stand_in) | set(planned)
    lacking = sorted({r.guide for r in rows if r.status == "skipped"} - done)
    not_run = sorted({r.guide for r in rows} - done - set(lacking))
    ok = not reasons
    if ok:
        verdict = f"may sign off guide(s) {_guides(passed)}"
        verdict += "".join(f"; {line}" for line in stand_in_lines)
    else:
        verdict = "cannot sign off: " + "; ".join(reasons)
    return {
        "ok": ok,
        "verdict": verdict,  # one line: what the run signs off, exactly
        "reasons": reasons,
        "guides_passed": passed,  # signed off: a variant in the guide's own form passed
        "guides_stand_in": stand_in,  # passed only with a stand-in: not signed off
        "stand_in": stand_in_lines,
        "guides_planned": planned,  # --plan: commands recorded, nothing judged
        "guides_skipped": lacking,  # every test skipped (the topology lacks what they need)
        "guides_not_run": not_run,  # not selected
    }


def compare(rows: list[Row], previous: Mapping[str, Any] | None) -> list[str]:
    """Fill each figure's previous value and flag regressions; mark status changes.

    Returns:
        One line per regression, for the header.
    """
    if previous is None:
        return []
    old_figures = {
        f["key"]: f["value"] for row in previous.get("rows", []) for f in row.get("figures", [])
    }
    old_status = {
        f"{r['guide']}/{r['module']}/{r['variant']}": r["status"] for r in previous.get("rows", [])
    }
    lines = []
    for row in rows:
        was = old_status.get(row.key)
        if row.status == "failed" and was == "passed":
            row.change = "new failure"
            lines.append(f"guide {row.guide} {row.module} {row.variant}: passed before, fails now")
        elif row.status == "passed" and was == "failed":
            row.change = "fixed"
        for fig in row.figures:
            if fig["key"] not in old_figures:
                continue
            prev = float(old_figures[fig["key"]])
            fig["previous"] = prev
            figure = Figure(**{k: fig[k] for k in FIGURE_FIELDS})
            why = figure.regression_from(prev)
            if why:
                fig["regression"] = why
                lines.append(f"{fig['test']}: {why}")
    return lines


def find_previous(root: Path, topology: str, this_run: str) -> tuple[Path, dict[str, Any]] | None:
    """The latest earlier real run on the same topology with a summary under root."""
    best: tuple[float, Path, dict[str, Any]] | None = None
    for path in root.glob(f"*/{SUMMARY_JSON}"):
        if path.parent.name == this_run or path.parent.is_symlink():
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # a run still writing, or not ours
        run = data.get("run", {})
        if (
            data.get("schema") != SCHEMA
            or run.get("topology") != topology
            or run.get("plan")
            or run.get("faults")
            or not run.get("ran_tests")
            or not any(r.get("status") in ("passed", "failed") for r in data.get("rows", []))
        ):
            continue
        finished = float(run.get("finished", 0))
        if best is None or finished > best[0]:
            best = (finished, path.parent, data)
    return (best[1], best[2]) if best else None


def build_summary(
    records: Iterable[TestRecord],
    run: dict[str, Any],
    environment: Mapping[str, str],
    previous: tuple[Path, dict[str, Any]] | None,
) -> dict[str, Any]:
    """The summary as a JSON-able dict (what summary.json holds)."""
    records = list(records)
    rows = build_rows(records)
    builds = list(dict.fromkeys(r.build for r in records if r.build))
    drift = drift_table(
        ((r.guide, r.build, d) for r in records if r.guide is not None for d in r.drift), builds
    )
    findings = findings_table(
        ((r.guide, r.build, o) for r in records if r.guide is not None for o in r.observed),
        builds,
    )
    commands = command_table(
        ((r.guide, r.build, c) for r in records if r.guide is not None for c in r.sent), builds
    )
    regressions = compare(rows, previous[1] if previous else None)
    return {
        "schema": SCHEMA,
        "run": run,
        "environment": dict(environment),
        "sign_off": _sign_off(rows, run),
        "previous": (
            {"run": previous[0].name, "summary": f"../{previous[0].name}/{SUMMARY_HTML}"}
            if previous
            else None
        ),  # fmt: skip
        "regressions": regressions,
        "rows": [asdict(r) | {"key": r.key} for r in rows],
        "builds": builds,
        "drift": drift,
        "findings": findings,
        "commands": commands,
    }


def tested_a_guide(summary: Mapping[str, Any]) -> bool:
    """Whether some guide test ran in the run (a self-test run has none)."""
    return any(
        r["status"] in ("passed", "failed", "skipped", "planned") and r["tests"]
        for r in summary["rows"]
    )


def write_summary(run_dir: Path, summary: Mapping[str, Any]) -> tuple[Path, Path]:
    """Write summary.json and summary.html into the run directory."""
    json_path = run_dir / SUMMARY_JSON
    html_path = run_dir / SUMMARY_HTML
    json_path.write_text(json.dumps(summary, indent=1, sort_keys=False) + "\n")
    html_path.write_text(render_html(summary))
    return json_path, html_path


# -- HTML ------------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;
color:#1d232a;background:#f6f7f9}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:22px 0 8px}
.sub{color:#5b6470;margin-bottom:14px}
.verdict{padding:12px 16px;border-radius:6px;font-size:16px;font-weight:600;margin:12px 0}
.ok{background:#dff3e4;color:#14532d;border:1px solid #9ad3a8}
.no{background:#fde2e1;color:#7f1d1d;border:1px solid #f2a7a4}
.verdict ul{margin:6px 0 0;font-weight:400;font-size:14px}.verdict li{white-space:pre-line}
table{border-collapse:collapse;background:#fff;width:100%;box-shadow:0 1px 2px #0001}
th,td{border:1px solid #dde1e6;padding:6px 8px;text-align:left;vertical-align:top}
td.guide{width:170px;background:#fafbfc}
th{background:#eef1f4;font-weight:600}
.env td:first-child{width:220px;color:#3b434c;white-space:nowrap}
.passed{color:#166534;font-weight:600}.failed{color:#b91c1c;font-weight:600}
.skipped{color:#92400e;font-weight:600}.notrun,.notselected{color:#6b7280;font-weight:600}
.planned{color:#1e40af;font-weight:600}.form{font-size:13px;margin-top:3px}
.msg{color:#3b434c;font-size:13px;margin-top:3px;max-width:420px}
.fig{white-space:nowrap}.reg{color:#b91c1c;font-weight:600}.prev{color:#6b7280}
.links a{margin-right:14px}.num{text-align:right;white-space:nowrap}
.tag{display:inline-block;padding:0 6px;border-radius:3px;background:#fde2e1;color:#7f1d1d;
font-size:12px;margin-left:4px}
"""


def _e(value: object) -> str:
    return html.escape(str(value))


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"{seconds} s"


def _case(test: str, variant: str) -> str:
    """The test's own parameters, without the variant the row already names: '64B'."""
    if "[" not in test:
        return ""
    params = test.split("[", 1)[1].rstrip("]")
    if variant and variant in params:
        params = params.replace(variant, "").strip("-").replace("--", "-")
    return params


def _figure_cell(figures: list[dict[str, Any]], variant: str) -> str:
    parts = []
    for fig in figures:
        value = format_value(fig["value"], fig["unit"])
        case = _case(fig["test"], variant)
        label = f"{fig['name']}{f' ({case})' if case else ''}"
        text = f"{_e(label)}: <b>{_e(value)}</b>"
        if "previous" in fig:
            was = format_value(fig["previous"], fig["unit"])
            text += f' <span class="prev">(was {_e(was)})</span>'
        if "regression" in fig:
            text += f' <span class="reg" title="{_e(fig["regression"])}">regression</span>'
        parts.append(f'<div class="fig">{text}</div>')
    return "".join(parts) or '<span class="prev">none</span>'


def _dpdk_cell(row: Mapping[str, Any]) -> str:
    versions = row.get("dpdk") or []
    return f"<br>DPDK {_e(', '.join(versions))}" if versions else ""


def _left_out(entries: list[str]) -> dict[str, list[str]]:
    """'test: why' entries grouped by why."""
    grouped: dict[str, list[str]] = {}
    for entry in entries:
        test, _, why = entry.partition(": ")
        grouped.setdefault(why, []).append(test)
    return grouped


def _guides(numbers: list[int]) -> str:
    return ", ".join(map(str, numbers)) or "none"


def _coverage(sign: Mapping[str, Any]) -> str:
    stand_ins = "".join(f" {line[0].upper()}{line[1:]}." for line in sign.get("stand_in", []))
    parts = []
    if sign.get("guides_planned"):
        parts.append(f"planned only (--plan): {_guides(sign['guides_planned'])}")
    if sign["guides_skipped"]:
        parts.append(
            f"skipped, the topology lacks what they need: {_guides(sign['guides_skipped'])}"
        )
    if sign["guides_not_run"]:
        parts.append(f"not selected: {_guides(sign['guides_not_run'])}")
    return stand_ins + ((" Not tested: " + "; ".join(parts) + ".") if parts else "")


def _table_head(title: str, sub: str, headers: Sequence[str]) -> list[str]:
    """A section of the summary: its title, a line on what it counts, a table's head row."""
    return [
        f"<h2>{_e(title)}</h2>",
        f'<div class="sub">{_e(sub)}</div>',
        "<table><tr>" + "".join(f"<th>{_e(h)}</th>" for h in headers) + "</tr>",
    ]


_DIFFERS = '<span class="tag">differs between builds</span>'


def _build_cells(
    builds: Sequence[str], items: Mapping[str, Iterable[str]], sep: str = "<br>", empty: str = ""
) -> str:
    """One cell per build: its `items` (HTML already) joined by `sep`, `empty` if none."""
    return "".join(f"<td>{sep.join(items.get(b, [])) or empty}</td>" for b in builds)


def _drift_html(drift: Sequence[Mapping[str, Any]], builds: Sequence[str]) -> list[str]:
    """The guides' commands and what ran in their place on each build, differences first."""
    if not drift:
        return []
    differ = sum(1 for row in drift if row["differs"])
    out = _table_head(
        "The guides' commands and what ran",
        f"{len(drift)} guide commands ran another way than the guide wrote them; {differ} of "
        "them differently from one DPDK build to another.",
        ["Guide", "The guide's command (17.05)", *(f"ran on {b}" for b in builds), "Why"],
    )
    for row in sorted(drift, key=lambda r: (not r["differs"], r["guide"])):
        ran = _build_cells(builds, {b: map(_e, v) for b, v in row["ran"].items()}, empty="—")
        why = "<br>".join(f"{_e(b)}: {_e(w)}" for b, w in row["why"].items())
        tag = _DIFFERS if row["differs"] else ""
        out.append(
            f"<tr><td>{row['guide']}</td><td><code>{_e(row['command'])}</code>{tag}</td>"
            f"{ran}<td>{why}</td></tr>"
        )
    out.append("</table>")
    return out


def _findings_html(findings: Sequence[Mapping[str, Any]], builds: Sequence[str]) -> list[str]:
    """The same commands answered on several builds, those answered differently first."""
    if not findings:
        return []
    differ = [row for row in findings if row["differs"]]
    out = _table_head(
        "Findings: the same command answered otherwise",
        f"{len(findings)} answers compared between DPDK builds; {len(differ)} differ.",
        ["Guide", "What", *builds],
    )
    for row in sorted(findings, key=lambda r: (not r["differs"], r["guide"])):
        outputs = {b: [f"<pre>{_e(o)}</pre>" for o in v] for b, v in row["outputs"].items()}
        cells = _build_cells(builds, outputs, "", "—")
        tag = _DIFFERS if row["differs"] else ""
        out.append(
            f"<tr><td>{row['guide']}</td><td>{_e(row['what'])}<br>"
            f"<code>{_e(row['command'])}</code>{tag}</td>{cells}</tr>"
        )
    out.append("</table>")
    return out


def _commands_html(commands: Sequence[Mapping[str, Any]], builds: Sequence[str]) -> list[str]:
    """Every command sent to testpmd, per build: refused ones first, the rest folded away."""
    if not commands:
        return []
    refused = [row for row in commands if row["refused"]]
    out = _table_head(
        "Every command sent to testpmd, per DPDK build",
        f"{len(commands)} distinct commands sent to the testpmds of {len(builds)} "
        f"build(s); {len(refused)} refused by a build's parser.",
        ["Guide", "Command", *builds],
    )
    for i, row in enumerate(sorted(commands, key=lambda r: (not r["refused"], r["guide"]))):
        if i == len(refused):
            out.append("</table><details><summary>the commands no build refused</summary>")
            out.append("<table>")
        said = {
            b: [*(f"REFUSED by {_e(r)}" for r in row["refused"].get(b, [])),
                *(f"taken by {_e(t)}" for t in row["taken"].get(b, []))]
            for b in builds
        }  # fmt: skip
        cells = _build_cells(builds, said)
        out.append(
            f"<tr><td>{row['guide']}</td><td><code>{_e(row['command'])}</code>"
            f'<div class="form">to {_e(", ".join(row["to"]))}</div></td>{cells}</tr>'
        )
    out.append("</table>" + ("</details>" if len(refused) < len(commands) else ""))
    return out


def render_html(summary: Mapping[str, Any]) -> str:
    """summary.html: self-contained, readable without JavaScript."""
    run = summary["run"]
    sign = summary["sign_off"]
    env = summary["environment"]
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run.get("started", 0)))
    out = [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        f"<title>Conformance summary {_e(run['name'])}</title><style>{_CSS}</style></head><body>",
        f"<h1>DPDK HowTo guides conformance: run {_e(run['name'])}</h1>",
        f'<div class="sub">topology <b>{_e(run["topology"])}</b> · DPDK '
        f"<b>{_e(env.get('DPDK version', 'not detected'))}</b> · started {_e(started)} · "
        f"{_e(_duration(run.get('duration_s', 0)))} · exit status "
        f"{_e(run.get('exit_status'))}</div>",
        '<div class="links">',
        '<a href="report.html">pytest-html report</a>',
        '<a href="allure-report/index.html">Allure report</a>',
        '<a href="junit.xml">JUnit XML</a>',
        f'<a href="{SUMMARY_JSON}">summary.json</a>',
    ]
    if summary.get("previous"):
        prev = summary["previous"]
        out.append(f'<a href="{_e(prev["summary"])}">previous run {_e(prev["run"])}</a>')
    out.append("</div>")
    if sign["ok"]:
        out.append(
            f'<div class="verdict ok">May sign off guide(s) {_guides(sign["guides_passed"])}: '
            "every selected variant passed and nothing was skipped unexpectedly."
            + _e(_coverage(sign))
            + "</div>"
        )
    else:
        items = "".join(f"<li>{_e(r)}</li>" for r in sign["reasons"])
        out.append(
            f'<div class="verdict no">Cannot sign off a release:<ul>{items}</ul>'
            f"{_e(_coverage(sign))}</div>"
        )
    if summary.get("regressions"):
        items = "".join(f"<li>{_e(r)}</li>" for r in summary["regressions"])
        prev = summary["previous"]["run"]
        out.append(
            f'<div class="verdict no">Regressions against run {_e(prev)} (same topology):'
            f"<ul>{items}</ul></div>"
        )
    elif summary.get("previous"):
        out.append(
            f'<div class="sub">Figures compared with run {_e(summary["previous"]["run"])}: '
            "no regression beyond the tolerances.</div>"
        )
    else:
        out.append('<div class="sub">No earlier run on this topology to compare with.</div>')

    out.append('<h2>Guides</h2><table><tr><th>Guide</th><th>Module / variant</th>'
               '<th>Status</th><th>Key figures</th><th>Testbed / DPDK</th><th class=num>Tests</th>'
               '<th class=num>Duration</th></tr>')  # fmt: skip
    spans: dict[int, int] = {}
    for row in summary["rows"]:
        spans[row["guide"]] = spans.get(row["guide"], 0) + 1
    shown: set[int] = set()
    for row in summary["rows"]:
        css = row["status"].replace(" ", "")
        status = f'<span class="{css}">{_e(row["status"])}</span>'
        if row.get("change"):
            status += f'<span class="tag">{_e(row["change"])}</span>'
        if row.get("refused"):
            status += '<span class="tag">DUT refused</span>'
        if row["message"] and row["status"] != "not selected":
            failed = row["status"] == "failed"
            where = f"{row['message_test']}: " if failed else ""
            short = row["message"] if failed else short_reason(row["message"])
            status += f'<div class="msg" title="{_e(row["message"])}">{_e(where + short)}</div>'
        for skip in row["unexpected_skips"][:5]:
            status += f'<div class="msg">unexpected skip: {_e(skip)}</div>'
        for why, left_out in _left_out(row.get("not_selected", [])).items():
            more = f" and {len(left_out) - 3} more" if len(left_out) > 3 else ""
            listed = ", ".join(left_out[:3]) + more
            status += f'<div class="msg">not selected ({_e(why)}): {_e(listed)}</div>'
        counts = row["tests"]
        tests = " / ".join(f"{counts[k]} {k}" for k in OUTCOMES if counts.get(k))
        module = _e(row["module"]) + (f"<br><b>{_e(row['variant'])}</b>" if row["variant"] else "")
        if row.get("form"):
            form = row["form"] + (f": {row['not_proven']}" if row.get("not_proven") else "")
            tag = '<span class="tag">stand-in</span>' if row.get("not_proven") else ""
            module += f'<div class="form">{_e(form)}{tag}</div>'
        guide = ""
        if row["guide"] not in shown:
            shown.add(row["guide"])
            guide = (f'<td rowspan="{spans[row["guide"]]}" class="guide">'
                     f"<b>{row['guide']}</b> {_e(row['title'])}</td>")  # fmt: skip
        out.append(
            f"<tr>{guide}<td>{module or '—'}</td>"
            f"<td>{status}</td><td>{_figure_cell(row['figures'], row['variant'])}</td>"
            f"<td>{_e(', '.join(row['testbeds']))}{_dpdk_cell(row)}</td>"
            f"<td class=num>{_e(tests)}</td>"
            f"<td class=num>{_e(_duration(row['duration_s'])) if counts else ''}</td></tr>"
        )
    out.append("</table>")
    out += _drift_html(summary.get("drift", []), summary.get("builds", []))
    out += _findings_html(summary.get("findings", []), summary.get("builds", []))
    out += _commands_html(summary.get("commands", []), summary.get("builds", []))
    out.append("<h2>What was tested</h2><table class=env>")
    ordered = [k for k in HEADER_KEYS if k in env] + sorted(k for k in env if k not in HEADER_KEYS)
    for key in ordered:
        out.append(f"<tr><td>{_e(key)}</td><td>{_e(env[key])}</td></tr>")
    out.append("</table></body></html>\n")
    return "\n".join(out)
