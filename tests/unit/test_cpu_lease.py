"""Guides share the CPUs; a timing-sensitive guide takes them alone, and waits are bounded."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from framework.errors import LabError
from framework.lab import cpu, lockfile
from framework.lab.cpu import take_cpus


@pytest.fixture(autouse=True)
def private_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu, "CPU_DIR", tmp_path / "cpu")


def test_shared_leases_overlap_and_keep_an_exclusive_one_waiting() -> None:
    first = take_cpus("guide6::a", exclusive=False, wait_s=0)
    second = take_cpus("guide6::b", exclusive=False, wait_s=0)
    try:
        with pytest.raises(LabError) as failure:
            take_cpus("guide2::migration", exclusive=True, wait_s=0.3)
        message = str(failure.value)
        assert message.startswith(
            "the machine's CPUs were not free within 0.3 s for guide2::migration (exclusively)"
        )
        assert "(guide6::b, shared, since " in message and "\n" not in message
    finally:
        first.release()
        second.release()
    take_cpus("guide2::migration", exclusive=True, wait_s=0).release()


def test_an_exclusive_lease_keeps_everyone_out_until_released() -> None:
    alone = take_cpus("guide2::migration", exclusive=True, wait_s=0)
    with pytest.raises(LabError, match=r"\(guide2::migration, exclusively, since "):
        take_cpus("guide6::a", exclusive=False, wait_s=0.2)
    alone.release()
    take_cpus("guide6::a", exclusive=False, wait_s=0).release()


def test_the_lock_file_goes_with_its_last_holder() -> None:
    a = take_cpus("guide6::a", exclusive=False, wait_s=0)
    b = take_cpus("guide6::b", exclusive=False, wait_s=0)
    a.release()
    assert (cpu.CPU_DIR / "cpu.lock").exists(), "b still holds it"
    b.release()
    assert not cpu.CPU_DIR.exists(), "nothing left once nobody holds the CPUs"


def test_a_lock_file_replaced_meanwhile_is_not_trusted(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    first = lockfile.take(path)
    assert first is not None
    path.unlink()  # its holder gave it back and removed it; a new one is made on next take
    second = lockfile.take(path)
    assert second is not None and path.exists()
    assert lockfile.take(path) is None  # the new file is held
    lockfile.give_back(second, path)
    os.close(first)


def test_records_of_dead_holders_are_swept() -> None:
    cpu.CPU_DIR.mkdir(parents=True)
    dead = cpu.CPU_DIR / "999999999.json"  # beyond pid_max: no such process
    dead.write_text('{"pid": 999999999}')
    take_cpus("guide6::a", exclusive=False, wait_s=0).release()
    assert not dead.exists() and not cpu.CPU_DIR.exists()


def _sibling(tmp_path: Path, run: str, seconds: float) -> subprocess.Popen:
    """Another process that holds the CPUs exclusively for `seconds`, as worker of `run`."""
    code = (
        "import sys, time; from pathlib import Path; from framework.lab import cpu; "
        f"cpu.CPU_DIR = Path({str(cpu.CPU_DIR)!r}); "
        "lease = cpu.take_cpus('guide4::pvp', exclusive=True, wait_s=0); "
        f"print('held', flush=True); time.sleep({seconds}); lease.release()"
    )
    env = {**os.environ, "PYTEST_XDIST_TESTRUNUID": run}
    child = subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True,
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert child.stdout is not None and child.stdout.readline().strip() == "held"
    return child


def test_a_sibling_worker_of_the_same_run_is_waited_for_beyond_the_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # xdist's two workers of one run: guide 4's module holds the CPUs far longer than the
    # bound, and the other worker's exclusive guide must queue behind it, not fail.
    monkeypatch.setenv("PYTEST_XDIST_TESTRUNUID", "run-a")
    child = _sibling(tmp_path, "run-a", 1.5)
    started = time.monotonic()
    take_cpus("guide1::bond", exclusive=True, wait_s=0.3).release()
    assert time.monotonic() - started >= 1.0
    child.wait(timeout=10)


def test_another_run_holding_the_cpus_is_waited_for_only_the_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_XDIST_TESTRUNUID", "run-b")
    child = _sibling(tmp_path, "run-a", 3)
    try:
        with pytest.raises(LabError, match=r"not free within 0.3 s .*\(guide4::pvp, exclusively"):
            take_cpus("guide1::bond", exclusive=True, wait_s=0.3)
    finally:
        child.wait(timeout=10)
