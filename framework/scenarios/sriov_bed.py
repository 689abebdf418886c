"""What guides 3 and 5 share: a PF named by a topology section, and what faces it.

One NIC family's PF (`vf_daemon.<family>` or `flow_bifurcation.<family>`), its host, and
the TG port the switch joins with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import allure

from framework.config.model import NicFamily, SriovBed, Topology
from framework.dpdk.version import DpdkVersion
from framework.errors import ConfigError
from framework.lab.hosts import HostHandle
from framework.traffic.generator import TrafficGenerator


@dataclass
class SriovBedScenario:
    """A guide's set-up on the `<section>.<family>` PF of a topology."""

    section: ClassVar[str]  # the topology key: vf_daemon or flow_bifurcation

    topology: Topology
    family: NicFamily
    hosts: dict[str, HostHandle]
    tg: TrafficGenerator
    version: DpdkVersion

    @classmethod
    @contextmanager
    def running(cls, title: str, *args: Any) -> Iterator[Self]:
        """The set-up built (as one report step, `title`) and always taken down after."""
        scenario = cls(*args)
        try:
            with allure.step(title):
                scenario.set_up()
            yield scenario
        finally:
            scenario.close()

    def set_up(self) -> None:
        """The guide's set-up; each scenario has its own."""
        raise NotImplementedError

    def close(self) -> None:
        """Undo set_up; never raises."""
        raise NotImplementedError

    @property
    def bed(self) -> SriovBed:
        """The topology's entry for this family."""
        try:
            return getattr(self.topology, self.section)[self.family]
        except KeyError:
            raise ConfigError(
                f"topology '{self.topology.name}' has no {self.section}.{self.family.value}"
            ) from None

    @property
    def host(self) -> HostHandle:
        """The host of the PF."""
        return self.hosts[self.bed.host]

    @property
    def tg_port(self) -> str:
        """The TG interface the switch joins with the PF."""
        return self.hosts[self.topology.tg_name].port(self.bed.tg_port).interface

    @property
    def pf_pci(self) -> str:
        """The PF's PCI address."""
        pci = self.host.port(self.bed.pf).spec.pci
        if pci is None:  # the model requires it for niantic/fortville ports
            raise ConfigError(f"port {self.bed.pf} of {self.host.name} has no pci address")
        return pci.lower()
