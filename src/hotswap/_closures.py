"""Closures made by old code: a decorator's wrapper, a factory's product.

An edit of a function changes the code of the functions defined inside it, but
the closures its old code made (``@traced def f`` holds one) keep the old inner
code. ``pair_nested_code`` pairs each old inner code object with its new one, by
name and order; the closures found then take the new code in place
(``upgrade_closures``), keeping what they captured. A new inner code that
captures other variables cannot go into an old closure: what holds one must be
made again (``cannot_follow``, in its own module; ``makers_of_what_cannot_follow``,
in the modules that used the maker), as a fresh import would make it.
"""

from __future__ import annotations

import types
from collections.abc import Iterable, Mapping

from ._undo import Transaction
from ._vocab import UNBOUND

__all__ = [
    "cannot_follow",
    "captures_otherwise",
    "makers_of_what_cannot_follow",
    "pair_nested_code",
    "upgrade_closures",
]


def pair_nested_code(old: types.CodeType, new: types.CodeType, txn: Transaction) -> None:
    """Inner functions, by name and order: their old closures will take the new code."""
    if old is new:
        return
    olds, news = _inner_code(old), _inner_code(new)
    for name in {c.co_name for c in olds}:
        same_old, same_new = _named(olds, name), _named(news, name)
        if len(same_old) != len(same_new):
            continue  # which old one became which new one is unknown: they stay old
        for a, b in zip(same_old, same_new):
            if a != b:
                txn.nested_code[a] = b
            pair_nested_code(a, b, txn)


def _inner_code(code: types.CodeType) -> list[types.CodeType]:
    """The code objects of the functions, classes and comprehensions defined inside ``code``."""
    return [c for c in code.co_consts if isinstance(c, types.CodeType)]


def _named(codes: list[types.CodeType], name: str) -> list[types.CodeType]:
    return [c for c in codes if c.co_name == name]


def captures_otherwise(old: types.CodeType, new: types.CodeType) -> bool:
    """Does the new code capture other variables than the old? Then it cannot go into a closure
    the old code made: the cells it needs are not there."""
    return new.co_freevars != old.co_freevars


def upgrade_closures(functions: Iterable[types.FunctionType], txn: Transaction) -> list[str]:
    """Closures made by old code (a decorator's wrapper, a factory's product) run the new code.

    Their captured values are kept. Returns the names of those upgraded.
    """
    upgraded = []
    for function in functions:
        new = txn.nested_code.get(function.__code__)
        if new is None:
            continue
        if captures_otherwise(function.__code__, new):
            txn.notes.append(
                (f"function {function.__qualname__}", "the variables it captures changed: it keeps its old code")
            )
            continue
        txn.set(function, "__code__", new)
        upgraded.append(function.__qualname__)
    return upgraded


def cannot_follow(value: object, nested: Mapping[types.CodeType, types.CodeType]) -> bool:
    """Is ``value`` (or a function it wraps or captures) a closure of old code whose new code
    (``nested``: old -> new, see ``pair_nested_code``) captures other variables: it cannot take
    the new code in place, and only making it again gives what a fresh import gives."""
    seen: set[int] = set()
    todo = [value]
    while todo and len(seen) < 64:
        function = todo.pop()
        if not isinstance(function, types.FunctionType) or id(function) in seen:
            continue
        seen.add(id(function))
        new = nested.get(function.__code__)
        if new is not None and captures_otherwise(function.__code__, new):
            return True
        todo.append(function.__dict__.get("__wrapped__"))
        todo += [_cell_value(cell) for cell in function.__closure__ or ()]
    return False


def makers_of_what_cannot_follow(
    namespace: Mapping[str, object], names: Iterable[str], nested: Mapping[types.CodeType, types.CodeType]
) -> list[str]:
    """The functions among ``names`` (upgraded in place) whose new code makes closures that capture
    other variables than the old code's made (a decorator's wrapper gained ``label``): what they
    made before cannot take the new code, so what another module made with them (its
    ``@traced def f``) must be made again, as a fresh import would."""
    changed = {new for old, new in nested.items() if captures_otherwise(old, new)}
    if not changed:
        return []
    return [name for name in names if _makes_any(getattr(namespace.get(name), "__code__", None), changed)]


def _makes_any(code: object, made: set[types.CodeType]) -> bool:
    if not isinstance(code, types.CodeType):
        return False
    inner = _inner_code(code)
    return any(c in made for c in inner) or any(_makes_any(c, made) for c in inner)


def _cell_value(cell: types.CellType) -> object:
    try:
        return cell.cell_contents
    except ValueError:  # an empty cell
        return UNBOUND
