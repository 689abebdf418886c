"""Many values read in one round trip: a script prints each after a mark and its name.

`mark name value` lines, each optionally followed by unmarked lines (a tool's whole output).
A console may put a late prompt in front of a line, so everything before the mark is cut.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

Run = Callable[[str], str]  # runs a shell command where the values live; returns its output


@dataclass
class Marked:
    """One marked line: its name, the rest of the line, and the unmarked lines after it."""

    name: str
    value: str
    lines: list[str] = field(default_factory=list)


def read_marked(text: str, mark: str) -> list[Marked]:
    """Every marked line of `text`, in order; unmarked lines before the first are dropped."""
    found: list[Marked] = []
    for raw in text.splitlines():
        at = raw.find(mark)
        if at < 0:
            if found:
                found[-1].lines.append(raw)
            continue
        name, _, value = raw[at + len(mark) :].strip().partition(" ")
        found.append(Marked(name, value.strip()))
    return found
