"""A QEMU guest on a topology host: start, guest shell, guest testpmd, QMP, live migration.

QEMU runs daemonized on the host (started through the host's Session). VirtualMachine is
the one object callers use; the parts live next to it: QMP in qmp.py, the serial consoles
and guest shell in console.py, the guest testpmd in guest_testpmd.py, migration in
migration.py, the command line in qemu.py. ttyS1 carries a busybox shell, ttyS0 is left
to testpmd.
"""

from __future__ import annotations

import logging
import shlex
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from framework.config.model import DEFAULT_HUGEPAGE_MOUNT
from framework.dpdk.version import rte_version, version_probe_argv
from framework.errors import ShellClosed, ShellTimeout
from framework.lab.tuning import cpu_list
from framework.verify import poll
from framework.virt import guest_testpmd, hotplug
from framework.virt.console import GuestShell, install_relay, open_console, read_log
from framework.virt.errors import (
    GuestCommandFailed,
    MigrationDidNotConverge,
    MigrationError,
    MigrationFailed,
    MigrationTimeout,
    SilentBootWarning,
    VmBootTimeout,
    VmError,
)
from framework.virt.image import SHELL_PROMPT
from framework.virt.migration import MigrationResult, migrate
from framework.virt.qemu import describe, probe_accel, qemu_argv
from framework.virt.qmp import Event, QmpConnection, free_port

if TYPE_CHECKING:
    from framework.config.model import Vm, VmNic
    from framework.dpdk.testpmd import TestPmd
    from framework.dpdk.version import DpdkVersion
    from framework.remote.session import Session
    from framework.remote.shell import InteractiveShell
    from framework.virt.image import GuestImage

__all__ = [
    "GuestCommandFailed",
    "GuestShell",
    "MigrationDidNotConverge",
    "MigrationError",
    "MigrationFailed",
    "MigrationResult",
    "MigrationTimeout",
    "SilentBootWarning",
    "VirtualMachine",
    "VmBootTimeout",
    "VmError",
]

log = logging.getLogger("howto.virt")
# Seconds a console that timed out waits for QEMU to say the VM's run state.
STATE_QUERY_TIMEOUT_S = 3.0


class VirtualMachine:
    """One QEMU guest from a topology Vm spec, on the host behind `host_session`.

    Args:
        spec: the topology's VM.
        host_session: the host QEMU runs on.
        name: the VM's name (QEMU's -name, file names, logs).
        image: the built-in guest, for spec.image "builtin".
        work_dir: the host directory for sockets, logs and the pid file.
        address: the host address QMP and incoming migrations listen on.
        qmp_port: QMP's TCP port; a free one if None.
        accel: "kvm" or "tcg"; from the spec (probed for "auto") if None.
        append: extra guest kernel arguments (built-in image only).
        hugepage_mount: the host's hugetlbfs, for backing: hugepages (the topology
            host's hugepages.mount).
        backends: the host end of tap and vf NICs, by NIC id: a tap's interface name
            (QEMU picks one otherwise), a VF's PCI address.
    """

    def __init__(
        self,
        spec: Vm,
        host_session: Session,
        *,
        name: str,
        image: GuestImage | None,
        work_dir: str,
        address: str,
        qmp_port: int | None = None,
        accel: str | None = None,
        append: str = "",
        hugepage_mount: str = DEFAULT_HUGEPAGE_MOUNT,
        backends: Mapping[str, str] | None = None,
    ) -> None:
        self.spec = spec
        self.backends = dict(backends or {})
        self.append = append
        self.hugepage_mount = hugepage_mount
        self.session = host_session
        self.name = name
        self.image = image
        self.work_dir = work_dir
        self.address = address
        self.qmp_port = qmp_port
        self.accel = accel
        self.accel_reason = "given" if accel else ""
        self.argv: list[str] = []
        self.pid: int | None = None
        self.started_at: float | None = None
        self.boot_seconds: float | None = None
        # Silent boots started once more (wait_for_shell), for reports.
        self.boot_hangs: list[str] = []
        self.incoming: str | None = None
        self._qmp: QmpConnection | None = None
        self._shell_console: InteractiveShell | None = None
        self._shell: GuestShell | None = None
        self._testpmd: TestPmd | None = None
        self._saved_log = ""
        self._closed = False
        # Every QMP command sent, as (time.time(), "command key=value ..."), for reports.
        self.qmp_log: list[tuple[float, str]] = []

    # ------------------------------------------------------------------ files on the host

    def _path(self, what: str) -> str:
        return f"{self.work_dir}/{self.name}.{what}"

    @property
    def serial0(self) -> str:
        """ttyS0's console socket (testpmd's), on the host."""
        return self._path("ttyS0.sock")

    @property
    def serial1(self) -> str:
        """ttyS1's console socket (the guest shell's), on the host."""
        return self._path("ttyS1.sock")

    @property
    def pidfile(self) -> str:
        """Where QEMU writes its pid, on the host."""
        return self._path("pid")

    @property
    def _relay(self) -> str:
        return self._path("console.py")

    def _files(self) -> list[str]:
        logs = [self.serial0 + ".log", self.serial1 + ".log"]
        return [self.serial0, self.serial1, self.pidfile, self._relay, *logs]

    # ------------------------------------------------------------------ lifecycle

    def start(self, incoming: str | None = None, timeout: float = 60.0) -> None:
        """Start QEMU daemonized; returns once QMP answers (the guest boots on).

        Args:
            incoming: an -incoming URI (tcp:ADDRESS:PORT) to wait for a migration.
            timeout: seconds QEMU may take to set up and daemonize.

        Raises:
            VmError: QEMU did not start, or its QMP cannot be reached.
        """
        qmp_port = self._prepare(incoming)
        self._closed = False
        self.started_at = time.monotonic()
        result = self.session.run([*self.argv, "-daemonize"], check=False, timeout=timeout)
        if not result.ok:
            reason = (result.stderr or result.stdout).strip().splitlines()
            raise VmError(
                f"{self.name}: QEMU did not start on {self.session.name} (exit "
                f"{result.exit_code}): {reason[-1] if reason else 'no output'}"
            )
        self.pid = int(self.session.run(["cat", self.pidfile]).stdout.strip())
        log.info("[%s] %s started (pid %s): %s", self.session.name, self.name, self.pid,
                 describe(self.argv))  # fmt: skip
        self._qmp = QmpConnection(self.name)
        try:
            self._qmp.connect((self.address, qmp_port), timeout=15)
        except Exception as exc:
            self.kill()
            raise VmError(
                f"{self.name}: cannot reach QMP at {self.address}:{self.qmp_port}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        # Attach to the shell console now: output sent while no client is connected is
        # dropped (only the logfile keeps it).
        self._shell_console = open_console(
            self.session, self._relay, self.serial1, name=f"{self.name}/ttyS1", prompt=SHELL_PROMPT
        )
        self._shell_console.state_of_host = self.run_state_problem
        if self.spec.vcpu_pins is not None:
            self.pin_vcpus(self.spec.vcpu_pins)

    def _prepare(self, incoming: str | None) -> int:
        """The accelerator, the VM's files and QMP port, and QEMU's argv (self.argv).

        Returns the QMP port.
        """
        if self.accel is None:
            self.accel, self.accel_reason = self._choose_accel()
        self.session.run(["mkdir", "-p", self.work_dir])
        self.session.run(["rm", "-f", *self._files()])
        install_relay(self.session, self._relay)
        if self.qmp_port is None:
            self.qmp_port = self._qmp_port()
        self.incoming = incoming
        self.argv = qemu_argv(
            self.spec,
            name=self.name,
            image=self.image,
            sockets_dir=self.work_dir,
            accel=self.accel,
            qmp=(self.address, self.qmp_port),
            serial0=self.serial0,
            serial1=self.serial1,
            incoming=incoming,
            pidfile=self.pidfile,
            extra_append=self.append,
            hugepage_mount=self.hugepage_mount,
            backends=self.backends,
        )
        return self.qmp_port

    def _choose_accel(self) -> tuple[str, str]:
        """(accel, why): the topology's, or for `auto` what a test boot on the host shows."""
        if self.spec.accel == "auto":
            return probe_accel(self.session, qemu=self.spec.qemu)
        return self.spec.accel, "set in the topology"

    def _qmp_port(self) -> int:
        """A TCP port free on the host for QMP."""
        return free_port(self.session, self.address)

    # ------------------------------------------------------------------ vCPUs

    def vcpu_threads(self) -> dict[int, int]:
        """Each vCPU's host thread id, by vCPU index (QMP query-cpus-fast)."""
        return {int(c["cpu-index"]): int(c["thread-id"]) for c in self.qmp("query-cpus-fast")}

    def pin_vcpus(self, cpus: Sequence[int]) -> None:
        """Guide 4.2.5's qmp-vcpu-pin: vCPU i's thread onto host CPU cpus[i]."""
        threads = self.vcpu_threads()
        if sorted(threads) != list(range(len(cpus))):
            raise VmError(
                f"{self.name}: {len(cpus)} CPUs to pin, QEMU runs vCPUs {sorted(threads)}"
            )
        for index, thread in sorted(threads.items()):
            self.session.run(["taskset", "-p", "-c", str(cpus[index]), str(thread)])

    def vcpu_affinity(self) -> dict[int, frozenset[int]]:
        """The host CPUs each vCPU's thread may run on, as the host's kernel reports them."""
        return {
            index: frozenset(thread_affinity(self.session, thread))
            for index, thread in sorted(self.vcpu_threads().items())
        }

    def alive(self) -> bool:
        """Whether the QEMU process is still there (a zombie not yet reaped counts)."""
        if self.pid is None:
            return False
        return self.session.run(["kill", "-0", str(self.pid)], check=False).ok

    def exited(self) -> bool:
        """Whether QEMU has exited: gone, or a zombie its parent has not reaped yet.

        `kill -0` succeeds on a zombie, and how soon one is reaped depends on the host's
        init (CI once saw a killed QEMU outlive the second a failed migration waits).
        """
        if self.pid is None:
            return True
        state = f"sed 's/.*) //' /proc/{self.pid}/stat 2>/dev/null | cut -c1"
        script = f's=$({state}); [ -z "$s" ] || [ "$s" = Z ]'
        return self.session.run(["sh", "-c", script], check=False).ok

    def wait_for_shell(self, timeout: float = 60.0) -> GuestShell:
        """Wait until the guest shell answers and return it.

        A guest that boots and prints nothing at all for `timeout` is started once more:
        under TCG a guest kernel has hung silently before init (CI, once in some hundred
        boots). That boot's hang is logged as a warning with where its vCPUs were and kept
        in `boot_hangs`; a second silent boot, or one that printed anything, is an error.
        A VM waiting for a migration is never started again.

        Raises:
            VmBootTimeout: QEMU exited or the time passed; says what the console last showed.
        """
        if self._shell is not None:
            return self._shell
        try:
            shell = self._handshake(timeout)
        except VmBootTimeout as exc:
            if exc.exited or exc.last_output.strip() or self.incoming or self.boot_hangs:
                raise
            hang = f"printed nothing in {timeout:g} s; {self._whereabouts()}"
            said = f"{self.name} on {self.session.name} {hang}: QEMU started once more"
            log.warning("%s", said)
            warnings.warn(said, SilentBootWarning, stacklevel=2)
            self.boot_hangs.append(hang)
            self.kill()
            self.start()
            shell = self._handshake(timeout)
        if self.started_at is not None and self.boot_seconds is None:
            self.boot_seconds = time.monotonic() - self.started_at
        self._shell = shell
        return shell

    def _handshake(self, timeout: float) -> GuestShell:
        if self._shell_console is None:
            raise VmError(f"{self.name}: not started")
        shell = GuestShell(self.name, self._shell_console)
        deadline = time.monotonic() + timeout
        while True:
            try:
                shell.handshake(min(deadline, time.monotonic() + 3))
                return shell
            except (ShellTimeout, ShellClosed) as exc:
                exited = isinstance(exc, ShellClosed) or not self.alive()
                if exited or time.monotonic() >= deadline:
                    shown = read_log(self.session, self.serial1)
                    raise VmBootTimeout(self.name, timeout, shown, exited) from exc

    def _whereabouts(self) -> str:
        """QEMU's run state, its CPU time and each vCPU's RIP: what a silent guest did."""
        facts = [self.run_state_problem() or "vCPUs running"]
        ticks = self.session.run(
            ["sh", "-c", f"cut -d' ' -f14,15 /proc/{self.pid}/stat; getconf CLK_TCK"],
            check=False,
        ).stdout.split()
        if len(ticks) == 3:
            used = (int(ticks[0]) + int(ticks[1])) / int(ticks[2])
            facts.append(f"QEMU used {used:.0f} s of CPU")
        try:
            registers = self.qmp("human-monitor-command", 5, command_line="info registers -a")
        except VmError as exc:
            facts.append(f"no registers ({exc})")
        else:
            facts.append(", ".join(instruction_pointers(str(registers))))
        return "; ".join(facts)

    @property
    def shell(self) -> GuestShell:
        """The guest shell on ttyS1; VmError before wait_for_shell succeeded."""
        if self._shell is None:
            raise VmError(f"{self.name}: guest shell not ready (call wait_for_shell first)")
        return self._shell

    # ------------------------------------------------------------------ guest testpmd

    def dpdk_version(self, testpmd: str) -> DpdkVersion:
        """The DPDK release of the guest's `testpmd`, as it says itself (EAL's -v banner).

        Asked in the guest, since the guest's testpmd need not be the host's DPDK (a mix,
        a disk image's own). Raises VmError if it names none.
        """
        prefix = "hcgver"
        probe = shlex.join(version_probe_argv(testpmd, prefix))
        _, output = self.shell.run(f"{probe} 2>&1; rm -rf /var/run/dpdk/{prefix}", timeout=60)
        found = rte_version(output)
        if found is None:
            last = output.strip().splitlines()[-1:] or ["no output"]
            raise VmError(f"{self.name}: {testpmd} -v named no DPDK release ({last[0]})")
        return found

    def launch_testpmd(
        self,
        argv: Sequence[str],
        timeout: float = 60.0,
        *,
        version: DpdkVersion | None = None,
        check_startup: bool = True,
    ) -> TestPmd:
        """Start testpmd in the guest on ttyS0 (argv must include -i); return it typed.

        Its release is `version`, else asked of it in the guest. End it with its own quit()
        or close(), as a host testpmd.

        Raises:
            VmError: a testpmd of this VM still runs.
            TestPmdStartError: testpmd exited or never prompted.
        """
        if self._testpmd is not None and self._testpmd.alive:
            raise VmError(f"{self.name}: a testpmd already owns ttyS0")
        if version is None:
            version = self.dpdk_version(argv[0])
        self._testpmd = guest_testpmd.launch(
            self.session,
            self.shell,
            self._relay,
            self.serial0,
            argv,
            name=f"{self.name}/testpmd",
            timeout=timeout,
            version=version,
            check_startup=check_startup,
            state_of_host=self.run_state_problem,
        )
        return self._testpmd

    def attach_testpmd(self, previous: TestPmd, timeout: float = 15.0) -> TestPmd:
        """Re-attach to the guest testpmd on this VM's ttyS0 (after a migration).

        testpmd's state carries over in guest RAM; only the console connection is new.
        `previous` (the source VM's) has its console closed.
        """
        self._testpmd = guest_testpmd.reattach(
            self.session,
            self._relay,
            self.serial0,
            previous,
            name=f"{self.name}/testpmd",
            timeout=timeout,
            state_of_host=self.run_state_problem,
        )
        return self._testpmd

    # ------------------------------------------------------------------ QMP

    def qmp(
        self,
        command: str,
        timeout: float = 30.0,
        *,
        verbatim: Mapping[str, Any] | None = None,
        **args: Any,
    ) -> Any:
        """Run a QMP command and return its answer.

        Arguments are keywords with QMP's dashes written as underscores
        (`qmp("migrate-set-parameters", downtime_limit=300)`), or `verbatim`, sent as
        spelt: device properties such as virtio's `iommu_platform` keep their underscores.

        Raises:
            VmError: not started, or QEMU answered with an error or not in time.
        """
        if self._qmp is None:
            raise VmError(f"{self.name}: QMP not connected (VM not started)")
        named = {key.replace("_", "-"): value for key, value in args.items()}
        payload = {**named, **(verbatim or {})} or None
        shown = " ".join(f"{k}={v}" for k, v in (payload or {}).items())
        self.qmp_log.append((time.time(), f"{command} {shown}".rstrip()))
        return self._qmp.execute(command, payload, timeout)

    @property
    def events(self) -> list[Event]:
        """QMP events as (time.time() on receipt, name, data), oldest first."""
        return list(self._qmp.events) if self._qmp else []

    def status(self) -> str:
        """QEMU's run state: running, paused, inmigrate, postmigrate..."""
        return str(self.qmp("query-status")["status"])

    def run_state_problem(self) -> str | None:
        """Why the guest may be silent, as QEMU says: None while its vCPUs run.

        "VM vm1-dst is paused (postmigrate)", "VM vm1 is paused (QMP stop)", or that QEMU
        is gone or does not answer. Asked by a console that timed out, so it is quick and
        leaves no trace in qmp_log (the report's list of what the test did).
        """
        if self._qmp is None:
            return f"VM {self.name}: QEMU not started or already stopped"
        try:
            found = self._qmp.execute("query-status", None, STATE_QUERY_TIMEOUT_S)
        except Exception as exc:  # any failure to answer is the finding
            gone = "" if self.alive() else "; its QEMU process is gone"
            return f"VM {self.name}: QMP does not answer ({type(exc).__name__}: {exc}){gone}"
        if found.get("running"):
            return None
        status = str(found.get("status", "?"))
        how = "QMP stop" if status == "paused" else status
        return f"VM {self.name} is paused ({how}): its vCPUs do not run"

    def qemu_version(self) -> str:
        """QEMU's version, as QMP query-version gives it ("7.2.19 (Debian 1:7.2+dfsg-7)")."""
        found = self.qmp("query-version")
        q = found["qemu"]
        package = str(found.get("package", "")).strip()
        return f"{q['major']}.{q['minor']}.{q['micro']}" + (f" ({package})" if package else "")

    def pause(self) -> None:
        """Stop the guest's CPUs (QMP stop)."""
        self.qmp("stop")

    def resume(self) -> None:
        """Let the guest's CPUs run again (QMP cont)."""
        self.qmp("cont")

    def wait_status(self, wanted: str, timeout: float = 15.0) -> str:
        """Poll status() until it is `wanted` or the time passes; return the last one."""
        return poll(self.status, lambda status: status == wanted, timeout, interval=0.1)

    # ------------------------------------------------------------------ hotplug

    def unplug_nic(self, nic: VmNic, timeout: float = 30.0) -> hotplug.Hotplug:
        """QEMU `device_del` of a NIC, once the guest has let it go (see hotplug.unplug)."""
        return hotplug.unplug(self, nic, timeout)

    def plug_nic(self, nic: VmNic, backend: str) -> hotplug.Hotplug:
        """QEMU `device_add` of a NIC at its slot, on its host end (tap name, VF address)."""
        return hotplug.plug(self, nic, backend)

    def set_link(self, nic_id: str, up: bool) -> None:
        """QMP set_link: the guest sees the NIC's link go down or come up."""
        self.qmp("set_link", name=nic_id, up=up)

    def migrate_to(
        self,
        dest: VirtualMachine,
        *,
        port: int,
        timeout: float = 60.0,
        downtime_limit_ms: int | None = None,
        max_bandwidth: int | None = None,
        poll: float = 0.1,
        while_active: Callable[[], None] | None = None,
    ) -> MigrationResult:
        """Live-migrate to `dest`, started with start(incoming=f"tcp:{dest.address}:{port}").

        max_bandwidth is in bytes per second (QMP's unit). On a timeout the migration is
        cancelled so the source keeps running. See framework.virt.migration.migrate.

        Raises:
            MigrationFailed: QEMU reported failed or cancelled.
            MigrationDidNotConverge: still running at the time bound, not getting closer.
            MigrationTimeout: still running at the time bound, though getting closer.
        """
        return migrate(
            self,
            dest,
            port=port,
            timeout=timeout,
            downtime_limit_ms=downtime_limit_ms,
            max_bandwidth=max_bandwidth,
            poll=poll,
            while_active=while_active,
        )

    def migration_refusal(self, uri: str) -> str | None:
        """QEMU's answer to a `migrate` it refuses at once, or None if it starts one.

        A refusal is a migration blocker's (a VFIO device's); a migration that starts is
        cancelled at once.
        """
        try:
            self.qmp("migrate", uri=uri)
        except VmError as refused:
            return str(refused)
        self.qmp("migrate_cancel")
        return None

    # ------------------------------------------------------------------ reports, teardown

    @property
    def console_log(self) -> str:
        """Everything both consoles printed (from QEMU's logfiles), ttyS1 first."""
        if self._closed:
            return self._saved_log
        parts = []
        for tty, path in (("ttyS1", self.serial1), ("ttyS0", self.serial0)):
            text = read_log(self.session, path)
            if text:
                parts.append(f"----- {self.name} {tty} -----\n{text}")
        return "\n".join(parts)

    def kill(self) -> None:
        """Stop QEMU however it can and remove its files. Idempotent; safe on a dead VM."""
        if self._closed:
            return
        if self._testpmd is not None:
            self._testpmd.shell.close()  # testpmd dies with the guest; only hang up
        if self._shell_console is not None:
            self._shell_console.close()
        self._saved_log = self.console_log
        if self._qmp is not None:
            try:
                self._qmp.execute("quit", None, 5)
            except Exception as exc:  # the connection drops as QEMU exits, or it was dead
                log.debug("%s: QMP quit: %s", self.name, exc)
            self._qmp.close()
            self._qmp = None
        if self.pid is not None and not self._wait_gone(5):
            self.session.run(["kill", "-9", str(self.pid)], check=False)
            self._wait_gone(5)
        self.session.run(["rm", "-f", *self._files()], check=False)
        self._closed = True
        self._shell = None
        self._testpmd = None
        self._shell_console = None

    close = kill

    def _wait_gone(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while self.alive():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
        return True

    def __enter__(self) -> VirtualMachine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


def instruction_pointers(registers: str) -> list[str]:
    """Each vCPU's "cpu0 rip=ffffffff81c01234", from HMP `info registers -a`.

    A vCPU not yet started by the kernel is still in real mode and shows EIP only.
    """
    found = []
    for block in registers.split("CPU#")[1:]:
        number, _, text = block.partition("\n")
        words = [w for w in text.split() if w.startswith(("RIP=", "EIP="))][:1]
        found += [f"cpu{number.split()[0]} {word.lower()}" for word in words]
    return found


def thread_affinity(session: Session, thread: int) -> set[int]:
    """The CPUs a host thread may run on.

    `taskset -p -c` says "pid N's current affinity list: 1,3-4".
    """
    out = session.run(["taskset", "-p", "-c", str(thread)]).stdout
    return cpu_list(out.rsplit(":", 1)[-1].strip())
