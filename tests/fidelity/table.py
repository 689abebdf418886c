"""The fidelity table: every outcome the seven guides state, and what the suite does with it.

tests/fidelity/outcomes.yaml lists, per chapter of the seed, each outcome the guide states
with exactly one status:

    asserted: ids of the assertions that judge it (tests/bites/scan.py's ids, written
              "<module>::<function>::<key>"), or "<path>.py::<name>" for a framework
              function whose refusal fails the test (migrate() raising unless QEMU says
              "completed")
    reported: why it is shown in the report and never judged   (with where:)
    drift:    how the suite runs a guide step that no longer works as written on
              DPDK 22.11 (or today's QEMU and kernel)               (with where:)
    missing:  what is not checked yet, and what is coming

Every location is found in the code here, never typed in: an assertion's line from the
scanner, a `where:` or code reference from the named file's syntax tree. The README's
section "What 'guide N passed' proves" is rendered from it:

    .venv/bin/python -m tests.fidelity.table             rewrite README.md's section
    .venv/bin/python -m tests.fidelity.table --check     exit 1 if README.md is behind
    .venv/bin/python -m tests.fidelity.table --unmapped  assertions no outcome names

tests/unit/test_fidelity.py keeps README.md, the data file and the code in step.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

from tests.bites.scan import ROOT, SUITES, Assertion, scan_module

OUTCOMES = ROOT / "tests" / "fidelity" / "outcomes.yaml"
README = ROOT / "README.md"
START = "<!-- fidelity:start: rendered by `python -m tests.fidelity.table` from "
START += "tests/fidelity/outcomes.yaml; edit that file, not this section -->"
END = "<!-- fidelity:end -->"
STATUSES = ("asserted", "reported", "drift", "missing")
CHAPTERS = range(1, 8)
KEYS = {"outcome", "section", "where", "note", *STATUSES}
REGENERATE = "run `.venv/bin/python -m tests.fidelity.table` to rewrite it"


@dataclass(frozen=True)
class Outcome:
    """One outcome a chapter states, and what the suite does with it."""

    chapter: int
    outcome: str  # the guide's words, quoted briefly
    section: str  # the guide's section number (1.3.3)
    status: str  # one of STATUSES
    refs: tuple[str, ...] = ()  # asserted: assertion ids or code references
    text: str = ""  # reported / drift / missing: why, how, what
    where: tuple[str, ...] = ()  # reported / drift: code references
    note: str = ""


@dataclass
class Chapter:
    """One chapter of the seed: its title, its test modules and its outcomes."""

    number: int
    title: str
    modules: list[str]
    outcomes: list[Outcome] = field(default_factory=list)


@dataclass(frozen=True)
class Location:
    """Where a reference points in the code now."""

    path: str  # relative to the repository
    line: int


def _strings(value: object) -> list[str] | None:
    """A string or a list of strings as a list; None if it is neither (or empty)."""
    if isinstance(value, str) and value.strip():
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return list(value)
    return None


def _outcome(number: int, n: int, entry: object, problems: list[str]) -> Outcome | None:
    where = f"guide {number} outcome {n}"
    if not isinstance(entry, dict):
        problems.append(f"{where}: a mapping expected, got {entry!r}")
        return None
    if not isinstance(entry.get("outcome"), str) or not entry["outcome"].strip():
        problems.append(f"{where}: `outcome:` (the guide's words) is missing")
        return None
    where = f"guide {number}: {entry['outcome'][:60]!r}"
    section = entry.get("section")
    if not isinstance(section, str) or not re.fullmatch(rf"{number}(\.\d+)*", section):
        problems.append(
            f"{where}: `section:` must be a section of chapter {number}, got {section!r}"
        )
        return None
    if unknown := sorted(set(entry) - KEYS):
        problems.append(f"{where}: unknown keys {unknown}")
        return None
    given = [s for s in STATUSES if s in entry]
    if len(given) != 1:
        problems.append(f"{where}: exactly one of {'/'.join(STATUSES)}, got {given}")
        return None
    status = given[0]
    note = entry.get("note", "")
    if not isinstance(note, str):
        problems.append(f"{where}: `note:` must be text")
        return None
    places = _strings(entry["where"]) if "where" in entry else []
    if places is None:
        problems.append(f"{where}: `where:` must be a code reference or a list of them")
        return None
    if status == "asserted":
        refs = _strings(entry["asserted"])
        if refs is None:
            problems.append(f"{where}: `asserted:` needs the assertion id(s) that judge it")
            return None
        if places:
            problems.append(f"{where}: `where:` belongs to reported and drift rows")
            return None
        return Outcome(number, entry["outcome"], section, status, refs=tuple(refs), note=note)
    text = entry[status]
    if not isinstance(text, str) or not text.strip():
        problems.append(f"{where}: `{status}:` needs text (why, how, or what is missing)")
        return None
    if status in ("reported", "drift") and not places:
        problems.append(f"{where}: a {status} row needs `where:` (the code that does it)")
        return None
    return Outcome(
        number, entry["outcome"], section, status, text=text, where=tuple(places), note=note
    )


def load(path: Path = OUTCOMES) -> tuple[list[Chapter], list[str]]:
    """The chapters and their outcomes, and what is malformed (one line each)."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        return [], [f"{path.name}: not YAML: {' '.join(str(error).split())}"]
    if not isinstance(data, dict):
        return [], [f"{path.name}: a mapping of chapter number -> chapter expected"]
    problems: list[str] = []
    chapters: list[Chapter] = []
    if missing := [n for n in CHAPTERS if n not in data]:
        problems.append(f"{path.name}: chapters {missing} are missing")
    for number, body in data.items():
        if number not in CHAPTERS:
            problems.append(f"{path.name}: {number!r} is not a chapter of the seed (1-7)")
            continue
        if not isinstance(body, dict) or set(body) != {"title", "modules", "outcomes"}:
            problems.append(f"guide {number}: `title:`, `modules:` and `outcomes:` expected")
            continue
        modules = _strings(body["modules"])
        if modules is None or not isinstance(body["title"], str):
            problems.append(f"guide {number}: `title:` text and `modules:` names expected")
            continue
        if not isinstance(body["outcomes"], list):
            problems.append(f"guide {number}: `outcomes:` must be a list of outcomes")
            continue
        for module in modules:
            if not (SUITES / f"{module}.py").is_file():
                problems.append(f"guide {number}: module {module} is not in testsuites/")
        chapter = Chapter(number, body["title"], modules)
        for n, entry in enumerate(body["outcomes"], 1):
            if (outcome := _outcome(number, n, entry, problems)) is not None:
                chapter.outcomes.append(outcome)
        if not chapter.outcomes:
            problems.append(f"guide {number}: no outcomes")
        chapters.append(chapter)
    return sorted(chapters, key=lambda c: c.number), problems


# -- where references point -----------------------------------------------------------------


@cache
def _assertions(module: str) -> dict[str, Assertion]:
    if not (SUITES / f"{module}.py").is_file():
        return {}
    return {a.id: a for a in scan_module(module).assertions}


def _definition(path: str, qualname: str) -> int | None:
    """The line of a function, class, method or constant `qualname` in `path`."""
    file = ROOT / path
    if not file.is_file():
        return None
    body = ast.parse(file.read_text(), filename=path).body
    node: ast.stmt | None = None
    for part in qualname.split("."):
        node = next((n for n in body if part in _names(n)), None)
        if node is None:
            return None
        body = node.body if isinstance(node, ast.ClassDef) else []
    return node.lineno if node is not None else None


def _names(node: ast.stmt) -> set[str]:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return {node.name}
    if isinstance(node, ast.Assign):
        return {t.id for t in node.targets if isinstance(t, ast.Name)}
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return {node.target.id}
    return set()


def is_code_ref(ref: str) -> bool:
    """A `<path>.py::<name>` reference, not an assertion id."""
    return ref.split("::", 1)[0].endswith(".py")


def locate(ref: str) -> Location | None:
    """Where an assertion id or a code reference is now (None: it is not there)."""
    head, _, rest = ref.partition("::")
    if not rest:
        return None
    if is_code_ref(ref):
        line = _definition(head, rest)
        return Location(head, line) if line is not None else None
    found = _assertions(head).get(rest)
    return Location(f"testsuites/{head}.py", found.line) if found is not None else None


def unresolved(chapters: list[Chapter]) -> list[str]:
    """Every reference of the data file that points nowhere in the code, one line each."""
    problems = []
    for chapter in chapters:
        for o in chapter.outcomes:
            for ref in o.refs:
                if not is_code_ref(ref) and ref.partition("::")[0] not in chapter.modules:
                    problems.append(f"guide {chapter.number}: {ref}: not one of its modules")
                elif locate(ref) is None:
                    kind = "code reference" if is_code_ref(ref) else "assertion"
                    problems.append(
                        f"guide {chapter.number}: {o.outcome[:50]!r}: no {kind} {ref!r} in the "
                        "code (`python -m tests.bites.scan` lists the assertion ids)"
                    )
            for ref in o.where:
                if not is_code_ref(ref) or locate(ref) is None:
                    problems.append(
                        f"guide {chapter.number}: {o.outcome[:50]!r}: where: {ref!r} names "
                        "nothing in the code (<path>.py::<function, class or Class.method>)"
                    )
    return problems


def unmapped(chapter: Chapter) -> list[Assertion]:
    """Assertions of the chapter's modules that no outcome names: what DPDK's test plans
    and the suite check beyond the guide's own words."""
    named = {ref for o in chapter.outcomes for ref in o.refs}
    return [
        a
        for module in chapter.modules
        for a in _assertions(module).values()
        if f"{module}::{a.id}" not in named
    ]


# -- the README section ---------------------------------------------------------------------

INTRO = """\
Each outcome the guides' chapters state, in the guide's words, and what the suite does with
it: **asserted** (an assertion judges it from traffic, counters or the DUT's own state, at
the line shown: a DUT that breaks the claim fails the test), **reported** (shown in the
report, never judged), **drift** (the guide's step no longer works as written on DPDK
22.11 or today's QEMU and kernel; what runs instead, at the line shown) or **missing** (not
checked yet). An outcome in parentheses is what a step implies rather than says in so many
words. "Guide N passed" proves the asserted rows of guide N, on the run's topology:
guides 3 and 5 need Intel NICs and run on a lab only (`--plan` shows their steps here);
where a row depends on the topology (vCPU pinning, isolated CPUs, a baseline) its note
says so; guide 1 proves SR-IOV only in its `niantic-vf` / `fortville-vf` variants. The
assertions no row names check what DPDK's test plans add beyond the guide
(`.venv/bin/python -m tests.fidelity.table --unmapped` lists them). Rendered from
`tests/fidelity/outcomes.yaml` with every line number taken from the code;
`tests/unit/test_fidelity.py` fails when this section is behind.
"""


def _cell(text: str) -> str:
    # one line; a pipe would end the cell, and `<n>` would be read as an HTML tag
    return " ".join(text.split()).replace("|", "\\|").replace("<", "&lt;")


def _link(location: Location) -> str:
    name = location.path.rsplit("/", 1)[-1]
    return f"[{name}:{location.line}]({location.path}#L{location.line})"


def counts(chapter: Chapter) -> Counter[str]:
    """How many outcomes of the chapter have each status."""
    return Counter(o.status for o in chapter.outcomes)


def count_line(chapter: Chapter) -> str:
    """`N outcomes: a asserted, r reported, d drift, m missing`."""
    c = counts(chapter)
    parts = ", ".join(f"{c[s]} {s}" for s in STATUSES)
    return f"{len(chapter.outcomes)} outcomes: {parts}"


def _row(o: Outcome) -> str:
    refs = o.refs if o.status == "asserted" else o.where
    places = "<br>".join(_link(loc) if (loc := locate(r)) else f"`{r}` (not found)" for r in refs)
    note = o.note if o.status == "asserted" else " ".join(filter(None, [o.text, o.note]))
    return f"| {_cell(o.outcome)} | {o.section} | {o.status} | {places or '–'} | {_cell(note)} |"


def render(chapters: list[Chapter]) -> str:
    """The README section between the markers, markers included."""
    lines = [START, "", INTRO, "| guide | outcomes | asserted | reported | drift | missing |"]
    lines.append("|---|---|---|---|---|---|")
    for chapter in chapters:
        c = counts(chapter)
        lines.append(
            f"| {chapter.number} {chapter.title} | {len(chapter.outcomes)} | "
            + " | ".join(str(c[s]) for s in STATUSES)
            + " |"
        )
    for chapter in chapters:
        modules = ", ".join(f"`testsuites/{m}.py`" for m in chapter.modules)
        beyond = len(unmapped(chapter))
        lines += [
            "",
            f"### Guide {chapter.number}: {chapter.title}",
            "",
            f"{count_line(chapter)}. Modules: {modules}; {beyond} further assertions check "
            "what the guide does not state.",
            "",
            "| outcome (the guide's words) | § | status | test and line | note |",
            "|---|---|---|---|---|",
            *(_row(o) for o in chapter.outcomes),
        ]
    lines += ["", END]
    return "\n".join(lines)


def section(readme: str) -> str | None:
    """The fidelity section of README.md's text, markers included (None: no markers)."""
    start, end = readme.find(START), readme.find(END)
    if start < 0 or end < start:
        return None
    return readme[start : end + len(END)]


def rewrite(readme: str, rendered: str) -> str:
    """README.md's text with its fidelity section replaced by `rendered`."""
    current = section(readme)
    if current is None:
        raise ValueError(f"README.md has no fidelity markers ({START[:20]}... / {END})")
    return readme.replace(current, rendered, 1)


def difference(current: str, rendered: str, limit: int = 12) -> str:
    """The first lines where README.md's section and the rendered one differ, as a diff."""
    diff = difflib.unified_diff(
        current.splitlines(), rendered.splitlines(), "README.md", "rendered now", lineterm="", n=0
    )
    lines = list(diff)
    return "\n".join(lines[:limit] + (["..."] if len(lines) > limit else []))


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fidelity.table", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md is behind")
    parser.add_argument("--unmapped", action="store_true", help="list unnamed assertions")
    args = parser.parse_args(argv)
    chapters, problems = load()
    problems += unresolved(chapters)
    if problems:
        print("\n".join(problems))
        print(f"tests/fidelity/outcomes.yaml: {len(problems)} problem(s), README.md not written")
        return 1
    if args.unmapped:
        for chapter in chapters:
            print(f"# guide {chapter.number}: assertions no outcome names")
            for a in unmapped(chapter):
                print(f"  {a.module}::{a.id}  (line {a.line})")
        return 0
    readme = README.read_text()
    try:
        updated = rewrite(readme, render(chapters))
    except ValueError as error:
        print(error)
        return 1
    for chapter in chapters:
        print(f"guide {chapter.number}: {count_line(chapter)}")
    if args.check:
        if updated != readme:
            print(difference(section(readme) or "", render(chapters)))
            print(f"README.md's fidelity table is behind the code: {REGENERATE}")
            return 1
        return 0
    if updated != readme:
        README.write_text(updated)
        print("README.md: fidelity section rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(_main())
