"""Build and tear down the virtual lab described by a `kind: virtual` topology.

Each lab is one *run* (framework/lab/runs.py) with its own prefix, `<name_prefix>-<token>`
(e.g. `hc-3k9a`), so several runs share a machine. Layout:
- one network namespace per host, `<prefix>-<host>`, with its data ports (veths named as in
  the topology) and a management veth `mgmt0` carrying an address of the run's management
  subnet (a block of management_subnet's size in 198.18.0.0/15, free of other live runs'
  blocks and of the machine's routes, chosen under the run registry's lock);
- a switch namespace `<prefix>-switch` holding two bridges: `br-mgmt` joins the management
  veths, `br-data` joins the data ports and floods (ageing 0) like the guide's switch; a port
  with an access VLAN (`vlan:`) is on that VLAN's own bridge, `br-v<id>`, instead;
- one veth in the controller's namespace, `<prefix>-ctl`, so fabric reaches each host's sshd;
- an sshd per host namespace, with host and client keys generated for this run in a
  private directory, `/tmp/howto-<prefix>-lab-*`, that is removed at teardown.

Teardown removes every one of those and any process still running in the namespaces, and
it also runs (a) from atexit and signal handlers, so Ctrl-C and SIGTERM leave nothing, and
(b) at the start of a later run for anything a killed run left behind: only for prefixes
whose run lock is free, that is whose owner is dead.
"""

from __future__ import annotations

import atexit
import ipaddress
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from framework.config.model import DEFAULT_HUGEPAGE_MOUNT, Topology
from framework.errors import LabError
from framework.lab import runs

log = logging.getLogger("howto.lab")

SSHD = "/usr/sbin/sshd"
HUGEPAGES_2M = Path("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages")
FREE_HUGEPAGES_2M = HUGEPAGES_2M.with_name("free_hugepages")
RESV_HUGEPAGES_2M = HUGEPAGES_2M.with_name("resv_hugepages")
DPDK_RUNTIME = Path("/run/dpdk")
POLL_S = 2.0  # how often a waiting run looks again


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise LabError(f"`ip {' '.join(args)}` failed: {done.stderr.strip()}")
    return done


def _netns_exec(ns: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise LabError(f"in {ns}: `{' '.join(argv)}` failed: {done.stderr.strip()}")
    return done


def existing_namespaces() -> list[str]:
    """Names of the machine's network namespaces (`ip netns list`)."""
    done = _ip("-j", "netns", "list", check=False)
    if done.returncode != 0 or not done.stdout.strip():
        return []
    return [entry["name"] for entry in json.loads(done.stdout)]


def machine_routes(ignore_dev: str | None = None) -> list[tuple[str, str]]:
    """The controller's IPv4 routes as (destination, device), all tables.

    Default, broadcast and local routes are left out, and so is ignore_dev's.
    """
    done = _ip("-j", "-4", "route", "show", "table", "all", check=False)
    found = []
    for route in json.loads(done.stdout or "[]"):
        dst = route.get("dst", "")
        if (
            (ignore_dev is not None and route.get("dev") == ignore_dev)
            or dst in ("", "default")
            or route.get("type") in ("broadcast", "local")
        ):
            continue
        found.append((dst, route.get("dev") or route.get("type", "?")))
    return found


def _route_networks(routes: Sequence[tuple[str, str]]) -> list[ipaddress.IPv4Network]:
    networks = []
    for dst, _dev in routes:
        try:
            networks.append(ipaddress.IPv4Network(dst, strict=False))
        except ValueError:
            continue
    return networks


def overlapping_routes(subnet: str, ignore_dev: str | None = None) -> list[str]:
    """Routes of the controller that overlap the subnet (other than ignore_dev's)."""
    net = ipaddress.ip_network(subnet)
    clashes = []
    for dst, dev in machine_routes(ignore_dev):
        try:
            other = ipaddress.ip_network(dst, strict=False)
        except ValueError:
            continue
        if other.overlaps(net):
            clashes.append(f"{dst} dev {dev}")
    return clashes


@dataclass
class LabHost:
    """How the framework reaches one virtual-lab host."""

    name: str
    namespace: str
    address: str
    ports: dict[str, str]  # topology port name -> interface name inside the namespace
    sshd: subprocess.Popen[bytes] | None = None


@dataclass
class VirtualLab:
    """The namespaces, bridges and sshds that stand in for a virtual topology's hosts."""

    topology: Topology
    run_dir: Path = field(init=False)
    key_file: Path = field(init=False)
    hosts: dict[str, LabHost] = field(default_factory=dict)
    registry: runs.Registry = field(default_factory=runs.Registry)
    _up: bool = False
    _lease: runs.Lease | None = None

    def __post_init__(self) -> None:
        if self.topology.kind != "virtual" or self.topology.virtual_lab is None:
            raise LabError(f"topology {self.topology.name!r} is not a virtual lab")
        spec = self.topology.virtual_lab
        self.name_prefix = spec.name_prefix
        # Until up() registers the run, names and addresses are the topology's own.
        self.preferred_subnet = ipaddress.ip_network(spec.management_subnet)
        # Host addresses written in the topology pin the subnet: no other block will do.
        self.fixed_subnet = any(h.address for h in self.topology.hosts.values())
        self._name(spec.name_prefix, self.preferred_subnet)

    def _name(self, prefix: str, subnet: ipaddress.IPv4Network | ipaddress.IPv6Network) -> None:
        """Derive every name and address of the lab from its run prefix and subnet."""
        self.prefix = prefix
        self.subnet = subnet
        self.switch_ns = f"{prefix}-switch"
        self.ctl_link = f"{prefix}-ctl"
        addresses = list(subnet.hosts())
        self.controller_address = str(addresses[0])
        self.hosts = {
            name: LabHost(
                name=name,
                namespace=f"{prefix}-{name}",
                address=host.address or str(addresses[10 + index]),
                ports={port.name: port.interface or port.name for port in host.ports},
            )
            for index, (name, host) in enumerate(self.topology.hosts.items())
        }

    # -- lifecycle ---------------------------------------------------------------------

    def up(
        self, *, wait: float | None = None, notify: Callable[[str], None] | None = None
    ) -> VirtualLab:
        """Register this run, build the lab and start its sshds; a failure removes it all.

        Args:
            wait: seconds to wait for hugepages or a management subnet that live runs
                hold (default: HOWTO_LAB_WAIT, else runs.DEFAULT_WAIT_S).
            notify: called with one line when the run starts waiting (default: the log
                and the controlling terminal).

        Raises:
            LabError: a tool is missing, the pinned management subnet clashes with a route,
                the run does not fit next to the live runs within the wait, or hugepages
                cannot be had.
        """
        for tool in ("ip", SSHD, "ssh-keygen"):
            if shutil.which(tool) is None:
                raise LabError(
                    f"{tool} not found: run scripts/setup (it installs iproute2 and openssh)"
                )
        if wait is None:
            try:
                wait = runs.wait_seconds()
            except ValueError as exc:
                raise LabError(str(exc)) from None
        self._lease = self._claim(wait, notify or _tell)
        assert self._lease.record is not None
        self._name(self._lease.prefix, ipaddress.ip_network(self._lease.record.subnet))
        self._up = True
        _register_cleanup(self)
        try:
            self.run_dir = Path(tempfile.mkdtemp(prefix=f"howto-{self.prefix}-lab-"))
            self._check_hugepage_mounts()
            self._build_switch()
            for index, lab_host in enumerate(self.hosts.values()):
                self._build_host(index, lab_host)
            self._start_sshds()
        except BaseException:
            self.down()
            raise
        log.info(
            "virtual lab %s: management subnet %s, %d 2 MB hugepages declared",
            self.prefix,
            self.subnet,
            self._lease.record.hugepages,
        )
        return self

    def down(self) -> None:
        """Remove everything this lab made. Safe to call more than once."""
        if not self._up:
            return
        self._up = False
        for lab_host in self.hosts.values():
            if lab_host.sshd and lab_host.sshd.poll() is None:
                lab_host.sshd.terminate()
                try:
                    lab_host.sshd.wait(5)
                except subprocess.TimeoutExpired:
                    lab_host.sshd.kill()
        remove_run(self.prefix, self._hugepage_mounts())
        if getattr(self, "run_dir", None):
            shutil.rmtree(self.run_dir, ignore_errors=True)
        if self._lease is not None:
            self._lease.release()
        _unregister_cleanup(self)

    def _hugepage_mounts(self) -> list[str]:
        """The hugetlbfs mounts the topology's hosts use, each once."""
        return sorted({host.hugepages.mount for host in self.topology.hosts.values()})

    def _hugepages_needed(self) -> int:
        """2 MB pages the run declares: the most any of its hosts reserves."""
        return max(
            (
                h.hugepages.count
                for h in self.topology.hosts.values()
                if h.hugepages.size_kb == 2048
            ),
            default=0,
        )

    # -- sharing the machine -----------------------------------------------------------

    def _claim(self, wait: float, notify: Callable[[str], None]) -> runs.Lease:
        """Clean up after dead runs, then register this one once it fits (or give up)."""
        deadline = time.monotonic() + wait
        waiting_since: float | None = None
        while True:
            with self.registry.locked():
                _, live = _remove_dead_runs(
                    self.registry, [self.name_prefix], self._hugepage_mounts()
                )
                blocker, subnet = self._fit(live)
                if blocker is None and subnet is not None:
                    record = runs.RunRecord(
                        prefix=runs.new_prefix(self.name_prefix, self.registry.prefixes()),
                        pid=os.getpid(),
                        started=time.time(),
                        command=runs.command_of(os.getpid()),
                        subnet=str(subnet),
                        hugepages=self._hugepages_needed(),
                        hugepage_mounts=tuple(self._hugepage_mounts()),
                    )
                    return self.registry.register(record)
            assert blocker is not None
            if time.monotonic() >= deadline:
                waited = 0.0 if waiting_since is None else time.monotonic() - waiting_since
                raise LabError(
                    f"{blocker}; waited {waited:.0f} s "
                    f"(set {runs.WAIT_ENV}=<seconds> to wait longer)"
                )
            if waiting_since is None:
                waiting_since = time.monotonic()
                notify(f"virtual lab: waiting up to {wait:g} s: {blocker}")
            time.sleep(min(POLL_S, max(0.0, deadline - time.monotonic())))

    def _fit(self, live: list[runs.RunRecord]) -> tuple[str | None, ipaddress.IPv4Network | None]:
        """(why this run cannot start now, or None; the management subnet it would get).

        Raises:
            LabError: the pinned management subnet overlaps a route of the machine, or
                hugepages cannot be reserved at all; waiting would not help.
        """
        self._ensure_hugepages()
        need = self._hugepages_needed()
        used = {run.prefix: runs.pages_used(run.prefix, run.hugepage_mounts) for run in live}
        shortfall = runs.hugepage_shortfall(need, _free_hugepages(), live, used)
        preferred = self.preferred_subnet
        assert isinstance(preferred, ipaddress.IPv4Network)
        routes = machine_routes()
        if self.fixed_subnet:
            clashes = overlapping_routes(str(preferred))
            if clashes:
                raise LabError(
                    f"virtual lab management subnet {preferred} overlaps existing routes: "
                    + ", ".join(clashes)
                    + " (set virtual_lab.management_subnet to a free part of 198.18.0.0/15)"
                )
        subnet = runs.pick_subnet(
            preferred, fixed=self.fixed_subnet, runs=live, routes=_route_networks(routes)
        )
        if subnet is None:
            holders = "; ".join(run.describe() for run in live) or "routes of the machine"
            where = preferred if self.fixed_subnet else runs.MANAGEMENT_RANGE
            return f"no free management subnet in {where}: held by {holders}", None
        return shortfall, subnet

    @staticmethod
    def clean_stale(
        prefix: str,
        hugepage_mounts: Sequence[str] = (DEFAULT_HUGEPAGE_MOUNT,),
        registry: runs.Registry | None = None,
    ) -> list[str]:
        """Remove what dead runs of name prefix `prefix` left; a live run's lab stays.

        Returns:
            What was removed, one entry per namespace, link, file or directory.
        """
        registry = registry or runs.Registry()
        with registry.locked():
            return _remove_dead_runs(registry, [prefix], hugepage_mounts)[0]

    # -- building ----------------------------------------------------------------------

    def _build_switch(self) -> None:
        ns = self.switch_ns
        _ip("netns", "add", ns)
        _ip("-n", ns, "link", "set", "lo", "up")
        _quiet_ipv6(ns)
        for bridge in ("br-mgmt", "br-data"):
            _ip("-n", ns, "link", "add", bridge, "type", "bridge", "stp_state", "0")
        ageing = str(self.topology.switch.ageing_time * 100)  # iproute2 takes centiseconds
        _ip("-n", ns, "link", "set", "br-data", "type", "bridge", "ageing_time", ageing)
        # An access VLAN is a bridge of its own (this kernel's bridges may lack VLAN
        # filtering): its ports see each other's frames and nothing of br-data's.
        for vlan in sorted(set(self._vlans().values())):
            bridge = f"br-v{vlan}"
            _ip("-n", ns, "link", "add", bridge, "type", "bridge", "stp_state", "0")
            _ip("-n", ns, "link", "set", bridge, "type", "bridge", "ageing_time", ageing)
            _ip("-n", ns, "link", "set", bridge, "up")
        # Keep bridged frames out of iptables: with br_netfilter active they pass through it,
        # and a frame whose IP length disagrees with its size comes out trimmed.
        for knob in ("call-iptables", "call-ip6tables", "call-arptables"):
            _netns_exec(ns, "sysctl", "-qw", f"net.bridge.bridge-nf-{knob}=0", check=False)
        _ip("link", "add", self.ctl_link, "type", "veth", "peer", "name", "ctl", "netns", ns)
        _ip("-n", ns, "link", "set", "ctl", "master", "br-mgmt", "up")
        _ip(
            "addr",
            "add",
            f"{self.controller_address}/{self.subnet.prefixlen}",
            "dev",
            self.ctl_link,
        )
        _ip("link", "set", self.ctl_link, "up")
        for bridge in ("br-mgmt", "br-data"):
            _ip("-n", ns, "link", "set", bridge, "up")

    def _build_host(self, index: int, lab_host: LabHost) -> None:
        ns = lab_host.namespace
        _ip("netns", "add", ns)
        _ip("-n", ns, "link", "set", "lo", "up")
        _quiet_ipv6(ns)
        self._cable(f"m{index}", "br-mgmt", "mgmt0", ns)
        _ip("-n", ns, "addr", "add", f"{lab_host.address}/{self.subnet.prefixlen}", "dev", "mgmt0")
        _ip("-n", ns, "link", "set", "mgmt0", "up")
        vlans = self._vlans()
        for port_index, (port, interface) in enumerate(lab_host.ports.items()):
            vlan = vlans.get((lab_host.name, port))
            bridge = "br-data" if vlan is None else f"br-v{vlan}"
            self._cable(f"d{index}p{port_index}", bridge, interface, ns)
            _ip("-n", ns, "link", "set", interface, "up")

    def _vlans(self) -> dict[tuple[str, str], int]:
        """(host, port) -> the access VLAN of its switch port, for ports that name one."""
        return {
            (name, port.name): port.vlan
            for name, host in self.topology.hosts.items()
            for port in host.ports
            if port.vlan is not None
        }

    def _cable(self, switch_side: str, bridge: str, host_side: str, ns: str) -> None:
        """A veth from a bridge of the switch namespace to an interface in a host namespace."""
        _ip("-n", self.switch_ns, "link", "add", switch_side, "type", "veth",
            "peer", "name", host_side, "netns", ns)  # fmt: skip
        _ip("-n", self.switch_ns, "link", "set", switch_side, "master", bridge, "up")

    def _ensure_hugepages(self) -> None:
        """Raise the machine's 2 MB hugepage pool to what one run needs, if it is smaller.

        Raises:
            LabError: the kernel cannot give that many.
        """
        wanted = self._hugepages_needed()
        if not wanted:
            return
        before = int(HUGEPAGES_2M.read_text()) if HUGEPAGES_2M.exists() else 0
        have = before
        if have < wanted:
            HUGEPAGES_2M.write_text(str(wanted))
            have = int(HUGEPAGES_2M.read_text())
        if have < wanted:
            # The kernel gave what it could, which may be most of the machine's memory:
            # give it back rather than leave the machine short for everyone else.
            HUGEPAGES_2M.write_text(str(before))
            raise LabError(f"only {have} of {wanted} 2 MB hugepages could be reserved")

    def _check_hugepage_mounts(self) -> None:
        if not self._hugepages_needed():
            return
        for mount in self._hugepage_mounts():
            if subprocess.run(["mountpoint", "-q", mount]).returncode != 0:
                raise LabError(f"{mount} is not a hugetlbfs mount: run scripts/setup")

    def _start_sshds(self) -> None:
        keys = self.run_dir / "keys"
        keys.mkdir(mode=0o700)
        self.key_file = keys / "id_ed25519"
        for path in (self.key_file, keys / "host_ed25519"):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
                check=True,
                capture_output=True,
            )
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
        sftp = next(
            (
                p
                for p in ("/usr/lib/openssh/sftp-server", "/usr/libexec/sftp-server")
                if Path(p).exists()
            ),
            "internal-sftp",
        )
        self._sftp = sftp
        for lab_host in self.hosts.values():
            self._spawn_sshd(lab_host)
        for lab_host in self.hosts.values():
            self._wait_for_ssh(lab_host)

    def _spawn_sshd(self, lab_host: LabHost) -> None:
        keys = self.run_dir / "keys"
        config = self.run_dir / f"sshd-{lab_host.name}.conf"
        config.write_text(
            "\n".join(
                [
                    f"ListenAddress {lab_host.address}",
                    "Port 22",
                    f"HostKey {keys / 'host_ed25519'}",
                    f"AuthorizedKeysFile {self.key_file}.pub",
                    "PermitRootLogin prohibit-password",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    "StrictModes no",
                    "UseDNS no",
                    "MaxSessions 50",
                    "MaxStartups 50",
                    # sshd runs each command with root's shell, and bash sources ~/.bashrc
                    # when sshd starts it at shell level 1: a lab host's commands would
                    # run whatever this machine's rc file does (measured: a pyenv rehash
                    # waiting 60 s on a lock a killed shell left made every command take
                    # 60 s). At SHLVL 1 bash starts at level 2 and leaves the rc alone.
                    "SetEnv SHLVL=1",
                    f"PidFile {self.run_dir / f'sshd-{lab_host.name}.pid'}",
                    f"Subsystem sftp {self._sftp}",
                    "LogLevel ERROR",
                    "",
                ]
            )
        )
        log_file = self.run_dir / f"sshd-{lab_host.name}.log"
        # nsenter, not `ip netns exec`: the latter remounts /sys for the namespace, which
        # hides the cgroup mount and makes podman's runc fail ("no cgroup mount found").
        lab_host.sshd = subprocess.Popen(
            [
                "nsenter",
                f"--net=/run/netns/{lab_host.namespace}",
                SSHD,
                "-D",
                "-f",
                str(config),
                "-E",
                str(log_file),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    # -- health: what a mid-test fault can break, checked and repaired between tests ------

    def dead_sshd(self, name: str) -> str | None:
        """One line if host `name`'s sshd has exited (how, and its last log line); else None."""
        lab_host = self.hosts[name]
        if lab_host.sshd is None or lab_host.sshd.poll() is None:
            return None
        code = lab_host.sshd.returncode
        how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
        log_file = self.run_dir / f"sshd-{name}.log"
        text = log_file.read_text(errors="replace").strip() if log_file.exists() else ""
        last = text.splitlines()[-1] if text else "(nothing)"
        return f"{name}'s sshd (pid {lab_host.sshd.pid}) died ({how}); last output: {last}"

    def restart_sshd(self, name: str) -> None:
        """Start host `name`'s sshd again in its namespace and wait until it listens.

        Raises:
            LabError: it exited again or does not listen within 15 s.
        """
        lab_host = self.hosts[name]
        if lab_host.sshd is not None and lab_host.sshd.poll() is None:
            return
        self._spawn_sshd(lab_host)
        self._wait_for_ssh(lab_host)

    def switch_ports(self) -> dict[str, str]:
        """Each host data port's veth on the switch's bridge -> "<host>'s <port>"."""
        return {
            f"d{index}p{port_index}": f"{lab_host.name}'s {port}"
            for index, lab_host in enumerate(self.hosts.values())
            for port_index, port in enumerate(lab_host.ports)
        }

    def switch_ports_down(self) -> dict[str, str]:
        """The switch ports (veths on its bridges) set down, with whose port each is."""
        out = _ip("-n", self.switch_ns, "-j", "link", "show", check=False).stdout
        try:
            links = {link["ifname"]: link for link in json.loads(out or "[]")}
        except ValueError:
            return {}
        return {
            name: owner
            for name, owner in self.switch_ports().items()
            if name in links and "UP" not in links[name].get("flags", [])
        }

    def set_switch_port(self, name: str, up: bool) -> None:
        """Bring the switch port `name` (e.g. d0p0) up or down."""
        _ip("-n", self.switch_ns, "link", "set", name, "up" if up else "down")

    def _wait_for_ssh(self, lab_host: LabHost, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if lab_host.sshd and lab_host.sshd.poll() is not None:
                log_file = self.run_dir / f"sshd-{lab_host.name}.log"
                text = log_file.read_text().strip() if log_file.exists() else ""
                raise LabError(f"sshd for {lab_host.name} exited: {text or 'no log'}")
            try:
                with socket.create_connection((lab_host.address, 22), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise LabError(
            f"sshd for {lab_host.name} not listening on {lab_host.address}:22 within {timeout:g} s"
        )


def _quiet_ipv6(ns: str) -> None:
    # No IPv6 autoconf, router solicitations or MLD reports: on the data switch they would
    # be frames nobody sent on purpose, and the guides' counters must add up exactly.
    for scope in ("all", "default"):
        _netns_exec(ns, "sysctl", "-qw", f"net.ipv6.conf.{scope}.disable_ipv6=1", check=False)


def _kill_namespace_processes(ns: str) -> None:
    for attempt_signal in (signal.SIGTERM, signal.SIGKILL):
        pids = _ip("netns", "pids", ns, check=False).stdout.split()
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(int(pid), attempt_signal)
            except (ProcessLookupError, ValueError):
                pass
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and _ip("netns", "pids", ns, check=False).stdout.split():
            time.sleep(0.05)


def _free_hugepages() -> int:
    """2 MB pages neither in use nor promised to a mapping (free minus reserved)."""
    try:
        free = int(FREE_HUGEPAGES_2M.read_text())
        reserved = int(RESV_HUGEPAGES_2M.read_text())
    except (OSError, ValueError):
        return 0
    return free - reserved


def _tell(line: str) -> None:
    """Say something a person waiting at a terminal should see, past pytest's capture."""
    log.warning("%s", line)
    try:
        with open("/dev/tty", "w") as tty:
            tty.write(f"\n{line}\n")
    except OSError:
        pass  # no controlling terminal (CI): the log has it


def remove_run(prefix: str, hugepage_mounts: Iterable[str]) -> list[str]:
    """Remove every namespace, link, process and file named with one run's prefix.

    Only call it for the caller's own run, or for a run whose lock the caller holds
    (it is dead): names of other runs are never touched.

    Returns:
        What was removed, one entry per namespace, link, file or directory.
    """
    removed = []
    for ns in existing_namespaces():
        if not ns.startswith(f"{prefix}-"):
            continue
        _kill_namespace_processes(ns)
        _ip("netns", "del", ns, check=False)
        removed.append(f"netns {ns}")
    if _ip("link", "show", f"{prefix}-ctl", check=False).returncode == 0:
        _ip("link", "del", f"{prefix}-ctl", check=False)
        removed.append(f"link {prefix}-ctl")
    for mount in sorted(set(hugepage_mounts)):
        for path in Path(mount).glob(f"{prefix}-*"):
            # a directory: hugepage files of a non-root testpmd (guide 6's limitations)
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(str(path))
    for run_dir in DPDK_RUNTIME.glob(f"{prefix}-*") if DPDK_RUNTIME.is_dir() else []:
        shutil.rmtree(run_dir, ignore_errors=True)
        removed.append(str(run_dir))
    # Private directories (keys, sockets, logs).
    for lab_dir in Path(tempfile.gettempdir()).glob(f"howto-{prefix}-lab-*"):
        shutil.rmtree(lab_dir, ignore_errors=True)
        removed.append(str(lab_dir))
    return removed + _remove_containers(prefix)


def _remove_containers(prefix: str) -> list[str]:
    """Remove the podman containers named `howto-<prefix>-*` (guide 6 runs them).

    They live in their own network namespace, so killing the lab's namespaces does not
    stop them; a container outliving a killed run would hold the run's hugepages.
    """
    if shutil.which("podman") is None:
        return []
    try:
        listed = subprocess.run(
            ["podman", "ps", "--all", "--format", "{{.Names}}"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        names = [n for n in listed.stdout.split() if n.startswith(f"howto-{prefix}-")]
        if names:
            subprocess.run(
                ["podman", "rm", "--force", "--time", "2", *names],
                capture_output=True,
                timeout=120,
            )
    except subprocess.TimeoutExpired:
        log.warning("podman did not answer: containers of run %s may be left", prefix)
        return []
    return [f"container {name}" for name in names]


def _names_on_machine(hugepage_mounts: Iterable[str]) -> list[str]:
    """Names a run may have made: namespaces, links, hugepage files, runtime and work dirs."""
    names = existing_namespaces()
    links = _ip("-o", "link", "show", check=False).stdout.splitlines()
    names += [line.split(":")[1].strip().split("@")[0] for line in links if ":" in line]
    for directory in (*hugepage_mounts, str(DPDK_RUNTIME), tempfile.gettempdir()):
        try:
            names += [entry.name for entry in Path(directory).iterdir()]
        except OSError:
            continue
    return names


def _remove_dead_runs(
    registry: runs.Registry, name_prefixes: Iterable[str], hugepage_mounts: Iterable[str]
) -> tuple[list[str], list[runs.RunRecord]]:
    """Remove what dead runs left: registered ones, and names no registered run owns.

    Call it with the registry locked.

    Returns:
        What was removed, and the records of the runs that are alive.
    """
    removed: list[str] = []
    live, dead = registry.scan()
    prefixes = set(name_prefixes)
    mounts = set(hugepage_mounts)
    for lease in dead:
        if lease.record is not None:
            mounts.update(lease.record.hugepage_mounts)
            prefixes.add(lease.record.prefix.rsplit("-", 1)[0])
    for lease in dead:
        what = lease.record.describe() if lease.record else f"run {lease.prefix}"
        gone = remove_run(lease.prefix, mounts)
        if gone:
            log.info("removed what dead %s left: %s", what, ", ".join(gone))
        removed += gone
        lease.release()
    # Names of a run that never registered or whose files were lost: nobody owns them.
    owned = registry.prefixes()
    pattern = runs.prefix_pattern(prefixes)
    orphans = {
        match.group(1)
        for name in _names_on_machine(mounts)
        if (match := pattern.match(name)) and match.group(1) not in owned
    }
    for prefix in sorted(orphans):
        gone = remove_run(prefix, mounts)
        log.info("removed leftovers of run %s (no owner): %s", prefix, ", ".join(gone))
        removed += gone
    return removed, live


# Labs still up, torn down at interpreter exit or on SIGTERM/SIGHUP (pytest handles SIGINT
# as KeyboardInterrupt and runs fixture finalizers; these cover the rest). A program that
# handles SIGTERM itself keeps its handler: a benchmark (framework/report/benchrun.py)
# turns it into KeyboardInterrupt, and provision() takes the lab down as that unwinds,
# after the testpmds and VMs on it are closed.
_LIVE: list[VirtualLab] = []
_HANDLERS_SET = False


def _teardown_all(*_: object) -> None:
    for lab in list(_LIVE):
        try:
            lab.down()
        except Exception as exc:  # best effort at exit
            log.error("virtual lab teardown failed: %s", exc)


def _on_signal(signum: int, _frame: object) -> None:
    _teardown_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _register_cleanup(lab: VirtualLab) -> None:
    global _HANDLERS_SET
    _LIVE.append(lab)
    if not _HANDLERS_SET:
        atexit.register(_teardown_all)
        for sig in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(sig) in (signal.SIG_DFL, None):
                signal.signal(sig, _on_signal)
        _HANDLERS_SET = True


def _unregister_cleanup(lab: VirtualLab) -> None:
    if lab in _LIVE:
        _LIVE.remove(lab)
