"""Deliberate faults are applied from outside the scenarios, and only when named."""

from __future__ import annotations

import re

import pytest

from framework import faults
from framework.errors import ConfigError
from framework.scenarios.container_networking import ContainerNetworking
from framework.scenarios.vhost_user_migration import (
    STREAM_DST_MAC,
    VhostUserMigration,
    stream_frame,
)
from framework.traffic.packets import STREAM_SEQ_OFFSET


def test_scenarios_hold_no_fault_hooks() -> None:
    import inspect

    import framework.scenarios.container_networking as guide6
    import framework.scenarios.vhost_switch as switch
    import framework.scenarios.vhost_user_migration as guide2

    for module in (guide2, guide6, switch):
        # a word of its own: "defaults" is no fault hook
        assert not re.search(r"\bfaults\b", inspect.getsource(module)), module.__name__


def test_install_wraps_the_named_method_and_uninstall_restores_it() -> None:
    migrate = VhostUserMigration.__dict__["migrate"]
    start = ContainerNetworking.__dict__["start_container_testpmd"]
    uninstall = faults.install(["vm-paused-after-migration"])
    try:
        assert VhostUserMigration.__dict__["migrate"] is not migrate
        assert VhostUserMigration.migrate.__wrapped__ is migrate
        assert ContainerNetworking.__dict__["start_container_testpmd"] is start
    finally:
        uninstall()
    assert VhostUserMigration.__dict__["migrate"] is migrate


def test_no_fault_named_changes_nothing() -> None:
    before = dict(VhostUserMigration.__dict__)
    faults.install([])()
    assert dict(VhostUserMigration.__dict__) == before


@pytest.mark.parametrize("n", [20, 50, 200])
def test_steady_loss_family(n: int) -> None:
    fault = faults.lookup(f"source-host-drops-1-in-{n}")
    assert f"drops 1 frame in {n}" in fault.description
    assert fault.target.endswith("VhostUserMigration.start_switch")


@pytest.mark.parametrize("name", ["gremlins", "source-host-drops-1-in-1", "source-host-drops"])
def test_unknown_fault_is_one_line_naming_the_known_ones(name: str) -> None:
    with pytest.raises(ConfigError) as failure:
        faults.lookup(name)
    message = str(failure.value)
    assert message.startswith(f"--inject-fault: unknown fault {name} (known: ")
    assert "source-host-drops-1-in-N" in message and "\n" not in message


def test_the_sequence_number_offset_points_after_the_marker() -> None:
    raw = bytes(stream_frame("02:00:00:00:00:01"))
    assert raw[STREAM_SEQ_OFFSET - 5 : STREAM_SEQ_OFFSET] == b"HOWTO"
    assert raw[STREAM_SEQ_OFFSET : STREAM_SEQ_OFFSET + 4] == bytes(4)  # seq 0, big endian
    assert STREAM_SEQ_OFFSET == 14 + 20 + 8 + 5
    assert raw[:6] == bytes.fromhex(STREAM_DST_MAC.replace(":", ""))
