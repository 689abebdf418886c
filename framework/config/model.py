"""The topology: what hosts, NICs, switch and capabilities a run has.

A topology is data (topologies/*.yaml) validated here; fixtures build sessions, labs and
testpmd instances from it and nothing else.
"""

from __future__ import annotations

import ipaddress
import os
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)


def _matching(regex: str, expected: str) -> AfterValidator:
    """A check that the whole text matches regex; a mismatch says `expected` in words.

    pydantic's own pattern constraint would report the regular expression itself.
    """
    compiled = re.compile(regex)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"expected {expected}")
        return value

    return AfterValidator(check)


Name = Annotated[
    str,
    _matching(
        r"[A-Za-z][A-Za-z0-9_-]{0,31}",
        "a name of up to 32 letters, digits, '_' or '-' that starts with a letter, "
        "e.g. 'host_server_1'",
    ),
]
PciAddress = Annotated[
    str,
    _matching(
        r"[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]",
        "a PCI address domain:bus:device.function in hex, e.g. '0000:09:00.0'",
    ),
]
MacAddress = Annotated[
    str,
    _matching(
        r"([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}",
        "a MAC address of six hex bytes joined by ':', e.g. '52:54:00:00:00:01'",
    ),
]
# Kernel interface names: at most 15 bytes, no slash or whitespace.
IfName = Annotated[
    str,
    _matching(
        r"[A-Za-z0-9_.-]{1,15}",
        "a kernel interface name of up to 15 letters, digits, '_', '.' or '-', e.g. 'eth1'",
    ),
]
# Starts every name the virtual lab makes (namespaces, the `<prefix>-ctl` link, files).
NamePrefix = Annotated[
    str,
    _matching(
        r"[a-z][a-z0-9]{1,5}",
        "2 to 6 lowercase letters or digits that start with a letter, e.g. 'hc'",
    ),
]

# A guide-4 set-up as its test ids name it: container-split-mergeable, vm-packed-mergeable,
# container-split-mergeable-2q.
PvpSetupId = Annotated[
    str,
    _matching(
        r"(container|vm)-(split|packed)-[a-z0-9-]+",
        "a guide-4 set-up: container- or vm- and a virtio path, e.g. 'vm-packed-mergeable'",
    ),
]

_CPU_LIST = r"\d+(-\d+)?(,\d+(-\d+)?)*"  # the kernel's syntax: 0,2-5
CpuList = Annotated[str, _matching(_CPU_LIST, "a CPU list in the kernel's syntax, like 0,2-5")]


def _two_or_more(cpus: str) -> str:
    if "," not in cpus and "-" not in cpus:
        raise ValueError(f"{cpus!r}: testpmd needs a main lcore and at least one to forward")
    return cpus


# testpmd's -l: a main lcore and at least one that forwards
Lcores = Annotated[
    str,
    _matching(
        _CPU_LIST, "a CPU list like 0,2-5: testpmd's main lcore, then at least one that forwards"
    ),
    AfterValidator(_two_or_more),
]


_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


class Model(BaseModel):
    """Base of every topology section: unknown keys are errors and values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NicFamily(StrEnum):
    """NIC families the guides name; 'virtual' is a veth toward the virtual lab's switch."""

    niantic = "niantic"  # Intel 82599, ixgbe
    fortville = "fortville"  # Intel X710/XL710, i40e
    virtual = "virtual"


class Capability(StrEnum):
    """What a test may need. Markers of the same name select them (see framework.plugin)."""

    niantic = "niantic"
    fortville = "fortville"
    sriov = "sriov"
    kvm = "kvm"
    vhost_net = "vhost_net"
    hugepages = "hugepages"
    container = "container"
    qemu = "qemu"


class Port(Model):
    """A data-plane port of a host, facing the switch."""

    name: Name
    interface: IfName | None = None
    pci: PciAddress | None = None
    nic: NicFamily = NicFamily.virtual
    driver: str | None = None
    mac: MacAddress | None = None
    sriov_vfs: int = Field(0, ge=0, le=256)
    switch_port: str | None = None
    # The switch port's access VLAN: ports in one VLAN see only each other's frames, as
    # guide 4's two cables from the TG to the host's two NICs. None: the switch's default.
    vlan: int | None = Field(None, ge=2, le=4094)

    @model_validator(mode="after")
    def _needs_a_handle(self) -> Port:
        if self.interface is None and self.pci is None:
            raise ValueError("a port needs an 'interface' (kernel name) or a 'pci' address")
        if self.nic is not NicFamily.virtual and self.pci is None:
            raise ValueError(f"a {self.nic.value} port needs its 'pci' address")
        return self


# Where Debian's dpdk package puts testpmd, and where scripts/setup mounts hugetlbfs: the
# defaults of every topology, and of every helper that is not given a topology.
DEFAULT_TESTPMD = "/usr/bin/dpdk-testpmd"
DEFAULT_HUGEPAGE_MOUNT = "/dev/hugepages"


class Hugepages(Model):
    """The hugepages a host reserves for DPDK and where hugetlbfs is mounted."""

    size_kb: Literal[2048, 1048576] = 2048
    count: int = Field(512, ge=0)
    mount: str = DEFAULT_HUGEPAGE_MOUNT


BuildName = Annotated[
    str,
    _matching(
        r"[A-Za-z0-9][A-Za-z0-9._-]{0,23}",
        "a name of up to 24 letters, digits, '.', '_' or '-', e.g. '24.11' or 'rc1'",
    ),
]


class DpdkBuild(Model):
    """One DPDK under test: where its testpmd is, and its version.

    An installed build is a testpmd path on the hosts. A `root` build is a directory made
    by `scripts/dpdk-root` (a Debian root holding another release): its testpmd runs inside
    that root through the directory's `dpdk-testpmd`, and the guest and container images
    made for it carry the root's testpmd. A `source` build is a directory made by
    `scripts/dpdk-build` (DPDK built from a source package, tarball or tree): its testpmd,
    linked statically with the guides' drivers, runs on the host as it is.
    """

    # The build's name in test ids and reports; the first build's defaults to "installed".
    name: BuildName = "installed"
    # testpmd's path inside the build's file system (the host's, or the root's).
    testpmd: str = DEFAULT_TESTPMD
    # A scripts/dpdk-root directory on the DUT hosts (absolute), e.g.
    # /root/.cache/howto-conformance/dpdk/24.11.
    root: str | None = None
    # A scripts/dpdk-build directory on the DUT hosts (absolute), e.g.
    # /root/.cache/howto-conformance/dpdk/src-debian.
    source: str | None = None
    # The guide's RTE_SDK/RTE_TARGET build directory, when DPDK is built from source.
    build_path: str | None = None
    # "auto" asks the host's testpmd; a fixed value is checked against it.
    version: str = "auto"
    # The declared selection: the guides this build runs (None: every guide).
    guides: list[Annotated[int, Field(ge=1, le=7)]] | None = None
    # Set by Dpdk.for_key() for a mix: the build of the guest side (None: this build).
    _guest: DpdkBuild | None = PrivateAttr(None)

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        if value != "auto" and not _looks_like_version(value):
            raise ValueError("expected 'auto' or a DPDK version such as '22.11' or '17.05.0'")
        return value

    def runs_guide(self, guide: int | None) -> bool:
        """Whether this build's declared selection includes `guide` (None: not a guide's)."""
        return self.guides is None or guide is None or guide in self.guides

    @field_validator("root", "source")
    @classmethod
    def _made_dir(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not value.startswith("/"):
            script = "dpdk-root" if info.field_name == "root" else "dpdk-build"
            raise ValueError(f"expected an absolute path (a scripts/{script} directory)")
        return value

    @model_validator(mode="after")
    def _made_testpmd(self) -> DpdkBuild:
        if self.root is not None and self.source is not None:
            raise ValueError("a build is a root or a source build, not both")
        if self.root is not None and self.testpmd != DEFAULT_TESTPMD:
            raise ValueError(f"a root build's testpmd is the root's {DEFAULT_TESTPMD}")
        built = f"{(self.source or '').rstrip('/')}/dpdk-testpmd"
        if self.source is not None and self.testpmd != built:
            raise ValueError(f"a source build's testpmd is the one it built, {built}")
        return self

    @model_validator(mode="before")
    @classmethod
    def _built_testpmd(cls, data: object) -> object:
        # A source build's testpmd is the one scripts/dpdk-build made: the host runs it,
        # and the guest and container images carry it, at that path.
        if isinstance(data, dict) and isinstance(data.get("source"), str) and "testpmd" not in data:
            return {**data, "testpmd": f"{data['source'].rstrip('/')}/dpdk-testpmd"}
        return data

    @property
    def made_by(self) -> str:
        """Which set-up command makes this build's directory ("" for an installed build)."""
        if self.root is not None:
            release = self.root.rstrip("/").rsplit("/", 1)[-1]
            return f"scripts/setup --dpdk {release} makes {self.root}"
        if self.source is not None:
            return f"scripts/setup --dpdk-source SOURCE makes {self.source} (scripts/dpdk-build)"
        return ""

    @property
    def host_testpmd(self) -> str:
        """The command a host runs for this build's testpmd (argv[0])."""
        return f"{self.root}/dpdk-testpmd" if self.root else self.testpmd

    def on_host(self, path: str) -> str:
        """Where a file of the build's file system (`path`) is seen from the host."""
        return f"{self.root}/root{path}" if self.root else path

    @property
    def enter(self) -> list[str]:
        """The argv prefix that runs a command in this build's file system ([] on the host)."""
        return [f"{self.root}/enter"] if self.root else []

    @property
    def guest_side(self) -> DpdkBuild:
        """The build a VM's or a container's testpmd comes from.

        This one, unless a mix (Dpdk.for_key) put another there.
        """
        return self._guest or self


MixGuide = Literal[2, 4, 6]
MIX_GUIDES: tuple[MixGuide, ...] = (2, 4, 6)


class BuildMix(Model):
    """Two builds on either side of vhost-user.

    `host` runs the host's testpmd, `guest` the testpmd of the VM (guides 2 and 4) or of
    the container (guide 6).
    """

    host: BuildName
    guest: BuildName
    # The declared selection: the guides this mix runs. Two DPDKs meet across vhost-user
    # in guides 2 and 4 (the host's vhost, a VM's virtio) and 6 (a container's virtio-user).
    guides: list[MixGuide] = Field(default_factory=lambda: list(MIX_GUIDES))

    @property
    def name(self) -> str:
        """The mix's name in test ids and reports."""
        return f"host-{self.host}-guest-{self.guest}"

    def runs_guide(self, guide: int | None) -> bool:
        """Whether the mix runs `guide` (a test of no guide has no guest side to mix)."""
        return guide in self.guides


class Dpdk(DpdkBuild):
    """Which DPDK the run tests: the first build (these fields) and any `builds` after it.

    Every guide runs once per build; test ids and reports carry the build's name when
    there is more than one. Each of `mixes` runs its guides once more with the host on one
    build and the guest on another.
    """

    builds: list[DpdkBuild] = Field(default_factory=list)
    mixes: list[BuildMix] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> Dpdk:
        names = [b.name for b in self.all_builds]
        if dup := next((n for n in names if names.count(n) > 1), None):
            raise ValueError(
                f"builds: two builds share the name {dup!r} (each needs a `name` of its own; "
                "the first's is 'installed' unless given)"
            )
        for i, mix in enumerate(self.mixes):
            for side in ("host", "guest"):
                if getattr(mix, side) not in names:
                    raise ValueError(
                        f"mixes[{i}].{side}: no build {getattr(mix, side)!r} "
                        f"(builds: {', '.join(names)})"
                    )
            if mix.host == mix.guest:
                raise ValueError(f"mixes[{i}]: host and guest are both {mix.host!r}")
        keys = [m.name for m in self.mixes]
        if dup := next((k for k in keys if keys.count(k) > 1), None):
            raise ValueError(f"mixes: {dup} is given twice")
        return self

    @property
    def run_keys(self) -> list[str]:
        """What a run can test, by name: every build, then every mix."""
        return [b.name for b in self.all_builds] + [m.name for m in self.mixes]

    @property
    def run_keys_text(self) -> str:
        """The run keys in words, for an error naming what a topology has."""
        text = "the builds " + ", ".join(b.name for b in self.all_builds)
        if self.mixes:
            text += " and the mixes " + ", ".join(m.name for m in self.mixes)
        return text

    def mix(self, key: str) -> BuildMix | None:
        """The mix named `key` (None: `key` names a build)."""
        return next((m for m in self.mixes if m.name == key), None)

    def for_key(self, key: str) -> Dpdk:
        """What one test sees: the build `key` alone, or a mix's host build with its guest's."""
        mix = self.mix(key)
        if mix is None:
            return self.select([key])
        chosen = self.select([mix.host])
        chosen._guest = next(b for b in self.all_builds if b.name == mix.guest)
        return chosen

    @property
    def all_builds(self) -> list[DpdkBuild]:
        """The first build and every one in `builds`, in order."""
        first = DpdkBuild(**self.model_dump(exclude={"builds", "mixes"}))
        return [first, *self.builds]

    def select(self, keys: list[str]) -> Dpdk:
        """This section with what `keys` name only, in this section's order.

        That is the builds named, and the mixes named with the builds on both their sides.
        """
        mixes = [m for m in self.mixes if m.name in keys]
        wanted = set(keys) | {m.host for m in mixes} | {m.guest for m in mixes}
        kept = [b for b in self.all_builds if b.name in wanted]
        if not kept:
            raise KeyError(", ".join(keys))
        return Dpdk(**kept[0].model_dump(), builds=kept[1:], mixes=mixes)


def wanted_builds(given: list[str]) -> list[str]:
    """The DPDK builds a run asks for: `given` (a command line's), else $HOWTO_DPDK_BUILD's.

    $HOWTO_DPDK_BUILD is comma-separated; [] means every build of the topology.
    """
    return given or [b for b in os.environ.get("HOWTO_DPDK_BUILD", "").split(",") if b]


def _looks_like_version(text: str) -> bool:
    parts = text.split(".")
    return 2 <= len(parts) <= 3 and all(p.isdigit() for p in parts)


class Host(Model):
    """A machine the framework reaches over SSH: a DUT server or the traffic generator."""

    role: Literal["dut", "tg"] = "dut"
    # Management address the framework reaches with SSH. Virtual labs assign it if omitted.
    address: str | None = None
    user: str = "root"
    ssh_port: int = Field(22, ge=1, le=65535)
    key_file: str | None = None
    ports: list[Port] = Field(default_factory=list)
    hugepages: Hugepages = Hugepages()
    capabilities: list[Capability] = Field(default_factory=list)
    container_engine: Literal["podman", "docker", "none"] = "podman"
    work_dir: str = "/tmp/howto"

    @field_validator("address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ipaddress.ip_address(value)
            except ValueError:
                if not _HOSTNAME.match(value):
                    raise ValueError("expected an IP address or a host name") from None
        return value

    @model_validator(mode="after")
    def _unique_ports(self) -> Host:
        names = [p.name for p in self.ports]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate port names: {', '.join(dupes)}")
        return self

    def port(self, name: str) -> Port:
        """The port called `name`; KeyError if the host has none by that name."""
        for port in self.ports:
            if port.name == name:
                return port
        raise KeyError(name)


class Switch(Model):
    """The L2 switch joining the hosts' data ports. The virtual lab uses a flooding bridge."""

    kind: Literal["bridge", "external"] = "bridge"
    model: str | None = None
    # Seconds a learned MAC is kept; 0 makes the bridge flood every frame like a hub.
    ageing_time: int = Field(0, ge=0)


class VirtualLab(Model):
    """Where the virtual lab puts its management and data networks."""

    management_subnet: str = "198.18.0.0/24"
    name_prefix: NamePrefix = "hc"

    @field_validator("management_subnet")
    @classmethod
    def _benchmark_range(cls, value: str) -> str:
        net = ipaddress.ip_network(value, strict=True)
        benchmarking = ipaddress.IPv4Network("198.18.0.0/15")
        # An IPv6 subnet is refused too: subnet_of raises TypeError across IP versions.
        if not (isinstance(net, ipaddress.IPv4Network) and net.subnet_of(benchmarking)):
            raise ValueError("the virtual lab only uses 198.18.0.0/15 (RFC 2544 benchmarking)")
        if net.num_addresses < 16:
            raise ValueError("expected a subnet with at least 16 addresses")
        return value


class VmNic(Model):
    """A guest NIC. vhost-user NICs attach to a socket the host's DPDK switch serves.

    Guide 1's VM has a virtio NIC on a tap bridged with the host's NIC port, and an SR-IOV
    VF: `kind: vf` (a VF of the host port `pf`, given to the VM with vfio-pci) on a lab;
    on the virtual lab an emulated NIC (`kind: tap, model: e1000`) on a tap bridged with a
    port of its own stands in for it. Either way the NIC has `role: vf`.
    """

    id: Name
    kind: Literal["vhost-user", "tap", "passthrough", "vf"]
    model: str = "virtio-net-pci"
    role: Literal["data", "vf"] = "data"
    mac: MacAddress | None = None
    # vhost-user: socket file name, relative to the host's work dir unless absolute.
    socket: str | None = None
    # passthrough: the host PCI device (an SR-IOV VF on lab hosts).
    host_device: PciAddress | None = None
    # vf: the host port (by name) whose SR-IOV VF the VM gets; the VF is created on
    # whichever host the VM runs, so its PCI address is found there.
    pf: Name | None = None
    # vf: which VF of that PF (guide 5's VF testpmd takes VF 0 and VF 1).
    vf: int = Field(0, ge=0, le=255)
    # tap: the host port (by name) the tap is bridged with, as the guide's
    # setup_bridge_on_*.sh does (none: the tap is left unbridged).
    bridge: Name | None = None
    # Fixed guest PCI slot, so the same NIC has the same address after hotplug/migration.
    slot: int | None = Field(None, ge=3, le=31)
    packed: bool = False  # virtqueue layout (virtio 1.1 packed ring)
    queues: int = Field(1, ge=1, le=16)
    # vhost-user options the guide passes (e.g. csum=off,gso=off,...), appended as given.
    options: str | None = None
    # vhost-user: QEMU listens on the socket (the host's vhost port is the client, client=1)
    # instead of connecting to it, as DPDK's reconnect test plan runs it.
    vhost_server: bool = False
    # vhost-user, QEMU the client: seconds between QEMU's attempts to connect again when
    # the host's vhost port goes away (QEMU's chardev reconnect=); none: it does not.
    reconnect: int | None = Field(None, ge=1)
    # vhost-user: whether the NIC offers MSI-X; off (QEMU's vectors=0) leaves the guest
    # INTx only, as uio_pci_generic uses anyway.
    msix: bool = True

    @model_validator(mode="after")
    def _complete(self) -> VmNic:
        if self.kind == "vhost-user" and not self.socket:
            raise ValueError("a vhost-user NIC needs its 'socket'")
        if self.kind == "passthrough" and not self.host_device:
            raise ValueError("a passthrough NIC needs its 'host_device' PCI address")
        if self.kind == "vf":
            if not self.pf:
                raise ValueError("a vf NIC needs its 'pf': the host port whose VF it gets")
            if self.role != "vf":
                object.__setattr__(self, "role", "vf")
        if self.pf and self.kind != "vf":
            raise ValueError(f"'pf' is for kind vf, not {self.kind}")
        if self.bridge and self.kind != "tap":
            raise ValueError(f"'bridge' is for kind tap, not {self.kind}")
        if (self.vhost_server or self.reconnect) and self.kind != "vhost-user":
            raise ValueError(
                f"'vhost_server' and 'reconnect' are for kind vhost-user, not {self.kind}"
            )
        if self.vhost_server and self.reconnect:
            raise ValueError(
                "'reconnect' is for QEMU as the vhost-user client, not with vhost_server"
            )
        return self


# q35's slot for its ICH9 functions (LPC, SATA, SMBus): no NIC's root port can take it.
Q35_RESERVED_SLOT = 0x1F


class Vm(Model):
    """A guest as the guides' vm_*.sh scripts start it."""

    host: Name  # the host it starts on
    memory_mb: int = Field(1024, ge=128)
    vcpus: int = Field(2, ge=1, le=64)
    cpu_pinning: list[int] | None = None  # host CPUs for QEMU (lab hosts; taskset)
    # Guide 4.2.5's qmp-vcpu-pin: vCPU i's thread on host CPU vcpu_pins[i], set through
    # QMP's query-cpus-fast once QEMU runs. None: the vCPUs float.
    vcpu_pins: list[Annotated[int, Field(ge=0)]] | None = None
    # memfd works everywhere; hugepages back guest RAM with the host's hugetlbfs (lab).
    backing: Literal["memfd", "hugepages"] = "memfd"
    accel: Literal["auto", "kvm", "tcg"] = "auto"
    # "builtin": the framework's initramfs guest; otherwise a disk image path on the host.
    image: str = "builtin"
    guest_hugepages: int = Field(256, ge=0)
    # testpmd inside a disk-image guest; the built-in image carries the host's dpdk.testpmd
    # at the same path.
    testpmd: str | None = None
    nics: list[VmNic] = Field(default_factory=list)
    qemu: str = "qemu-system-x86_64"
    # A virtual IOMMU (QEMU's intel-iommu on a q35 machine, each NIC behind a PCIe root
    # port at its slot) so the guest binds its NICs to vfio-pci: DPDK's vm_hotplug plan
    # removes vfio devices only, and Debian's kernel has no VFIO no-IOMMU mode.
    viommu: bool = False
    # Guide 1's VM: its vm_hotplug cases (DPDK's plan, beyond the guide) start it with a
    # vIOMMU, as if `viommu` were set, while its other tests keep none: behind a vIOMMU the
    # emulated e1000 on vfio-pci never became an active bond member (measured
    # 2026-12-06), and the hot-plug cases need no bond.
    hot_plug_viommu: bool = False
    # viommu: slots whose root port starts empty, for a NIC hot-plugged later (a migration
    # destination started without the VF must have the source's ports, and the buses
    # behind them numbered alike).
    spare_slots: list[Annotated[int, Field(ge=3, le=30)]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_pin_per_vcpu(self) -> Vm:
        if self.vcpu_pins is not None and len(self.vcpu_pins) != self.vcpus:
            raise ValueError(
                f"vcpu_pins {self.vcpu_pins} names {len(self.vcpu_pins)} CPUs for "
                f"{self.vcpus} vCPUs (one host CPU per vCPU)"
            )
        return self

    @model_validator(mode="after")
    def _unique_nics(self) -> Vm:
        ids = [nic.id for nic in self.nics]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate NIC ids: {', '.join(dupes)}")
        return self

    @model_validator(mode="after")
    def _viommu_layout(self) -> Vm:
        if not self.viommu and self.spare_slots:
            raise ValueError("'spare_slots' are root ports of a 'viommu' VM only")
        if not (self.viommu or self.hot_plug_viommu):
            return self
        for nic in self.nics:
            # the guest address of a NIC behind a root port follows from the ports' order
            if nic.slot is None:
                raise ValueError(f"viommu: NIC {nic.id} needs a fixed 'slot' (its root port)")
            # q35 keeps slot 31 for its ICH9 functions (LPC, SATA, SMBus)
            if nic.slot == Q35_RESERVED_SLOT:
                raise ValueError(f"viommu: NIC {nic.id}: slot 31 is q35's own (ICH9)")
            # the host's net_vhost would need iommu-support=1 and QEMU a device IOTLB
            if nic.kind == "vhost-user":
                raise ValueError(
                    f"viommu: NIC {nic.id} is vhost-user; a vIOMMU is for tap, vf and "
                    "passthrough NICs only (the host's vhost-user ports do not serve one)"
                )
        slots = self.port_slots
        if len(set(slots)) != len(slots):
            raise ValueError("viommu: two NICs share a slot (one root port each)")
        return self

    @property
    def port_slots(self) -> list[int]:
        """viommu: the slots of the PCIe root ports, in order (the NICs' and spares')."""
        return sorted([n.slot for n in self.nics if n.slot is not None] + self.spare_slots)

    def guest_pci(self, nic: VmNic) -> str:
        """The guest PCI address of a NIC at its fixed slot.

        Without a vIOMMU the NIC sits at its slot on bus 0 (the pc machine's pci.0, where
        ACPI hot-plug works). With one, q35's root bus takes no hot-plug: each NIC is alone
        behind a PCIe root port at its slot, and the firmware numbers the ports' buses 1, 2,
        ... in slot order, so the NIC is device 0 of bus (its slot's rank + 1).
        """
        if nic.slot is None:
            raise ValueError(f"NIC {nic.id} needs a fixed 'slot' (its guest PCI address)")
        if not self.viommu:
            return f"0000:00:{nic.slot:02x}.0"
        slots = self.port_slots
        if nic.slot not in slots:
            raise ValueError(f"viommu: no root port at NIC {nic.id}'s slot {nic.slot}")
        return f"0000:{slots.index(nic.slot) + 1:02x}:00.0"

    @property
    def vf_nic(self) -> VmNic | None:
        """The NIC in the VF's role (guide 1), if the VM has one."""
        return next((nic for nic in self.nics if nic.role == "vf"), None)

    def without(self, nic_id: str) -> Vm:
        """The same VM without one NIC (guide 1's destination starts without the VF).

        With a vIOMMU the NIC's root port stays, empty, so the NIC can be plugged back.
        """
        nics = [n for n in self.nics if n.id != nic_id]
        spares = [n.slot for n in self.nics if n.id == nic_id and n.slot is not None]
        update: dict[str, object] = {"nics": nics}
        if self.viommu:
            update["spare_slots"] = sorted(self.spare_slots + spares)
        return self.model_copy(update=update)


class WindowBounds(Model):
    """What a correct DUT may cost in one loss window (judged by framework.traffic.windows).

    All four together: a window's figures come from one measurement
    (benchmarks/loss_windows.py), so a topology that sets a window sets all of them.
    """

    # outages touching the window: one per switch-over unless the step makes several
    outages: int = Field(ge=0)
    longest_ms: float = Field(ge=0)  # the longest of them
    lost: int = Field(ge=0)  # frames lost in them, at the guide's stream rate
    # from the first to the last lost frame's send time: the loss is one stretch (the
    # switch-over), not spread over the window
    loss_span_ms: float = Field(ge=0)

    def __str__(self) -> str:
        return (
            f"at most {self.outages} outage(s), none longer than {self.longest_ms:g} ms, "
            f"at most {self.lost} frames lost, sent within {self.loss_span_ms:g} ms"
        )


# The defaults below are for TCG guests on the virtual lab (topologies/virtual.yaml),
# measured 2026-12-04 with benchmarks/loss_windows.py over 10 correct runs of each guide
# (benchmarks/results/loss_windows-2026-12-04.txt; a run disturbed by outside CPU load is
# left out and named there). Margin: 2x the worst seen for times and frame counts,
# rounded up to 10; none for the outage count (one more outage is the event the count is
# there to catch). A lab with KVM guests sets its own (topologies/lab.yaml) and should
# re-measure them.


class Guide1Windows(Model):
    """Guide 1's loss windows: the steps that change the bond's data path (500 pps)."""

    # Receive silences without loss up to this long are the guest's scheduling jitter, not
    # outages (None: the stream's own threshold, 10 frame intervals: 20 ms at 500 pps).
    # Loss-free stalls of 28 ms were seen in vf_attach (the 10 runs) and, as a second
    # outage beside the switch-over, in the migration window of two fresh-clone runs of a
    # correct DUT (22 ms on 24.11; 28.3 ms on 22.11 with the machine otherwise idle; both
    # 2026-12-07): 2x the worst seen. A lost frame is an outage whatever its length.
    jitter_ms: float | None = Field(60.0, gt=0)

    # set bonding primary 0; remove bonding slave 1 2. Worst seen: 1 outage, 1058 ms (the
    # frames the backup port's queue held until it became primary), 31 lost, span 60 ms.
    failover: WindowBounds = WindowBounds(outages=1, longest_ms=2120, lost=70, loss_span_ms=120)
    # port stop 1; port detach 1; device_del vf1. Worst seen: no outage, nothing lost (the
    # VF is a backup by then). No loss; one outage of up to 60 ms (2x the 28 ms stall of
    # the TCG guest seen in guide 1's windows) is the guest, not the DUT.
    vf_detach: WindowBounds = WindowBounds(outages=1, longest_ms=60, lost=0, loss_span_ms=0)
    # migrate; info migrate. Worst seen: 1 outage, 90 ms, 29 lost, span 56 ms in the 10
    # runs; 175 ms, 63 lost, span 124 ms in a fresh-clone CI run (its bite of a wrong MAC
    # peer, the loss untouched by the fault), so the margin is on that.
    migration: WindowBounds = WindowBounds(outages=1, longest_ms=350, lost=130, loss_span_ms=250)
    # device_add; port attach; port start; add bonding slave; set bonding primary. Worst
    # seen: 3 outages (the e1000's port attach, its link coming up ~0.5 s later as primary,
    # and once a 28 ms stall), 517 ms, 275 lost, span 1204 ms.
    vf_attach: WindowBounds = WindowBounds(outages=3, longest_ms=1040, lost=550, loss_span_ms=2410)


class Guide2Windows(Model):
    """Guide 2's loss window: the migration, from `migrate` to `completed` (1000 pps)."""

    # Receive silences without loss up to this long are the guest's scheduling jitter, not
    # outages (None: the stream's own threshold, 10 frame intervals: 10 ms at 1000 pps).
    # A TCG guest pauses 10-30 ms at a time while its RAM is copied, without loss: 11 and
    # 14 such outages in the two migrations of a correct DUT measured at 10 ms
    # (2026-12-04, before this allowance); longer loss-free stalls (up to 234 ms seen)
    # stay outages, counted below.
    jitter_ms: float | None = Field(50.0, gt=0)

    # Worst seen (split and packed virtqueues): 2 outages (a loss-free stall of 234 ms
    # while RAM was copied; or 72 frames lost 0.5 s before the switch-over, the TCG guest
    # too slow for its ring), 325 ms, 252 lost, span 712 ms.
    migration: WindowBounds = WindowBounds(outages=2, longest_ms=650, lost=510, loss_span_ms=1430)


class LossWindows(Model):
    """Per guide, per loss window, what a correct DUT may cost (topology key `loss_windows`)."""

    guide1: Guide1Windows = Guide1Windows()
    guide2: Guide2Windows = Guide2Windows()


class RateSearches(Model):
    """How guides 6 and 7 search their NDR and PDR (topology key `rate_searches`).

    Guide 4 has its own (`pvp`). A lab keeps the defaults; a box whose figures are
    reported, not judged, may trade precision for time.
    """

    trial_s: float = Field(2.0, gt=0)  # MLRsearch's final trial duration
    relative_width: float = Field(0.05, gt=0, lt=1)  # how close its bounds must come


class PvpBenchmark(Model):
    """Guide 4's PVP wiring and how its rates are searched (topology key `pvp`)."""

    host: Name
    # host_ports[i] is cabled (or switched, alone in a VLAN) to tg_ports[i]
    host_ports: tuple[Name, Name]
    tg_ports: tuple[Name, Name]
    vm: Name | None = None  # the guest of the `vm` variant: two vhost-user NICs
    # The host testpmd's lcores (4.2.4: `-l 0,2,3,4,5`, four forwarding cores) where the
    # host has them; the first is testpmd's main lcore, the others forward.
    host_lcores: Lcores = "0-1"
    # The VM's testpmd lcores (4.3.3: `-l 0,1,2`, two forwarding cores), the first its main
    # lcore; the built-in guest boots with the forwarding ones isolated (4.3.1 isolcpus).
    guest_lcores: Lcores = "0-1"
    # 4.2.1's `isolcpus=2-7`: the host CPUs the host's kernel isolates for the PMD threads.
    # When named, the host's forwarding lcores must run on CPUs its kernel isolates; None:
    # the host isolates none (the virtual lab), reported.
    isolated_cpus: CpuList | None = None
    frame_sizes: list[int] = Field(default_factory=lambda: [64, 128, 256, 512, 1024, 1518])
    # The declared selection: the set-ups other than the guide's (split-mergeable, one
    # queue pair) are measured at these frame sizes only, since each search takes
    # minutes; the others are left out at collection and listed in the summary as not
    # selected. None: the first of frame_sizes.
    other_paths_frame_sizes: list[int] | None = None
    # The declared selection of DPDK's reconnect plan on this path: its stability forms
    # (ten relaunches each) run on these reconnect forms only (vhost-client-split,
    # vhost-client-packed, vhost-server-split, vhost-server-packed); None: on every one.
    reconnect_stability_forms: list[
        Literal["vhost-client-split", "vhost-client-packed", "vhost-server-split",
                "vhost-server-packed"]
    ] | None = None  # fmt: skip
    # The declared selection of the plan's two-VM cases (VM1 and VM2 chained through the
    # host, and its VM-to-VM cases with two kernel guests): the forms they run in; None:
    # both.
    reconnect_two_vm_forms: list[Literal["vhost-client-split", "vhost-client-packed"]] | None = None
    # Whether the two-VM cases' stability forms (ten host relaunches) run at all.
    reconnect_two_vm_stability: bool = True
    # DPDK's port-restart plans stop and start the host's vhost-user ports ten times, on
    # each VM path (pvp_qemu_multi_paths_port_restart) and with two virtio_user queues
    # (pvp_virtio_user_multi_queues_port_restart).
    restart_rounds: int = Field(10, ge=1)
    # The declared selection of those: the set-ups whose ports restart (guide 4's test
    # ids: container-<path>, vm-<path>, container-split-mergeable-2q); None: every one.
    restart_setups: list[PvpSetupId] | None = None
    line_rate_gbps: float | None = Field(None, gt=0)  # None: no line rate (virtual ports)
    min_pps: float = Field(1000.0, gt=0)
    max_pps: float = Field(14_880_952.0, gt=0)
    trial_s: float = Field(10.0, gt=0)  # MLRsearch's final trial duration
    relative_width: float = Field(0.05, gt=0, lt=1)
    pdr_loss_ratio: float = Field(0.005, ge=0, lt=1)
    # The regression gate: results.json of an earlier run; NDR may fall this much below it.
    baseline: Path | None = None
    tolerance: float = Field(0.10, ge=0, lt=1)

    @field_validator("frame_sizes")
    @classmethod
    def _sizes(cls, sizes: list[int]) -> list[int]:
        bad = [s for s in sizes if not 64 <= s <= 9018]
        if not sizes or bad:
            raise ValueError(f"frame sizes are 64..9018 bytes, at least one; got {sizes}")
        return sizes

    @model_validator(mode="after")
    def _range(self) -> PvpBenchmark:
        if self.min_pps >= self.max_pps:
            raise ValueError(f"min_pps ({self.min_pps:g}) must be below max_pps")
        extra = [s for s in self.other_paths_frame_sizes or [] if s not in self.frame_sizes]
        if extra:
            raise ValueError(
                f"other_paths_frame_sizes {extra} are not in frame_sizes {self.frame_sizes}"
            )
        return self

    def selected_sizes(self, guide_path: bool) -> list[int]:
        """The frame sizes measured on the guide's own path (all) or on another path."""
        if guide_path:
            return list(self.frame_sizes)
        return list(self.other_paths_frame_sizes or self.frame_sizes[:1])


class SriovBed(Model):
    """One PF of guides 3 and 5 and how its VFs are used.

    Topology keys `vf_daemon` (guide 5: a DPDK PF, `vfs` VFs driven by a second testpmd)
    and `flow_bifurcation` (guide 3: the kernel PF driver, filters to the VFs' queues),
    each a map from NIC family (niantic, fortville) to one of these.
    """

    host: Name
    pf: Name  # a port of `host` of that NIC family, with SR-IOV
    tg_port: Name  # the TG port the switch joins with `pf`
    vfs: int = Field(2, ge=2, le=64)
    # Where the VF testpmd runs: "host" (a second DPDK process on the PF's host, as
    # guide 3 and DPDK's test plans do) or the name of a VM whose `kind: vf` NICs take the
    # PF's VFs 0 and 1 (guide 5.1: a VM with the VF passed through to it).
    vf_app: str = "host"
    pf_lcores: str = "0-1"  # the PF testpmd's cores (guide 5: -l 0-7 for both)
    vf_lcores: str = "2-3"
    vf_queues: int = Field(4, ge=1, le=16)  # rx/tx queues per VF port (filters pick one)


class Topology(Model):
    """A whole test bed: hosts, switch, VMs and the DPDK under test (one topologies/*.yaml)."""

    name: Name
    kind: Literal["virtual", "lab"]
    description: str = ""
    dpdk: Dpdk = Dpdk()
    switch: Switch = Switch()
    virtual_lab: VirtualLab | None = None
    hosts: dict[Name, Host]
    vms: dict[Name, Vm] = Field(default_factory=dict)
    # What guides 1 and 2 allow in each loss window (outages, longest, lost, loss span).
    loss_windows: LossWindows = LossWindows()
    pvp: PvpBenchmark | None = None
    rate_searches: RateSearches = RateSearches()
    # The declared selection of guide 2's variants from DPDK's vhost_user_live_migration
    # plan (each vhost switch started after QEMU; the guest's queues changed while
    # migrating; the kernel's virtio-net in the guest, and its queues changed), each on
    # split and packed virtqueues: the ones that run; None: all.
    migration_variants: list[
        Literal["switch-after-qemu-split", "switch-after-qemu-packed", "queues-changed-split",
                "queues-changed-packed", "kernel-guest-split", "kernel-guest-packed",
                "kernel-queues-changed-split", "kernel-queues-changed-packed",
                "kernel-switch-after-qemu-split", "kernel-switch-after-qemu-packed"]
    ] | None = None  # fmt: skip
    vf_daemon: dict[NicFamily, SriovBed] = Field(default_factory=dict)
    flow_bifurcation: dict[NicFamily, SriovBed] = Field(default_factory=dict)

    def for_build(self, key: str) -> Topology:
        """What a test of the build (or mix) `key` sees.

        Its `dpdk` is that one build, with a mix's guest build as its guest side.
        """
        return self.model_copy(update={"dpdk": self.dpdk.for_key(key)})

    def for_builds(self, names: list[str]) -> Topology:
        """This topology with the DPDK builds `names` only (what a run of them checks)."""
        return self.model_copy(update={"dpdk": self.dpdk.select(names)})

    @model_validator(mode="before")
    @classmethod
    def _renamed_keys(cls, data: object) -> object:
        # Files written before the loss windows had four bounds each: say what replaced them.
        if isinstance(data, dict):
            for old in ("migration_downtime_bound_ms", "outage_bounds_ms"):
                if old in data:
                    raise ValueError(
                        f"{old}: replaced by loss_windows (per guide and window: outages, "
                        "longest_ms, lost, loss_span_ms; see topologies/lab.yaml)"
                    )
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Topology:
        if not self.hosts:
            raise ValueError("a topology needs at least one host")
        for name, vm in self.vms.items():
            if vm.host not in self.hosts:
                raise ValueError(f"vms.{name}.host: no host named {vm.host!r}")
        if self.kind == "virtual":
            if self.virtual_lab is None:
                object.__setattr__(self, "virtual_lab", VirtualLab())
            for name, host in self.hosts.items():
                for port in host.ports:
                    if port.interface is None:
                        raise ValueError(f"hosts.{name}: virtual ports need an 'interface'")
        else:
            for name, host in self.hosts.items():
                if host.address is None:
                    raise ValueError(f"hosts.{name}.address: a lab host needs its address")
        if not any(h.role == "tg" for h in self.hosts.values()):
            raise ValueError("no host has role 'tg' (the traffic generator)")
        for name, vm in self.vms.items():
            self._check_nic_ports(name, vm)
        if self.pvp is not None:
            self._check_pvp(self.pvp)
        self._check_sriov_beds()
        return self

    def _check_sriov_beds(self) -> None:
        for section in ("vf_daemon", "flow_bifurcation"):
            for family, bed in getattr(self, section).items():
                self._check_sriov_bed(f"{section}.{family.value}", family, bed)

    def _check_sriov_bed(self, where: str, family: NicFamily, bed: SriovBed) -> None:
        """The PF is a port of that family on a DUT host; the TG port and the VM exist."""
        if family is NicFamily.virtual:
            raise ValueError(f"{where}: guides 3 and 5 need niantic or fortville, not virtual")
        host = self.hosts.get(bed.host)
        if host is None or host.role != "dut":
            raise ValueError(f"{where}.host: no DUT host named {bed.host!r}")
        try:
            pf = host.port(bed.pf)
        except KeyError:
            raise ValueError(f"{where}.pf: host {bed.host} has no port {bed.pf!r}") from None
        if pf.nic is not family:
            raise ValueError(f"{where}.pf: {bed.host}.{bed.pf} is a {pf.nic.value} port")
        if bed.tg_port not in {p.name for p in self.hosts[self.tg_name].ports}:
            raise ValueError(f"{where}.tg_port: the TG has no port {bed.tg_port!r}")
        if bed.vf_app != "host":
            vm = self.vms.get(bed.vf_app)
            if vm is None:
                raise ValueError(f"{where}.vf_app: 'host' or a VM's name, got {bed.vf_app!r}")
            vfs = sorted(n.vf for n in vm.nics if n.kind == "vf" and n.pf == bed.pf)
            if vm.host != bed.host or vfs[:2] != [0, 1]:
                raise ValueError(
                    f"{where}.vf_app: VM {bed.vf_app} must run on {bed.host} with VFs 0 and 1 "
                    f"of {bed.pf} (NICs of kind vf, pf {bed.pf}, vf 0 and vf 1)"
                )

    def _check_pvp(self, pvp: PvpBenchmark) -> None:
        """The PVP section names a DUT host, its ports, the TG's ports and a VM of the file."""
        if pvp.host not in self.hosts:
            raise ValueError(f"pvp.host: no host named {pvp.host!r}")
        tg = next(h for h in self.hosts.values() if h.role == "tg")
        for field, host, names in (
            ("host_ports", self.hosts[pvp.host], pvp.host_ports),
            ("tg_ports", tg, pvp.tg_ports),
        ):
            missing = [n for n in names if n not in {p.name for p in host.ports}]
            if missing:
                raise ValueError(f"pvp.{field}: no port named {', '.join(missing)}")
        if pvp.vm is not None and pvp.vm not in self.vms:
            raise ValueError(f"pvp.vm: no VM named {pvp.vm!r}")

    def window_bounds(self, guide: Literal[1, 2], window: str) -> WindowBounds:
        """The bounds of one guide's loss window, by the window's name.

        Guide 1: failover, vf_detach, migration, vf_attach; guide 2: migration.

        Raises:
            KeyError: the guide has no window of that name.
        """
        windows = self.loss_windows.guide1 if guide == 1 else self.loss_windows.guide2
        found = getattr(windows, window, None)
        if not isinstance(found, WindowBounds):
            raise KeyError(f"guide {guide} has no loss window {window!r}")
        return found

    def _check_nic_ports(self, name: str, vm: Vm) -> None:
        """A NIC's `pf` or `bridge` names a port every DUT host has (the VM migrates)."""
        for index, nic in enumerate(vm.nics):
            for field, port in (("pf", nic.pf), ("bridge", nic.bridge)):
                if port is None:
                    continue
                for host_name, host in self.hosts_with_role("dut").items():
                    if port not in {p.name for p in host.ports}:
                        raise ValueError(
                            f"vms.{name}.nics.{index}.{field}: host {host_name} has no port "
                            f"named {port!r}"
                        )

    def hosts_with_role(self, role: str) -> dict[str, Host]:
        """The hosts of one role ('dut' or 'tg') by name, in file order."""
        return {name: host for name, host in self.hosts.items() if host.role == role}

    @property
    def tg_name(self) -> str:
        """Name of the traffic generator host (the first with role 'tg')."""
        return next(iter(self.hosts_with_role("tg")))

    def capabilities(self) -> set[str]:
        """Every capability some DUT host of this topology has, including its NIC families."""
        found: set[str] = set()
        for host in self.hosts_with_role("dut").values():
            found.update(c.value for c in host.capabilities)
            for port in host.ports:
                if port.nic is not NicFamily.virtual:
                    found.add(port.nic.value)
                if port.sriov_vfs:
                    found.add(Capability.sriov.value)
        found.update(f"vf_daemon.{family.value}" for family in self.vf_daemon)
        found.update(f"flow_bifurcation.{family.value}" for family in self.flow_bifurcation)
        return found
