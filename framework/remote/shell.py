"""An interactive program (testpmd, a guest console) driven through a PTY.

A PTY matters: through a pipe, testpmd block-buffers its output and the text arrives out
of order with the prompts. The shell keeps a full transcript so that reports can attach it
and timeouts can say what was last seen.
"""

from __future__ import annotations

import re
import select
import time
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from framework.errors import ShellClosed, ShellTimeout

if TYPE_CHECKING:
    from collections.abc import Callable

    import paramiko
    from ptyprocess import PtyProcess

# CSI / OSC escapes and the lone control bytes line editors emit (DPDK cmdline redraws).
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[=>78]|[\x07\x08]")

Pattern = str | re.Pattern[str]


def _compile(pattern: Pattern) -> re.Pattern[str]:
    return pattern if isinstance(pattern, re.Pattern) else re.compile(re.escape(pattern))


class PtyTransport(ABC):
    """The byte stream of a program running on a PTY, local or over SSH."""

    @abstractmethod
    def read(self, timeout: float) -> bytes | None:
        """Bytes available within timeout; b"" if none; None once the program has exited."""

    @abstractmethod
    def write(self, data: bytes) -> None:
        """Send bytes to the program as if typed."""

    @abstractmethod
    def close(self) -> None:
        """Hang up: the program gets SIGHUP or is killed."""


class ChannelTransport(PtyTransport):
    """A paramiko channel with a PTY, as fabric/paramiko open it over SSH."""

    def __init__(self, channel: paramiko.Channel) -> None:
        self._channel = channel

    def read(self, timeout: float) -> bytes | None:
        """Bytes available within timeout; b"" if none; None once the channel closed."""
        ready, _, _ = select.select([self._channel], [], [], max(timeout, 0))
        if not ready:
            return b""
        data = self._channel.recv(65536)
        return data if data else None

    def write(self, data: bytes) -> None:
        """Send all of data on the channel."""
        self._channel.sendall(data)

    def close(self) -> None:
        """Close the channel; sshd hangs up the program's PTY."""
        self._channel.close()


class LocalPtyTransport(PtyTransport):
    """A program the controller itself runs on a PTY (ptyprocess)."""

    def __init__(self, process: PtyProcess) -> None:
        self._process = process

    def read(self, timeout: float) -> bytes | None:
        """Bytes available within timeout; b"" if none; None once the program exited."""
        ready, _, _ = select.select([self._process.fd], [], [], max(timeout, 0))
        if not ready:
            return b""
        try:
            data = self._process.read(65536)
        except EOFError:
            return None
        return data if data else None

    def write(self, data: bytes) -> None:
        """Write data to the PTY."""
        self._process.write(data)

    def close(self) -> None:
        """Kill the program if it is still running."""
        if self._process.isalive():
            self._process.terminate(force=True)


class InteractiveShell:
    """Prompt-matching over a PTY: send a line, wait for a pattern, return what came before."""

    def __init__(
        self, transport: PtyTransport, *, name: str, prompt: Pattern, timeout: float = 30.0
    ) -> None:
        self.name = name
        self.prompt = _compile(prompt)
        self.timeout = timeout
        self._transport = transport
        self._buffer = ""
        self._transcript: list[str] = []
        self._closed = False
        # Lines another thread of the program prints whenever it likes (testpmd's event
        # callbacks): cut out of the output before matching, so one landing in the middle
        # of a prompt ("tes\nPort 1: link state change event\ntpmd> ") cannot hide it.
        # They stay in the transcript and are kept, in order, in `interruptions`.
        self.interrupts: re.Pattern[str] | None = None
        self.interruptions: list[str] = []
        # Set when the program went away on its own (killed, crashed, its SSH connection
        # lost), as opposed to close() hanging it up.
        self.exited_by_itself = False
        # Asked when the program is silent past a timeout or its end came unasked: what
        # the program's host knows of why (a VM's run state from QMP), or None when
        # nothing is wrong there. The one line of the error then names the cause.
        self.state_of_host: Callable[[], str | None] | None = None

    def _host_state(self) -> str:
        if self.state_of_host is None:
            return ""
        try:
            return self.state_of_host() or ""
        except Exception as exc:  # a diagnosis must never hide the error
            return f"its state could not be read: {type(exc).__name__}: {exc}"

    @property
    def transcript(self) -> str:
        """Everything the program printed so far, escapes included, for reports."""
        return "".join(self._transcript)

    @property
    def closed(self) -> bool:
        """Whether the program has exited or the shell was closed."""
        return self._closed

    def _pump(self, timeout: float) -> int:
        """Read once; return how many bytes arrived (0 on timeout, -1 once closed)."""
        data = self._transport.read(timeout)
        if data is None:
            self.exited_by_itself = not self._closed
            self._closed = True
            return -1
        if data:
            text = data.decode("utf-8", errors="replace")
            self._transcript.append(text)
            self._buffer += _ANSI.sub("", text).replace("\r\n", "\n").replace("\r", "")
        return len(data)

    def expect(self, pattern: Pattern | None = None, timeout: float | None = None) -> str:
        """Wait for pattern (default: the prompt); return the text before it and consume both."""
        regex = self.prompt if pattern is None else _compile(pattern)
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        while True:
            if self.interrupts is not None:
                self.interruptions += [m.group(0) for m in self.interrupts.finditer(self._buffer)]
                self._buffer = self.interrupts.sub("", self._buffer)
            match = regex.search(self._buffer)
            if match:
                before = self._buffer[: match.start()]
                self._buffer = self._buffer[match.end() :]
                return before
            if self._closed:
                state = self._host_state() if self.exited_by_itself else ""
                raise ShellClosed(self.name, self._buffer or self.transcript[-2000:], state)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ShellTimeout(
                    self.name, f"'{regex.pattern}'", limit, self._buffer, self._host_state()
                )
            self._pump(min(remaining, 0.5))

    def poll(self) -> bool:
        """Read what is waiting, keeping it for the next expect; whether the program exited."""
        while not self._closed and self._pump(0) > 0:
            pass
        return self._closed

    def last_lines(self, count: int = 4) -> str:
        """The program's last `count` non-empty output lines, joined with " | "."""
        text = _ANSI.sub("", self.transcript[-4000:]).replace("\r", "")
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return " | ".join(lines[-count:]) or "(nothing)"

    def drain(self, quiet: float = 0.05) -> str:
        """Read whatever arrives until the line is quiet for `quiet` seconds."""
        while not self._closed and self._pump(quiet) > 0:
            pass
        text, self._buffer = self._buffer, ""
        return text

    def send_line(self, line: str) -> None:
        """Type one line without waiting for anything; ShellClosed if the program exited."""
        if self._closed:
            raise ShellClosed(self.name, self.transcript[-2000:])
        try:
            self._transport.write(line.encode() + b"\n")
        except OSError:
            # The program died and its channel closed before we read the end of it (a
            # killed testpmd): say who died and what it printed last, not "Socket is closed".
            self.poll()
            self.exited_by_itself = True
            self._closed = True
            raise ShellClosed(self.name, self.transcript[-2000:]) from None

    def send_command(
        self, line: str, *, prompt: Pattern | None = None, timeout: float | None = None
    ) -> str:
        """Send one line and return its output, without the echoed line and the prompt."""
        self.send_line(line)
        output = self.expect(prompt, timeout)
        first, _, rest = output.partition("\n")
        return rest if line.strip() and line.strip() in first else output

    def close(self) -> None:
        """Stop the program (hang up its PTY); closing twice is harmless."""
        if not self._closed:
            self._closed = True
            self._transport.close()
