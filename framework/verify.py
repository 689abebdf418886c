"""The one way a guide check is written: ``verify(condition, promise, seen)``.

Every check of ``testsuites/`` is either ``verify`` itself or a named ``verify_*`` helper
of the framework (``verify_bond``, ``verify_forwarded``, ``verify_back``...), and every one
of them fails with :class:`VerifyFailed`: the guide's promise on the first line, then what
was expected and what was seen. VerifyFailed is an AssertionError, so pytest reports a
broken promise as a failed test, never as an error of the framework.

A ``--plan`` run judges nothing: it records each promise instead. The plan layer sits above
this module and installs its recorder with :func:`recording_promises`; this module imports
nothing of the framework, so every layer may use it.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

_recorder: Callable[[str], None] | None = None


class VerifyFailed(AssertionError):
    """A guide's promise that the DUT broke; str(self) starts with the promise."""

    def __init__(self, promise: str, *, expected: str = "", seen: str = "") -> None:
        self.promise, self.expected, self.seen = promise, expected, seen
        lines = [promise]
        if expected:
            lines.append(f"  expected: {expected}")
        if seen:
            lines.append(f"  seen: {seen}")
        super().__init__("\n".join(lines))


@contextmanager
def recording_promises(recorder: Callable[[str], None]) -> Iterator[None]:
    """Within the block, verdicts pass each promise to ``recorder`` instead of judging."""
    global _recorder
    previous, _recorder = _recorder, recorder
    try:
        yield
    finally:
        _recorder = previous


def recording() -> bool:
    """Whether verdicts are being recorded (a --plan run) rather than judged."""
    return _recorder is not None


def wait_for_dut(seconds: float) -> None:
    """Let `seconds` pass for the DUT to act before a reading is judged.

    Traffic flows, counters settle. A --plan run judges nothing, so it does not wait.
    """
    if _recorder is None:
        time.sleep(seconds)


def poll(
    read: Callable[[], R], until: Callable[[R], bool], timeout: float, interval: float = 0.2
) -> R:
    """Read until `until(reading)` holds or `timeout` s pass; the last reading either way.

    The one way the framework waits for the DUT to reach a state (a link up, a bond's
    members, a device on the guest's bus): the caller judges the reading it gets. A --plan
    run reads once: its answers are the guide's outcome, reading again tells nothing new.
    """
    deadline = time.monotonic() + timeout
    while True:
        reading = read()
        if until(reading) or _recorder is not None or time.monotonic() >= deadline:
            return reading
        time.sleep(interval)


def verdict(fn: Callable[P, R]) -> Callable[P, R | None]:
    """Mark a check: it judges in a real run; in a --plan run it records its ``promise``.

    The promise is the check's ``promise`` argument, or its ``what`` (the older helpers'
    name for it: ``verify_bond(config, what, expected)``).
    """
    signature = inspect.signature(fn)
    name = "promise" if "promise" in signature.parameters else "what"

    @functools.wraps(fn)
    def judged(*args: P.args, **kwargs: P.kwargs) -> R | None:
        if _recorder is None:
            return fn(*args, **kwargs)
        _recorder(str(signature.bind(*args, **kwargs).arguments[name]))
        return None

    return judged


@verdict
def verify(condition: object, promise: str, seen: object = "", *, expected: str = "") -> None:
    """Fail with ``promise`` (and what was expected and seen) unless ``condition`` holds.

    Args:
        condition: what the guide promises, evaluated on what was measured.
        promise: the guide's words: what a correct DUT does.
        seen: what was measured instead, shown only when the check fails.
        expected: the value a correct DUT gives, when it is not evident from the promise.
    """
    if not condition:
        raise VerifyFailed(promise, expected=expected, seen=str(seen) if seen != "" else "")
