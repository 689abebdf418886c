"""Start testpmd on a topology host with names this run can clean up after."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Protocol

from framework.dpdk.args import EalOptions, TestPmdOptions, testpmd_argv
from framework.dpdk.testpmd import TestPmd, argv_value
from framework.dpdk.version import DpdkVersion
from framework.remote.session import Session

log = logging.getLogger("howto.dpdk")


class LaunchHost(Protocol):
    """What a launch needs of a host (framework.lab.hosts.HostHandle is one)."""

    @property
    def name(self) -> str:
        """The host's name in the topology."""
        ...

    @property
    def prefix(self) -> str:
        """The run's prefix for the host's DPDK file prefixes, sockets and containers."""
        ...

    @property
    def session(self) -> Session:
        """The host's connected session."""
        ...


@dataclass
class LaunchRecord:
    """What ran, for the report: the argv and any option the release no longer has."""

    name: str
    host: str
    argv: list[str]
    changes: list[str] = field(default_factory=list)


def file_prefix(host: LaunchHost, name: str) -> str:
    """The EAL --file-prefix of testpmd `name` on `host`.

    It starts with the lab prefix so teardown (and the next run) finds the hugepage files.
    """
    return f"{host.prefix}-{host.name}-{name}".replace("_", "-")


def launch_testpmd(
    host: LaunchHost,
    name: str,
    eal: EalOptions,
    app: TestPmdOptions,
    *,
    binary: str,
    version: DpdkVersion,
    timeout: float = 60,
) -> tuple[TestPmd, LaunchRecord]:
    """Start an interactive testpmd on `host`, with a run-owned --file-prefix if none is given.

    Returns:
        The running shell, and the record of its argv and of the options the release
        changed.
    """
    if eal.file_prefix is None:
        eal = replace(eal, file_prefix=file_prefix(host, name))
    changes: list[str] = []
    argv = testpmd_argv(binary, eal, replace(app, interactive=True), version, changes)
    record = LaunchRecord(name, host.name, argv, changes)
    pmd = TestPmd.launch(
        host.session, argv, name=f"{host.name}/{name}", timeout=timeout, version=version
    )
    return pmd, record


def testpmd_pids(session: Session, pmd: TestPmd) -> list[int]:
    """The pids of the processes running `pmd`'s command line, found by its --file-prefix.

    The prefix is unique to this run and testpmd; `[= ]` keeps pgrep from matching the
    shell that runs it.
    """
    prefix = argv_value(pmd.argv, "--file-prefix")
    if prefix is None:
        raise ValueError(f"{pmd.shell.name}: no --file-prefix to find its process by")
    found = session.run_script(f"pgrep -f -- '--file-prefix[= ]{prefix}( |$)' || true")
    return [int(pid) for pid in found.stdout.split()]


def kill_testpmd(session: Session, pmd: TestPmd) -> None:
    """End the testpmd running `pmd`'s command line with kill -9 (a crash, not a quit)."""
    pids = testpmd_pids(session, pmd)
    if pids:
        session.run(["kill", "-9", *map(str, pids)], check=False)
