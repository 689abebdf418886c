"""Guides share the CPUs; a timing-sensitive guide takes them alone, and waits are bounded."""

from __future__ import annotations

import os
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
