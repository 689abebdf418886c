"""DPDK's reconnect plan with two VMs on guide 4's host: PVVP.

TG pvp0 -> host NIC0 -> vhost0 -> VM1 -> vhost0 -> vhost1 -> VM2 -> vhost1 -> host NIC1 ->
TG pvp1, as the plan's multi-VM cases chain them (the host testpmd's ports chained, each
VM's testpmd forwarding `mac` on its one virtio port). The two VMs are guide 4's VM split
in two: each takes one of its vhost-user NICs (socket, slot, MAC).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from framework.config.model import PvpBenchmark, Topology, Vm
from framework.dpdk.args import EalOptions, TestPmdOptions, testpmd_argv
from framework.dpdk.launch import LaunchRecord
from framework.dpdk.modes import ForwardingMode
from framework.dpdk.testpmd import TestPmd
from framework.dpdk.version import DpdkVersion
from framework.errors import ConfigError
from framework.lab.hosts import HostHandle
from framework.report.attach import attach_text
from framework.scenarios import guest_dpdk
from framework.scenarios.pvp import DESCRIPTORS, GUEST_MBUFS, MEMORY_MB, stream_frame
from framework.scenarios.stages import Made
from framework.scenarios.vhost_switch import VhostSwitch
from framework.scenarios.vms import close_vms, vm_on
from framework.traffic.generator import StreamRun, TrafficGenerator
from framework.traffic.packets import rewrite_macs
from framework.virt.image import GuestImage
from framework.virt.vm import VirtualMachine

log = logging.getLogger("howto.pvvp")

VM_NAMES = ("pvvp-vm1", "pvvp-vm2")
GUEST_LCORES = "0-1"  # the plan's -c 0x3: a main lcore and one forwarding


@dataclass
class Pvvp:
    """The host testpmd chaining its NICs through two VMs, each forwarding mac."""

    topology: Topology
    host: HostHandle
    tg_host: HostHandle
    version: DpdkVersion
    packed: bool = False
    # As in framework.scenarios.pvp: "client", the host's vhost ports connect (client=1)
    # to sockets QEMU serves; "server", the host serves them and QEMU connects again.
    reconnect: Literal["client", "server"] = "client"
    images: dict[str, GuestImage | None] = field(default_factory=dict)
    launches: list[LaunchRecord] = field(default_factory=list)
    vms: list[VirtualMachine] = field(default_factory=list)
    guest_pmds: list[TestPmd] = field(default_factory=list)
    switch = Made[VhostSwitch]("start_host_testpmd()")

    @property
    def spec(self) -> PvpBenchmark:
        """The topology's `pvp` section."""
        if self.topology.pvp is None or self.topology.pvp.vm is None:
            raise ConfigError(f"topology '{self.topology.name}' has no pvp.vm (guide 4's VM)")
        return self.topology.pvp

    @property
    def testpmd(self) -> str:
        """The host's testpmd."""
        return self.topology.dpdk.host_testpmd

    @property
    def tg_ports(self) -> tuple[str, str]:
        """The TG's two interfaces cabled to the host's two NIC ports, in that order."""
        a, b = (self.tg_host.port(name).interface for name in self.spec.tg_ports)
        return a, b

    def vm_specs(self) -> list[Vm]:
        """Guide 4's VM split in two: VM i has its vhost-user NIC i only."""
        assert self.spec.vm is not None  # spec checks it
        base = self.topology.vms[self.spec.vm]
        nics = [nic for nic in base.nics if nic.kind == "vhost-user"][: len(VM_NAMES)]
        if len(nics) < len(VM_NAMES):
            raise ConfigError(
                f"vm {self.spec.vm}: two vhost-user NICs needed for the two-VM reconnect "
                f"cases, it has {len(nics)}"
            )
        update = {
            "packed": self.packed,
            "vhost_server": self.reconnect == "client",
            "reconnect": 1 if self.reconnect == "server" else None,
        }
        return [base.model_copy(update={"nics": [nic.model_copy(update=update)]}) for nic in nics]

    # -- the host ---------------------------------------------------------------------------

    def start_host_testpmd(self) -> TestPmd:
        """Two NIC ports and two vhost-user ports chained NIC0 -> VM1 -> VM2 -> NIC1, io."""
        return self._start_switch(nics=list(self.spec.host_ports), chained=True)

    def _start_switch(self, **options: Any) -> TestPmd:
        sockets = [spec.nics[0].socket for spec in self.vm_specs() if spec.nics[0].socket]
        self.switch = VhostSwitch(
            self.host, self.version, self.testpmd, sockets, name="pvvp-host",
            memory_mb=MEMORY_MB, lcores=self.spec.host_lcores,
            client=self.reconnect == "client", **options,
        )  # fmt: skip
        pmd = self.switch.start()
        self.launches.append(self.switch.launch)
        return pmd

    @property
    def host_pmd(self) -> TestPmd:
        """The host testpmd."""
        return self.switch.pmd

    # -- the two VMs ------------------------------------------------------------------------

    def start_guests(self, boot_timeout: float = 120) -> None:
        """Both VMs (booting at once), then each one's testpmd: mac, chained, started."""
        specs = self.boot_vms(boot_timeout)
        self.guest_pmds = [
            self._guest_testpmd(vm, spec) for vm, spec in zip(self.vms, specs, strict=True)
        ]

    def boot_vms(self, boot_timeout: float = 120) -> list[Vm]:
        """Both VMs, booting at once, until each one's shell answers; their specs."""
        specs = self.vm_specs()
        self.vms = [
            vm_on(self.host, spec, name, self.images, self.topology.dpdk)
            for spec, name in zip(specs, VM_NAMES, strict=True)
        ]
        for vm in self.vms:
            vm.start()
        for vm in self.vms:
            vm.wait_for_shell(timeout=boot_timeout)
        return specs

    def _guest_testpmd(self, vm: VirtualMachine, spec: Vm) -> TestPmd:
        nic = spec.nics[0]
        allow = [spec.guest_pci(nic)] if nic.slot is not None else []
        eal = EalOptions(lcores=GUEST_LCORES, allow=allow)
        app = TestPmdOptions(
            rxd=DESCRIPTORS, txd=DESCRIPTORS, nb_cores=1, forward_mode=ForwardingMode.MAC,
            port_topology="chained", total_num_mbufs=GUEST_MBUFS,
        )  # fmt: skip
        version = guest_dpdk.guest_version(vm, spec, self.topology.dpdk, self.version)
        argv = testpmd_argv(guest_dpdk.guest_testpmd(spec, self.topology.dpdk), eal, app, version)
        self.launches.append(LaunchRecord("pvvp-guest", f"{self.host.name}/{vm.name}", argv))
        pmd = vm.launch_testpmd(argv, version=version)
        pmd.start()
        return pmd

    def close_guests(self) -> None:
        """Each VM's testpmd, then the VMs."""
        for pmd in self.guest_pmds:
            _attach_transcript(pmd)
            pmd.close()
        self.guest_pmds = []
        close_vms(self.vms)
        self.vms = []

    # -- traffic ----------------------------------------------------------------------------

    def stream(self, tg: TrafficGenerator, pps: float) -> Callable[..., StreamRun]:
        """A sequenced stream TG pvp0 -> VM1 -> VM2 -> TG pvp1, every frame checked whole.

        The host forwards io; each VM's mac forwarding writes its port's MAC as source and
        its peer as destination, so a frame arrives as VM2 last wrote it.
        """
        tx, rx = self.tg_ports
        forms = [rewrite_macs(s, d) for s, d in self.guest_pmds[-1].mac_forwarding_addresses()]
        start = tg.starter(tx, rx, stream_frame, pps=pps)
        return lambda **options: start(expect=forms, **options)

    # -- teardown ---------------------------------------------------------------------------

    def close(self) -> None:
        """Guest testpmds, VMs, host testpmd and sockets; transcripts attached."""
        self.close_guests()
        switch = Pvvp.switch.peek(self)
        if switch is not None:
            if switch.running:
                _attach_transcript(switch.pmd)
            switch.close()
            del self.switch  # closed once: a second close() touches no socket of another


def _attach_transcript(pmd: TestPmd) -> None:
    try:
        attach_text(f"{pmd.shell.name} transcript", pmd.shell.transcript)
    except Exception as exc:  # reporting must not stop teardown
        log.warning("could not attach transcript: %s", exc)
