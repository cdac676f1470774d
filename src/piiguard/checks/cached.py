"""``cached_property`` without the lock that Python 3.11's holds across every instance.

On 3.11, ``functools.cached_property`` computes under one lock per class attribute, shared by all
instances (CPython gh-87634; 3.12 removed it). A target's ``session`` is a connection: while one
store's hostile peer holds that lock until its deadline, every other store of the engine checked in
parallel (``run_checks``) waits behind it, and N silent stores take N timeouts instead of one. A
target is used by one thread at a time (its store's checks run in turn), so no lock is needed:
this is 3.12's behaviour.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")


class cached_property(Generic[T]):  # the name of what it replaces, lower-case as it is
    """Computes the attribute on first access and stores it on the instance, which then shadows it."""

    def __init__(self, func: Callable[[Any], T]) -> None:
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> cached_property[T]: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> T: ...

    def __get__(self, instance: object | None, owner: type | None = None) -> T | cached_property[T]:
        if instance is None:
            return self
        value = self.func(instance)
        instance.__dict__[self.name] = value
        return value
