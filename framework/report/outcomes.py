"""Why a test was skipped, said in a way the conformance summary can judge.

A release may be signed off with tests skipped because the testbed lacks what they need
(an 82599 on the virtual lab) or because a case does not apply to a variant (restarts
run on one set-up only). Any other skip (a tool missing on a host, an earlier test's
result missing) means something was not tested that should have been: the summary calls
it unexpected and the run cannot sign off.

The kind is carried by the skip's reason itself, so that it survives what a property on
the item would not: a module fixture's skip, which pytest re-raises for every later test
of the module, and the trip from an xdist worker to the controller.
"""

from __future__ import annotations

import re
from typing import NoReturn

import pytest

LACKS = "lacks"  # the testbed lacks a capability the test needs
NOT_APPLICABLE = "not-applicable"  # the case does not apply to this variant, by design
PLANNED = "planned"  # a --plan run recorded the test's commands; no verdict was judged
UNEXPECTED = ""

_LACKS_PREFIX = "lacks: "
_NOT_APPLICABLE_PREFIX = "not applicable: "
_PLANNED_PREFIX = "planned: "
REFUSED_PREFIX = "DUT refused: "

# Why the topology's declared selection leaves a collected test out (set on the item by
# the module's `topology_selection`, read when the test is reported as not selected).
NOT_SELECTED = pytest.StashKey[str]()
# "topology 'virtual' lacks niantic (an Intel 82599 ...); sriov (...)"
_CAPABILITY = re.compile(r"topology '[^']*' lacks (.*)")


def skip_missing_capabilities(topology: str, missing: dict[str, str]) -> NoReturn:
    """Skip: the topology lacks these capabilities (name -> what it means)."""
    listed = "; ".join(f"{name} ({means})" for name, means in missing.items())
    pytest.skip(f"topology '{topology}' lacks {listed}")


def skip_lacking(reason: str) -> NoReturn:
    """Skip: the testbed lacks something the test needs (`reason` says what)."""
    pytest.skip(_LACKS_PREFIX + reason)


def skip_not_applicable(reason: str) -> NoReturn:
    """Skip: the case does not apply to this variant, by design (`reason` says why)."""
    pytest.skip(_NOT_APPLICABLE_PREFIX + reason)


def fail_refused(reason: str) -> NoReturn:
    """Fail: the DUT refused what the guide or its variant asks of it (`reason` says what).

    Not a skip: the testbed has what the step needs and the DUT turned it down, which is
    a statement about the DUT. The summary shows the row as "DUT refused".
    """
    pytest.fail(REFUSED_PREFIX + reason, pytrace=False)


def known_defect(what: str) -> NoReturn:
    """End the test as an expected failure: a known defect (`what`) broke a guide promise.

    Everything else the test checks has passed by then. pytest reports it as XFAIL (the
    run's exit status does not fail on it); the summary shows the row failed with
    "known defect: ...": the run cannot sign the guide off while the defect lasts.
    """
    pytest.xfail(what if what.startswith("known defect: ") else "known defect: " + what)


def skip_planned(what: str) -> NoReturn:
    """End a --plan test as planned: its commands were recorded, nothing was judged."""
    pytest.skip(_PLANNED_PREFIX + what)


def refusal(message: str) -> str:
    """The refusal in a failure's line ('' if the line is no refusal)."""
    _, found, rest = message.partition(REFUSED_PREFIX)
    return rest if found else ""


def skip_kind(reason: str) -> str:
    """LACKS, NOT_APPLICABLE, PLANNED or UNEXPECTED, from a skip's reason."""
    if reason.startswith(_LACKS_PREFIX) or _CAPABILITY.match(reason):
        return LACKS
    if reason.startswith(_NOT_APPLICABLE_PREFIX):
        return NOT_APPLICABLE
    if reason.startswith(_PLANNED_PREFIX):
        return PLANNED
    return UNEXPECTED


def short_reason(reason: str) -> str:
    """A capability skip by the names alone ('lacks niantic, sriov'); other reasons as given."""
    found = _CAPABILITY.match(reason)
    if not found:
        return reason
    return "lacks " + ", ".join(part.split(" (", 1)[0] for part in found.group(1).split("; "))
