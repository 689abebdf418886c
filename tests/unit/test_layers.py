"""Layers of framework/ import downward only.

Every module of framework/ belongs to one layer, the package (or top-level module) it is
in; the layers, lowest first:

    errors, verify       what every layer may raise and the one check vocabulary
    config               the topology model and its loader
    remote               sessions to hosts (SSH, a pty, what a host reads back)
    dpdk                 testpmd: argv, its shell, parsers, its launch on a host
    lab                  host handles, the virtual lab, SR-IOV, CPUs, pre-flight
    container            the container engine and the testpmd image
    virt                 QEMU guests, their images, consoles and migrations
    traffic              the traffic generator, frames, streams and their verdicts
    report               the reports: steps, attachments, figures, the summary
    plan                 --plan: recording sessions and a recording TG in place of a lab
    scenarios            the guides' set-ups
    faults               DUT misbehaviour injected into the scenarios on purpose
    plugin               the pytest plugin that puts them together

A module may import its own layer and any layer below it. Imports inside functions count
too (a lazy import is still a dependency), and so do ``TYPE_CHECKING`` ones: a type from
an upper layer in a lower layer's signature ties the two the same way.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FRAMEWORK = ROOT / "framework"

LAYERS = [
    ("errors", "verify"),
    ("config",),
    ("remote",),
    ("dpdk",),
    ("lab",),
    ("container",),
    ("virt",),
    ("traffic",),
    ("report",),
    ("plan", "plan_virt"),
    ("scenarios",),
    ("faults",),
    ("plugin",),
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}

# Upward imports that are kept on purpose, each with its reason: (importer, imported).
ALLOWED: dict[tuple[str, str], str] = {}


def module_name(path: Path) -> str:
    """framework/traffic/pcap.py -> framework.traffic.pcap (a package by its __init__)."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    """The layer of a framework module: framework.lab.hosts -> lab."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def imported(path: Path, text: str | None = None) -> list[tuple[str, int]]:
    """Every framework module `path` (or `text` as that module) imports, with its line.

    ``from framework import plan`` names the module plan, not the package framework.
    """
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text() if text is None else text, str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            if source == "framework":
                found += [(f"framework.{alias.name}", node.lineno) for alias in node.names]
            else:
                found.append((source, node.lineno))
    return [(name, line) for name, line in found if name.split(".")[0] == "framework"]


def upward_imports() -> list[str]:
    """Each import of a higher layer, as `file:line: importer (layer) imports module (layer)`."""
    found = []
    for path in sorted(FRAMEWORK.rglob("*.py")):
        importer = module_name(path)
        own = layer(importer)
        for target, line in imported(path):
            theirs = layer(target)
            if RANK[theirs] > RANK[own] and (importer, target) not in ALLOWED:
                found.append(
                    f"{path.relative_to(ROOT)}:{line}: {importer} ({own}) imports "
                    f"{target} ({theirs})"
                )
    return found


def test_every_framework_module_has_a_layer() -> None:
    layers = {layer(module_name(p)) for p in FRAMEWORK.rglob("*.py")} - {""}
    assert layers <= set(RANK), f"modules outside every layer: {sorted(layers - set(RANK))}"


def test_layers_import_downward_only() -> None:
    found = upward_imports()
    assert not found, "upward imports:\n" + "\n".join(found)


def test_the_allowed_upward_imports_still_exist() -> None:
    # A kept exception that the code no longer needs must go, or it hides the next one.
    present = {
        (module_name(path), target)
        for path in FRAMEWORK.rglob("*.py")
        for target, _ in imported(path)
    }
    assert set(ALLOWED) <= present, sorted(set(ALLOWED) - present)


def test_the_check_finds_an_upward_import() -> None:
    # The parser itself: `from framework import x`, a lazy import inside a function and a
    # relative one, each of a layer above traffic.
    text = (
        "from framework import plan\n"
        "def f():\n"
        "    from framework.report.attach import step\n"
        "    from ..report import attach\n"
    )
    found = imported(FRAMEWORK / "traffic" / "probe.py", text)
    assert found == [("framework.plan", 1), ("framework.report.attach", 3), ("framework.report", 4)]
