"""The words every step uses, spelled once: sentinels, name tests, type sets, the export rule,
and the scans of ``Point.tag = ...`` statements.

A module of definitions only (it imports nothing of hotswap): each step imports
what it needs from here instead of keeping its own copy.
"""

from __future__ import annotations

import ast
import types
from collections.abc import Iterator, Mapping
from typing import Any, Final, TypeGuard

__all__ = [
    "HOLDS_NO_CODE",
    "PLAIN_DATA",
    "SCALARS",
    "SET_BY_IMPORT",
    "UNBOUND",
    "UNKNOWN",
    "assignment_targets",
    "attribute_of_name",
    "exported",
    "is_class",
    "is_dunder",
]


class _Sentinel:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name

    def __reduce__(self) -> str:  # copied or pickled, still the one object
        return self._name


# A name (or attribute) that is not bound: in a snapshot, a re-bind (old or new side), a lookup.
UNBOUND: Final[Any] = _Sentinel("UNBOUND")
# A value not worked out yet (a memo's empty slot): distinct from any answer, ``None`` included.
UNKNOWN: Final[Any] = _Sentinel("UNKNOWN")


def is_dunder(name: str) -> bool:
    """``__name__``-like: the interpreter's or the import system's, never a user's global."""
    return name.startswith("__") and name.endswith("__")


# Set by the import system, not by the module's code: kept across a re-run of the module.
# (``__doc__`` is not among them: the module's own docstring sets it.)
SET_BY_IMPORT: Final = frozenset(
    {"__name__", "__file__", "__package__", "__spec__", "__loader__", "__path__", "__cached__", "__builtins__"}
)

# Arithmetic and comparisons on values of exactly these types run no user code.
SCALARS: Final = frozenset({int, float, complex, bool, str, bytes, type(None)})
# Values that are data, never code, nor a wrapper of code (their items may be anything).
PLAIN_DATA: Final = SCALARS | {tuple, list, dict, set, frozenset}
# Values that neither are nor wrap a function: nothing to upgrade or clear is found inside them.
HOLDS_NO_CODE: Final = PLAIN_DATA | {
    types.ModuleType,
    types.GetSetDescriptorType,
    types.MemberDescriptorType,
    types.BuiltinFunctionType,
}


def exported(namespace: Mapping[str, Any], name: str) -> bool:
    """Does ``from m import *`` give ``name`` (``namespace``: m's)?"""
    if name not in namespace:
        return False
    names = namespace.get("__all__")
    if names is None:
        return not name.startswith("_")
    try:
        return name in names
    except TypeError:  # an __all__ that is not a collection: the import would fail
        return False


def assignment_targets(node: ast.stmt, *, unpack: bool = False, deletes: bool = False) -> list[ast.expr]:
    """What a top-level statement assigns to (``=``, ``: T =``, ``+=``; ``del`` when asked);
    ``unpack`` opens tuple and list targets (``a, Point.tag = ...``)."""
    if isinstance(node, ast.Assign):
        targets = node.targets
        return [t for target in targets for t in _flattened(target)] if unpack else list(targets)
    if isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        return [node.target]
    if deletes and isinstance(node, ast.Delete):
        return list(node.targets)
    return []


def attribute_of_name(target: ast.expr) -> tuple[str, str] | None:
    """``Point.tag`` -> ``("Point", "tag")``; anything else -> None."""
    if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
        return target.value.id, target.attr
    return None


def _flattened(target: ast.expr) -> Iterator[ast.expr]:
    if isinstance(target, (ast.Tuple, ast.List)):
        for element in target.elts:
            yield from _flattened(element)
    else:
        yield target


def is_class(value: object) -> TypeGuard[type]:
    """``isinstance(value, type)`` by the value's type alone. For what the user's namespaces hold:
    ``isinstance`` falls back on ``value.__class__``, which a proxy computes (and may raise: a
    context-bound one outside its context)."""
    return issubclass(type(value), type)
