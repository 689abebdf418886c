"""Exceptions whose text is one line a validation engineer can act on.

Every error the framework raises on purpose derives from FrameworkError; the pytest
plugin prints str(error) alone (no traceback) when one ends a run or a fixture.
"""

from __future__ import annotations


class FrameworkError(Exception):
    """Base class: str(self) is a complete, single-line explanation."""


class ConfigError(FrameworkError):
    """A topology file or a command-line option is wrong."""


class RemoteError(FrameworkError):
    """A host could not be reached or a command on it failed."""


class HostsUnreachable(RemoteError):
    """Some hosts of a topology could not be reached; names every one and why."""

    def __init__(self, reasons: dict[str, str], total: int) -> None:
        self.reasons = reasons
        listed = "; ".join(f"{host} {why}" for host, why in reasons.items())
        super().__init__(f"{len(reasons)} of {total} hosts unreachable over SSH: {listed}")


class CommandFailed(RemoteError):
    """A command exited non-zero; carries its host, command line, exit code and stderr."""

    def __init__(self, host: str, command: str, exit_code: int, stderr: str) -> None:
        self.host, self.command, self.exit_code, self.stderr = host, command, exit_code, stderr
        tail = " | ".join(line for line in stderr.strip().splitlines()[-3:])
        super().__init__(f"{host}: `{command}` exited {exit_code}" + (f": {tail}" if tail else ""))


class ShellTimeout(RemoteError):
    """An interactive shell did not show what was awaited (a prompt, a pattern) in time."""

    def __init__(
        self, shell: str, waiting_for: str, timeout: float, last_output: str, state: str = ""
    ) -> None:
        self.shell, self.waiting_for, self.last_output = shell, waiting_for, last_output
        self.state = state  # what the program's host says of it (a VM paused...), or ""
        last = " | ".join(last_output.strip().splitlines()[-4:])
        why = f" ({state})" if state else ""
        super().__init__(
            f"{shell}: no {waiting_for!s} within {timeout:g} s{why}; "
            f"last output: {last or '(nothing)'}"
        )


class ShellClosed(RemoteError):
    """The program behind an interactive shell exited (for testpmd: it crashed or quit)."""

    def __init__(self, shell: str, last_output: str, state: str = "") -> None:
        self.shell, self.last_output, self.state = shell, last_output, state
        last = " | ".join(last_output.strip().splitlines()[-4:])
        why = f" ({state})" if state else ""
        super().__init__(f"{shell}: the program exited{why}; last output: {last or '(nothing)'}")


class LabError(FrameworkError):
    """The virtual lab could not be built or torn down."""


class TestPmdError(FrameworkError):
    """testpmd answered a command with an error ("Invalid port", "Bad arguments", ...)."""

    __test__ = False  # not a pytest test class despite the name

    def __init__(self, command: str, message: str, output: str = "") -> None:
        self.command, self.message, self.output = command, message, output
        super().__init__(f"testpmd `{command}`: {message}")
