"""Where a container testpmd's memory lives, seen from its host (guide 6's limitations).

Guide 6.3 (17.05) ties virtio_user to hugepage files the vhost side reopens by name: no
--huge-unlink, no --no-huge, no other mapped file named like EAL's HUGEFILE_FMT. Whether
22.11 still does is read here from two places on the host: the files of the container's
--file-prefix that hugetlbfs still lists, and the files its process maps
(/proc/<pid>/maps: an unlinked file shows " (deleted)", a memfd "/memfd:<name>").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from framework.container.engine import ContainerEngine
from framework.remote.session import Session
from framework.verify import VerifyFailed

# EAL's hugepage file name, <hugedir>/<prefix>map_<n> (eal_filesystem.h, 17.05 and 22.11).
HUGEFILE_FMT = "%smap_%d"
# A file name HUGEFILE_FMT could have made: what 17.05's virtio_user took for a hugepage
# when it scanned /proc/self/maps (the text after the path's last '_' an index, "map"
# before it).
_HUGEFILE_NAME = re.compile(r"map_\d+$")
_DELETED = " (deleted)"
MEMFD = "/memfd:"


@dataclass(frozen=True)
class MappedFile:
    """One file a process maps (every mapping of it counted once)."""

    path: str  # as /proc/<pid>/maps names it, without " (deleted)"
    deleted: bool  # unlinked while mapped
    shared: bool  # mapped shared (what another process can map too)

    @property
    def hugefile_named(self) -> bool:
        """Whether its name is one HUGEFILE_FMT could have made (..map_<n>)."""
        return bool(_HUGEFILE_NAME.search(self.path.rsplit("/", 1)[-1]))


def parse_maps(text: str) -> list[MappedFile]:
    """The files of a /proc/<pid>/maps listing, in first-mapped order.

    Lines without a path (anonymous memory, [heap], [stack]...) are left out.
    """
    found: dict[tuple[str, bool], MappedFile] = {}
    for line in text.splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) < 6 or fields[5].startswith("["):
            continue
        path, deleted = fields[5], fields[5].endswith(_DELETED)
        path = path.removesuffix(_DELETED)
        shared = fields[1].endswith("s")
        key = (path, deleted)
        if key in found:
            shared = shared or found[key].shared
        found[key] = MappedFile(path, deleted, shared)
    return list(found.values())


@dataclass(frozen=True)
class ContainerMemory:
    """A container testpmd's memory: its hugepage files by name, and what it maps."""

    hugetlbfs: str  # the directory its EAL keeps hugepage files in
    prefix: str  # its --file-prefix
    named: tuple[str, ...]  # files of that prefix hugetlbfs lists now
    mapped: tuple[MappedFile, ...]  # files its process maps

    def _hugepage(self, f: MappedFile) -> bool:
        return f.path.startswith(f"{self.hugetlbfs.rstrip('/')}/{self.prefix}map_")

    @property
    def hugepage_files(self) -> list[MappedFile]:
        """The mapped files that are its hugepage files (named or unlinked)."""
        return [f for f in self.mapped if self._hugepage(f)]

    @property
    def memfds(self) -> list[MappedFile]:
        """The memfds it maps shared (memory with no name in any file system)."""
        return [f for f in self.mapped if f.path.startswith(MEMFD) and f.shared]

    @property
    def lookalikes(self) -> list[MappedFile]:
        """Mapped files named like HUGEFILE_FMT that are none of its hugepage files."""
        return [f for f in self.mapped if f.hugefile_named and not self._hugepage(f)]

    def summary(self) -> str:
        """One line: what hugetlbfs names and what the process maps, for a failure."""
        files = ", ".join(f.path + (_DELETED if f.deleted else "") for f in self.mapped)
        return f"hugetlbfs {self.hugetlbfs} lists {list(self.named)}; it maps: {files}"


def read_memory(
    session: Session, engine: ContainerEngine, container: str, hugetlbfs: str, prefix: str
) -> ContainerMemory:
    """What hugetlbfs lists of `prefix` and what container `container`'s program maps."""
    listed = session.run(
        ["find", hugetlbfs, "-maxdepth", "1", "-name", f"{prefix}map_*"], check=False
    )
    maps = session.run(["cat", "--", f"/proc/{engine.pid(container)}/maps"])
    return ContainerMemory(
        hugetlbfs,
        prefix,
        tuple(sorted(line.strip() for line in listed.stdout.splitlines() if line.strip())),
        tuple(parse_maps(maps.stdout)),
    )


# What a container testpmd's memory must show.
MemoryShows = Literal["unlinked hugepage files", "a memfd", "a HUGEFILE_FMT lookalike"]


def memory_problems(memory: ContainerMemory, shows: MemoryShows) -> list[str]:
    """Why `memory` does not show what `shows` names."""
    problems = []
    if shows in ("unlinked hugepage files", "a memfd") and memory.named:
        problems.append(f"hugetlbfs still names {len(memory.named)} file(s) of its prefix")
    hugepages = memory.hugepage_files
    if shows == "unlinked hugepage files":
        if not hugepages:
            problems.append("it maps no hugepage file")
        elif kept := [f.path for f in hugepages if not f.deleted]:
            problems.append(f"hugepage file(s) mapped under their name: {', '.join(kept)}")
    elif shows == "a memfd":
        if hugepages:
            problems.append(f"it maps hugepage file(s): {', '.join(f.path for f in hugepages)}")
        if not memory.memfds:
            problems.append("it maps no memfd shared")
    elif not memory.lookalikes:
        problems.append(f"it maps no file named like HUGEFILE_FMT ({HUGEFILE_FMT!r})")
    return problems


def verify_memory(memory: ContainerMemory, what: str, *, shows: MemoryShows) -> None:
    """The container testpmd's memory shows what the guide step says (see MemoryShows)."""
    if problems := memory_problems(memory, shows):
        raise VerifyFailed(
            f"{what}; {'; '.join(problems)}", expected=f"{shows}", seen=memory.summary()
        )
