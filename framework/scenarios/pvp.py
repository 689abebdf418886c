"""Guide 4 (the PVP reference benchmark) as one object.

PVP: physical port -> virtual (vhost-user -> a guest's virtio) -> physical port. The host
testpmd owns two NIC ports and two vhost-user ports, forwarding io with `set portlist
0,2,1,3` (4.2.4); the guest testpmd swaps MAC addresses between its two virtio ports,
chained, 256 descriptors (4.3.3). The guest is a QEMU VM (variant `vm`, 4.2.5) or, as in
DPDK's container test plans, a testpmd with two virtio_user ports in a container on the
same host (variant `container`), whose virtio paths (mergeable, in-order, vectorized;
split or packed virtqueues) are virtio_user devargs.

Traffic runs both ways: TG port 0 -> host NIC 0 -> vhost0 -> guest -> vhost1 -> host NIC 1
-> TG port 1, and the reverse, one sequenced stream per direction.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from scapy.packet import Packet

from framework.config.model import DEFAULT_HUGEPAGE_MOUNT, PvpBenchmark, Topology, Vm
from framework.container import ContainerEngine
from framework.container.image import ImageBuild
from framework.container.testpmd import start_container_testpmd, testpmd_image
from framework.dpdk.args import EalOptions, TestPmdOptions, testpmd_argv
from framework.dpdk.launch import LaunchRecord, file_prefix
from framework.dpdk.modes import ForwardingMode
from framework.dpdk.parsers import FwdConfig
from framework.dpdk.settings import GuideSettings, PmdSettings, read_settings, settings_rows
from framework.dpdk.testpmd import TestPmd
from framework.dpdk.version import DpdkVersion
from framework.dpdk.virtio import (
    NEGOTIATION_LOG_LEVEL,
    Negotiation,
    negotiations,
    port_negotiation,
)
from framework.errors import ConfigError
from framework.lab.hosts import HostHandle
from framework.lab.tuning import (
    Tuning,
    cpu_list,
    read_tuning,
    refused_irqs,
    runtime_tuning_script,
)
from framework.report.attach import attach_table, attach_text
from framework.report.benchmark import ResultsTemplate
from framework.report.drift import attach_drift, launch_drift
from framework.scenarios import guest_dpdk
from framework.scenarios.stages import Made
from framework.scenarios.vhost_switch import VhostSwitch
from framework.scenarios.vms import close_vms, vm_on
from framework.traffic.generator import StreamRun, TrafficGenerator
from framework.traffic.packets import flows, swap_macs, udp_flow
from framework.traffic.trials import StreamTrials, TrialFlow, flow_markers
from framework.virt.image import GuestImage
from framework.virt.vm import VirtualMachine

log = logging.getLogger("howto.guide4")

Variant = Literal["vm", "container"]

# The guide's command lines (17.05), reported next to what ran.
GUIDE_HOST_TESTPMD = (
    "testpmd -l 0,2,3,4,5 --socket-mem=1024 -n 4 --vdev 'net_vhost0,iface=/tmp/vhost-user1' "
    "--vdev 'net_vhost1,iface=/tmp/vhost-user2' -- --portmask=f --disable-hw-vlan -i "
    "--rxq=1 --txq=1 --nb-cores=4 --forward-mode=io; set portlist 0,2,1,3; start"
)
GUIDE_GUEST_TESTPMD = (
    "testpmd -l 0,1,2 --socket-mem 1024 -n 4 --proc-type auto --file-prefix pg -- "
    "--portmask=3 --forward-mode=macswap --port-topology=chained --disable-hw-vlan "
    "--disable-rss -i --rxq=1 --txq=1 --rxd=256 --txd=256 --nb-cores=2 --auto-start"
)
DESCRIPTORS = 256  # 4.3.3: --rxd=256 --txd=256
# The container variant's sockets in the host's work dir, and where the container sees them.
CONTAINER_SOCKETS = ("vhost-user1", "vhost-user2")
CONTAINER_MOUNT = "/var/run/pvp"
MEMORY_MB = 256
# The container testpmd forwards on lcore 0, the host testpmd on lcore 1: one CPU each.
CONTAINER_LCORES, CONTAINER_MAIN_LCORE = "0-1", 1
GUEST_MBUFS = 4096  # the built-in guest's 512 MB of hugepages
# The TG's frames go to a MAC nobody has: the host's NICs are promiscuous, and macswap
# sends them back to the TG port they came from... on the other side of the DUT.
DUT_MAC = "02:00:00:00:04:01"


def stream_frame(src_mac: str) -> Packet:
    """A sequenced stream's frame: UDP from TG pvp0 through the host and the guest to pvp1."""
    return udp_flow(src_mac, DUT_MAC, "198.18.4.1", "198.18.5.1", 4000, 4001, seq=0)


@dataclass(frozen=True)
class VirtioPath:
    """A virtio Rx/Tx path of the guest's PMD, as DPDK's pvp_multi_paths plan names them."""

    name: str  # mergeable, non-mergeable, inorder-mergeable, inorder-non-mergeable, vectorized
    packed: bool = False
    mrg_rxbuf: bool = True
    in_order: bool = False
    vectorized: bool = False

    @property
    def id(self) -> str:
        """`split-mergeable`, `packed-vectorized`...: a test parameter id."""
        return f"{'packed' if self.packed else 'split'}-{self.name}"

    @property
    def devargs(self) -> str:
        """The virtio_user devargs that select this path."""
        args = [
            f"packed_vq={int(self.packed)}",
            f"mrg_rxbuf={int(self.mrg_rxbuf)}",
            f"in_order={int(self.in_order)}",
        ]
        return ",".join([*args, "vectorized=1"] if self.vectorized else args)

    @property
    def rx_path(self) -> str:
        """The Rx path the virtio PMD must report ("virtio: using <this> Rx path")."""
        if self.packed:
            if self.vectorized:
                return "packed ring vectorized"
            return "packed ring mergeable buffer" if self.mrg_rxbuf else "packed ring standard"
        if self.vectorized:
            return "vectorized"
        if self.in_order:
            return "inorder"
        return "mergeable buffer" if self.mrg_rxbuf else "standard"


def virtio_paths() -> list[VirtioPath]:
    """The ten paths of DPDK's pvp_multi_paths plan: five Rx paths on split and packed."""
    kinds = [
        VirtioPath("mergeable"),
        VirtioPath("non-mergeable", mrg_rxbuf=False),
        VirtioPath("inorder-mergeable", in_order=True),
        VirtioPath("inorder-non-mergeable", mrg_rxbuf=False, in_order=True),
        VirtioPath("vectorized", mrg_rxbuf=False, vectorized=True),
    ]
    # The packed vectorized path needs IN_ORDER negotiated (the split one needs it off).
    return [VirtioPath(k.name, p, k.mrg_rxbuf, k.in_order or (p and k.vectorized), k.vectorized)
            for p in (False, True) for k in kinds]  # fmt: skip


DEFAULT_PATH = VirtioPath("mergeable")
# The negotiation (init, debug), the Rx path chosen and why a vectorized one was not
# (driver, info: "disabled packed ring vectorized path for requirements not met").
GUEST_LOG_LEVELS = [NEGOTIATION_LOG_LEVEL, "pmd.net.virtio.driver:info"]
_RX_PATH = re.compile(r"virtio: using (.+?) Rx path on port (\d+)")
_NOT_VECTORIZED = re.compile(r"disabled (?:packed|split) ring vectorized[^\n]*")


@dataclass
class Pvp:
    """Guide 4 on the topology's PVP host: host testpmd, guest (VM or container), trials."""

    topology: Topology
    host: HostHandle
    tg_host: HostHandle
    version: DpdkVersion
    variant: Variant
    path: VirtioPath = DEFAULT_PATH
    queues: int = 1
    images: dict[str, GuestImage | None] = field(default_factory=dict)
    launches: list[LaunchRecord] = field(default_factory=list)
    # IRQs the guest's kernel would not move off its isolated CPUs (4.3.1 step 4)
    guest_unmovable_irqs: frozenset[int] = frozenset()
    # 4.3.1 in the built-in guest; benchmarks/pvp_tuning.py turns it off to measure it
    tune_guest: bool = True
    # DPDK's pvp_vhost_user_reconnect forms (None: guide 4's own). "client": the host's
    # vhost ports connect (client=1) to sockets QEMU serves; "server": the host serves them
    # and QEMU connects again (reconnect=1) when they come back.
    reconnect: Literal["client", "server"] | None = None
    # The guest PMD's log levels: the negotiation and the Rx path chosen, for guide 4's
    # checks. Its debug lines come at every link change too, from another thread, and can
    # split the testpmd prompt: a set-up whose links come and go leaves them out.
    guest_log_levels: tuple[str, ...] = tuple(GUEST_LOG_LEVELS)
    switch = Made[VhostSwitch]("start_host_testpmd()")
    guest_pmd = Made[TestPmd]("start_guest()")
    vm = Made[VirtualMachine]("start_guest() of the vm variant")
    engine = Made[ContainerEngine]("start_guest() of the container variant")
    image = Made[ImageBuild]("start_guest() of the container variant")
    _container = Made[str]("start_guest() of the container variant")

    @property
    def spec(self) -> PvpBenchmark:
        """The topology's `pvp` section."""
        if self.topology.pvp is None:
            raise ConfigError(f"topology '{self.topology.name}' has no pvp section (guide 4)")
        return self.topology.pvp

    @property
    def tg_ports(self) -> tuple[str, str]:
        """The TG's two interfaces cabled to the host's two NIC ports, in that order."""
        a, b = (self.tg_host.port(name).interface for name in self.spec.tg_ports)
        return a, b

    @property
    def testpmd(self) -> str:
        """The host's testpmd."""
        return self.topology.dpdk.host_testpmd

    @property
    def vm_spec(self) -> Vm:
        """The `vm` variant's guest, its virtqueues split or packed as the path says."""
        if self.spec.vm is None:
            raise ConfigError(f"topology '{self.topology.name}': pvp.vm names no VM")
        spec = self.topology.vms[self.spec.vm]
        nics = []
        for nic in spec.nics:
            options = [o for o in (nic.options, None if self.path.mrg_rxbuf else "mrg_rxbuf=off")
                       if o]  # fmt: skip
            update = {
                "packed": self.path.packed,
                "options": ",".join(options) or None,
                "vhost_server": self.reconnect == "client",
                "reconnect": 1 if self.reconnect == "server" else None,
            }
            nics.append(nic.model_copy(update=update))
        return spec.model_copy(update={"nics": nics})

    @property
    def sockets(self) -> list[str]:
        """The two vhost-user sockets, as the host testpmd names them."""
        if self.variant == "vm":
            return [nic.socket for nic in self.vm_spec.nics if nic.socket]
        return list(CONTAINER_SOCKETS)

    # -- 4.2.4: testpmd on the host ---------------------------------------------------------

    def start_host_testpmd(self) -> TestPmd:
        """Two NIC ports and two vhost-user ports, io forwarding, `set portlist 0,2,1,3`."""
        self.switch = VhostSwitch(
            self.host, self.version, self.testpmd, self.sockets, name="pvp-host",
            queues=self.queues, memory_mb=MEMORY_MB, nics=list(self.spec.host_ports),
            lcores=self.spec.host_lcores, client=self.reconnect == "client",
        )  # fmt: skip
        pmd = self.switch.start()
        self.launches.append(self.switch.launch)
        fitted = "the topology's lcores and NIC ports, the run's socket paths, its memory"
        attach_drift([launch_drift(GUIDE_HOST_TESTPMD, pmd.argv, self.version, fitted)])
        return pmd

    @property
    def host_pmd(self) -> TestPmd:
        """The host testpmd."""
        return self.switch.pmd

    def host_forwarding(self) -> FwdConfig:
        """`show config fwd` of the host testpmd: its streams, port to port."""
        return self.host_pmd.show_config_fwd()

    def host_forwarding_lcores(self) -> tuple[int, ...]:
        """4.2.4's PMD lcores: pvp.host_lcores but the lowest, EAL's main lcore."""
        return tuple(sorted(cpu_list(self.spec.host_lcores))[1:])

    # -- 4.2.5 / 4.3.3: the guest and its testpmd -------------------------------------------

    def guest_forwarding_lcores(self) -> tuple[int, ...]:
        """4.3.3's PMD lcores in the guest.

        The VM's: pvp.guest_lcores but the main; the container's: its lcores but the main.
        """
        if self.variant == "container":
            return tuple(sorted(cpu_list(CONTAINER_LCORES) - {CONTAINER_MAIN_LCORE}))
        return tuple(sorted(cpu_list(self.spec.guest_lcores))[1:])

    @property
    def guest_isolates_its_lcores(self) -> bool:
        """Whether 4.3.1's isolcpus is applied to the guest.

        The built-in guest boots with it (unless tune_guest is off); a disk image's kernel
        command line is its own, and a container is no machine.
        """
        return self.tune_guest and self.variant == "vm" and self.vm_spec.image == "builtin"

    def guest_app_options(self) -> TestPmdOptions:
        """4.3.3's testpmd options.

        macswap, chained, one queue each way (or the set-up's), 256 descriptors, RSS off,
        one forwarding core per forwarding lcore.
        """
        return TestPmdOptions(
            rxq=self.queues, txq=self.queues, rxd=DESCRIPTORS, txd=DESCRIPTORS,
            nb_cores=len(self.guest_forwarding_lcores()), forward_mode=ForwardingMode.MACSWAP,
            port_topology="chained", disable_rss=True, total_num_mbufs=GUEST_MBUFS,
        )  # fmt: skip

    def start_guest(self, boot_timeout: float = 120) -> TestPmd:
        """The VM (4.2.5) or the container, then its testpmd forwarding (4.3.3)."""
        if self.variant == "vm":
            self._start_vm(boot_timeout)
        else:
            self._start_container()
        self.guest_pmd.start()
        return self.guest_pmd

    def _start_vm(self, boot_timeout: float) -> None:
        spec = self.vm_spec
        # 4.3.1 step 1 (isolcpus) for the guest's PMD lcores, where the suite boots the guest
        lcores = ",".join(str(cpu) for cpu in self.guest_forwarding_lcores())
        append = f"isolcpus={lcores}" if self.guest_isolates_its_lcores else ""
        self.vm = vm_on(self.host, spec, "pvp-vm", self.images, self.topology.dpdk, append=append)
        self.vm.start()
        self.vm.wait_for_shell(timeout=boot_timeout)
        if self.guest_isolates_its_lcores:
            self._tune_guest()
        slots = [nic.slot for nic in spec.nics if nic.slot is not None]
        devargs = ",vectorized=1" if self.path.vectorized else ""
        eal = EalOptions(
            lcores=self.spec.guest_lcores,
            allow=[f"0000:00:{slot:02x}.0{devargs}" for slot in slots],
            log_level=list(self.guest_log_levels),
            extra=self.simd_options(),
        )
        binary = guest_dpdk.guest_testpmd(spec, self.topology.dpdk)
        version = guest_dpdk.guest_version(self.vm, spec, self.topology.dpdk, self.version)
        argv = testpmd_argv(binary, eal, self.guest_app_options(), version)
        self.launches.append(LaunchRecord("pvp-guest", f"{self.host.name}/{self.vm.name}", argv))
        self.guest_pmd = self.vm.launch_testpmd(argv, version=version)
        fitted = "the topology's guest lcores, the guest's two virtio NICs (-a)"
        attach_drift([launch_drift(GUIDE_GUEST_TESTPMD, argv, version, fitted)])

    def _start_container(self) -> None:
        self.engine, self.image = testpmd_image(self.host, self.topology.dpdk)
        name = "pvp-virtio-user"
        eal = EalOptions(
            lcores=CONTAINER_LCORES,
            memory_mb=MEMORY_MB,
            no_pci=True,
            file_prefix=file_prefix(self.host, name),
            single_file_segments=True,
            vdevs=[
                f"virtio_user{i},path={CONTAINER_MOUNT}/{s},queues={self.queues},"
                f"queue_size={DESCRIPTORS},{self.path.devargs}"
                for i, s in enumerate(CONTAINER_SOCKETS)
            ],
            log_level=GUEST_LOG_LEVELS,
            extra=["--main-lcore", str(CONTAINER_MAIN_LCORE), *self.simd_options()],
        )
        mount = DEFAULT_HUGEPAGE_MOUNT
        version = guest_dpdk.container_version(self.host.session, self.topology.dpdk, self.version)
        started = start_container_testpmd(
            self.host, self.engine, self.image, name, eal, self.guest_app_options(),
            version=version,
            mounts=[(self.host.work_dir, CONTAINER_MOUNT), (mount, mount)],
        )  # fmt: skip
        self._container = started.container
        self.launches.append(started.launch)
        self.guest_pmd = started.pmd
        fitted = "virtio_user ports on the host's sockets, mounted in a container"
        attach_drift([launch_drift(GUIDE_GUEST_TESTPMD, started.testpmd_argv, version, fitted)])

    def simd_options(self) -> list[str]:
        """EAL options the path needs (packed vectorized: 512-bit SIMD allowed).

        EAL's default SIMD limit is 256 bits, below what the packed vectorized path
        requires; DPDK's pvp_multi_paths plan starts it the same way.
        """
        if self.path.packed and self.path.vectorized:
            return ["--force-max-simd-bitwidth=512"]
        return []

    def host_has_avx512(self) -> bool:
        """Whether the DUT host's CPU has AVX512F (DPDK's packed vectorized path needs it)."""
        flags = self.host.session.run(["grep", "-m1", "^flags", "/proc/cpuinfo"], check=False)
        return "avx512f" in flags.stdout.split()

    def rx_paths(self) -> dict[int, str]:
        """The Rx path the guest's virtio PMD chose, per port (from its log)."""
        return {int(p): path for path, p in _RX_PATH.findall(self.guest_pmd.startup_output)}

    def vectorized_refused(self) -> str | None:
        """The PMD's reason for not taking a vectorized path it was asked for, if it gave one."""
        found = _NOT_VECTORIZED.search(self.guest_pmd.startup_output)
        return found.group(0).strip() if found else None

    def negotiation(self, port: int = 0) -> Negotiation | None:
        """The guest virtio port's negotiated features, from its PMD's log."""
        startup = self.guest_pmd.startup_output
        found = port_negotiation(startup, port)
        if found is None:
            # virtio-net PCI devices (the VM) negotiate when probed, one after the other.
            probed = negotiations(startup)
            found = probed[port] if port < len(probed) else None
        return found

    # -- traffic ------------------------------------------------------------------------------

    def trials(self, tg: TrafficGenerator, frame_bytes: int) -> StreamTrials:
        """Rate trials both ways through the PVP chain.

        One sequenced stream per direction and queue, each with its own addresses, so
        that with several queues RSS (and AF_PACKET's fanout) can spread them.
        """
        a, b = self.tg_ports
        directions = [(a, b), (b, a)] * self.queues
        flows = []
        for index, ((tx, rx), marker) in enumerate(
            zip(directions, flow_markers(len(directions)), strict=True)
        ):
            frame = udp_flow(
                tg.mac_of(tx), DUT_MAC, f"198.18.4.{index + 1}", "198.18.5.1", 4000 + index,
                4001, seq=0, size=frame_bytes, marker=marker,
            )  # fmt: skip
            # the host forwards io, the guest swaps the MACs: that is all that may change
            flows.append(TrialFlow(tx, rx, frame, marker, expect=swap_macs))
        return StreamTrials(tg, flows, frame_bytes)

    def stream(self, tg: TrafficGenerator, pps: float) -> Callable[..., StreamRun]:
        """A sequenced stream from TG pvp0 through the host, the guest, the host to TG pvp1.

        Every frame is checked whole: the host forwards io, the guest swaps the MACs.
        """
        tx, rx = self.tg_ports
        start = tg.starter(tx, rx, stream_frame, pps=pps)
        return lambda **options: start(expect=[swap_macs], **options)

    def queue_counts(self) -> list[list[int]]:
        """Per queue: the host's vhost ports and the guest's ports (VhostSwitch)."""
        return self.switch.queue_counts(self.guest_pmd)

    def check_frames(self, tg: TrafficGenerator, tx_port: str, count: int) -> list[Packet]:
        """`count` 64-byte frames of distinct flows for the end-to-end check, from tx_port."""
        return flows(count, tg.mac_of(tx_port), DUT_MAC, "198.18.4.1", "198.18.4.2", size=64)

    @staticmethod
    def now() -> float:
        """Monotonic seconds, for the template's validation run time."""
        return time.monotonic()

    def stop_guest_ports(self) -> None:
        """The guest's ports stopped (its testpmd stops forwarding first)."""
        self.guest_pmd.stop()
        self.guest_pmd.port_stop("all")

    def start_guest_ports(self) -> None:
        """The guest's ports started again, forwarding resumed."""
        self.guest_pmd.port_start("all")
        self.guest_pmd.start()

    def stop_host_vhost_ports(self) -> None:
        """The host's vhost-user ports stopped (forwarding stops first)."""
        self.host_pmd.stop()
        for port in self.switch.vhost_ports:
            self.host_pmd.port_stop(port)

    def start_host_vhost_ports(self) -> None:
        """The host's vhost-user ports started again, forwarding resumed."""
        for port in self.switch.vhost_ports:
            self.host_pmd.port_start(port)
        self.host_pmd.start()

    def clear_stats(self) -> None:
        """Zero both testpmds' counters."""
        for pmd in (self.host_pmd, self.guest_pmd):
            if pmd.alive:
                pmd.clear_counters()

    # -- the guide's settings, as the running testpmds report them ---------------------------

    def host_settings(self) -> PmdSettings:
        """The host testpmd's forwarding lcores, queues, descriptors and RSS, as running.

        Reported beside what host_guide_settings expects.
        """
        return self._shown("host", read_settings(self.host_pmd, self._host_tuning().isolated),
                           self.host_guide_settings())  # fmt: skip

    def guest_settings(self) -> PmdSettings:
        """The guest testpmd's, with the VM's isolated CPUs (the container's: the host's).

        Reported beside what guest_guide_settings expects.
        """
        tuning = self.guest_tuning() or self._host_tuning()
        return self._shown("guest", read_settings(self.guest_pmd, tuning.isolated),
                           self.guest_guide_settings())  # fmt: skip

    @staticmethod
    def _shown(side: str, running: PmdSettings, expected: GuideSettings) -> PmdSettings:
        attach_table(f"{side} testpmd settings", ["setting", "expected", "running"],
                     settings_rows(running, expected))  # fmt: skip
        return running

    def host_guide_settings(self) -> GuideSettings:
        """4.2.4 on this topology.

        Its PMD lcores (isolated where it names isolated_cpus), the set-up's queues, and
        RSS off when one queue leaves it nothing to spread.
        """
        return GuideSettings(
            lcores=self.host_forwarding_lcores(),
            queues=self.queues,
            rss_off=self.queues == 1,
            isolated=self.spec.isolated_cpus is not None,
        )

    def guest_guide_settings(self) -> GuideSettings:
        """4.3.3 in the guest.

        Its PMD lcores (isolated as 4.3.1 says, where the suite applies it), the set-up's
        queues, 256 descriptors each way, --disable-rss.
        """
        return GuideSettings(
            lcores=self.guest_forwarding_lcores(),
            queues=self.queues,
            descriptors=DESCRIPTORS,
            rss_off=True,
            isolated=self.guest_isolates_its_lcores,
        )

    @property
    def vcpu_pins(self) -> list[int] | None:
        """4.2.5's vCPU pinning the topology names for the VM (None: none, or a container)."""
        return self.vm_spec.vcpu_pins if self.variant == "vm" else None

    def vcpu_affinity(self) -> dict[int, frozenset[int]]:
        """The host CPUs each of the VM's vCPU threads may run on, as the host reports."""
        return self.vm.vcpu_affinity()

    def _tune_guest(self) -> None:
        """4.3.1 steps 2-4 in the guest the suite boots (step 1, isolcpus, is at boot)."""
        found = self._read_guest_tuning(self.vm)
        script = runtime_tuning_script(set(found.isolated), set(found.online))
        self.guest_unmovable_irqs = refused_irqs(self.vm.shell.check(script))

    def guest_tuning(self) -> Tuning | None:
        """4.3.1 as the VM's kernel reports it; None for the container (no machine)."""
        if vm := Pvp.vm.peek(self):
            found = self._read_guest_tuning(vm)
            return dataclasses.replace(found, unmovable_irqs=self.guest_unmovable_irqs)
        return None

    @staticmethod
    def _read_guest_tuning(vm: VirtualMachine) -> Tuning:
        shell = vm.shell
        return read_tuning(lambda script: shell.check(script))

    def _host_tuning(self) -> Tuning:
        return read_tuning(lambda script: self.host.session.run(["sh", "-c", script]).stdout)

    # -- what the results template needs -----------------------------------------------------

    def tuning(self) -> dict[str, Tuning]:
        """4.2.1 on the host and 4.3.1 in the VM, as their kernels report them."""
        found = {self.host.name: self._host_tuning()}
        if (vm := Pvp.vm.peek(self)) and (guest := self.guest_tuning()):
            found[f"guest {vm.name}"] = guest
        return found

    def results_template(
        self, tg: TrafficGenerator, spec: PvpBenchmark, minutes: float, tuning: dict[str, Tuning]
    ) -> ResultsTemplate:
        """Guide 4.4's template fields for this set-up (the result is added when rendered)."""
        negotiated = self.negotiation(0)
        if self.variant == "container":
            features = self.path.devargs
        else:
            nic = self.vm_spec.nics[0]
            features = (
                f"packed={'on' if nic.packed else 'off'}"
                + (f",{nic.options}" if nic.options else "")
                + (" (guest PMD: vectorized=1)" if self.path.vectorized else "")
            )
        if negotiated is not None:
            features += f"; negotiated: {', '.join(negotiated.names)}"
        host = tuning[self.host.name]
        cpu = host.cpu_model or "unknown CPU"
        cpu += f", {host.cpu_mhz:.0f} MHz" if host.cpu_mhz else ", frequency not readable"
        nics = [self.host.port(name).spec for name in spec.host_ports]
        nic_text = ", ".join(
            f"{p.name}: {p.nic.value}" + (f" {p.pci}" if p.pci else f" ({p.interface}, "
                                          "net_af_packet)")
            for p in nics
        )  # fmt: skip
        where = "container" if self.variant == "container" else "guest"
        dpdk = self.topology.dpdk
        if dpdk.guest_side is not dpdk:
            whose = f"build {dpdk.guest_side.name}'s testpmd, in the {where} image"
        elif self.variant != "container" and self.vm_spec.testpmd:
            whose = "the VM's own testpmd"
        else:
            whose = f"the host's testpmd, in the {where} image"
        pmd = Pvp.guest_pmd.peek(self)
        guest = f"{pmd.version if pmd is not None else self.version} ({whose})"
        return ResultsTemplate(
            traffic_generator=f"howto-conformance stream engine (AF_PACKET) on {tg.session.name}",
            acceptable_loss_pct=0.0,
            validation_run_time_min=minutes,
            host_dpdk=str(self.version),
            guest_dpdk=guest,
            patches="none",
            qemu=vm.qemu_version() if (vm := Pvp.vm.peek(self)) else "none (container variant)",
            virtio_features=features,
            cpu=cpu,
            nic=nic_text,
        )

    # -- teardown -----------------------------------------------------------------------------

    def close(self) -> None:
        """Guest testpmd, VM or container, host testpmd and sockets; transcripts attached."""
        guest_pmd, switch = Pvp.guest_pmd.peek(self), Pvp.switch.peek(self)
        host_pmd = VhostSwitch.pmd.peek(switch) if switch else None
        for pmd in (guest_pmd, host_pmd):
            if pmd is not None:
                try:
                    attach_text(f"{pmd.shell.name} transcript", pmd.shell.transcript)
                except Exception as exc:  # reporting must not stop teardown
                    log.warning("could not attach transcript: %s", exc)
        if guest_pmd is not None:
            guest_pmd.close()
            del self.guest_pmd
        close_vms([Pvp.vm.peek(self)])
        del self.vm
        engine, container = Pvp.engine.peek(self), Pvp._container.peek(self)
        if engine is not None and container is not None:
            engine.remove(container)
            del self._container
        if switch is not None:
            switch.close()
            del self.switch  # closed once: a second close() touches no socket of another
