"""The lab between tests: what a fault in the middle of a test broke, named and repaired.

A test can fail because something under it died: a testpmd killed, a lab host's sshd
gone (and with it every SSH session to the host), a port of the switch set down.
`diagnose` names that in one line for the failed test's report; `check_and_repair` runs
before every test, cheaply (a few milliseconds when all is well), and puts the lab back:
restarts a dead sshd in its namespace, reconnects the host's SSH session, brings a switch
port back up. What it cannot repair it raises, so that the remaining tests fail at set-up
with one line.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from contextlib import suppress

from framework.errors import FrameworkError, LabError
from framework.lab.hosts import HostHandle
from framework.lab.virtual import VirtualLab

log = logging.getLogger("howto.lab.health")

# Seconds an SSH session has to answer `true` before it counts as lost.
ANSWER_TIMEOUT_S = 5.0


class LabBroken(LabError):
    """The lab could not be repaired after a test broke it: the remaining tests cannot run."""


def _labs(hosts: Iterable[HostHandle]) -> list[VirtualLab]:
    labs: list[VirtualLab] = []
    for handle in hosts:
        if handle.lab is not None and all(handle.lab is not lab for lab in labs):
            labs.append(handle.lab)
    return labs


def _session_lost(handle: HostHandle) -> bool:
    """Whether the host's SSH connection is gone (no network round trip)."""
    return not getattr(handle.session, "connected", True)


def diagnose(hosts: dict[str, HostHandle]) -> list[tuple[str, str]]:
    """What died or went down under a test, root causes first: (what, one line) each.

    Dead sshds, switch ports down, SSH sessions lost, then testpmds that exited by
    themselves (each testpmd is named once, by the first failure that sees it dead).
    """
    from framework.dpdk import testpmd

    found: list[tuple[str, str]] = []
    dead_sshd: set[str] = set()
    for lab in _labs(hosts.values()):
        for name in lab.hosts:
            line = lab.dead_sshd(name)
            if line:
                found.append((f"{name}'s sshd", line))
                dead_sshd.add(name)
        for port, owner in lab.switch_ports_down().items():
            found.append((f"switch port {port}", f"switch port {port} ({owner}) is down"))
    for name, handle in hosts.items():
        if name not in dead_sshd and _session_lost(handle):
            address = getattr(handle.session, "address", "")
            found.append((name, f"the SSH connection to {name} ({address}) was lost"))
    for pmd in testpmd.died():
        name = pmd.shell.name
        found.append((name, f"testpmd {name} died; last output: {pmd.shell.last_lines()}"))
    return found


def check_and_repair(hosts: dict[str, HostHandle]) -> list[str]:
    """Check the lab and repair what a test broke; return one line per repair.

    Raises:
        LabBroken: naming what could not be repaired and why.
    """
    repaired: list[str] = []
    for lab in _labs(hosts.values()):
        for name in lab.hosts:
            dead = lab.dead_sshd(name)
            if dead:
                try:
                    lab.restart_sshd(name)
                except LabError as exc:
                    raise LabBroken(f"{dead}; restarting it failed: {exc}") from None
                repaired.append(f"restarted {name}'s sshd (it had died)")
        for port, owner in lab.switch_ports_down().items():
            try:
                lab.set_switch_port(port, up=True)
            except Exception as exc:  # reported as the one line
                raise LabBroken(
                    f"switch port {port} ({owner}) is down and stays down: {exc}"
                ) from None
            repaired.append(f"brought switch port {port} ({owner}) back up")
    for name, handle in hosts.items():
        why = _unanswered(handle)
        if why is None:
            continue
        with suppress(Exception):
            handle.session.close()
        try:
            handle.session.connect()
            handle.session.run(["true"], timeout=ANSWER_TIMEOUT_S)
        except FrameworkError as exc:
            raise LabBroken(
                f"{name}: SSH session lost ({why}) and reconnecting failed: {exc}"
            ) from None
        repaired.append(f"reconnected the SSH session to {name} ({why})")
    for line in repaired:
        log.warning("lab repaired: %s", line)
    return repaired


def _unanswered(handle: HostHandle) -> str | None:
    """Why the host's session does not answer, or None if `true` runs."""
    if _session_lost(handle):
        return "connection closed"
    try:
        handle.session.run(["true"], timeout=ANSWER_TIMEOUT_S)
    except FrameworkError as exc:
        return str(exc)
    except Exception as exc:  # paramiko errors on a broken transport
        return f"{type(exc).__name__}: {exc}"
    return None
