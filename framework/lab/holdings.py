"""What a process and a host hold, read again after each relaunch to tell a leak.

A stability test relaunches one side of a vhost-user connection many times while the other
side keeps running: the side that stays must hold as many file descriptors and about as
much memory after the last relaunch as after the first, and the host as many hugepage
files and sockets of this run.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from framework.remote.session import Session

# How much more address space a process may map after many relaunches than after the
# first: its allocators' growth. A mapping of a guest's memory left behind is far larger.
MAPPED_SLACK_KB = 16 * 1024


@dataclass(frozen=True)
class Holdings:
    """One reading: a process's open files and memory, the run's files on a host.

    vm_size_kb (all it maps) tells a leaked mapping; rss_kb (what is resident) is shown
    only: touching more of a guest's shared memory raises it without a leak.
    """

    fds: int
    vm_size_kb: int
    rss_kb: int
    hugepage_files: int
    sockets: int

    def row(self) -> list[int]:
        """The reading as a table row, in HOLDINGS_COLUMNS' order."""
        return [self.fds, self.vm_size_kb, self.rss_kb, self.hugepage_files, self.sockets]

    def leaks(self, first: Holdings) -> list[str]:
        """What this reading holds beyond `first` that a leak would explain."""
        found = [
            f"{what} {now} after, {then} at first"
            for what, now, then in (
                ("open fds", self.fds, first.fds),
                ("hugepage files", self.hugepage_files, first.hugepage_files),
                ("sockets", self.sockets, first.sockets),
            )
            if now > then
        ]
        if self.vm_size_kb - first.vm_size_kb > MAPPED_SLACK_KB:
            found.append(
                f"mapped memory {self.vm_size_kb} kB after, {first.vm_size_kb} kB at first "
                f"(more than {MAPPED_SLACK_KB} kB of growth)"
            )
        return found


def together(readings: list[Holdings]) -> Holdings:
    """Several processes read at once as one: fds and memory added, the host's files once."""
    first = readings[0]
    return Holdings(
        sum(r.fds for r in readings),
        sum(r.vm_size_kb for r in readings),
        sum(r.rss_kb for r in readings),
        first.hugepage_files,
        first.sockets,
    )


HOLDINGS_COLUMNS = ["open fds", "mapped kB", "resident kB", "hugepage files", "sockets"]


def read_holdings(
    session: Session, pid: int, *, hugepage_mount: str, prefix: str, work_dir: str
) -> Holdings:
    """Process `pid`'s fds and memory; hugepage files named `prefix`*, sockets in work_dir.

    Raises RemoteError when the process is gone (its /proc entry cannot be read).
    """
    mount, where = shlex.quote(hugepage_mount), shlex.quote(work_dir)
    script = (
        "set -eo pipefail; "
        f"ls /proc/{pid}/fd | wc -l; "
        f"awk '/^VmSize:|^VmRSS:/ {{print $2}}' /proc/{pid}/status; "
        f"find {mount} -maxdepth 1 -name {shlex.quote(prefix + '*')} | wc -l; "
        f"find {where} -type s | wc -l"
    )
    fds, size, rss, files, sockets = map(int, session.run_script(script).stdout.split())
    return Holdings(fds, size, rss, files, sockets)
