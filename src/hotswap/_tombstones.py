"""Tombstones: what a save removed from a module, kept for a save that brings it back.

A branch switched away and back, a stash and pop, an undo in the editor: a
function, class, enum member or method is removed by one save and restored by a
later one. What the user took before (instances, ``from m import f``, callbacks,
bound methods, enum members used as dict keys) still holds the old object; a fresh import would give
one object that all of them are. So a removed object is kept here, and a later
save that defines the name again (same kind) upgrades the kept object in place
and binds *it* again (``_apply``, ``_transaction``, ``_upgrade``). Where the name
comes back as another object (another kind, a constant), the kept one says what
dependents still hold, so that they follow it.

Every write goes through the reload's ``Transaction``: a failed reload leaves the
tombstones as they were.

Bounded: kept per module object (weakly: a module forgotten, its tombstones go
with it), one per name (the last object removed under it), and at most
``_KEPT_PER_MODULE`` of each sort (names, enum members, methods) per module, the
oldest dropped first.
"""

from __future__ import annotations

import sys
import types
import weakref
from typing import TypeVar

from ._undo import Transaction
from ._vocab import UNBOUND

__all__ = ["Graves", "graves_of"]

_KEPT_PER_MODULE = 256


class Graves:
    """One module's tombstones: module-level names, enum members by (enum, member name), and
    methods by (class, method name)."""

    __slots__ = ("__weakref__", "members", "methods", "names")

    def __init__(self) -> None:
        self.names: dict[str, object] = {}  # name -> the object it held when removed
        self.members: dict[tuple[str, str], object] = {}  # (enum qualname, member name) -> member
        # (class qualname, name) -> (the class, weakly; the class-dict entry it held when removed)
        self.methods: dict[tuple[str, str], tuple[weakref.ref[type], object]] = {}

    def __bool__(self) -> bool:
        return bool(self.names or self.members or self.methods)

    def name(self, name: str) -> object:
        """The object a removed module-level ``name`` held, or ``UNBOUND``."""
        return self.names.get(name, UNBOUND)

    def member(self, enum_class: type, name: str) -> object:
        """The member ``name`` removed from ``enum_class`` (still of that class), or ``None``."""
        member = self.members.get((enum_class.__qualname__, name))
        return member if member is not None and type(member) is enum_class else None

    def method(self, cls: type, name: str) -> object:
        """The entry (function, ``staticmethod``...) removed from ``cls`` as ``name``, or ``None``.

        Only from that very class: another class of the same qualname (one that could not be
        kept in place) has other instances, and its methods another ``__class__``."""
        found = self.methods.get((cls.__qualname__, name))
        return found[1] if found is not None and found[0]() is cls else None

    def bury(self, name: str, value: object, txn: Transaction) -> None:
        _put(self.names, name, value, txn)

    def bury_member(self, enum_class: type, name: str, member: object, txn: Transaction) -> None:
        _put(self.members, (enum_class.__qualname__, name), member, txn)

    def bury_method(self, cls: type, name: str, value: object, txn: Transaction) -> None:
        _put(self.methods, (cls.__qualname__, name), (weakref.ref(cls), value), txn)

    def unbury(self, name: str, txn: Transaction) -> None:
        if name in self.names:
            txn.keep_contents(self.names)
            del self.names[name]

    def unbury_member(self, enum_class: type, name: str, txn: Transaction) -> None:
        key = (enum_class.__qualname__, name)
        if key in self.members:
            txn.keep_contents(self.members)
            del self.members[key]

    def unbury_method(self, cls: type, name: str, txn: Transaction) -> None:
        key = (cls.__qualname__, name)
        if key in self.methods:
            txn.keep_contents(self.methods)
            del self.methods[key]


_Key = TypeVar("_Key")
_Value = TypeVar("_Value")


def _put(kept: dict[_Key, _Value], key: _Key, value: _Value, txn: Transaction) -> None:
    """Keep ``value`` under ``key`` (the newest last), the oldest dropped beyond the bound."""
    txn.keep_contents(kept)
    kept.pop(key, None)
    kept[key] = value
    while len(kept) > _KEPT_PER_MODULE:
        del kept[next(iter(kept))]


_GRAVES: weakref.WeakKeyDictionary[types.ModuleType, Graves] = weakref.WeakKeyDictionary()
_NONE = Graves()  # what a module that never lost anything has (never written to)


def graves_of(module: types.ModuleType | str, *, create: bool = False) -> Graves:
    """The tombstones of a module (by object or by name, in ``sys.modules``); ``create``: to write."""
    if isinstance(module, str):
        found = sys.modules.get(module)
        if not isinstance(found, types.ModuleType):
            return _NONE
        module = found
    graves = _GRAVES.get(module)
    if graves is None:
        if not create:
            return _NONE
        graves = _GRAVES[module] = Graves()
    return graves
