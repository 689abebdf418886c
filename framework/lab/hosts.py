"""Host handles: what a test gets for each topology host, whatever kind of lab it is in."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

from framework.config.model import Host, Port, Topology
from framework.errors import ConfigError, FrameworkError, HostsUnreachable
from framework.lab.virtual import VirtualLab
from framework.remote.session import SSHSession


@dataclass
class PortHandle:
    """A data port as the host sees it: kernel interface and/or PCI address."""

    host: str
    spec: Port

    @property
    def name(self) -> str:
        """The port's name in the topology."""
        return self.spec.name

    @property
    def interface(self) -> str:
        """The kernel interface name; ConfigError if the topology gives only a PCI address."""
        if self.spec.interface is None:
            raise ConfigError(f"hosts.{self.host}.ports.{self.name}: no 'interface' given")
        return self.spec.interface


@dataclass
class HostHandle:
    """A provisioned host: its connected session, data ports and per-run names."""

    name: str
    spec: Host
    session: SSHSession
    # Prefix for every DPDK --file-prefix, container and socket this run makes on the host,
    # so teardown (and the next run) can find and remove them.
    prefix: str
    # Where this run keeps files on the host (sockets, logs, uploaded helpers).
    work_dir: str
    ports: dict[str, PortHandle] = field(default_factory=dict)
    # The virtual lab the host is a namespace of (None on a real lab): framework.lab.health
    # checks and repairs its sshd and switch ports between tests.
    lab: VirtualLab | None = field(default=None, repr=False)

    def port(self, name: str) -> PortHandle:
        """The data port called `name`; ConfigError listing the host's ports if none is."""
        try:
            return self.ports[name]
        except KeyError:
            raise ConfigError(
                f"hosts.{self.name}: no port named {name!r} (has: {', '.join(self.ports)})"
            ) from None

    def data_port(self, index: int = 0) -> PortHandle:
        """The index-th data port in topology order; ConfigError if the host has fewer."""
        ports = list(self.ports.values())
        if index >= len(ports):
            raise ConfigError(f"hosts.{self.name}: needs at least {index + 1} data port(s)")
        return ports[index]


def _why(exc: BaseException) -> str:
    """The network reason behind a failed SSH connect: "No route to host", "timed out"."""
    cause = exc.__cause__ or exc
    per_address = getattr(cause, "errors", None)  # paramiko: one error per address tried
    if isinstance(per_address, dict) and per_address:
        cause = next(iter(per_address.values()))
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror
    return str(cause) or type(cause).__name__


def connect_all(sessions: dict[str, SSHSession]) -> None:
    """Connect every session at once, so an unreachable lab costs one timeout, not one each.

    Raises:
        HostsUnreachable: naming every host that could not be reached and why (the
            sessions that did connect are closed).
    """
    with ThreadPoolExecutor(max_workers=max(1, len(sessions))) as pool:
        futures = {name: pool.submit(session.connect) for name, session in sessions.items()}
    reasons = {
        name: f"at {sessions[name].address}:{sessions[name].port} ({_why(error)})"
        for name, future in futures.items()
        if (error := future.exception()) is not None
    }
    if reasons:
        for session in sessions.values():
            with suppress(Exception):
                session.close()
        raise HostsUnreachable(reasons, len(sessions))


# The hosts of every topology provisioned in this process and not yet torn down, for the
# checks between tests (framework.lab.watch).
LIVE: list[dict[str, HostHandle]] = []


@contextmanager
def provision(topology: Topology) -> Iterator[dict[str, HostHandle]]:
    """Bring the topology's hosts up (a virtual lab is built) and yield their handles."""
    lab: VirtualLab | None = None
    handles: dict[str, HostHandle] = {}
    sessions: dict[str, SSHSession] = {}
    try:
        if topology.kind == "virtual":
            lab = VirtualLab(topology).up()
        work_dirs: dict[str, str] = {}
        for name, spec in topology.hosts.items():
            address: str | None
            key: str | None
            if lab is not None:
                address, key = lab.hosts[name].address, str(lab.key_file)
                # Virtual hosts share one filesystem: give each its own directory.
                work_dirs[name] = str(lab.run_dir / "hosts" / name)
            else:
                address, key = spec.address, spec.key_file
                work_dirs[name] = spec.work_dir
            if address is None:  # the model requires it for lab topologies
                raise ConfigError(f"host {name} has no address")
            sessions[name] = SSHSession(
                name, address, user=spec.user, port=spec.ssh_port, key_filename=key
            )
        connect_all(sessions)
        for name, session in sessions.items():
            spec = topology.hosts[name]
            handles[name] = HostHandle(
                name=name,
                spec=spec,
                session=session,
                prefix=lab.prefix if lab is not None else "howto",
                work_dir=work_dirs[name],
                ports={p.name: PortHandle(name, p) for p in spec.ports},
                lab=lab,
            )
            session.run(["mkdir", "-p", work_dirs[name]])
        LIVE.append(handles)
        yield handles
    finally:
        if handles in LIVE:
            LIVE.remove(handles)
        errors: list[str] = []
        # Also any session a test put in place of the first (a reconnect).
        replaced = [h.session for h in handles.values() if h.session is not sessions.get(h.name)]
        for session in [*sessions.values(), *replaced]:
            try:
                session.close()
            except FrameworkError as exc:
                errors.append(str(exc))
        if lab is not None:
            lab.down()
