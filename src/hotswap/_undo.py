"""The undo log of a reload: every in-place write is recorded, so a failed reload puts every
function, class, cell and registry back exactly as it was.

``Transaction`` also carries what the upgrade steps learn on the way: which new objects were
bound in place of old ones, which objects stayed old and why, and which inner code objects
have a new version (closures made by the old ones follow them).
"""

from __future__ import annotations

import builtins
import enum
import types
from collections.abc import Callable
from typing import Any

from ._vocab import UNBOUND

__all__ = ["Transaction"]


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
