"""Mid-test faults and the lab's health: deaths noticed and named, mid-method faults timed."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from framework import faults
from framework.dpdk import testpmd
from framework.lab import health
from framework.remote import LocalSession


def test_a_program_killed_is_told_from_one_closed() -> None:
    session = LocalSession()
    dying = session.open_shell(["bash", "-c", "echo 'last words'; kill -9 $$"], name="h/x",
                               prompt="never")  # fmt: skip
    deadline = time.monotonic() + 5
    while not dying.poll() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert dying.closed and dying.exited_by_itself
    assert dying.last_lines() == "last words"
    calm = session.open_shell(["sleep", "30"], name="h/y", prompt="never")
    calm.close()
    assert calm.closed and not calm.exited_by_itself


class _Pmd:
    def __init__(self, shell: object) -> None:
        self.shell, self._quitting = shell, False


def test_died_names_each_dead_testpmd_once() -> None:
    shell = LocalSession().open_shell(["bash", "-c", "echo 'testpmd> '; exit 9"], name="h/vhost",
                                      prompt="never")  # fmt: skip
    pmd = _Pmd(shell)
    testpmd._RUNNING.add(pmd)  # type: ignore[arg-type]  # a fake TestPmd
    try:
        deadline = time.monotonic() + 5
        found: list = []
        while not found and time.monotonic() < deadline:
            found = testpmd.died()
            time.sleep(0.05)
        assert found == [pmd]
        assert testpmd.died() == []
    finally:
        testpmd._RUNNING.discard(pmd)  # type: ignore[arg-type]  # a fake TestPmd


class _Lab:
    hosts = {"host_server_1": None, "tg": None}

    def __init__(self) -> None:
        self.down = {"d0p0": "host_server_1's eth0"}
        self.sshd_dead = {"host_server_1"}

    def dead_sshd(self, name: str) -> str | None:
        return f"{name}'s sshd (pid 7) died (killed by SIGKILL)" if name in self.sshd_dead else None

    def restart_sshd(self, name: str) -> None:
        self.sshd_dead.discard(name)

    def switch_ports_down(self) -> dict[str, str]:
        return dict(self.down)

    def set_switch_port(self, name: str, up: bool) -> None:
        self.down.pop(name)


class _Session:
    address = "198.18.0.11"

    def __init__(self, connected: bool) -> None:
        self.connected, self.calls = connected, []

    def close(self) -> None:
        self.calls.append("close")

    def connect(self) -> None:
        self.calls.append("connect")
        self.connected = True

    def run(self, argv: list[str], timeout: float) -> None:
        self.calls.append(argv[0])


def test_lab_checked_named_and_repaired() -> None:
    lab = _Lab()
    lost, fine = _Session(False), _Session(True)
    hosts = {
        "host_server_1": SimpleNamespace(lab=lab, session=lost),
        "tg": SimpleNamespace(lab=lab, session=fine),
    }
    lines = [line for _, line in health.diagnose(hosts)]  # type: ignore[arg-type]  # fake host handles
    assert lines == [
        "host_server_1's sshd (pid 7) died (killed by SIGKILL)",
        "switch port d0p0 (host_server_1's eth0) is down",
    ]
    repaired = health.check_and_repair(hosts)  # type: ignore[arg-type]  # fake host handles
    assert repaired == [
        "restarted host_server_1's sshd (it had died)",
        "brought switch port d0p0 (host_server_1's eth0) back up",
        "reconnected the SSH session to host_server_1 (connection closed)",
    ]
    assert lost.calls == ["close", "connect", "true"] and fine.calls == ["true"]
    assert health.check_and_repair(hosts) == []  # type: ignore[arg-type]  # fake host handles


def test_failed_repair_is_one_line() -> None:
    lab = _Lab()
    lab.down = {}

    def cannot(name: str) -> None:
        raise health.LabError("sshd for host_server_1 exited: Bind to port 22 failed")

    lab.restart_sshd = cannot  # type: ignore[method-assign]  # a fake lab whose sshd cannot restart
    hosts = {"host_server_1": SimpleNamespace(lab=lab, session=_Session(True))}
    with pytest.raises(health.LabBroken, match=r"^host_server_1's sshd .*restarting it failed"):
        health.check_and_repair(hosts)  # type: ignore[arg-type]  # fake host handles


class _Scenario:
    def work(self) -> str:
        time.sleep(0.3)
        return "done"


def test_a_fault_during_a_method_strikes_while_it_runs() -> None:
    seen: list[tuple[str, object]] = []
    fault = faults.Fault(
        "t", "t", f"{__name__}:_Scenario.work",
        lambda scenario, result, *_: seen.append((threading.current_thread().name, result)),
        during=0.1,
    )  # fmt: skip
    restore = faults._wrap(fault)
    try:
        assert _Scenario().work() == "done"
    finally:
        restore()
    assert len(seen) == 1 and seen[0][1] is None and seen[0][0] != threading.current_thread().name


def test_midtest_faults_are_known_and_strike_once() -> None:
    for name in ("kill-host-testpmd", "kill-lab-sshd", "switch-port-down", "kill-vm-qemu"):
        assert name in faults.names()
    calls: list[object] = []
    once = faults._once(calls.append)
    once("a", None, (), {})
    once("b", None, (), {})
    assert calls == ["a"]
