"""Sessions and PTY shells on the controller: quoting, errors, timeouts, program exit."""

from __future__ import annotations

import re

import pytest

from framework.dpdk.testpmd import ASYNC_EVENT, PROMPT
from framework.errors import CommandFailed, RemoteError, ShellClosed, ShellTimeout
from framework.remote import LocalSession
from framework.remote.session import command_line

HOSTILE = ["a b", "it's", '"quoted"', "$(touch /tmp/howto-pwned)", "`id`", "x;y", "*", "", "\\"]


def test_command_line_quotes_every_argument() -> None:
    line = command_line(["printf", "%s\\n", *HOSTILE])
    done = LocalSession().run(["bash", "-c", line])
    assert done.stdout.split("\n")[:-1] == HOSTILE


def test_run_passes_arguments_through_unchanged() -> None:
    done = LocalSession().run(["printf", "%s\\n", *HOSTILE])
    assert done.stdout.split("\n")[:-1] == HOSTILE


def test_env_and_cwd_are_quoted_too() -> None:
    done = LocalSession().run(
        ["bash", "-c", 'printf "%s|%s" "$HOWTO_X" "$PWD"'], env={"HOWTO_X": "a b;c"}, cwd="/"
    )
    assert done.stdout == "a b;c|/"


def test_shell_strings_are_refused() -> None:
    with pytest.raises(TypeError, match="argv list"):
        LocalSession().run("echo hi")


def test_failed_command_is_one_line_naming_host_command_and_status() -> None:
    with pytest.raises(CommandFailed) as info:
        LocalSession("dut").run(["ls", "/nonexistent-howto"])
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("dut: `ls /nonexistent-howto` exited 2: ")
    assert "No such file or directory" in message


def test_stdin_reaches_the_command() -> None:
    assert LocalSession().run(["wc", "-c"], stdin="x" * 100_000).stdout.strip() == "100000"


def test_command_timeout_is_one_line() -> None:
    with pytest.raises(RemoteError, match=r"^localhost: `sleep 5` did not finish within 0\.5 s$"):
        LocalSession().run(["sleep", "5"], timeout=0.5)


def test_shell_timeout_reports_what_was_last_seen() -> None:
    shell = LocalSession().open_shell(
        ["bash", "--norc", "--noprofile", "-i"],
        name="sh",
        prompt="PROMPT> ",
        env={"PS1": "PROMPT> "},
    )
    try:
        shell.expect()
        shell.send_line("echo almost-there")
        with pytest.raises(ShellTimeout) as info:
            shell.expect("never-printed", timeout=0.5)
        assert re.match(
            r"sh: no 'never\\-printed' within 0\.5 s; last output: .*almost-there", str(info.value)
        )
    finally:
        shell.close()


def test_a_silent_program_is_reported_with_its_hosts_state() -> None:
    # A program that prints nothing (a paused VM's console): the timeout names what the
    # host says of it; a state that cannot be read is said too, never hiding the timeout.
    shell = LocalSession().open_shell(["sleep", "30"], name="vm1-dst/testpmd", prompt="testpmd>")
    try:
        shell.state_of_host = lambda: "VM vm1-dst is paused (postmigrate): its vCPUs do not run"
        with pytest.raises(ShellTimeout) as info:
            shell.expect(timeout=0.3)
        assert str(info.value) == (
            "vm1-dst/testpmd: no 'testpmd>' within 0.3 s (VM vm1-dst is paused (postmigrate): its "
            "vCPUs do not run); last output: (nothing)"
        )

        def broken() -> str:
            raise OSError("QMP socket gone")

        shell.state_of_host = broken
        with pytest.raises(ShellTimeout, match=r"could not be read: OSError: QMP socket gone"):
            shell.expect(timeout=0.3)
    finally:
        shell.close()


def test_program_exit_is_reported_with_its_last_words() -> None:
    shell = LocalSession().open_shell(
        ["bash", "-c", "echo 'PANIC: lcore 1 stopped'; exit 3"], name="crashy", prompt="> "
    )
    with pytest.raises(ShellClosed) as info:
        shell.expect(timeout=5)
    assert str(info.value) == "crashy: the program exited; last output: PANIC: lcore 1 stopped"


def test_an_event_line_printed_inside_the_prompt_does_not_hide_it() -> None:
    # Seen in a guest testpmd: the VF's link came up while testpmd wrote its prompt.
    shell = LocalSession().open_shell(
        [
            "printf",
            "%s",
            "Done\n\nPort 0: link state change event\ntes\nPort 1: link state change event\ntpmd> ",
        ],
        name="testpmd",
        prompt=PROMPT,
    )
    try:
        shell.interrupts = ASYNC_EVENT
        assert shell.expect(timeout=5) == "Done\n"
        assert shell.interruptions == [
            "\nPort 0: link state change event\n",
            "\nPort 1: link state change event\n",
        ]
    finally:
        shell.close()


def test_vhost_log_lines_printed_inside_the_prompt_do_not_hide_it() -> None:
    # Seen in a host testpmd whose vhost-user client port found its relaunched QEMU again
    # (the reconnect plan): the vhost library's lines landed between the prompt's letters.
    sock = "/tmp/howto-hc-4cjp-lab-ag808ew0/hosts/host_server_1/vhost-user2"
    split = LocalSession().open_shell(
        ["printf", "%s", f"Done\ntesVHOST_CONFIG: ({sock}) \t-FAILED: 0\ntpmd> "],
        name="testpmd",
        prompt=PROMPT,
    )
    try:
        split.interrupts = ASYNC_EVENT
        assert split.expect(timeout=5) == "Done\n"
        assert split.interruptions == [f"VHOST_CONFIG: ({sock}) \t-FAILED: 0\n"]
    finally:
        split.close()


def test_an_eal_device_event_line_inside_the_prompt_does_not_hide_it() -> None:
    # Seen in a guest testpmd --hot-plug (the vm_hotplug "+ reset" form, the suite run of
    # 2026-12-06): the device added back was reported while testpmd wrote its prompt.
    port = "0    52:54:00:00:01:01 0000:01:00.0 net_virtio     up       Unknown\n"
    eal = "EAL: Cannot find device (0000:02:00.0) on bus (pci)\n"
    split = LocalSession().open_shell(
        ["printf", "%s", f"{port}t{eal}estpmd> "], name="testpmd", prompt=PROMPT
    )
    try:
        split.interrupts = ASYNC_EVENT
        assert split.expect(timeout=5) == port
        assert split.interruptions == [eal]
    finally:
        split.close()


def test_a_stack_dump_of_a_not_ready_port_inside_the_prompt_does_not_hide_it() -> None:
    # Seen in guide 1's guest (the suite run of 2026-12-07, `add bonding slave 0 2` with
    # forwarding on): the lcore's complaint, then rte_dump_stack's lines, the first of them
    # inside the prompt; testpmd went on.
    lcore = "lcore 1 called rx_pkt_burst for not ready port 0\n"
    event = "\nPort 2: link state change event\n"
    dump = [
        "0: /lib/x86_64-linux-gnu/librte_eal.so.23 (rte_dump_stack+0x3d) [7faff1bb532d]\n",
        "1: /lib/x86_64-linux-gnu/librte_ethdev.so.23 (7faff1c91000+0x87b1) [7faff1c997b1]\n",
        "2: /usr/lib/x86_64-linux-gnu/dpdk/pmds-23.0/librte_net_bond.so.23 "
        "(7faff1363000+0xce4c) [7faff136fe4c]\n",
        "3: /usr/bin/dpdk-testpmd (562867ec8000+0x7c483) [562867f44483]\n",
    ]
    text = f"\n{lcore}{event}testpm{dump[0]}d> {''.join(dump[1:])}"
    split = LocalSession().open_shell(["printf", "%s", text], name="testpmd", prompt=PROMPT)
    try:
        split.interrupts = ASYNC_EVENT
        assert split.expect(timeout=5) == "\n"
        assert split.interruptions[:2] == [lcore, event] and split.interruptions[2] == dump[0]
    finally:
        split.close()


def test_guest_shell_output_never_includes_the_echoed_command() -> None:
    # CI saw a guide-1 run read "$(basename" as a bound driver: the guest's busybox still
    # echoed (a restarted shell), and the long command line was wrapped and redrawn.
    from framework.virt.console import GuestShell

    shell = LocalSession().open_shell(
        ["busybox", "sh", "-i"], name="ttyS1", prompt="# ", env={"PS1": "# ", "COLUMNS": "80"}
    )
    try:
        guest = GuestShell("vm", shell)
        padding = "/." * 40
        status, out = guest.run(f'echo "driver=$(basename "$(readlink {padding}/proc/self/exe)")"')
        assert (status, out) == (0, "driver=busybox")
        status, out = guest.run("echo before; exit 4")
        assert (status, out) == (4, "before")
    finally:
        shell.close()
