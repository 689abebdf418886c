"""What goes wrong with a VM: boot, guest commands, control, live migration."""

from __future__ import annotations

from framework.errors import FrameworkError


class VmError(FrameworkError):
    """A VM could not be started, reached or controlled."""


class VmBootTimeout(VmError):
    """The guest shell never answered: QEMU exited, or the time bound passed.

    The message is one line ending with the console's last words, a kernel panic first.
    """

    def __init__(self, vm: str, timeout: float, last_output: str, exited: bool) -> None:
        self.vm, self.last_output, self.exited = vm, last_output, exited
        lines = [line.strip() for line in last_output.strip().splitlines() if line.strip()]
        # A panic's stack trace buries its reason: put the "Kernel panic" line first.
        panic = [line for line in lines if "Kernel panic" in line][:1]
        last = " | ".join(panic + lines[-3:]) or "(nothing)"
        what = (
            "QEMU exited before the guest shell answered"
            if exited
            else f"no guest shell within {timeout:g} s"
        )
        super().__init__(f"{vm}: {what}; last console output: {last}")


class SilentBootWarning(UserWarning):
    """A guest printed nothing and never answered, and was started once more.

    A warning, so that pytest's summary lists it under a run that passed.
    """


class GuestCommandFailed(VmError):
    """A guest shell command exited non-zero; keeps the command, status and output."""

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
