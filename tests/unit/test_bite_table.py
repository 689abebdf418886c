"""The bite table keeps step with testsuites/: every guide assertion has a row, every row an
assertion, every bite a self-test that exists and looks for that assertion's message.

Issue 18's goal is 80 % of the guide assertions bitten. Not enforced yet: the share is
printed and attached by test_bitten_share_is_reported. At this commit: 27 of 139 bitten
(19.4 %; 21 by a run of the real module, 6 by a helper fed what a broken DUT produces),
1 unreachable here (guide 2's KVM-only loss span), 111 open; guide 1 6/62, guide 2 6/17,
guide 4 2/11, guide 6 2/13, guide 7 11/36. Six type guards are listed apart (issue 19).
"""

from __future__ import annotations

import pytest

from framework.report.attach import attach_text
from tests.bites import table
from tests.bites.scan import Scan, scan, scan_module


@pytest.fixture(scope="module")
def scans() -> dict[str, Scan]:
    return scan()


@pytest.fixture(scope="module")
def rows() -> list[table.Row]:
    rows, _ = table.load()
    return rows


def test_the_table_is_well_formed() -> None:
    _, problems = table.load()
    assert not problems, "tests/bites/table.yaml:\n" + "\n".join(problems)


def test_every_guide_assertion_has_a_row(scans: dict[str, Scan], rows: list[table.Row]) -> None:
    missing = table.missing_rows(scans, rows)
    hints = table.renamed_hints(missing, table.stale_rows(scans, rows))
    assert not missing, (
        f"{sum(map(len, missing.values()))} guide assertion(s) have no row in "
        "tests/bites/table.yaml; add (and say what bites each, or will):\n"
        + table.paste(missing)
        + ("\n" + "\n".join(hints) if hints else "")
    )


def test_every_row_names_an_assertion_that_exists(
    scans: dict[str, Scan], rows: list[table.Row]
) -> None:
    stale = table.stale_rows(scans, rows)
    hints = table.renamed_hints(table.missing_rows(scans, rows), stale)
    assert not stale, (
        "rows of tests/bites/table.yaml name assertions testsuites/ no longer has; remove "
        "(or re-key) them:\n"
        + "\n".join(f"{r.module}: {r.id}" for r in stale)
        + ("\n" + "\n".join(hints) if hints else "")
    )


def test_every_bite_is_a_collected_self_test(rows: list[table.Row]) -> None:
    bites = {r.text for r in rows if r.verdict == "bite"}
    unknown = sorted(bites - table.collected(bites))
    assert not unknown, (
        "bite: names node ids pytest does not collect (pytest --collect-only -q <file> "
        "lists the right ones):\n" + "\n".join(unknown)
    )


def test_every_bite_looks_for_its_assertions_message(
    scans: dict[str, Scan], rows: list[table.Row]
) -> None:
    problems = table.says_problems(scans, rows)
    assert not problems, "\n".join(problems)


def test_bitten_share_is_reported(scans: dict[str, Scan], rows: list[table.Row]) -> None:
    """Reported, not asserted (yet): issue 18 aims at 80 % bitten."""
    text = table.report(scans, rows)
    print(text)
    attach_text("guide assertions bitten", text)
    overall = table.counts(scans, rows)["all"]
    assert overall.assertions > 0, "the scanner finds the guide modules' assertions"


# -- the keeper's own bites: a module and a table out of step ---------------------------------

GUIDE_MODULE = """
import pytest
from framework.traffic.checks import verify_frames_intact

pytestmark = [pytest.mark.guide(4)]


def test_one(pvp, stream):
    assert pvp.switch is not None
    assert pvp.mode == "io", f"guide 4.2.4: --forward-mode=io; host forwards {pvp.mode}"
    for port in (0, 1):
        assert pvp.rx[port] > 0, f"guide: traffic is seen at P{port}; RX {pvp.rx[port]}"
    assert pvp.rx[2] > 0, f"guide: traffic is seen at P{2}; RX {pvp.rx[2]}"
    verify_frames_intact(stream, "traffic crosses the VM")
    with pytest.raises(ValueError):
        pvp.refuse()
"""


def _module(tmp_path, text: str = GUIDE_MODULE) -> dict[str, Scan]:
    (tmp_path / "test_pvp_benchmark.py").write_text(text)
    return {"test_pvp_benchmark": scan_module("test_pvp_benchmark", tmp_path)}


def test_ids_come_from_messages_not_lines(tmp_path) -> None:
    scans = _module(tmp_path)
    result = scans["test_pvp_benchmark"]
    assert result.guide == 4
    assert [a.id for a in result.assertions] == [
        "test_one::guide 4.2.4: --forward-mode=io",
        "test_one::guide: traffic is seen at P{}",
        "test_one::guide: traffic is seen at P{} #2",
        "test_one::verify_frames_intact(traffic crosses the VM)",
        "test_one::pytest.raises(ValueError)",
    ]
    assert [a.id for a in result.type_guards] == ["test_one::assert pvp.switch is not None"]
    moved = _module(tmp_path, GUIDE_MODULE.replace("def test_one", "\n\n# moved\ndef test_one"))
    assert [a.id for a in moved["test_pvp_benchmark"].assertions] == [
        a.id for a in result.assertions
    ]


def test_a_new_assertion_without_a_row_is_named_ready_to_paste(tmp_path) -> None:
    scans = _module(tmp_path)
    path = tmp_path / "table.yaml"
    path.write_text(
        "test_pvp_benchmark:\n"
        '  - id: "test_one::guide 4.2.4: --forward-mode=io"\n'
        '    open: "the host testpmd forwarding mac"\n'
        '  - id: "test_one::guide: forwarding is io"\n'
        '    open: "a reworded message"\n'
    )
    rows, problems = table.load(path)
    assert problems == []
    missing = table.missing_rows(scans, rows)
    text = table.paste(missing)
    assert text.startswith("test_pvp_benchmark:  # add under this key")
    assert '  - id: "test_one::guide: traffic is seen at P{} #2"  # line ' in text
    assert '    open: "<the broken DUT that would make it fail>"' in text
    assert len(missing["test_pvp_benchmark"]) == 4
    (stale,) = table.stale_rows(scans, rows)
    assert stale.id == "test_one::guide: forwarding is io"
    assert "may now be one of" in table.renamed_hints(missing, [stale])[0]


def test_malformed_rows_are_named(tmp_path) -> None:
    path = tmp_path / "table.yaml"
    path.write_text(
        "test_pvp_benchmark:\n"
        '  - id: "a::b"\n'
        '    open: "x"\n'
        '    bite: "tests/unit/test_x.py::test_y"\n'
        '  - id: "a::c"\n'
        '    bite: "tests/unit/test_x.py::test_y"\n'
        '  - id: "a::d"\n'
        '    open: "x"\n'
        '  - id: "a::d"\n'
        '    unreachable: "y"\n'
        "test_nowhere:\n"
        '  - id: "a::e"\n'
        '    open: "x"\n'
    )
    _, problems = table.load(path)
    assert problems == [
        "test_pvp_benchmark: a::b: exactly one of bite/unreachable/open, got ['bite', 'open']",
        "test_pvp_benchmark: a::c: a bite needs `says:` (what the bite looks for)",
        "test_nowhere: not a scanned guide module (" + ", ".join(table.MODULES) + ")",
        "test_pvp_benchmark: a::d: two rows",
    ]


def test_a_table_that_is_not_yaml_is_one_line(tmp_path) -> None:
    path = tmp_path / "table.yaml"
    path.write_text('test_pvp_benchmark:\n  - id: "a::b\n    open: x\n')
    rows, (problem,) = table.load(path)
    assert rows == [] and problem.startswith("table.yaml: not YAML: ") and "\n" not in problem


def test_a_bite_looking_for_another_message_is_refused(tmp_path) -> None:
    scans = _module(tmp_path)
    bite = "tests/unit/test_lint.py::test_ruff_check_passes"
    rows = [
        # this file has the text, but it is not the assertion's message
        table.Row(
            "test_pvp_benchmark",
            "test_one::guide 4.2.4: --forward-mode=io",
            "bite",
            bite,
            "concise",
        ),  # fmt: skip
        # the assertion's message, but not what the bite file looks for
        table.Row(
            "test_pvp_benchmark",
            "test_one::guide: traffic is seen at P{}",
            "bite",
            bite,
            "guide: traffic is seen at P7",
        ),  # fmt: skip
    ]
    first, second = table.says_problems(scans, rows)
    assert "which is not this assertion's message" in first
    assert f"which {bite} does not look for" in second


def test_a_bite_naming_the_wrong_case_is_refused(scans: dict[str, Scan]) -> None:
    """The message must be in that parametrize case, not elsewhere in the bite's file."""
    right = "tests/integration/test_guide1_bites.py::test_broken_dut_fails_guide_1"
    row = table.Row(
        "test_sriov_bond_migration",
        "_bond_virtio_and_the_vf_in_the_vm::verify_bond(guide: Primary is now P1, "
        "mode 1 (active backup), 2 slaves, both active)",
        "bite",
        f"{right}[backup-port-forwarded-messages2]",
        "guide: Primary is now P1",
    )
    (problem,) = table.says_problems(scans, [row])
    assert "[backup-port-forwarded-messages2] does not look for" in problem
    fixed = table.Row(
        row.module, row.id, "bite", f"{right}[bond-primary-ignored-messages0]", row.says
    )
    assert table.says_problems(scans, [fixed]) == []
