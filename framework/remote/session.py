"""Sessions run commands on a host, over SSH or locally.

Over SSH with fabric for every lab and virtual-lab host; locally for the controller's own
machine (builders and unit tests).

Commands are argv lists joined with shlex quoting, so values from a topology can never
break out of their argument.
"""

from __future__ import annotations

import logging
import os
import select
import shlex
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from framework.errors import CommandFailed, RemoteError
from framework.remote.shell import ChannelTransport, InteractiveShell, LocalPtyTransport, Pattern

log = logging.getLogger("howto.remote")

# Seconds of silence after a command's exit status before its output is taken as complete
# without the channel's EOF (see SSHSession._execute).
DRAIN_S = 1.0


@dataclass(frozen=True)
class CommandResult:
    """What one finished command printed and how it exited, and where it ran."""

    host: str
    command: str
    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        """Whether the command exited 0."""
        return self.exit_code == 0


def command_line(
    argv: Sequence[str], env: Mapping[str, str] | None = None, cwd: str | None = None
) -> str:
    """Quote argv (and env, cwd) into one shell command line."""
    if isinstance(argv, str):
        raise TypeError("pass an argv list, not a shell string")
    command = shlex.join(str(a) for a in argv)
    if env:
        command = shlex.join(["env", *(f"{k}={v}" for k, v in env.items())]) + " " + command
    if cwd:
        command = f"cd {shlex.quote(cwd)} && {command}"
    return command


class Session(ABC):
    """One host. Subclasses provide _execute, _open_pty, put and get."""

    name: str

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float | None = 120,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        stdin: str | None = None,
    ) -> CommandResult:
        """Run argv to completion and capture its output.

        Args:
            argv: the program and its arguments, each quoted on its own.
            check: raise CommandFailed when the exit status is not 0.
            timeout: seconds before RemoteError; None waits for ever.
            env: variables set for this command only.
            cwd: directory to run in.
            stdin: text fed to the command's standard input.
        """
        return self._run_line(
            command_line(argv, env, cwd), check=check, timeout=timeout, stdin=stdin
        )

    def run_script(
        self, script: str, *, check: bool = True, timeout: float | None = 120
    ) -> CommandResult:
        """Run a bash script written by the framework (never one built from topology values)."""
        return self._run_line(command_line(["bash", "-c", script]), check=check, timeout=timeout)

    def _run_line(
        self, command: str, *, check: bool, timeout: float | None, stdin: str | None = None
    ) -> CommandResult:
        log.info("[%s] $ %s", self.name, command)
        result = self._execute(command, timeout, stdin)
        if result.stdout.strip():
            log.debug("[%s] stdout: %s", self.name, result.stdout.rstrip())
        if result.stderr.strip():
            log.debug("[%s] stderr: %s", self.name, result.stderr.rstrip())
        if check and not result.ok:
            raise CommandFailed(
                self.name, command, result.exit_code, result.stderr or result.stdout
            )
        return result

    def open_shell(
        self,
        argv: Sequence[str],
        *,
        name: str,
        prompt: Pattern,
        timeout: float = 30.0,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> InteractiveShell:
        """Start an interactive program on a PTY. The caller expects its first prompt."""
        command = command_line(argv, env, cwd)
        log.info("[%s] $ %s (interactive: %s)", self.name, command, name)
        return InteractiveShell(self._open_pty(command), name=name, prompt=prompt, timeout=timeout)

    def exists(self, path: str) -> bool:
        """Whether path exists on the host."""
        return self.run(["test", "-e", path], check=False).ok

    @abstractmethod
    def _execute(self, command: str, timeout: float | None, stdin: str | None) -> CommandResult: ...

    @abstractmethod
    def _open_pty(self, command: str): ...

    @abstractmethod
    def put(self, local: str | Path, remote: str) -> None:
        """Copy a file of the controller to a path on the host."""

    @abstractmethod
    def get(self, remote: str, local: str | Path) -> None:
        """Copy a file of the host to a path on the controller."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the connection; the session reconnects if used again."""


class LocalSession(Session):
    """The controller itself."""

    def __init__(self, name: str = "localhost") -> None:
        self.name = name

    def _execute(self, command: str, timeout: float | None, stdin: str | None) -> CommandResult:
        try:
            done = subprocess.run(
                ["bash", "-c", command],
                capture_output=True,
                text=True,
                timeout=timeout,
                input=stdin,
                stdin=None if stdin is not None else subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            raise RemoteError(
                f"{self.name}: `{command}` did not finish within {timeout:g} s"
            ) from exc
        return CommandResult(self.name, command, done.returncode, done.stdout, done.stderr)

    def _open_pty(self, command: str) -> LocalPtyTransport:
        from ptyprocess import PtyProcess

        return LocalPtyTransport(PtyProcess.spawn(["bash", "-c", command], dimensions=(50, 500)))

    def put(self, local: str | Path, remote: str) -> None:
        """Copy with cp, the controller being the host."""
        self.run(["cp", str(local), remote])

    def get(self, remote: str, local: str | Path) -> None:
        """Copy with cp, the controller being the host."""
        self.run(["cp", remote, str(local)])


class SSHSession(Session):
    """A host reached with fabric over SSH: a lab server or a virtual-lab namespace."""

    def __init__(
        self,
        name: str,
        address: str,
        *,
        user: str = "root",
        port: int = 22,
        key_filename: str | None = None,
        connect_timeout: float = 10.0,
    ) -> None:
        from fabric import Connection

        self.name, self.address, self.port = name, address, port
        kwargs: dict[str, object] = {"look_for_keys": key_filename is None, "allow_agent": False}
        if key_filename:
            kwargs["key_filename"] = os.path.expanduser(key_filename)
        self._connection = Connection(
            address, user=user, port=port, connect_timeout=connect_timeout, connect_kwargs=kwargs
        )

    def connect(self) -> SSHSession:
        """Open the connection now, turning network failures into one clear line."""
        try:
            self._connection.open()
        except (TimeoutError, OSError) as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
            raise RemoteError(
                f"{self.name}: cannot reach {self.address}:{self.port} over SSH: {reason}"
            ) from exc
        except Exception as exc:  # paramiko auth/protocol errors
            where = f"{self.address}:{self.port}"
            raise RemoteError(
                f"{self.name}: SSH to {where} failed: {type(exc).__name__}: {exc}"
            ) from exc
        return self

    @property
    def connected(self) -> bool:
        """Whether the SSH connection is open (no round trip: a lost peer shows once read)."""
        client = self._connection.client
        transport = client.get_transport() if client is not None else None
        return transport is not None and transport.is_active()

    def _execute(self, command: str, timeout: float | None, stdin: str | None) -> CommandResult:
        # A plain paramiko channel rather than fabric's run(): invoke's stdin thread never
        # sends EOF for an in-memory stream, and its polling sleeps cost milliseconds.
        self.connect()
        channel = self._connection.client.get_transport().open_session()
        try:
            channel.exec_command(command)
            if stdin is not None:
                channel.sendall(stdin.encode())
            channel.shutdown_write()
            out, err = bytearray(), bytearray()
            deadline = None if timeout is None else time.monotonic() + timeout
            # sshd may send the exit status before the last of the output (seen: 1 run of
            # 200 lost the end of 1 KB, 1 in 4 the end of 600 KB): read on to the channel's
            # EOF. A command that leaves a child holding its stdout sends none: after the
            # exit status, DRAIN_S without a byte ends the wait.
            quiet_since: float | None = None
            while True:
                select.select([channel], [], [], 0.2)
                got = False
                while channel.recv_ready():
                    out += channel.recv(65536)
                    got = True
                while channel.recv_stderr_ready():
                    err += channel.recv_stderr(65536)
                    got = True
                if channel.exit_status_ready():
                    drained = not (channel.recv_ready() or channel.recv_stderr_ready())
                    now = time.monotonic()
                    if got or quiet_since is None:
                        quiet_since = now
                    if drained and (channel.eof_received or now - quiet_since > DRAIN_S):
                        break
                if deadline is not None and time.monotonic() > deadline:
                    raise RemoteError(
                        f"{self.name}: `{command}` did not finish within {timeout:g} s"
                    )
            code = channel.recv_exit_status()
        finally:
            channel.close()
        return CommandResult(
            self.name, command, code, out.decode(errors="replace"), err.decode(errors="replace")
        )

    def _open_pty(self, command: str) -> ChannelTransport:
        self.connect()
        channel = self._connection.client.get_transport().open_session()
        channel.get_pty(term="dumb", width=500, height=50)
        channel.exec_command(command)
        return ChannelTransport(channel)

    def put(self, local: str | Path, remote: str) -> None:
        """Upload over SFTP."""
        self.connect()
        self._connection.put(str(local), remote)

    def get(self, remote: str, local: str | Path) -> None:
        """Download over SFTP."""
        self.connect()
        self._connection.get(remote, str(local))

    def close(self) -> None:
        """Close the SSH connection."""
        self._connection.close()
