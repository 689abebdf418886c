"""testpmd inside the guest: started from the guest shell, driven on the ttyS0 console.

The guest shell (ttyS1) starts testpmd detached, with ttyS0 as its terminal, and the
controller drives it through ttyS0's socket as the same typed TestPmd a host testpmd is.
After testpmd exits, the guest prints END on ttyS0, which closes the console: TestPmd
sees its program exit exactly as on a host (quit, crash or failed start).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from framework.dpdk.testpmd import PROMPT, TestPmd
from framework.errors import ShellClosed, ShellTimeout
from framework.virt.console import open_console, read_log

if TYPE_CHECKING:
    from framework.dpdk.version import DpdkVersion
    from framework.remote.session import Session
    from framework.virt.console import GuestShell

END = "@@howto-testpmd-exited@@"


def launch_line(argv: Sequence[str]) -> str:
    """The guest shell line that starts testpmd on ttyS0, detached, then prints END."""
    inner = f'exec </dev/ttyS0 >/dev/ttyS0 2>&1; {shlex.join(argv)}; echo "testpmd exited $? {END}"'
    # setsid detaches testpmd from the shell console's session (and its job control). The
    # new session's leader must not open ttyS0: it would become its controlling terminal,
    # and a leader's exit hangs that up, dropping what the port has not sent yet (END, and
    # the end of a long EAL error: seen 1 launch in 24). So a child opens it, and the ": "
    # keeps the leader from exec'ing into that child.
    leader = f"sh -c {shlex.quote(inner)}; :"
    # A subshell so the shell's status marker follows a complete command.
    return f"( setsid sh -c {shlex.quote(leader)} </dev/null >/dev/null 2>&1 & )"


def launch(
    session: Session,
    shell: GuestShell,
    relay: str,
    console_path: str,
    argv: Sequence[str],
    *,
    name: str,
    timeout: float = 60.0,
    version: DpdkVersion | None = None,
    check_startup: bool = True,
    state_of_host: Callable[[], str | None] | None = None,
) -> TestPmd:
    """Start testpmd in the guest and wait for its first prompt (argv must include -i).

    Args:
        session: the VM's host.
        shell: the guest shell that starts testpmd.
        relay: the console relay on the host (console.install_relay).
        console_path: the ttyS0 socket on the host.
        argv: testpmd's command line in the guest.
        name: the TestPmd's name in logs.
        timeout: seconds until the first prompt.
        version: the guest DPDK's version, if known (else read from testpmd's banner).
        check_startup: fail on a fatal port error printed before the first prompt.
        state_of_host: what the VM's QEMU says of it when the console is silent (a
            timeout then names it: "VM vm1 is paused (postmigrate)").

    Raises:
        TestPmdStartError: testpmd exited or never prompted; the console is closed.
        GuestCommandFailed: the guest shell could not start it.
    """
    console = open_console(session, relay, console_path, name=name, prompt=PROMPT, end=END)
    console.state_of_host = state_of_host
    try:
        shell.check(launch_line(argv))
        return TestPmd.attach(
            session,
            console,
            argv,
            name=name,
            timeout=timeout,
            version=version,
            check_startup=check_startup,
        )
    except BaseException:
        console.close()
        raise


def reattach(
    session: Session,
    relay: str,
    console_path: str,
    previous: TestPmd,
    *,
    name: str,
    timeout: float = 15.0,
    state_of_host: Callable[[], str | None] | None = None,
) -> TestPmd:
    """Connect again to a running guest testpmd (after a migration: its state is in RAM).

    Closes `previous`'s console, opens the one at `console_path` and waits for a prompt;
    a silent console is reported with `state_of_host` (the VM paused, QEMU gone).
    """
    previous.shell.close()
    console = open_console(session, relay, console_path, name=name, prompt=PROMPT, end=END)
    console.state_of_host = state_of_host
    try:
        console.send_line("")
        console.expect(timeout=timeout)
        console.drain(0.2)
    except ShellTimeout as silent:
        console.close()
        # What testpmd printed while no console was attached (its crash, say) is only in
        # QEMU's logfile of the console.
        printed = read_log(session, console_path)
        if END not in printed:
            raise
        last = printed[: printed.rindex(END)]
        raise ShellClosed(name, last, "before its console was attached again") from silent
    except BaseException:
        console.close()
        raise
    return TestPmd.attach(
        session,
        console,
        previous.argv,
        name=name,
        version=previous.version,
        startup_output=previous.startup_output,
    )
