"""A QEMU guest on a topology host: start, guest shell, guest testpmd, QMP, live migration.

QEMU runs daemonized on the host (started through the host's Session). QMP listens on TCP
at the host's management address so the controller reaches it directly with qemu.qmp;
the serial consoles are unix sockets on the host, reached with `socat` through the same
Session as everything else. ttyS1 carries a busybox shell, ttyS0 is left to testpmd.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shlex
import threading
import time
from collections.abc import Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from framework.dpdk.testpmd import PROMPT as TESTPMD_PROMPT
from framework.dpdk.testpmd import TestPmd, TestPmdStartError
from framework.errors import FrameworkError, RemoteError, ShellClosed, ShellTimeout
from framework.remote.shell import InteractiveShell
from framework.virt.image import SHELL_PROMPT
from framework.virt.qemu import describe, probe_accel, qemu_argv

if TYPE_CHECKING:
    from framework.config.model import Vm
    from framework.dpdk.version import DpdkVersion
    from framework.remote.session import Session
    from framework.virt.image import GuestImage

log = logging.getLogger("howto.virt")


class VmError(FrameworkError):
    """A VM could not be started, reached or controlled."""


class VmBootTimeout(VmError):
    def __init__(self, vm: str, timeout: float, last_output: str, exited: bool) -> None:
        self.vm, self.last_output = vm, last_output
        lines = [line.strip() for line in last_output.strip().splitlines() if line.strip()]
        # A panic's stack trace buries its reason: put the "Kernel panic" line first.
        panic = [line for line in lines if "Kernel panic" in line][:1]
        last = " | ".join(panic + lines[-3:]) or "(nothing)"
        what = (
            "QEMU exited before the guest shell answered"
            if exited
            else (f"no guest shell within {timeout:g} s")
        )
        super().__init__(f"{vm}: {what}; last console output: {last}")


class GuestCommandFailed(VmError):
    def __init__(self, vm: str, command: str, status: int, output: str) -> None:
        self.command, self.status, self.output = command, status, output
        tail = " | ".join(output.strip().splitlines()[-3:])
        super().__init__(f"{vm}: guest `{command}` exited {status}" + (f": {tail}" if tail else ""))


class MigrationError(VmError):
    """Base of the migration outcomes that are not `completed`."""


class MigrationFailed(MigrationError):
    """QEMU reported the migration failed (or it was cancelled)."""


class MigrationDidNotConverge(MigrationError):
    """Still active at the time bound while the guest dirtied RAM as fast as it was sent."""


class MigrationTimeout(MigrationError):
    """Still active at the time bound, though remaining RAM was shrinking (too slow)."""


@dataclass(frozen=True)
class MigrationResult:
    """What `info migrate` shows for a finished migration (raw keeps the whole answer)."""

    status: str
    total_time_ms: int | None
    downtime_ms: int | None
    setup_time_ms: int | None
    transferred_ram_bytes: int | None
    throughput_mbps: float | None
    dirty_sync_count: int | None
    remaining_ram: int | None
    started_at: float
    finished_at: float
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_query(cls, info: dict[str, Any], started: float, finished: float) -> MigrationResult:
        ram = info.get("ram", {})
        return cls(
            status=info.get("status", "unknown"),
            total_time_ms=info.get("total-time"),
            downtime_ms=info.get("downtime"),
            setup_time_ms=info.get("setup-time"),
            transferred_ram_bytes=ram.get("transferred"),
            throughput_mbps=ram.get("mbps"),
            dirty_sync_count=ram.get("dirty-sync-count"),
            remaining_ram=ram.get("remaining"),
            started_at=started,
            finished_at=finished,
            raw=info,
        )


class _QmpLink:
    """qemu.qmp (asyncio) behind a synchronous API: a private loop on a daemon thread.

    The loop keeps running between calls so events are received (and timestamped) as they
    happen, not when the next command happens to be sent.
    """

    def __init__(self, name: str) -> None:
        from qemu.qmp import QMPClient

        self.name = name
        self.events: list[tuple[float, str, dict[str, Any]]] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"qmp-{name}", daemon=True
        )
        self._thread.start()
        self._client = QMPClient(name)
        self._watcher: Any = None

    def _call(self, coro: Any, timeout: float) -> Any:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except FutureTimeout:
            future.cancel()
            raise

    def connect(self, address: tuple[str, int], timeout: float) -> None:
        from qemu.qmp import EventListener

        async def go() -> None:
            listener = EventListener()
            self._client.register_listener(listener)
            await self._client.connect(address)

            async def watch() -> None:
                async for event in listener:
                    self.events.append(
                        (time.time(), str(event["event"]), dict(event.get("data", {})))
                    )

            self._watcher = asyncio.ensure_future(watch())

        self._call(go(), timeout)

    def execute(self, command: str, args: dict[str, Any] | None, timeout: float) -> Any:
        return self._call(self._client.execute(command, args), timeout)

    def close(self) -> None:
        async def go() -> None:
            if self._watcher is not None:
                self._watcher.cancel()
            await self._client.disconnect()

        try:
            self._call(go(), 5)
        except Exception as exc:  # already gone; closing must never fail
            log.debug("qmp %s disconnect: %s", self.name, exc)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()


class GuestShell:
    """The busybox shell on ttyS1. Every command ends with `; echo @@N@@$?@@`.

    The marker carries the exit status and a fresh N, so a late echo of an earlier command
    never ends the wrong one; matching the prompt would not work because busybox's line
    editor wraps long lines at 80 columns and redraws them.
    """

    def __init__(self, vm_name: str, console: InteractiveShell) -> None:
        self.vm_name = vm_name
        self.console = console
        self._n = 0

    def run(self, command: str, timeout: float = 30.0) -> tuple[int, str]:
        """Run one shell command line in the guest; return (exit status, output)."""
        self._n += 1
        n = self._n
        self.console.send_line(f"{command}; echo @@{n}@@$?@@")
        # The lookahead skips the echoed command line itself, which has "$?" after @@N@@.
        output = self.console.expect(re.compile(rf"@@{n}@@(?=\d+@@)"), timeout)
        status = int(self.console.expect(re.compile(r"@@"), 5))
        lines = output.split("\n")
        if lines and f"@@{n}@@$?@@" in lines[0]:
            lines = lines[1:]  # echo was still on (a freshly restarted shell)
        return status, "\n".join(lines).strip("\n")

    def check(self, command: str, timeout: float = 30.0) -> str:
        """Run a command; raise GuestCommandFailed unless it exits 0."""
        status, output = self.run(command, timeout)
        if status != 0:
            raise GuestCommandFailed(self.vm_name, command, status, output)
        return output

    def handshake(self, deadline: float) -> None:
        """Until the shell answers: turn echo off, so outputs come back clean."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ShellTimeout(self.console.name, "guest shell", 0, "")
            try:
                self.run("stty -echo", timeout=min(2.0, remaining))
                self.console.drain(0.2)
                return
            except ShellTimeout:
                continue


class VirtualMachine:
    """One QEMU guest from a topology Vm spec, on the host behind `host_session`."""

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
    ) -> None:
        self.spec = spec
        self.append = append  # extra guest kernel arguments (builtin image only)
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
        self.incoming: str | None = None
        self._qmp: _QmpLink | None = None
        self._shell_console: InteractiveShell | None = None
        self._testpmd_console: InteractiveShell | None = None
        self._shell: GuestShell | None = None
        self._testpmd: TestPmd | None = None
        self._saved_log = ""
        self._closed = False

    # ------------------------------------------------------------------ paths

    def _path(self, what: str) -> str:
        return f"{self.work_dir}/{self.name}.{what}"

    @property
    def serial0(self) -> str:
        return self._path("ttyS0.sock")

    @property
    def serial1(self) -> str:
        return self._path("ttyS1.sock")

    @property
    def pidfile(self) -> str:
        return self._path("pid")

    # ------------------------------------------------------------------ lifecycle

    def start(self, incoming: str | None = None, timeout: float = 60.0) -> None:
        """Start QEMU daemonized (returns once QEMU is set up; the guest boots on)."""
        if self.accel is None:
            wanted = self.spec.accel
            if wanted == "auto":
                self.accel, self.accel_reason = probe_accel(self.session, qemu=self.spec.qemu)
            else:
                self.accel, self.accel_reason = wanted, "set in the topology"
        self.session.run(["mkdir", "-p", self.work_dir])
        self.session.run(
            ["rm", "-f", self.serial0, self.serial1, self.pidfile,
             self.serial0 + ".log", self.serial1 + ".log"]
        )  # fmt: skip
        if self.qmp_port is None:
            self.qmp_port = _free_port(self.session, self.address)
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
        )
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
        log.info(
            "[%s] %s started (pid %s): %s",
            self.session.name,
            self.name,
            self.pid,
            describe(self.argv),
        )
        self._qmp = _QmpLink(self.name)
        try:
            self._qmp.connect((self.address, self.qmp_port), timeout=15)
        except Exception as exc:
            self.kill()
            raise VmError(
                f"{self.name}: cannot reach QMP at {self.address}:{self.qmp_port}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        # Attach to the shell console now: output sent while no client is connected is
        # dropped (only the logfile keeps it).
        self._shell_console = self._open_console(self.serial1, "ttyS1", SHELL_PROMPT)

    def _open_console(self, path: str, tty: str, prompt: str) -> InteractiveShell:
        return self.session.open_shell(
            ["socat", "-,raw,echo=0", f"UNIX-CONNECT:{path}"],
            name=f"{self.name}/{tty}",
            prompt=prompt,
            timeout=30,
        )

    def alive(self) -> bool:
        if self.pid is None:
            return False
        return self.session.run(["kill", "-0", str(self.pid)], check=False).ok

    def wait_for_shell(self, timeout: float = 60.0) -> GuestShell:
        """Wait until the guest shell answers; on timeout say what the console last showed."""
        if self._shell is not None:
            return self._shell
        if self._shell_console is None:
            raise VmError(f"{self.name}: not started")
        shell = GuestShell(self.name, self._shell_console)
        deadline = time.monotonic() + timeout
        while True:
            try:
                shell.handshake(min(deadline, time.monotonic() + 3))
                break
            except (ShellTimeout, ShellClosed) as exc:
                exited = isinstance(exc, ShellClosed) or not self.alive()
                if exited or time.monotonic() >= deadline:
                    shown = self._read_log(self.serial1)
                    raise VmBootTimeout(self.name, timeout, shown, exited) from exc
        if self.started_at is not None and self.boot_seconds is None:
            self.boot_seconds = time.monotonic() - self.started_at
        self._shell = shell
        return shell

    @property
    def shell(self) -> GuestShell:
        if self._shell is None:
            raise VmError(f"{self.name}: guest shell not ready (call wait_for_shell first)")
        return self._shell

    # ------------------------------------------------------------------ testpmd

    def launch_testpmd(
        self,
        argv: Sequence[str],
        timeout: float = 60.0,
        *,
        version: DpdkVersion | None = None,
        check_startup: bool = True,
    ) -> TestPmd:
        """Start testpmd in the guest on ttyS0 (argv must include -i); return it typed."""
        if self._testpmd_console is not None and not self._testpmd_console.closed:
            raise VmError(f"{self.name}: a testpmd already owns ttyS0")
        console = self._open_console(self.serial0, "ttyS0", TESTPMD_PROMPT)
        self._testpmd_console = console
        line = shlex.join(argv)
        # A subshell so the marker's `;` follows a complete command; setsid detaches
        # testpmd from the shell console's session (and its job control).
        self.shell.check(
            f"( setsid sh -c {shlex.quote(f'exec {line} </dev/ttyS0 >/dev/ttyS0 2>&1')} & )"
        )
        try:
            pmd = TestPmd.attach(
                self.session,
                console,
                argv,
                name=f"{self.name}/testpmd",
                timeout=timeout,
                version=version,
                check_startup=check_startup,
            )
        except TestPmdStartError:
            self._testpmd_console = None
            raise
        self._testpmd = pmd
        return pmd

    def attach_testpmd(self, previous: TestPmd, timeout: float = 15.0) -> TestPmd:
        """Re-attach to the guest testpmd on this VM's ttyS0 (after a migration).

        testpmd's state carries over in guest RAM; only the console connection is new.
        """
        if previous.shell is not self._testpmd_console:
            previous.shell.close()
        console = self._open_console(self.serial0, "ttyS0", TESTPMD_PROMPT)
        self._testpmd_console = console
        console.send_line("")
        console.expect(timeout=timeout)
        console.drain(0.2)
        pmd = TestPmd.attach(
            self.session,
            console,
            previous.argv,
            name=f"{self.name}/testpmd",
            version=previous.version,
            startup_output=previous.startup_output,
        )
        self._testpmd = pmd
        return pmd

    def quit_testpmd(self, pmd: TestPmd | None = None, timeout: float = 20.0) -> str:
        """Quit the guest testpmd. Its console stays open (the socket outlives testpmd),
        so the end is testpmd's "Bye..." rather than the PTY closing."""
        pmd = pmd or self._testpmd
        if pmd is None or pmd.shell.closed:
            return ""
        pmd.shell.send_line("quit")
        try:
            output = pmd.shell.expect(re.compile(r"Bye\.\.\."), timeout) + "Bye..."
        finally:
            pmd.shell.close()
            if pmd is self._testpmd:
                self._testpmd = None
                self._testpmd_console = None
        pmd.quit_output = output
        return output

    # ------------------------------------------------------------------ QMP

    def qmp(self, command: str, timeout: float = 30.0, **args: Any) -> Any:
        """Run a QMP command; arguments as keywords (QMP's dashes as underscores)."""
        if self._qmp is None:
            raise VmError(f"{self.name}: QMP not connected (VM not started)")
        from qemu.qmp import QMPError

        payload = {k.replace("_", "-"): v for k, v in args.items()} or None
        try:
            return self._qmp.execute(command, payload, timeout)
        except FutureTimeout as exc:
            raise VmError(f"{self.name}: QMP {command} got no answer in {timeout:g} s") from exc
        except QMPError as exc:
            raise VmError(f"{self.name}: QMP {command}: {exc}") from exc

    @property
    def events(self) -> list[tuple[float, str, dict[str, Any]]]:
        """QMP events as (time.time() on receipt, name, data), oldest first."""
        return list(self._qmp.events) if self._qmp else []

    def status(self) -> str:
        return str(self.qmp("query-status")["status"])

    def pause(self) -> None:
        self.qmp("stop")

    def resume(self) -> None:
        self.qmp("cont")

    def wait_status(self, wanted: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            current = self.status()
            if current == wanted or time.monotonic() >= deadline:
                return current
            time.sleep(0.1)

    # ------------------------------------------------------------------ migration

    def migrate_to(
        self,
        dest: VirtualMachine,
        *,
        port: int,
        timeout: float = 60.0,
        downtime_limit_ms: int | None = None,
        max_bandwidth: int | None = None,
        poll: float = 0.1,
    ) -> MigrationResult:
        """Live-migrate to `dest`, started with start(incoming=f"tcp:{dest.address}:{port}").

        max_bandwidth is in bytes per second (QMP's unit). Raises MigrationFailed,
        MigrationDidNotConverge or MigrationTimeout; on a timeout the migration is
        cancelled so the source keeps running.
        """
        # MIGRATION events (setup/active/completed) only come with this capability; they
        # let callers place the migration on a traffic timeline.
        events_on = [{"capability": "events", "state": True}]
        for vm in (self, dest):
            vm._qmp_raw("migrate-set-capabilities", {"capabilities": events_on})
        params: dict[str, Any] = {}
        if downtime_limit_ms is not None:
            params["downtime-limit"] = downtime_limit_ms
        if max_bandwidth is not None:
            params["max-bandwidth"] = max_bandwidth
        if params:
            self._qmp_raw("migrate-set-parameters", params)
        uri = f"tcp:{dest.address}:{port}"
        started = time.time()
        self.qmp("migrate", uri=uri)
        deadline = time.monotonic() + timeout
        history: list[tuple[int, int]] = []  # (remaining, dirty-sync-count) per poll
        while True:
            info = self.qmp("query-migrate")
            status = info.get("status", "none")
            if status == "completed":
                finished = time.time()
                # QEMU shows "completed" a moment before it fills in total-time and
                # downtime (seen here: both 0 in the first answer); ask again briefly.
                settle = time.monotonic() + 2.0
                while not info.get("total-time") and time.monotonic() < settle:
                    time.sleep(0.05)
                    info = self.qmp("query-migrate")
                result = MigrationResult.from_query(info, started, finished)
                # The destination resumes on its own once the last pages are in.
                dest.wait_status("running", timeout=15)
                log.info(
                    "%s -> %s migrated: total %s ms, downtime %s ms, %s bytes",
                    self.name, dest.name, result.total_time_ms, result.downtime_ms,
                    result.transferred_ram_bytes,
                )  # fmt: skip
                return result
            if status in ("failed", "cancelled"):
                why = info.get("error-desc", "no error-desc")
                raise MigrationFailed(
                    f"{self.name} -> {uri}: migration {status}: {why}; {self._last_words()}"
                )
            ram = info.get("ram", {})
            history.append((int(ram.get("remaining", 0)), int(ram.get("dirty-sync-count", 0))))
            if time.monotonic() >= deadline:
                break
            time.sleep(poll)
        try:
            self.qmp("migrate_cancel")
        except VmError as exc:
            log.warning("migrate_cancel: %s", exc)
        error = _not_finished(self.name, uri, timeout, history)
        raise type(error)(f"{error}; {self._last_words()}")

    def _last_words(self) -> str:
        """The guest's last console line, for errors that should show where it was."""
        try:
            lines = [ln.strip() for ln in self._read_log(self.serial1).splitlines() if ln.strip()]
        except Exception:  # noqa: BLE001 - an error message must not fail on its evidence
            lines = []
        return f"last console output: {lines[-1] if lines else '(nothing)'}"

    def _qmp_raw(self, command: str, args: dict[str, Any]) -> Any:
        if self._qmp is None:
            raise VmError(f"{self.name}: QMP not connected (VM not started)")
        from qemu.qmp import QMPError

        try:
            return self._qmp.execute(command, args, 30)
        except QMPError as exc:
            raise VmError(f"{self.name}: QMP {command}: {exc}") from exc

    # ------------------------------------------------------------------ reports, teardown

    @property
    def console_log(self) -> str:
        """Everything both consoles printed (from QEMU's logfiles), ttyS1 first."""
        if self._closed:
            return self._saved_log
        parts = []
        for tty, path in (("ttyS1", self.serial1), ("ttyS0", self.serial0)):
            text = self._read_log(path)
            if text:
                parts.append(f"----- {self.name} {tty} -----\n{text}")
        return "\n".join(parts)

    def _read_log(self, socket_path: str) -> str:
        try:
            return self.session.run(["cat", socket_path + ".log"], check=False).stdout
        except RemoteError:
            return ""

    def kill(self) -> None:
        """Stop QEMU however it can and remove its files. Idempotent; safe on a dead VM."""
        if self._closed:
            return
        for console in (self._testpmd_console, self._shell_console):
            if console is not None:
                console.close()
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
        self.session.run(
            ["rm", "-f", self.serial0, self.serial1, self.pidfile,
             self.serial0 + ".log", self.serial1 + ".log"],
            check=False,
        )  # fmt: skip
        self._closed = True
        self._shell = None
        self._testpmd = None
        self._shell_console = self._testpmd_console = None

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


def _not_finished(
    name: str, uri: str, timeout: float, history: list[tuple[int, int]]
) -> MigrationError:
    """Tell a stuck migration (dirtying outpaces sending) from a merely slow one."""
    if not history:
        return MigrationTimeout(f"{name} -> {uri}: migration not finished within {timeout:g} s")
    first_half = history[: max(1, len(history) // 2)]
    last_remaining, last_syncs = history[-1]
    best_early = min(r for r, _ in first_half)
    syncs_climbing = last_syncs - first_half[-1][1] >= 2
    mb = last_remaining / 1e6
    if last_remaining >= best_early or syncs_climbing:
        return MigrationDidNotConverge(
            f"{name} -> {uri}: migration did not converge in {timeout:g} s (cancelled): "
            f"{mb:.1f} MB still to send, dirty-sync count {last_syncs}"
        )
    return MigrationTimeout(
        f"{name} -> {uri}: migration still running after {timeout:g} s (cancelled): "
        f"{mb:.1f} MB left and shrinking; allow more time or bandwidth"
    )


def _free_port(session: Session, address: str) -> int:
    """A TCP port nobody listens on at `address` on the host (asked there, not here)."""
    script = (
        "import socket,sys\n"
        "s=socket.socket(); s.bind((sys.argv[1],0)); print(s.getsockname()[1]); s.close()"
    )
    result = session.run(["python3", "-c", script, address], check=False)
    if result.ok and result.stdout.strip().isdigit():
        return int(result.stdout.strip())
    raise VmError(f"{session.name}: cannot pick a free TCP port on {address}: {result.stderr}")
