"""pytest hooks that keep the lab usable when a test breaks it in the middle.

Before each test the lab is checked and repaired (framework.lab.health); a repair is
logged and shown in the test's report (a "lab repaired" section). A failed test whose
lab lost something under it (a testpmd, an sshd, a switch port) is reported by one line
naming what died and its last output, then what the test itself saw. If the lab cannot be
repaired, every remaining test fails at set-up with that one line.
"""

from __future__ import annotations

import pytest

from framework.lab import health
from framework.lab.hosts import LIVE, HostHandle

BROKEN_KEY = pytest.StashKey[str]()


def _hosts() -> dict[str, HostHandle]:
    return {name: handle for handles in LIVE for name, handle in handles.items()}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Check the lab and repair what the previous test broke, before this test's fixtures."""
    broken = item.config.stash.get(BROKEN_KEY, None)
    if broken is not None:
        raise health.LabBroken(broken)
    hosts = _hosts()
    if not hosts:
        return
    try:
        repaired = health.check_and_repair(hosts)
    except health.LabBroken as exc:
        item.config.stash[BROKEN_KEY] = f"the lab is broken: {exc}"
        raise health.LabBroken(item.config.stash[BROKEN_KEY]) from None
    if repaired:
        item.add_report_section("setup", "lab repaired", "\n".join(repaired))
        item.user_properties.append(("lab_repaired", "; ".join(repaired)))


def _first_line(call: pytest.CallInfo[None]) -> str:
    assert call.excinfo is not None
    text = str(call.excinfo.value).strip()
    first = text.splitlines()[0] if text else ""
    return f"{call.excinfo.typename}: {first}" if first else call.excinfo.typename


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """A failure with something dead under it: one line naming it, then what the test saw."""
    report = yield
    hosts = _hosts()
    if call.excinfo is None or not hosts or call.excinfo.errisinstance(health.LabBroken):
        return report
    if call.excinfo.errisinstance((pytest.skip.Exception, KeyboardInterrupt)):
        return report
    saw = _first_line(call)
    # What the test's own error already names (a ShellClosed of that testpmd) is not repeated.
    found = [line for what, line in health.diagnose(hosts) if what not in saw]
    if found:
        report.longrepr = f"{'; '.join(found)} (the test then saw: {saw})"
    return report
