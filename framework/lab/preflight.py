"""Pre-flight: check every host of a topology before a run uses it.

A nightly lab run that meets a host with too few free hugepages, a NIC port bound to the
wrong driver or no QEMU would otherwise fail test after test, each with an error far from
its cause, and name only the first missing thing of each test. The pre-flight asks every
host, cheaply and read-only, for what the topology says it has: that it answers over SSH;
on a DUT host, that the topology's testpmd exists and is the DPDK release the topology
names, and that the host's hugepages are free (reserved, on the virtual lab) and mounted;
on every host, that each PCI port is bound to the driver the topology names, has the
SR-IOV VFs it asks for and, under a kernel driver, its interface; and, for the
capabilities a host declares, the QEMU binaries its VMs name, a usable /dev/kvm,
/dev/vhost-net and the container engine. Every missing thing is one failed Check, one line,
so one nightly run names them all. `--preflight` (scripts/nightly) runs it before the
first test uses the lab and stops the run if anything is missing;
`python -m framework.lab.preflight --topology FILE` runs it alone.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Generator, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NoReturn

from framework.config.model import DpdkBuild, Host, Port, Topology, wanted_builds
from framework.errors import FrameworkError, HostsUnreachable
from framework.lab.hosts import HostHandle, provision

EXIT_OK = 0
EXIT_INTERRUPTED = 2  # as pytest's and scripts/nightly's
EXIT_FAILED = 3  # the suite's "lab unusable" (framework.plugin.EXIT_LAB_UNUSABLE)
EXIT_BAD_INPUT = 4  # a bad option or topology file, as pytest's usage error

# Drivers that hand a PCI port to DPDK in user space: a port under one has no kernel
# interface. Any other driver (ixgbe, i40e, ice, mlx5_core, ...) gives it one.
USERSPACE_DRIVERS = frozenset({"vfio-pci", "uio_pci_generic", "igb_uio"})

# Seconds any one command may take on a host: every command here reads a file or asks a
# binary its version, and a host that needs longer is itself the problem.
COMMAND_TIMEOUT_S = 30

# One call per PCI port: whether the device exists, its driver and its VF capacity.
# The address is an argument ($1), never part of the script.
_PCI_SCRIPT = (
    'd=/sys/bus/pci/devices/$1; [ -e "$d" ] || { echo missing; exit 0; }; '
    'drv=$(readlink "$d/driver"); echo "driver ${drv##*/}"; '
    'echo "totalvfs $(cat "$d/sriov_totalvfs" 2>/dev/null)"'
)

# Runs one command on a host: (exited 0, its output or why it could not run).
Run = Callable[[list[str]], tuple[bool, str]]


@dataclass(frozen=True)
class Check:
    """One thing a host must have, and whether it has it."""

    host: str
    what: str  # e.g. "hugepages", "port niantic0 driver"
    ok: bool
    detail: str

    def line(self) -> str:
        """'host_server_1: hugepages: 3 of 8 1048576 kB pages free, topology wants 8'."""
        return f"{self.host}: {self.what}: {self.detail}"


def run_preflight(topology: Topology, hosts: dict[str, HostHandle]) -> list[Check]:
    """Every check of every host, host by host in the order given.

    Never raises for what a host lacks or a command that fails: each is a failed Check,
    so one run names every missing thing.
    """
    checks: list[Check] = []
    for handle in hosts.values():
        try:
            checks.extend(_host_checks(topology, handle))
        except FrameworkError as exc:  # e.g. the connection dropped half-way
            checks.append(Check(handle.name, "pre-flight", False, f"stopped: {exc}"))
    return checks


def check_topology(topology: Topology) -> list[Check]:
    """Bring the topology's hosts up (a virtual lab is built), check them, take them down.

    A host that does not answer over SSH is one failed "SSH" check and nothing else; on a
    lab the hosts that do answer are still checked, so one run names every missing thing.
    Anything else that stops the bring-up (a virtual lab that cannot be built) is one
    failed "bring-up" check of the topology.
    """
    try:
        return _provisioned_checks(topology, topology)
    except HostsUnreachable as exc:
        down = [
            Check(host, "SSH", False, f"unreachable {why}") for host, why in exc.reasons.items()
        ]
        rest = {name: h for name, h in topology.hosts.items() if name not in exc.reasons}
        if topology.kind != "lab" or not rest:
            return down  # a virtual lab without its sshds is not worth a second build
        # Not validated on purpose: the reachable hosts alone may lack the TG.
        reachable = topology.model_copy(update={"hosts": rest})
        try:
            checks = _provisioned_checks(reachable, topology)
        except FrameworkError as again:
            checks = [Check(topology.name, "bring-up", False, str(again))]
        order = {name: index for index, name in enumerate(topology.hosts)}
        return sorted(down + checks, key=lambda c: order.get(c.host, len(order)))
    except FrameworkError as exc:
        return [Check(topology.name, "bring-up", False, str(exc))]


def _provisioned_checks(target: Topology, topology: Topology) -> list[Check]:
    """run_preflight on `target`'s hosts, judged by `topology`; a teardown error is a check."""
    checks: list[Check] = []
    try:
        with provision(target) as hosts:
            checks = run_preflight(topology, hosts)
    except FrameworkError as exc:
        if not checks:
            raise  # the bring-up failed: the caller says how
        checks.append(Check(topology.name, "teardown", False, str(exc)))
    return checks


def _host_checks(topology: Topology, handle: HostHandle) -> Iterator[Check]:
    name, spec, session = handle.name, handle.spec, handle.session

    def run(argv: list[str]) -> tuple[bool, str]:
        try:
            done = session.run(argv, check=False, timeout=COMMAND_TIMEOUT_S)
        except FrameworkError as exc:
            return False, str(exc)
        return done.ok, (done.stdout.strip() or done.stderr.strip())

    ok, out = run(["uname", "-r"])
    yield Check(name, "SSH", ok, f"answers (kernel {out})" if ok else f"no answer: {out}")
    if not ok:
        return
    if spec.role == "dut":
        builds = topology.dpdk.all_builds
        for build in builds:
            yield _dpdk_check(build, handle, f"DPDK {build.name}" if len(builds) > 1 else "DPDK")
        yield from _hugepage_checks(topology, spec, name, run)
    yield from _port_checks(spec, name, run)
    yield from _capability_checks(topology, spec, name, run)


def _dpdk_check(build: DpdkBuild, handle: HostHandle, what: str) -> Check:
    from framework.dpdk.version import DpdkVersion, detect_dpdk_version, same_release

    testpmd = build.host_testpmd
    try:
        found = detect_dpdk_version(handle.session, testpmd)
    except FrameworkError as exc:
        why = str(exc).removeprefix(f"{handle.name}: ")
        if build.made_by:
            why += f" ({build.made_by})"
        return Check(handle.name, what, False, why)
    declared = build.version
    if declared != "auto" and not same_release(DpdkVersion.parse(declared), found, declared):
        return Check(
            handle.name, what, False, f"{testpmd} is DPDK {found}, the topology says {declared}"
        )
    return Check(handle.name, what, True, f"{testpmd} is DPDK {found} (topology: {declared})")


def _hugepage_checks(topology: Topology, spec: Host, name: str, run: Run) -> Iterator[Check]:
    pages = spec.hugepages
    base = f"/sys/kernel/mm/hugepages/hugepages-{pages.size_kb}kB"
    ok, out = run(["cat", f"{base}/nr_hugepages", f"{base}/free_hugepages"])
    numbers = out.split()
    if not ok or len(numbers) != 2 or not all(n.isdigit() for n in numbers):
        yield Check(name, "hugepages", False, f"no {pages.size_kb} kB hugepages: {out}")
    else:
        total, free = int(numbers[0]), int(numbers[1])
        # The virtual lab's hosts share this machine's pages, which its run registry hands
        # out among concurrent runs: there the pool must be big enough, not free now.
        have, what = (total, "reserved") if topology.kind == "virtual" else (free, "free")
        yield Check(
            name,
            "hugepages",
            have >= pages.count,
            f"{have} of {total} {pages.size_kb} kB pages {what}, topology wants {pages.count}",
        )
    ok, out = run(["cat", "/proc/mounts"])
    if not ok:
        yield Check(name, "hugetlbfs", False, f"cannot read /proc/mounts: {out}")
        return
    found = _hugetlbfs_page_kb(out, pages.mount)
    if found is None:
        yield Check(name, "hugetlbfs", False, f"no hugetlbfs mounted at {pages.mount}")
    elif found and found != pages.size_kb:
        yield Check(
            name,
            "hugetlbfs",
            False,
            f"{pages.mount} holds {found} kB pages, topology wants {pages.size_kb} kB",
        )
    else:
        yield Check(name, "hugetlbfs", True, f"mounted at {pages.mount}")


def _hugetlbfs_page_kb(mounts: str, mount: str) -> int | None:
    """The page size (kB) of the hugetlbfs mounted at `mount`, from /proc/mounts' text.

    0 if the mount has no pagesize= option (the machine's default size), None if no
    hugetlbfs is mounted there.
    """

    def normal(path: str) -> str:  # /proc/mounts writes a space as \040
        return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path).rstrip("/")

    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[2] != "hugetlbfs" or normal(fields[1]) != normal(mount):
            continue
        size = re.search(r"(?:^|,)pagesize=(\d+)([KMG])", fields[3])
        if size is None:
            return 0
        return int(size.group(1)) * {"K": 1, "M": 1024, "G": 1024 * 1024}[size.group(2)]
    return None


def _port_checks(spec: Host, name: str, run: Run) -> Iterator[Check]:
    """Driver, SR-IOV and interface of every port; interfaces are listed once per host."""
    wanted: list[tuple[Port, str]] = []
    for port in spec.ports:
        kernel = True
        if port.pci:
            bound = yield from _pci_checks(port, name, run)
            if bound is None:
                continue  # no such device: its interface cannot exist either
            # A port bound elsewhere than the topology says has failed already: its
            # interface (or lack of one) says nothing more.
            driver = port.driver or bound
            kernel = driver not in USERSPACE_DRIVERS | {""} and bound == driver
        if port.interface and kernel:
            wanted.append((port, port.interface))
    if not wanted:
        return
    # netlink, not /sys/class/net: sysfs shows the netns that mounted it, not the host's
    ok, out = run(["ip", "-o", "link", "show"])
    if not ok:
        for port, _ in wanted:
            yield Check(
                name, f"port {port.name} interface", False, f"cannot list interfaces: {out}"
            )
        return
    present = {line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line}
    for port, interface in wanted:
        ok = interface in present
        yield Check(
            name,
            f"port {port.name} interface",
            ok,
            f"{interface} present" if ok else f"no interface {interface}",
        )


def _pci_checks(port: Port, name: str, run: Run) -> Generator[Check, None, str | None]:
    """The port's PCI device: bound to the topology's driver, with the VFs it asks for.

    Returns the driver the device is bound to ("" if none), or None if the device does
    not exist or could not be read.
    """
    assert port.pci is not None
    pci, what = port.pci.lower(), f"port {port.name}"  # sysfs names are lowercase
    ok, out = run(["sh", "-c", _PCI_SCRIPT, "preflight", pci])
    facts = dict(line.partition(" ")[::2] for line in out.splitlines()) if ok else {}
    if "driver" not in facts:
        missing = ok and out.strip() == "missing"
        yield Check(
            name, what, False, f"no PCI device {pci}" if missing else f"cannot read {pci}: {out}"
        )
        return None
    bound = facts["driver"].strip()
    if port.driver:
        right = bound == port.driver
        detail = f"{pci} bound to {bound or 'no driver'}"
        yield Check(
            name,
            f"{what} driver",
            right,
            detail if right else f"{detail}, topology says {port.driver}",
        )
    if port.sriov_vfs:
        total = facts.get("totalvfs", "").strip()
        if total.isdigit():
            yield Check(
                name,
                f"{what} SR-IOV",
                int(total) >= port.sriov_vfs,
                f"{pci} supports {total} VFs, topology wants {port.sriov_vfs}",
            )
        else:
            yield Check(
                name,
                f"{what} SR-IOV",
                False,
                f"{pci} has no SR-IOV (no sriov_totalvfs), topology wants {port.sriov_vfs} VFs",
            )
    return bound


def _capability_checks(topology: Topology, spec: Host, name: str, run: Run) -> Iterator[Check]:
    caps = {c.value for c in spec.capabilities}
    if "qemu" in caps:
        qemus = sorted({vm.qemu for vm in topology.vms.values() if vm.host == name})
        for qemu in qemus or ["qemu-system-x86_64"]:
            ok, out = run([qemu, "--version"])
            first = out.splitlines()[0] if out else ""
            yield Check(
                name, "QEMU", ok, first if ok else f"{qemu} does not run: {first or 'not found'}"
            )
    if "kvm" in caps:
        ok, _ = run(["test", "-c", "/dev/kvm", "-a", "-r", "/dev/kvm", "-a", "-w", "/dev/kvm"])
        yield Check(name, "KVM", ok, "/dev/kvm usable" if ok else "/dev/kvm missing or not usable")
    if "vhost_net" in caps:
        ok, _ = run(["test", "-c", "/dev/vhost-net"])
        yield Check(
            name, "vhost-net", ok, "/dev/vhost-net present" if ok else "/dev/vhost-net missing"
        )
    if "container" in caps:
        engine = spec.container_engine
        if engine == "none":
            yield Check(
                name,
                "container engine",
                False,
                "capability container, but container_engine is none",
            )
        else:
            ok, out = run([engine, "--version"])
            first = out.splitlines()[0] if out else ""
            yield Check(
                name,
                "container engine",
                ok,
                first if ok else f"{engine} does not run: {first or 'not found'}",
            )


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line and exit 4, like the suite's."""

    def error(self, message: str) -> NoReturn:
        print(f"ERROR: {message}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def main(argv: list[str] | None = None) -> int:
    """`python -m framework.lab.preflight --topology FILE [--json FILE]`.

    Prints one line per check, `ok  ` or `FAIL`, then `pre-flight: N checks, M failed`.
    Returns 0 if every check passed, 3 if any failed (the suite's "lab unusable"), 4 on a
    bad option or topology file (one line), 2 if interrupted (the lab is taken down).
    """
    from framework.lab.testbeds import load_pool

    parser = _Parser(
        prog="python -m framework.lab.preflight",
        description="Check every host of a topology before a run (read only).",
    )
    parser.add_argument("--topology", required=True, metavar="PATH", help="topology YAML file")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the checks here")
    parser.add_argument(
        "--dpdk-build", action="append", default=[], metavar="NAME",
        help="check only this DPDK build (repeatable; default: $HOWTO_DPDK_BUILD, "
        "comma-separated, or every build), as the suite's option",
    )  # fmt: skip
    args = parser.parse_args(argv)
    try:
        pool = load_pool([args.topology])
    except FrameworkError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if len(pool) != 1:  # a directory of several
        print(f"ERROR: --topology {args.topology}: name one topology file", file=sys.stderr)
        return EXIT_BAD_INPUT
    topology = pool[0]
    if wanted := wanted_builds(args.dpdk_build):
        names = topology.dpdk.run_keys
        if unknown := [n for n in wanted if n not in names]:
            print(f"ERROR: DPDK build {unknown[0]}: topology '{topology.name}' has "
                  f"{topology.dpdk.run_keys_text}", file=sys.stderr)  # fmt: skip
            return EXIT_BAD_INPUT
        topology = topology.for_builds(wanted)
    if args.json is not None and not args.json.parent.is_dir():
        print(f"ERROR: --json {args.json}: no directory {args.json.parent}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        checks = check_topology(topology)
    except KeyboardInterrupt:  # provision() has taken the hosts (and a virtual lab) down
        print("pre-flight: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    for check in checks:
        print(f"{'ok  ' if check.ok else 'FAIL'} {check.line()}")
    failed = sum(not c.ok for c in checks)
    print(f"pre-flight: {len(checks)} checks, {failed} failed")
    if args.json is not None:
        try:
            args.json.write_text(json.dumps([asdict(c) for c in checks], indent=1) + "\n")
        except OSError as exc:
            print(f"ERROR: --json {args.json}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
    return EXIT_FAILED if failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
