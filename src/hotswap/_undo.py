"""The one way back of a check: every write it makes in place is kept, so that a failure at
any level puts back exactly what that level changed.

Two records, one per kind of write, at four levels:

* ``Writes``, the names bound in one module's namespace: what each held before, and once code
  that may write anything runs (``guard``), the whole namespace as it was. A leaf table's row, a
  batch of plain arithmetic and a dependent's statement re-runs keep one each; so does the
  reload of a module's new text (its plan), guarded from the start.
* ``Transaction``, the writes on objects (a function's code, a class's dict, a cell, a
  registry), in a plan: an undo log, with savepoints for an upgrade tried and given up.

A plan that fails puts back its ``Writes`` and rolls back its ``Transaction``; a statement, a
batch or a table row that fails puts back its own ``Writes`` and is handed to the general way.

``Transaction`` also carries what the upgrade steps learn on the way: which new objects were
bound in place of old ones, which objects stayed old and why, and which inner code objects
have a new version (closures made by the old ones follow them).
"""

from __future__ import annotations

import builtins
import enum
import operator
import types
from collections.abc import Callable, Iterable, Mapping
from itertools import compress, repeat
from typing import Any

from ._vocab import UNBOUND, is_dunder

__all__ = ["Transaction", "Writes", "any_unbound"]


class Writes:
    """A follow's one way back: each name it wrote -> what it held before (``UNBOUND``: it was
    not there). That is enough while what runs is arithmetic on plain values, which runs no user
    code; before a statement that may run user code (and so write any name), ``guard`` keeps the
    whole namespace as it was before the follow, and ``undo`` then puts all of it back."""

    __slots__ = ("before", "namespace", "snapshot")

    def __init__(self, namespace: dict[str, Any], before: dict[str, object] | None = None) -> None:
        self.namespace = namespace
        self.before: dict[str, object] = {} if before is None else before
        self.snapshot: dict[str, Any] | None = None

    def assign(self, values: Mapping[str, object]) -> None:
        """Bind these names, keeping what they held."""
        self.keep(values)
        self.namespace.update(values)

    def keep(self, names: Iterable[str]) -> list[object]:
        """What these names hold, about to be bound: kept, where they were not written before."""
        namespace, before = self.namespace, self.before
        prior = [namespace.get(name, UNBOUND) for name in names]
        for name, old in zip(names, prior):
            before.setdefault(name, old)
        return prior

    def guard(self) -> dict[str, Any]:
        """User code may run next: keep the whole namespace as it was before the follow."""
        if self.snapshot is None:
            self.snapshot = dict(self.namespace)
            _write_back(self.snapshot, self.before)
        return self.snapshot

    def undo(self) -> None:
        """Put the namespace back as it was before the follow."""
        if self.snapshot is None:
            _write_back(self.namespace, self.before)
        else:
            self.namespace.clear()
            self.namespace.update(self.snapshot)

    def value_before(self, name: str) -> object:
        """What ``name`` held before the follow (it was written, or there is a snapshot)."""
        return self.snapshot.get(name, UNBOUND) if self.snapshot is not None else self.before[name]

    def changed(self, names: Iterable[str]) -> dict[str, tuple[object, object]]:
        """Name -> (old, new) for those of these written names bound to another object now."""
        before, namespace = self.before, self.namespace
        return {name: (before[name], namespace[name]) for name in names if before[name] is not namespace[name]}

    def changes(self) -> dict[str, tuple[object, object]] | None:
        """Name -> (old, new) for what the follow changed (dunders aside); None if a name came
        or went. Without a snapshot only the names it wrote can have changed; with one, every
        name is compared."""
        namespace, snapshot = self.namespace, self.snapshot
        if snapshot is None:
            if any_unbound(self.before.values()):
                return None  # a name it bound was not there
            return {name: change for name, change in self.changed(self.before).items() if not is_dunder(name)}
        if list(namespace) != list(snapshot):
            return None
        changed = compress(namespace, map(operator.is_not, snapshot.values(), namespace.values()))  # in C
        return {n: (snapshot[n], namespace[n]) for n in changed if not is_dunder(n)}


def any_unbound(values: Iterable[object]) -> bool:
    """Is one of these ``UNBOUND`` (by identity: a value's ``==`` may be anything)?"""
    return any(map(operator.is_, values, repeat(UNBOUND)))


def _write_back(names: dict[str, Any], before: dict[str, object]) -> None:
    """Put back what writes overwrote (``UNBOUND``: the name was not there)."""
    for name, old in before.items():
        if old is UNBOUND:
            names.pop(name, None)
        else:
            names[name] = old


class Transaction:
    """An undo log for in-place writes, so a failed reload restores everything exactly."""

    def __init__(self, owner: str) -> None:
        self.owner = owner  # the module whose objects may be upgraded in place
        self.upgraded: dict[int, object] = {}  # id(new) -> the object bound in its place
        self.notes: list[tuple[str, str]] = []  # (qualified name, why it stayed old)
        # old nested code -> its new version: closures made by the old code follow it
        self.nested_code: dict[types.CodeType, types.CodeType] = {}
        self._undo: list[Callable[[], None]] = []
        self._on_commit: list[Callable[[], None]] = []
        self._alive: list[object] = []  # keeps ids in `upgraded` valid

    def set(self, obj: object, name: str, value: object) -> None:
        previous = _own_attr(obj, name)
        _setattr(obj, name, value)  # first: a write refused leaves nothing to undo
        self._undo.append(_putting_back(obj, name, previous))

    def keep_attribute(self, obj: object, name: str) -> None:
        """Remember ``obj.name`` (or its absence), to put it back on rollback: code is about to set it."""
        self._undo.append(_putting_back(obj, name, _own_attr(obj, name)))

    def delete(self, obj: object, name: str) -> None:
        previous = _own_attr(obj, name)
        _delattr(obj, name)
        self._undo.append(lambda: _setattr(obj, name, previous))

    def set_cell(self, cell: types.CellType, value: object) -> None:
        try:
            previous = cell.cell_contents
        except ValueError:  # an empty cell
            previous = UNBOUND
        cell.cell_contents = value
        if previous is UNBOUND:
            self._undo.append(lambda: _empty_cell(cell))
        else:
            self._undo.append(lambda: setattr(cell, "cell_contents", previous))

    def call_with_undo(self, action: Callable[[Any], object], args: object, *, undo_args: tuple[Any, ...]) -> None:
        """``action(args)`` now, ``action(*undo_args)`` on rollback (for setters such as ``__setstate__``)."""
        action(args)
        self._undo.append(lambda: None if action(*undo_args) else None)

    def keep_class_dict(self, cls: type) -> dict[str, Any]:
        """Remember every attribute a class holds itself: on rollback (after the later entries are
        undone) it holds exactly those again, whatever set them since (a decorator applied to it
        after its ``class`` statement, such as ``@dataclass(frozen=True)`` adding ``__setattr__``).
        Returns that copy of its dict (read-only)."""
        saved = dict(vars(cls))

        def restore() -> None:
            for name in [n for n in vars(cls) if n not in saved]:
                _quiet_delattr(cls, name)
            for name, value in saved.items():
                if cls.__dict__.get(name, UNBOUND) is not value and name not in _SLOTS_OF_TYPE:
                    _setattr(cls, name, value)

        self._undo.append(restore)
        return saved

    def keep_contents(self, container: list[Any] | dict[Any, Any] | builtins.set[Any]) -> None:
        """Remember a container's items, to put them back on rollback."""
        if isinstance(container, list):
            saved_list = list(container)
            self._undo.append(lambda: container.__setitem__(slice(None), saved_list))
        else:
            saved = container.copy()

            def restore() -> None:
                container.clear()
                container.update(saved)

            self._undo.append(restore)

    def on_commit(self, action: Callable[[], None]) -> None:
        """Run ``action`` only once the reload is certain (e.g. dropping caches)."""
        self._on_commit.append(action)

    def remember(self, new: object, bound: object) -> None:
        self.upgraded[id(new)] = bound
        self._alive.append(new)
        self._undo.append(lambda: self._forget(new))

    def _forget(self, new: object) -> None:
        self.upgraded.pop(id(new), None)

    def savepoint(self) -> int:
        return len(self._undo)

    def rollback_to(self, savepoint: int) -> None:
        """Undo the writes made since ``savepoint``: one object's failed upgrade leaves no trace."""
        while len(self._undo) > savepoint:
            self._undo.pop()()

    def commit(self) -> None:
        for action in self._on_commit:
            action()
        self._undo.clear()
        self._on_commit.clear()

    def rollback(self) -> None:
        """Undo every write, newest first; one failed undo does not stop the others."""
        errors: list[BaseException] = []
        while self._undo:
            undo = self._undo.pop()
            try:
                undo()
            except Exception as exc:  # noqa: BLE001 - keep restoring the rest
                errors.append(exc)
        self._on_commit.clear()
        if errors:
            raise RuntimeError(f"{len(errors)} write(s) could not be undone: {errors[0]!r}")


_SLOTS_OF_TYPE = frozenset({"__dict__", "__weakref__"})  # set by the type's layout, not by code


def _putting_back(obj: object, name: str, previous: object) -> Callable[[], None]:
    """The undo of a write to ``obj.name``: ``previous`` again, or no attribute if it had none."""
    if previous is UNBOUND:
        return lambda: _quiet_delattr(obj, name)
    return lambda: _setattr(obj, name, previous)


def _own_attr(obj: object, name: str) -> object:
    """The value ``obj`` holds itself (not inherited), or ``UNBOUND``."""
    if isinstance(obj, type) and name != "__bases__":
        return obj.__dict__.get(name, UNBOUND)
    return getattr(obj, name, UNBOUND)


def _setattr(obj: object, name: str, value: object) -> None:
    if isinstance(obj, enum.EnumMeta):  # it refuses to re-bind members, by design
        type.__setattr__(obj, name, value)
    else:
        setattr(obj, name, value)


def _delattr(obj: object, name: str) -> None:
    if isinstance(obj, enum.EnumMeta):
        type.__delattr__(obj, name)
    else:
        delattr(obj, name)


def _quiet_delattr(obj: object, name: str) -> None:
    try:
        _delattr(obj, name)
    except AttributeError:
        pass


def _empty_cell(cell: types.CellType) -> None:
    del cell.cell_contents
