"""Host handles: what a test gets for each topology host, whatever kind of lab it is in."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from framework.config.model import Host, Port, Topology
from framework.errors import ConfigError, FrameworkError
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


@contextmanager
def provision(topology: Topology) -> Iterator[dict[str, HostHandle]]:
    """Bring the topology's hosts up (a virtual lab is built) and yield their handles."""
    lab: VirtualLab | None = None
    handles: dict[str, HostHandle] = {}
    try:
        if topology.kind == "virtual":
            lab = VirtualLab(topology).up()
        for name, spec in topology.hosts.items():
            if lab is not None:
                address, key, prefix = lab.hosts[name].address, str(lab.key_file), lab.prefix
                # Virtual hosts share one filesystem: give each its own directory.
                work_dir = str(lab.run_dir / "hosts" / name)
            else:
                address, key, prefix = spec.address, spec.key_file, "howto"
                work_dir = spec.work_dir
            assert address is not None  # the model requires it for lab topologies
            session = SSHSession(
                name, address, user=spec.user, port=spec.ssh_port, key_filename=key
            ).connect()
            handles[name] = HostHandle(
                name=name,
                spec=spec,
                session=session,
                prefix=prefix,
                work_dir=work_dir,
                ports={p.name: PortHandle(name, p) for p in spec.ports},
            )
            session.run(["mkdir", "-p", work_dir])
        yield handles
    finally:
        errors: list[str] = []
        for handle in handles.values():
            try:
                handle.session.close()
            except FrameworkError as exc:
                errors.append(str(exc))
        if lab is not None:
            lab.down()
