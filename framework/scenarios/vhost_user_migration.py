"""Guide 2 (live migration of a VM with virtio on hosts running vhost-user) as one object.

host_server_1 and host_server_2 each run the vhost-switch role (framework.scenarios.
vhost_switch) serving the VM's two vhost-user sockets; the VM runs testpmd on its two
virtio ports (P0, P1) with `set fwd mac retry` and `start tx_first`, as the guide does;
then the VM moves to host_server_2 over the management network.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from framework import faults
from framework.config.model import Topology, Vm
from framework.dpdk.args import EalOptions, TestPmdOptions, testpmd_argv
from framework.dpdk.testpmd import TestPmd
from framework.dpdk.version import DpdkVersion
from framework.lab.hosts import HostHandle
from framework.scenarios.vhost_switch import VhostSwitch
from framework.virt.image import GuestImage, ensure_guest_image
from framework.virt.vm import MigrationResult, VirtualMachine

log = logging.getLogger("howto.guide2")

# The guide's run_testpmd_in_vm.sh (17.05), reported next to what ran in the guest.
GUIDE_GUEST_TESTPMD = (
    "/root/dpdk/x86_64-default-linuxapp-gcc/app/testpmd -l 0-5 -n 4 --socket-mem 350 "
    "-- --burst=64 --i --disable-hw-vlan-filter"
)
MIGRATION_PORT = 5555  # the guide's `-incoming tcp:0:5555`
GUEST_MBUFS = 4096  # the default pool does not fit the guest's 512 MB of hugepages


@dataclass
class VhostUserMigration:
    topology: Topology
    source: HostHandle
    destination: HostHandle
    version: DpdkVersion
    vm_name: str = "vm1"
    packed: bool = False
    switches: dict[str, VhostSwitch] = field(default_factory=dict)
    images: dict[str, GuestImage | None] = field(default_factory=dict)
    source_vm: VirtualMachine | None = None
    dest_vm: VirtualMachine | None = None
    guest_pmd: TestPmd | None = None
    migration: MigrationResult | None = None

    @property
    def spec(self) -> Vm:
        spec = self.topology.vms[self.vm_name]
        nics = [nic.model_copy(update={"packed": self.packed}) for nic in spec.nics]
        return spec.model_copy(update={"nics": nics})

    @property
    def testpmd(self) -> str:
        return self.topology.dpdk.testpmd

    # -- 2.3.1-2.3.3 / 2.3.7-2.3.9: DPDK and the vhost switch on a host ----------------

    def start_switch(self, host: HostHandle) -> VhostSwitch:
        sockets = [nic.socket for nic in self.spec.nics if nic.kind == "vhost-user"]
        mode = "io"
        if host is self.destination and faults.active("dest-host-forwards-nothing"):
            mode = "rxonly"
        switch = VhostSwitch(
            host,
            self.version,
            self.testpmd,
            sockets,  # type: ignore[arg-type]
            name=f"{self.vm_name}-switch",
            forward_mode=mode,
        )
        self.switches[host.name] = switch
        switch.start()
        return switch

    def _vm(self, host: HostHandle, suffix: str) -> VirtualMachine:
        image = None
        if self.spec.image == "builtin":
            image = self.images.get(host.name) or ensure_guest_image(
                host.session, testpmd=self.testpmd
            )
            self.images[host.name] = image
        return VirtualMachine(
            self.spec, host.session, name=f"{self.vm_name}-{suffix}", image=image,
            work_dir=host.work_dir, address=host.session.address,
        )  # fmt: skip

    # -- 2.3.4: the VM on host_server_1 --------------------------------------------------

    def start_vm(self, boot_timeout: float = 120) -> VirtualMachine:
        self.source_vm = self._vm(self.source, "src")
        self.source_vm.start()
        self.source_vm.wait_for_shell(timeout=boot_timeout)
        return self.source_vm

    # -- 2.3.6: testpmd in the VM ----------------------------------------------------------

    def guest_testpmd_argv(self) -> list[str]:
        slots = [nic.slot for nic in self.spec.nics if nic.slot is not None]
        eal = EalOptions(lcores="0-1", allow=[f"0000:00:{slot:02x}.0" for slot in slots])
        app = TestPmdOptions(total_num_mbufs=GUEST_MBUFS, nb_cores=1, extra=["--burst=64"])
        binary = self.spec.testpmd or self.testpmd
        return testpmd_argv(binary, eal, app, self.version)

    def start_guest_testpmd(self) -> TestPmd:
        assert self.source_vm is not None
        self.guest_pmd = self.source_vm.launch_testpmd(
            self.guest_testpmd_argv(), version=self.version
        )
        self.guest_pmd.set_fwd("mac", retry=True)
        self.guest_pmd.start_tx_first()
        return self.guest_pmd

    # -- 2.3.10: the VM on host_server_2, waiting for the migration -------------------

    def start_destination_vm(self) -> VirtualMachine:
        self.dest_vm = self._vm(self.destination, "dst")
        self.dest_vm.start(incoming=f"tcp:{self.destination.session.address}:{MIGRATION_PORT}")
        return self.dest_vm

    # -- 2.3.12: migrate ------------------------------------------------------------------

    def migrate(self, timeout: float = 120) -> MigrationResult:
        assert self.source_vm is not None and self.dest_vm is not None
        self.migration = self.source_vm.migrate_to(
            self.dest_vm, port=MIGRATION_PORT, timeout=timeout
        )
        if faults.active("vm-paused-after-migration"):
            import time

            # Hold the guest still for longer than any bound: the downtime check must bite.
            self.dest_vm.pause()
            time.sleep(self.topology.migration_downtime_bound_ms / 1000 + 0.5)
            self.dest_vm.resume()
        return self.migration

    # -- 2.3.13: back to the testpmd prompt, now on host_server_2 ------------------------

    def reattach_guest_testpmd(self) -> TestPmd:
        assert self.dest_vm is not None and self.guest_pmd is not None
        self.guest_pmd = self.dest_vm.attach_testpmd(self.guest_pmd)
        return self.guest_pmd

    # -- teardown ---------------------------------------------------------------------------

    def close(self) -> None:
        from framework.report.attach import attach_text

        for vm in (self.dest_vm, self.source_vm):
            if vm is not None:
                try:
                    attach_text(f"{vm.name} console", vm.console_log)
                except Exception as exc:  # noqa: BLE001 - reporting must not stop teardown
                    log.warning("could not attach console log: %s", exc)
                vm.close()
        for switch in self.switches.values():
            if switch.pmd is not None:
                attach_text(
                    f"{switch.host.name} vhost switch transcript", switch.pmd.shell.transcript
                )
            switch.close()
