"""Findings: the same command answered otherwise on two DPDK builds, both answers shown."""

from __future__ import annotations

import json

from framework.report import summary as report_summary
from framework.report.findings import Observation, findings_table, observations_of
from framework.report.summary import build_summary, render_html

WHAT = "container testpmd output"
FORM = "step 5 as 65534:65534, the guide's mounts"
# Two answers in EAL's words (the table compares text; no parser reads them)
OLD = "EAL: Selected IOVA mode 'VA'\nEAL: hc-3k9a: cannot open hugepage file: Permission denied"
NEW = "EAL: Selected IOVA mode 'VA'\nEAL: Cannot init memory"


def test_an_answer_that_changed_between_builds_is_a_finding_with_both() -> None:
    (row,) = findings_table(
        [
            (6, "installed", Observation(WHAT, FORM, OLD)),
            (6, "24.11", Observation(WHAT, FORM, NEW)),
        ],
        ["installed", "24.11"],
    )
    assert row["differs"] and row["command"] == FORM
    assert row["outputs"]["24.11"] == [NEW]
    assert row["outputs"]["installed"] == [OLD.replace("hc-3k9a", "hc-<run>")]


def test_the_run_s_own_names_and_ports_are_no_difference() -> None:
    one = Observation(WHAT, FORM, "socket /tmp/howto-hc-3k9a-lab/x at 198.18.0.11:41234")
    two = Observation(WHAT, FORM, "socket /tmp/howto-hc-9zzq-lab/x at 198.18.0.11:50111")
    (row,) = findings_table([(6, "a", one), (6, "b", two)], ["a", "b"])
    assert not row["differs"], row


def test_an_answer_seen_on_one_build_is_compared_with_nothing() -> None:
    assert findings_table([(6, "installed", Observation(WHAT, FORM, OLD))], ["installed"]) == []


def test_the_summary_lists_findings_first_with_every_builds_output() -> None:
    props = [("observed", json.dumps(Observation(WHAT, FORM, OLD).__dict__))] * 2
    assert observations_of(props) == [Observation(WHAT, FORM, OLD)]
    node = "testsuites/test_virtio_user_container.py::test_limitation_root_privilege"
    record = report_summary.TestRecord
    records = [
        record(f"{node}[installed]", 6, "installed", "passed", build="installed",
               observed=[Observation(WHAT, FORM, OLD), Observation("same", "x", "y")]),
        record(f"{node}[24.11]", 6, "24.11", "passed", build="24.11",
               observed=[Observation(WHAT, FORM, NEW), Observation("same", "x", "y")]),
    ]  # fmt: skip
    run = {"name": "r", "topology": "virtual", "started": 0, "duration_s": 1, "faults": []}
    summary = build_summary(records, run, {}, None)
    assert [r["differs"] for r in summary["findings"]] == [True, False]
    page = render_html(summary)
    assert "Findings: the same command answered otherwise" in page
    assert "2 answers compared between DPDK builds; 1 differ." in page
    assert "<pre>EAL: Selected IOVA mode &#x27;VA&#x27;\nEAL: Cannot init memory</pre>" in page
