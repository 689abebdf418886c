"""The bite table (tests/bites/table.yaml): read it, hold it against the scan, count it.

The keeper self-test (tests/unit/test_bite_table.py) uses these; so does
`python -m tests.bites.table`, which prints the counts per guide and the rows to add.
"""

from __future__ import annotations

import ast
import functools
import json
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.bites.scan import MODULES, ROOT, Assertion, Scan, fragment_matches, helper_fragments
from tests.bites.scan import scan as scan_modules

TABLE = ROOT / "tests" / "bites" / "table.yaml"
VERDICTS = ("bite", "unreachable", "open")


@dataclass(frozen=True)
class Row:
    """One row: an assertion id and what is known of its bite."""

    module: str
    id: str
    verdict: str  # bite, unreachable or open
    text: str  # the bite's node id, or why unreachable, or what would bite it
    says: str | None = None  # what the bite looks for in the failure (bite rows)

    @property
    def bite_file(self) -> str:
        """The file of a bite's node id (tests/...py)."""
        return self.text.split("::", 1)[0]


def load(path: Path = TABLE) -> tuple[list[Row], list[str]]:
    """The table's rows, and what is malformed in it (one line each)."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        return [], [f"{path.name}: not YAML: {' '.join(str(error).split())}"]
    rows: list[Row] = []
    problems: list[str] = []
    if not isinstance(data, dict):
        return [], [f"{path.name}: a mapping of module -> rows expected"]
    for module, entries in data.items():
        if module not in MODULES:
            problems.append(f"{module}: not a scanned guide module ({', '.join(MODULES)})")
            continue
        for n, entry in enumerate(entries or [], 1):
            where = f"{module} row {n}"
            if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
                problems.append(f"{where}: a mapping with an `id:` string expected, got {entry!r}")
                continue
            where = f"{module}: {entry['id']}"
            given = [k for k in VERDICTS if k in entry]
            unknown = set(entry) - {"id", "says", *VERDICTS}
            if len(given) != 1:
                problems.append(f"{where}: exactly one of bite/unreachable/open, got {given}")
                continue
            if unknown:
                problems.append(f"{where}: unknown keys {sorted(unknown)}")
            verdict = given[0]
            text = entry[verdict]
            if not isinstance(text, str) or not text.strip():
                problems.append(f"{where}: `{verdict}:` needs text")
                continue
            says = entry.get("says")
            if verdict == "bite" and not (isinstance(says, str) and says.strip()):
                problems.append(f"{where}: a bite needs `says:` (what the bite looks for)")
                continue
            if verdict != "bite" and says is not None:
                problems.append(f"{where}: `says:` belongs to bite rows only")
            rows.append(Row(module, entry["id"], verdict, text, says))
    seen: set[tuple[str, str]] = set()
    for row in rows:
        if (row.module, row.id) in seen:
            problems.append(f"{row.module}: {row.id}: two rows")
        seen.add((row.module, row.id))
    return rows, problems


def missing_rows(scans: dict[str, Scan], rows: list[Row]) -> dict[str, list[Assertion]]:
    """Per module, the scanned assertions without a row."""
    have = {(r.module, r.id) for r in rows}
    return {
        module: missing
        for module, result in scans.items()
        if (missing := [a for a in result.assertions if (module, a.id) not in have])
    }


def stale_rows(scans: dict[str, Scan], rows: list[Row]) -> list[Row]:
    """Rows naming an assertion the module no longer has."""
    ids = {(m, a.id) for m, s in scans.items() for a in s.assertions}
    return [r for r in rows if (r.module, r.id) not in ids]


def paste(missing: dict[str, list[Assertion]]) -> str:
    """The rows to add, in the table's own syntax, under each module's key."""
    lines = []
    for module, assertions in missing.items():
        lines.append(f"{module}:  # add under this key (testsuites/{module}.py)")
        for a in assertions:
            lines.append(f"  - id: {json.dumps(a.id, ensure_ascii=False)}  # line {a.line}")
            lines.append('    open: "<the broken DUT that would make it fail>"')
    return "\n".join(lines)


def renamed_hints(missing: dict[str, list[Assertion]], stale: list[Row]) -> list[str]:
    """Stale rows and new ids in the same function: probably a message reworded."""
    hints = []
    for row in stale:
        function = row.id.split("::", 1)[0]
        new = [a.id for a in missing.get(row.module, []) if a.function == function]
        if new:
            hints.append(f"{row.module}: {row.id!r} may now be one of {new}")
    return hints


def collected(node_ids: set[str]) -> set[str]:
    """The node ids pytest collects from the files these node ids are in (one child run)."""
    files = sorted({n.split("::", 1)[0] for n in node_ids})
    missing_files = [f for f in files if not (ROOT / f).is_file()]
    files = [f for f in files if f not in missing_files]
    if not files:
        return set()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "--no-allure-html", *files],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if done.returncode not in (0, 5):
        raise RuntimeError(
            f"pytest --collect-only {' '.join(files)} failed:\n{done.stdout[-3000:]}"
        )
    return {line.strip() for line in done.stdout.splitlines() if "::" in line}


def _param_id(value: ast.expr, argname: str, index: int) -> str | None:
    """pytest's default id of one literal parameter value (str, number, bool, None)."""
    if isinstance(value, ast.Constant):
        if isinstance(value.value, str):
            return value.value.encode("unicode_escape").decode("ascii")
        if value.value is None or isinstance(value.value, (bool, int, float)):
            return str(value.value)
    if isinstance(value, (ast.List, ast.Tuple, ast.Dict, ast.Set)):
        return f"{argname}{index}"
    return None


def _case_id(case: ast.expr, argnames: list[str], index: int) -> str | None:
    """The id pytest gives one parametrize case written as a literal tuple or pytest.param."""
    if isinstance(case, ast.Call) and getattr(case.func, "attr", "") == "param":
        for keyword in case.keywords:
            if keyword.arg == "id" and isinstance(keyword.value, ast.Constant):
                return str(keyword.value.value)
        values = case.args
    else:
        values = case.elts if isinstance(case, ast.Tuple) else [case]
    ids = [_param_id(v, n, index) for v, n in zip(values, argnames, strict=False)]
    known = [i for i in ids if i is not None]
    return "-".join(known) if len(known) == len(argnames) else None


@functools.cache
def _parsed(file: str) -> tuple[list[str], ast.Module]:
    # every row of a bite file asks again: ast.get_source_segment splits the whole file
    # per call (the table's check took 96 s that way)
    source = (ROOT / file).read_text()
    return source.splitlines(), ast.parse(source)


def _lines_of(lines: list[str], *nodes: ast.AST) -> str:
    """The whole source lines from the first node's to the last's end."""
    first, last = nodes[0], nodes[-1]
    return "\n".join(lines[first.lineno - 1 : last.end_lineno])  # type: ignore[attr-defined]


def bite_text(node_id: str) -> str | None:
    """The source a bite looks in: its test function, and for a case of a literal
    parametrize list only that case's values (None: the function is not in its file)."""
    file, _, rest = node_id.partition("::")
    name, _, case = rest.partition("[")
    case = case.removesuffix("]")
    lines, tree = _parsed(file)
    # module constants a case names (OUTSIDE = "..."): the text it looks for is theirs
    constants = {
        t.id: n.value.value
        for n in tree.body
        if isinstance(n, ast.Assign)
        and isinstance(n.value, ast.Constant)
        and isinstance(n.value.value, str)
        for t in n.targets
        if isinstance(t, ast.Name)
    }
    for node in tree.body:
        if not (isinstance(node, ast.FunctionDef) and node.name == name):
            continue
        body = _lines_of(lines, *node.body)
        if not case:
            return body
        for decorator in node.decorator_list:
            if not (isinstance(decorator, ast.Call) and len(decorator.args) >= 2):
                continue
            names, cases = decorator.args[0], decorator.args[1]
            if not (isinstance(names, ast.Constant) and isinstance(cases, ast.List)):
                continue
            argnames = [n.strip() for n in str(names.value).split(",")]
            for index, one in enumerate(cases.elts):
                if _case_id(one, argnames, index) == case:
                    named = [
                        constants[n.id]
                        for n in ast.walk(one)
                        if isinstance(n, ast.Name) and n.id in constants
                    ]
                    return "\n".join([_lines_of(lines, one), *named, body])
        return body  # parametrized otherwise (computed ids): the function's body
    return None


def says_problems(scans: dict[str, Scan], rows: list[Row]) -> list[str]:
    """Bite rows whose `says:` is not what that bite (its case) looks for, or cannot be
    this assertion's message: it must hold words of the message's literal text (of the
    call's string arguments and the helper's module, for verify_* calls)."""
    by_id = {(m, a.id): (s, a) for m, s in scans.items() for a in s.assertions}
    problems = []
    for row in rows:
        if row.verdict != "bite" or (row.module, row.id) not in by_id:
            continue
        if (ROOT / row.bite_file).is_file():
            text = bite_text(row.text)
            if text is None or row.says not in text:
                problems.append(
                    f"{row.module}: {row.id}: says {row.says!r}, which {row.text} does not "
                    "look for (write it as the bite's source, in that case, has it)"
                )
                continue
        result, assertion = by_id[(row.module, row.id)]
        fragments = list(assertion.fragments)
        if assertion.kind == "verify":
            helper = assertion.key.split("(", 1)[0]
            if helper in result.helpers:
                fragments += helper_fragments(result.helpers[helper])
        if assertion.kind == "raises":
            fragments.append("DID NOT RAISE")
        if fragments and not fragment_matches(row.says or "", fragments):
            problems.append(
                f"{row.module}: {row.id}: says {row.says!r}, which is not this assertion's "
                f"message (its text: {[f for f in assertion.fragments if f.strip()]})"
            )
    return problems


@dataclass
class Counts:
    """How one guide's assertions stand."""

    assertions: int = 0
    bitten: int = 0
    by_module_run: int = 0  # bites that run the real module (tests/integration)
    unreachable: int = 0
    open: int = 0

    @property
    def share(self) -> float:
        """Bitten, of every assertion."""
        return self.bitten / self.assertions if self.assertions else 0.0


def counts(scans: dict[str, Scan], rows: list[Row]) -> dict[str, Counts]:
    """Per guide ("guide N") and "all": assertions, bitten, unreachable, open."""
    verdicts = {(r.module, r.id): r for r in rows}
    out: dict[str, Counts] = defaultdict(Counts)
    for module, result in scans.items():
        for a in result.assertions:
            row = verdicts.get((module, a.id))
            for key in (f"guide {result.guide}", "all"):
                c = out[key]
                c.assertions += 1
                if row is None:
                    c.open += 1  # no row yet: not bitten
                elif row.verdict == "bite":
                    c.bitten += 1
                    c.by_module_run += row.bite_file.startswith("tests/integration/test_guide")
                elif row.verdict == "unreachable":
                    c.unreachable += 1
                else:
                    c.open += 1
    return dict(sorted(out.items(), key=lambda kv: (kv[0] == "all", kv[0])))


def report(scans: dict[str, Scan], rows: list[Row]) -> str:
    """The counts as a table, one line per guide, then all."""
    lines = [
        f"{'':9} {'asserts':>7} {'bitten':>6} {'(module run)':>12} {'unreach.':>8} "
        f"{'open':>5} {'bitten %':>8}"
    ]
    for name, c in counts(scans, rows).items():
        lines.append(
            f"{name:9} {c.assertions:7} {c.bitten:6} {c.by_module_run:12} {c.unreachable:8} "
            f"{c.open:5} {100 * c.share:7.1f}%"
        )
    guards = [f"  {m}::{a.id}" for m, s in scans.items() for a in s.type_guards]
    lines.append(
        f"type guards, to be replaced by typed handles (issue 19), not counted: {len(guards)}"
    )
    lines += guards
    return "\n".join(lines)


def _main() -> None:
    scans = scan_modules()
    rows, problems = load()
    print(report(scans, rows))
    for problem in problems:
        print("malformed:", problem)
    missing = missing_rows(scans, rows)
    if missing:
        print("\nrows to add to tests/bites/table.yaml:\n" + paste(missing))
    for row in stale_rows(scans, rows):
        print(f"stale row: {row.module}: {row.id}")


if __name__ == "__main__":
    _main()
