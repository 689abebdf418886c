"""A pool of testbeds: each process leases one; lab testbeds are never shared."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from framework.config import DEFAULT_TOPOLOGY, load_topology
from framework.errors import ConfigError, LabError
from framework.lab import testbeds
from framework.lab.testbeds import lease_testbed, load_pool

LAB = DEFAULT_TOPOLOGY.with_name("lab.yaml")


@pytest.fixture(autouse=True)
def private_leases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(testbeds, "LEASE_DIR", tmp_path / "leases")


def _write(directory: Path, name: str, source: Path = DEFAULT_TOPOLOGY) -> Path:
    text = source.read_text().replace(f"name: {load_topology(source).name}\n", f"name: {name}\n", 1)
    path = directory / f"{name}.yaml"
    path.write_text(text)
    return path


def test_a_directory_is_its_yaml_files_by_name(tmp_path: Path) -> None:
    pool_dir = tmp_path / "pool"
    pool_dir.mkdir()
    _write(pool_dir, "virtual-b")
    _write(pool_dir, "virtual-a")
    assert [t.name for t in load_pool([pool_dir])] == ["virtual-a", "virtual-b"]
    assert [t.name for t in load_pool([pool_dir / "virtual-b.yaml", DEFAULT_TOPOLOGY])] == [
        "virtual-b",
        "virtual",
    ]


def test_testbeds_need_distinct_names_and_a_directory_needs_topologies(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="testbed 'virtual' is also the name of"):
        load_pool([DEFAULT_TOPOLOGY, DEFAULT_TOPOLOGY])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="the directory holds no"):
        load_pool([tmp_path / "empty"])


def test_each_worker_leases_its_own_testbed_then_virtual_ones_are_shared(tmp_path: Path) -> None:
    pool = load_pool([_write(tmp_path, "virtual-a"), _write(tmp_path, "virtual-b")])
    first = lease_testbed(pool, index=0, worker="gw0")
    second = lease_testbed(pool, index=1, worker="gw1")
    third = lease_testbed(pool, index=2, worker="gw2")
    try:
        assert (first.topology.name, first.exclusive) == ("virtual-a", True)
        assert (second.topology.name, second.exclusive) == ("virtual-b", True)
        assert third.exclusive is False  # a virtual lab is built per run: sharing is safe
    finally:
        for lease in (first, second, third):
            lease.release()
    again = lease_testbed(pool, index=1)
    assert (again.topology.name, again.exclusive) == ("virtual-b", True)
    again.release()


def test_a_taken_lab_testbed_is_waited_for_then_its_holder_named() -> None:
    pool = load_pool([LAB])
    held = lease_testbed(pool, worker="gw0", command="pytest -m niantic")
    try:
        with pytest.raises(LabError) as failure:
            lease_testbed(pool, wait_s=0.3)
        message = str(failure.value)
        assert message.startswith("no free testbed after 0.3 s: lab held by pid ")
        assert f"pid {os.getpid()} as xdist gw0 since " in message
        assert message.endswith("(pytest -m niantic)") and "\n" not in message
    finally:
        held.release()
    lease_testbed(pool, wait_s=0).release()  # free again once released
