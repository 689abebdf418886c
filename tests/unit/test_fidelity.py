"""README.md's fidelity table keeps step with the code: every outcome the guides state names
the assertion that judges it (or says why it is only reported, how a drifted step runs,
what is missing), every named assertion and code reference exists, and the README section
is what tests/fidelity/table.py renders from tests/fidelity/outcomes.yaml now.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bites.scan import scan_module
from tests.fidelity import table


@pytest.fixture(scope="module")
def chapters() -> list[table.Chapter]:
    chapters, _ = table.load()
    return chapters


def test_the_outcomes_file_is_well_formed() -> None:
    _, problems = table.load()
    assert not problems, "tests/fidelity/outcomes.yaml:\n" + "\n".join(problems)


def test_every_asserted_id_and_code_reference_exists(chapters: list[table.Chapter]) -> None:
    problems = table.unresolved(chapters)
    assert not problems, (
        "tests/fidelity/outcomes.yaml names what the code no longer has (an assertion "
        "reworded or removed: re-point the row, or make it missing:):\n" + "\n".join(problems)
    )


def test_the_readme_section_is_what_the_generator_renders(chapters: list[table.Chapter]) -> None:
    current = table.section(table.README.read_text())
    assert current is not None, f"README.md has no fidelity markers ({table.END})"
    rendered = table.render(chapters)
    assert current == rendered, (
        f"README.md's fidelity table is behind the code: {table.REGENERATE}\n"
        + table.difference(current, rendered)
    )


def test_the_check_command_agrees(capsys: pytest.CaptureFixture[str]) -> None:
    assert table._main(["--check"]) == 0, capsys.readouterr().out


def test_every_chapter_states_outcomes_of_each_kind_it_has(chapters: list[table.Chapter]) -> None:
    """Seven chapters, each with asserted outcomes; the counts add up."""
    assert [c.number for c in chapters] == list(table.CHAPTERS)
    for chapter in chapters:
        counts = table.counts(chapter)
        assert counts["asserted"] > 0, f"guide {chapter.number} asserts nothing"
        assert sum(counts.values()) == len(chapter.outcomes)
        assert table.count_line(chapter).startswith(f"{len(chapter.outcomes)} outcomes: ")


# -- the keeper's own bites: malformed rows, vanished assertions, a stale README -----------

GOOD = """\
1:
  title: One
  modules: [test_sriov_bond_migration]
  outcomes:
    - outcome: "VF traffic is seen at P1 and P2."
      section: "1.3.3"
      asserted: ["test_sriov_bond_migration::_forward_on_the_bond::verify_port_traffic(guide: VF \
traffic is seen at P1 and P2, nothing leaves through the backup port P0)"]
    - outcome: "Migration status: completed"
      section: "1.3.8"
      asserted: ["framework/virt/migration.py::migrate"]
    - outcome: "info migrate"
      section: "1.3.8"
      reported: "attached"
      where: ["framework/scenarios/sriov_bond_migration.py::SriovBondMigration.record_figures"]
    - outcome: "VF MAC address still present"
      section: "1.3.3"
      missing: "not read back"
"""


def _load(tmp_path: Path, text: str) -> tuple[list[table.Chapter], list[str]]:
    path = tmp_path / "outcomes.yaml"
    path.write_text(text)
    return table.load(path)


def test_lines_come_from_the_code(tmp_path: Path) -> None:
    (chapter,), problems = _load(tmp_path, GOOD)
    assert problems == ["outcomes.yaml: chapters [2, 3, 4, 5, 6, 7] are missing"]
    assert table.unresolved([chapter]) == []
    asserted = chapter.outcomes[0].refs[0]
    scanned = {a.id: a.line for a in scan_module("test_sriov_bond_migration").assertions}
    location = table.locate(asserted)
    assert location == table.Location(
        "testsuites/test_sriov_bond_migration.py", scanned[asserted.split("::", 1)[1]]
    )
    source = Path(table.ROOT / "framework/virt/migration.py").read_text().splitlines()
    code = table.locate(chapter.outcomes[1].refs[0])
    assert code is not None and source[code.line - 1].startswith("def migrate(")
    assert [c.number for c in [chapter]] == [1] and table.count_line(chapter) == (
        "4 outcomes: 2 asserted, 1 reported, 0 drift, 1 missing"
    )


def test_malformed_rows_are_named(tmp_path: Path) -> None:
    text = """\
1:
  title: One
  modules: [test_sriov_bond_migration, test_nowhere]
  outcomes:
    - outcome: "two statuses"
      section: "1.3"
      asserted: ["test_sriov_bond_migration::a::b"]
      missing: "x"
    - outcome: "no status"
      section: "1.3"
    - outcome: "another chapter's section"
      section: "2.3"
      missing: "x"
    - outcome: "reported without where"
      section: "1.3"
      reported: "shown"
    - outcome: "asserted with text"
      section: "1.3"
      asserted: ""
    - outcome: "a stray key"
      section: "1.3"
      missing: "x"
      test: "y"
    - section: "1.3"
      missing: "no outcome"
8:
  title: Eight
"""
    _, problems = _load(tmp_path, text)
    assert problems == [
        "outcomes.yaml: chapters [2, 3, 4, 5, 6, 7] are missing",
        "guide 1: module test_nowhere is not in testsuites/",
        "guide 1: 'two statuses': exactly one of asserted/reported/drift/missing, got "
        "['asserted', 'missing']",
        "guide 1: 'no status': exactly one of asserted/reported/drift/missing, got []",
        'guide 1: "another chapter\'s section": `section:` must be a section of chapter 1, '
        "got '2.3'",
        "guide 1: 'reported without where': a reported row needs `where:` (the code that does it)",
        "guide 1: 'asserted with text': `asserted:` needs the assertion id(s) that judge it",
        "guide 1: 'a stray key': unknown keys ['test']",
        "guide 1 outcome 7: `outcome:` (the guide's words) is missing",
        "guide 1: no outcomes",
        "outcomes.yaml: 8 is not a chapter of the seed (1-7)",
    ]


def test_a_file_that_is_not_yaml_is_one_line(tmp_path: Path) -> None:
    chapters, (problem,) = _load(tmp_path, '1:\n  title: "x\n  modules: []\n')
    assert chapters == [] and problem.startswith("outcomes.yaml: not YAML: ")
    assert "\n" not in problem


def test_an_assertion_the_code_no_longer_has_is_named(tmp_path: Path) -> None:
    reworded = GOOD.replace(
        "VF traffic is seen at P1 and P2, no", "VF frames are seen at P1 and P2, no"
    )
    moved = reworded.replace("SriovBondMigration.record_figures", "SriovBondMigration.figures")
    elsewhere = moved.replace("framework/virt/migration.py::migrate", "test_pvp_benchmark::a::b")
    (chapter,), _ = _load(tmp_path, elsewhere)
    problems = table.unresolved([chapter])
    assert len(problems) == 3
    assert problems[0].startswith("guide 1: 'VF traffic is seen at P1 and P2.': no assertion ")
    assert "frames are seen" in problems[0] and "python -m tests.bites.scan" in problems[0]
    assert problems[1] == "guide 1: test_pvp_benchmark::a::b: not one of its modules"
    assert (
        "where: 'framework/scenarios/sriov_bond_migration.py::SriovBondMigration.figures'"
        in problems[2]
    )


def test_a_readme_behind_the_code_is_refused(tmp_path: Path) -> None:
    (chapter,), _ = _load(tmp_path, GOOD)
    rendered = table.render([chapter])
    readme = f'# x\n\n## What "guide N passed" proves\n\n{rendered}\n\n## Layout\n'
    assert table.section(readme) == rendered
    stale = readme.replace("testsuites/test_sriov_bond_migration.py#L", "testsuites/x.py#L")
    current = table.section(stale)
    assert current is not None and current != rendered
    assert "+| VF traffic is seen at P1 and P2." in table.difference(current, rendered)
    assert table.rewrite(stale, rendered) == readme
    with pytest.raises(ValueError, match="no fidelity markers"):
        table.rewrite("# x\n", rendered)


def test_a_row_renders_its_guide_words_status_and_lines(tmp_path: Path) -> None:
    (chapter,), _ = _load(tmp_path, GOOD)
    rendered = table.render([chapter])
    line = table.locate(chapter.outcomes[0].refs[0])
    assert line is not None
    assert (
        f"| VF traffic is seen at P1 and P2. | 1.3.3 | asserted | "
        f"[test_sriov_bond_migration.py:{line.line}](testsuites/test_sriov_bond_migration.py"
        f"#L{line.line}) |  |"
    ) in rendered
    assert "| VF MAC address still present | 1.3.3 | missing | – | not read back |" in rendered
    assert "4 outcomes: 2 asserted, 1 reported, 0 drift, 1 missing." in rendered
    assert rendered.startswith(table.START) and rendered.endswith(table.END)
