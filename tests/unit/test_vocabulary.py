"""One check vocabulary, one step mechanism, and scenario steps that name their order.

Guide modules check with `verify(condition, promise)` or a named `verify_*` helper and
report steps with `framework.report.attach.step` (which reaches the HTML log as well as
Allure); every framework check fails with VerifyFailed. A scenario step run before the step
that makes what it needs raises StepOrderError naming that step.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest

from framework.config.model import DpdkBuild
from framework.scenarios.container_networking import ContainerNetworking
from framework.scenarios.pvp import Pvp
from framework.scenarios.sriov_bond_migration import SriovBondMigration
from framework.scenarios.stages import StepOrderError
from framework.scenarios.vhost_user_migration import VhostUserMigration
from framework.verify import VerifyFailed, recording_promises, verify

ROOT = Path(__file__).resolve().parents[2]
SUITES = sorted((ROOT / "testsuites").glob("*.py"))


def _offences(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Assert):
            found.append(f"{where}: bare assert (use verify(condition, promise))")
        elif (
            isinstance(node, ast.Attribute)
            and node.attr == "step"
            and (isinstance(node.value, ast.Name) and node.value.id == "allure")
        ):
            found.append(f"{where}: allure.step (use framework.report.attach.step)")
        elif isinstance(node, ast.Raise) and "AssertionError" in ast.unparse(node):
            found.append(f"{where}: raise AssertionError (use verify or VerifyFailed)")
    return found


def test_guide_modules_use_one_check_and_one_step_vocabulary() -> None:
    offences = [line for path in SUITES for line in _offences(path)]
    assert not offences, "\n".join(offences)


def test_framework_checks_fail_with_verify_failed() -> None:
    raised = []
    for path in sorted((ROOT / "framework").rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        raised += [
            f"{path.relative_to(ROOT)}:{node.lineno}"
            for node in ast.walk(tree)
            if (isinstance(node, ast.Raise | ast.Return) and "AssertionError(" in ast.unparse(node))
            or (
                isinstance(node, ast.FunctionDef)
                and node.name.startswith("verify_")
                and any(isinstance(n, ast.Assert) for n in ast.walk(node))
            )
        ]
    assert not raised, "framework checks raise VerifyFailed, not AssertionError: " + ", ".join(
        raised
    )


def test_verify_says_the_promise_then_what_was_seen() -> None:
    verify(True, "never shown")
    with pytest.raises(VerifyFailed) as failed:
        verify(0, "guide: traffic at P0 and P1", "P0 rx 0", expected="rx > 0")
    assert str(failed.value).splitlines() == [
        "guide: traffic at P0 and P1",
        "  expected: rx > 0",
        "  seen: P0 rx 0",
    ]
    assert isinstance(failed.value, AssertionError)  # pytest reports a failure, not an error


def test_a_plan_run_records_promises_instead_of_judging() -> None:
    promises: list[str] = []
    with recording_promises(promises.append):
        verify(False, "the VF's MAC is the bond's")
    assert promises == ["the VF's MAC is the bond's"]
    with pytest.raises(VerifyFailed):
        verify(False, "judged again once the plan is over")


def _unstarted(kind: str) -> Any:
    """A scenario none of whose steps ran (nothing it is refused needs a topology or host)."""
    return {
        "guide1": lambda: SriovBondMigration(None, None, None, None, "bond_vm"),
        "guide2": lambda: VhostUserMigration(None, None, None, None),
        "guide4": lambda: Pvp(None, None, None, None, "vm"),
        "guide6": lambda: ContainerNetworking(None, None, DpdkBuild()),
    }[kind]()


@pytest.mark.parametrize(
    ("kind", "step", "needs"),
    [
        ("guide1", "bonding_config", "start_guest_testpmd()"),
        ("guide1", "migrate", "start_vm()"),
        ("guide2", "reattach_guest_testpmd", "start_destination_vm()"),
        ("guide4", "host_forwarding", "start_host_testpmd()"),
        ("guide6", "host_vhost_info", "start_host_testpmd()"),
    ],
)
def test_a_step_out_of_order_names_the_step_that_comes_first(
    kind: str, step: str, needs: str
) -> None:
    with pytest.raises(StepOrderError, match=re.escape(f"made by {needs}")):
        getattr(_unstarted(kind), step)()


def test_verify_queues_names_each_idle_queue_and_side() -> None:
    from framework.dpdk.verify import verify_queues

    sides = ["host vhost TX", "guest RX"]
    verify_queues([[5, 5], [3, 3]], "two streams use both queues", sides)
    with pytest.raises(VerifyFailed) as failed:
        verify_queues([[5, 5], [0, 3]], "two streams use both queues", sides)
    text = str(failed.value)
    assert text.startswith("two streams use both queues")
    assert "queue 1 carried no traffic on some side (host vhost TX 0, guest RX 3)" in text
    assert "queue 0" not in text
