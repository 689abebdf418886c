"""Every assertion of the guide modules that run on the virtual lab, with a stable id.

An assertion is an `assert` statement or a `verify(condition, promise)` call (keyed alike),
a call to a verification helper whose name starts with `verify_` (verify_packets,
verify_answers, verify_frames_intact...), or a `pytest.raises` block (the guide step must
be refused). Its id is

    <function>::<key>

within its module, where <function> is the enclosing test, fixture or helper (nested
functions as outer.inner) and <key> is the assertion's message normalised: literal text
kept, each formatted value written `{}`, cut at the first "; ", whitespace collapsed.
A verification helper's key is its name and its first string argument
(`verify_answers(ARP reply)`); an assert without a message is keyed by its condition.
The same key twice in one function gets " #2", " #3" in source order. No line numbers:
an id survives edits elsewhere in the module.

An assert without a message whose condition only says that values are not None
(`assert pvp.guest_pmd is not None`) guards a type, not a guide promise: it is listed
apart (to be replaced by typed handles, issue 19), not counted.

`python -m tests.bites.scan` prints every id per module, then the type guards.
"""

from __future__ import annotations

import ast
import functools
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUITES = ROOT / "testsuites"

# The guide modules the virtual lab runs (guides 3 and 5 need real NICs: lab-only).
MODULES = (
    "test_sriov_bond_migration",
    "test_vhost_user_migration",
    "test_vhost_user_reconnect",
    "test_pvp_benchmark",
    "test_virtio_user_container",
    "test_virtio_user_container_throughput",
    "test_virtio_user_exceptional_path",
)
KEY_CHARS = 90


@dataclass(frozen=True)
class Assertion:
    """One assertion of a guide module."""

    module: str  # file stem in testsuites/
    function: str  # enclosing function, nested ones as outer.inner
    key: str  # the normalised message (with " #n" when repeated in the function)
    kind: str  # "assert", "verify" or "raises"
    line: int  # where it is now (for messages only, never part of the id)
    fragments: tuple[str, ...] = field(default=(), compare=False)  # literal message text
    # a verify_* call's keyword arguments given as constants (in_order=False...)
    keywords: tuple[tuple[str, object], ...] = field(default=(), compare=False)
    # a verify_* call's source, so a bite can evaluate its arguments in the module
    call: str = field(default="", compare=False)

    @property
    def id(self) -> str:
        """The id within its module: function::key."""
        return f"{self.function}::{self.key}"


@dataclass
class Scan:
    """What one module holds."""

    module: str
    guide: int | None
    assertions: list[Assertion]
    type_guards: list[Assertion]
    helpers: dict[str, str]  # verify_* name -> module it is imported from


def _render(node: ast.expr | None) -> tuple[str | None, list[str]]:
    """A message as text with `{}` for computed parts, and its literal fragments."""
    if node is None:
        return None, []
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value, [node.value]
    if isinstance(node, ast.JoinedStr):
        text, fragments = "", []
        for part in node.values:
            if isinstance(part, ast.Constant) and isinstance(part.value, str):
                text += part.value
                fragments.append(part.value)
            else:
                text += "{}"
        return text, fragments
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, lf = _render(node.left)
        right, rf = _render(node.right)
        if left is None and right is None:
            return None, []
        return (left or "{}") + (right or "{}"), lf + rf
    return None, []


def normalise(text: str) -> str:
    """The key of a message: cut at the first "; ", whitespace collapsed, trimmed."""
    text = " ".join(text.split())
    text = text.split("; ", 1)[0]
    text = text.strip(" ;:,.")
    # a value at the end says what was seen, not what was promised ("got port {}")
    while text.endswith("{}") and len(text) > 2 and not text[-3].isalnum():
        text = text[:-2].rstrip(" ;:,.(")
        text = re.sub(r",? (got|expected)( port)?$", "", text)
    if len(text) > KEY_CHARS:
        text = text[:KEY_CHARS].rsplit(" ", 1)[0] + " ..."
    return text


def _is_type_guard(node: ast.Assert) -> bool:
    if node.msg is not None:
        return False
    tests = node.test.values if isinstance(node.test, ast.BoolOp) else [node.test]
    if isinstance(node.test, ast.BoolOp) and not isinstance(node.test.op, ast.And):
        return False
    return all(
        isinstance(t, ast.Compare)
        and all(isinstance(op, ast.IsNot) for op in t.ops)
        and all(isinstance(c, ast.Constant) and c.value is None for c in t.comparators)
        for t in tests
    )


def _call_name(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def _is_pytest_raises(node: ast.Call) -> bool:
    f = node.func
    return (
        isinstance(f, ast.Attribute)
        and f.attr == "raises"
        and isinstance(f.value, ast.Name)
        and f.value.id == "pytest"
    )


class _Visitor(ast.NodeVisitor):
    def __init__(self, module: str) -> None:
        self.module = module
        self.stack: list[str] = []
        self.found: list[tuple] = []  # (function, key, kind, line, fragments[, keywords])
        self.guards: list[tuple] = []

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.stack.append(node.name)
        self.generic_visit(node)
        self.stack.pop()

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function

    @property
    def where(self) -> str:
        return ".".join(self.stack) or "<module>"

    def visit_Assert(self, node: ast.Assert) -> None:
        text, fragments = _render(node.msg)
        key = normalise(text) if text else ""
        if not key:
            key = "assert " + normalise(ast.unparse(node.test))
        entry = (self.where, key, "assert", node.lineno, tuple(fragments))
        (self.guards if _is_type_guard(node) else self.found).append(entry)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = _call_name(node)
        if name == "verify":
            # framework.verify.verify(condition, promise, seen): keyed as an assert was
            promise = node.args[1] if len(node.args) > 1 else None
            promise = promise or next((k.value for k in node.keywords if k.arg == "promise"), None)
            text, fragments = _render(promise)
            key = normalise(text) if text else ""
            if not key and node.args:
                key = "assert " + normalise(ast.unparse(node.args[0]))
            self.found.append((self.where, key, "assert", node.lineno, tuple(fragments)))
        elif name and name.startswith("verify_"):
            literals = [
                a.value
                for a in [*node.args, *(k.value for k in node.keywords)]
                if isinstance(a, ast.Constant) and isinstance(a.value, str)
            ]
            key = f"{name}({normalise(literals[0])})" if literals else name
            keywords = tuple(
                (k.arg, k.value.value)
                for k in node.keywords
                if k.arg and isinstance(k.value, ast.Constant)
            )
            call = ast.unparse(node)
            entry = (self.where, key, "verify", node.lineno, tuple(literals), keywords, call)
            self.found.append(entry)
        elif _is_pytest_raises(node) and node.args:
            key = "pytest.raises(" + ast.unparse(node.args[0]) + ")"
            self.found.append((self.where, key, "raises", node.lineno, ()))
        self.generic_visit(node)


def _numbered(module: str, entries: list) -> list[Assertion]:
    seen: Counter[tuple[str, str]] = Counter()
    out = []
    for where, key, kind, line, fragments, *rest in entries:
        seen[(where, key)] += 1
        n = seen[(where, key)]
        unique = key if n == 1 else f"{key} #{n}"
        out.append(Assertion(module, where, unique, kind, line, fragments, *rest))
    return out


def _guide(tree: ast.Module) -> int | None:
    """N of `pytest.mark.guide(N)` in the module's pytestmark."""
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "guide"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            return int(node.args[0].value)
    return None


def _helpers(tree: ast.Module) -> dict[str, str]:
    return {
        alias.asname or alias.name: node.module
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
        if alias.name.startswith("verify_")
    }


def scan_module(module: str, suites: Path = SUITES) -> Scan:
    """Every assertion and type guard of testsuites/<module>.py."""
    tree = ast.parse((suites / f"{module}.py").read_text(), filename=f"{module}.py")
    visitor = _Visitor(module)
    visitor.visit(tree)
    return Scan(
        module,
        _guide(tree),
        _numbered(module, visitor.found),
        _numbered(module, visitor.guards),
        _helpers(tree),
    )


def scan(modules: tuple[str, ...] = MODULES, suites: Path = SUITES) -> dict[str, Scan]:
    """Every guide module's scan, by module."""
    return {m: scan_module(m, suites) for m in modules}


@functools.cache
def helper_fragments(dotted: str) -> tuple[str, ...]:
    """Every string literal fragment of a framework module and of the framework modules it
    imports from (what its helpers can say, their messages being built from those)."""
    tree = ast.parse((ROOT / (dotted.replace(".", "/") + ".py")).read_text())
    modules = [tree] + [
        ast.parse(path.read_text())
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("framework.")
        if (path := ROOT / (str(node.module).replace(".", "/") + ".py")).is_file()
    ]
    return tuple(
        node.value
        for module in modules
        for node in ast.walk(module)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    )


def fragment_matches(says: str, fragments: list[str] | tuple[str, ...]) -> bool:
    """Whether `says` (what a bite looks for in the output) can come from a message with
    these literal fragments: it holds three words in a row of one fragment (a fragment of
    fewer words: all of it, at least 5 characters), or lies within one fragment."""
    said = " ".join(says.split())
    for fragment in fragments:
        words = fragment.split()
        if said and said in " ".join(words):
            return True
        if len(words) >= 3:
            if any(" ".join(words[i : i + 3]) in said for i in range(len(words) - 2)):
                return True
        elif len(core := " ".join(words)) >= 5 and core in said:
            return True
    return False


def _main() -> None:
    for module, result in scan().items():
        print(f"# guide {result.guide}: testsuites/{module}.py ({len(result.assertions)})")
        for a in result.assertions:
            print(f"  {a.id}")
    print("# type guards, to be replaced by typed handles (issue 19)")
    for module, result in scan().items():
        for a in result.type_guards:
            print(f"  {module}::{a.id}  (line {a.line})")


if __name__ == "__main__":
    _main()
