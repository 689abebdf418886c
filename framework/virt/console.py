"""The guest's serial consoles: unix sockets on the host, and the busybox shell on ttyS1.

QEMU serves each serial port on a unix socket on the VM's host (one client at a time) and
copies everything the guest prints to `<socket>.log`. The controller reaches a socket
through the host's Session like any other program: a small relay runs on the host with
the Session's PTY on one side and the socket on the other.
"""

from __future__ import annotations

import re
import shlex
import time
from typing import TYPE_CHECKING

from framework.errors import RemoteError, ShellTimeout
from framework.virt.errors import GuestCommandFailed

if TYPE_CHECKING:
    from framework.remote.session import Session
    from framework.remote.shell import InteractiveShell, Pattern

# The relay, installed on the VM's host with install_relay and run as
# `python3 RELAY SOCKET END`: PTY (raw, no echo) <-> console socket. It says READY once
# connected and raw, and ends when either side closes, or once the guest prints END (if
# not empty): a socket outlives the program on it, so END is how a console ends with it.
_RELAY = r"""import os, select, socket, sys, termios, tty
path, end = sys.argv[1], sys.argv[2].encode()
sock = socket.socket(socket.AF_UNIX)
try:
    sock.connect(path)
except OSError as exc:
    sys.exit(f"console: cannot connect to {path}: {exc.strerror}")
if os.isatty(0):
    tty.setraw(0, termios.TCSANOW)
sys.stdout.buffer.write(b"__READY__\n")
sys.stdout.buffer.flush()
tail = b""
while True:
    ready = select.select([0, sock], [], [])[0]
    try:
        if 0 in ready:
            data = os.read(0, 4096)
            if not data:
                break
            sock.sendall(data)
        if sock in ready:
            data = sock.recv(65536)
            if not data:
                break
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
            if end:
                seen = tail + data
                if end in seen:
                    break
                tail = seen[-len(end):]
    except OSError:
        break
"""
READY = "howto-console: connected"


def install_relay(session: Session, path: str) -> None:
    """Write the console relay script to `path` on the session's host."""
    script = _RELAY.replace("__READY__", READY)
    session.run(["sh", "-c", 'cat >"$1"', "install-relay", path], stdin=script)


def open_console(
    session: Session,
    relay: str,
    socket_path: str,
    *,
    name: str,
    prompt: Pattern,
    end: str = "",
    timeout: float = 30.0,
) -> InteractiveShell:
    """Connect to a serial console socket on the session's host; return once connected.

    Args:
        session: the VM's host.
        relay: the relay script there (install_relay).
        socket_path: the console's unix socket there.
        name: the shell's name in logs and errors.
        prompt: what the program on the console prints when it waits for input.
        end: a line the guest prints once the program on the console has exited; the
            console then closes, as a PTY does when its program exits. Empty: never.
        timeout: seconds to wait for the connection.

    Raises:
        ShellClosed: the relay could not connect (its reason is in the message).
    """
    console = session.open_shell(
        ["python3", relay, socket_path, end], name=name, prompt=prompt, timeout=timeout
    )
    try:
        # Nothing may be typed before the relay made the PTY raw: the switch to raw mode
        # would echo it back.
        console.expect(READY + "\n", timeout)
    except BaseException:
        console.close()
        raise
    return console


def read_log(session: Session, socket_path: str) -> str:
    """All a console printed since QEMU started (QEMU's logfile); "" if unreadable."""
    try:
        return session.run(["cat", socket_path + ".log"], check=False).stdout
    except RemoteError:
        return ""


def last_line(text: str) -> str:
    """The last non-blank line of `text`, stripped; "(nothing)" if there is none."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "(nothing)"


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

    def run(
        self, command: str, timeout: float = 30.0, *, own_shell: bool = True
    ) -> tuple[int, str]:
        """Run one shell command line in the guest; return (exit status, output).

        The command runs in a shell of its own (no command relies on the console shell's
        state): one the shell cannot parse fails with status 2 and its message, where the
        console's shell would drop the whole line, marker included, and leave the caller
        waiting for the timeout. `own_shell=False` types it as it is (the handshake).
        """
        self._n += 1
        n = self._n
        line = f"sh -c {shlex.quote(command)}" if own_shell else command
        # Both markers are made by the shell (printf's %s, $?), so the echoed command line,
        # which busybox may redraw and wrap anywhere when echo is on, never matches them.
        self.console.send_line(f"printf '@@%s@@begin\\n' {n}; {line}; echo @@{n}@@$?@@")
        deadline = time.monotonic() + timeout
        self.console.expect(re.compile(rf"@@{n}@@begin\r?\n"), timeout)
        output = self.console.expect(
            re.compile(rf"@@{n}@@(?=\d+@@)"), max(deadline - time.monotonic(), 1.0)
        )
        status = int(self.console.expect(re.compile(r"@@"), 5))
        return status, output.strip("\n")

    def check(self, command: str, timeout: float = 30.0) -> str:
        """Run a command and return its output.

        Raises:
            GuestCommandFailed: the command exited non-zero.
        """
        status, output = self.run(command, timeout)
        if status != 0:
            raise GuestCommandFailed(self.vm_name, command, status, output)
        return output

    def handshake(self, deadline: float) -> None:
        """Until the shell answers: turn echo off, so outputs come back clean.

        Raises:
            ShellTimeout: no answer by `deadline` (time.monotonic()).
        """
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ShellTimeout(self.console.name, "guest shell", 0, "")
            try:
                # Ctrl-C first: characters lost while the guest boots can leave the shell
                # inside an unfinished line (a quote or a parenthesis still open).
                self.console.send_line("\x03")
                self.run("stty -echo", timeout=min(2.0, remaining), own_shell=False)
                self.console.drain(0.2)
                return
            except ShellTimeout:
                continue
