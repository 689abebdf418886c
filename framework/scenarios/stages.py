"""What a scenario's step made, for the steps that come after it.

A guide is a procedure: the guest testpmd exists only once the VM is started, the bond
only once it is created. A scenario keeps what each step made as a :class:`Made` attribute;
reading it before its step ran raises :class:`StepOrderError` naming the step that must
come first, where a bare ``Optional`` would give an ``AttributeError`` on ``None`` (or an
``assert`` with no message) deep inside a later step.
"""

from __future__ import annotations

from typing import Generic, TypeVar, overload

from framework.errors import FrameworkError

T = TypeVar("T")


class StepOrderError(FrameworkError):
    """A scenario step ran before the step that makes what it needs."""


class Made(Generic[T]):
    """A scenario attribute that a step makes; reading it earlier names that step.

    Declared without an annotation in a dataclass body, so that it is no dataclass field:
    ``guest_pmd = Made[TestPmd]("start_guest_testpmd()")``. ``del obj.attr`` (or assigning
    None) forgets the value, e.g. when the VM it lived in is gone.
    """

    def __init__(self, made_by: str) -> None:
        self.made_by = made_by
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.owner = owner.__name__

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> Made[T]: ...
    @overload
    def __get__(self, obj: object, objtype: type | None = None) -> T: ...
    def __get__(self, obj: object | None, objtype: type | None = None) -> Made[T] | T:
        if obj is None:
            return self
        value: T | None = obj.__dict__.get(self.name)
        if value is None:
            raise StepOrderError(
                f"{self.owner}.{self.name} is made by {self.made_by}, "
                "which has not run yet: call it first"
            )
        return value

    def __set__(self, obj: object, value: T | None) -> None:
        obj.__dict__[self.name] = value

    def __delete__(self, obj: object) -> None:
        obj.__dict__.pop(self.name, None)

    def peek(self, obj: object) -> T | None:
        """The value, or None if its step has not run (teardown, reports of a failed run)."""
        value: T | None = obj.__dict__.get(self.name)
        return value
