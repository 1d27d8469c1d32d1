"""Aftercare: once a module's new code ran, the references elsewhere are put right.

Closures made by old code take the new inner code, registries that class hooks
filled name the kept class, and code kept across the edit reports the lines where
it now sits. Each looks only where users keep things (given namespaces, their
classes and small containers), never through the whole heap, and writes through
the transaction.
"""

from __future__ import annotations

import abc
import enum
import functools
import operator
import types
import typing
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple, TypeGuard

from ._closures import upgrade_closures
from ._undo import Transaction
from ._upgrade import functions_named
from ._vocab import HOLDS_NO_CODE, SET_BY_IMPORT, is_class

__all__ = [
    "CachesSeen",
    "caches_of",
    "caches_seen",
    "caches_still_in",
    "clear_caches_of",
    "closures_follow",
    "follow_moved_lines",
    "forget_registered",
    "functions_bound_to",
    "holds_as_seen",
    "holds_no_code",
    "may_have_registered",
    "replace_stand_ins",
]


def functions_bound_to(
    module: types.ModuleType, path: str, names: Iterable[str]
) -> dict[int, tuple[types.FunctionType, types.CodeType]]:
    """The functions and methods bound to these names, with their current code."""
    values = [module.__dict__.get(n) for n in names]
    return {
        id(f): (f, f.__code__)
        for f in _functions_in(values, module.__name__)
        if f.__code__.co_filename == path
    }


def _functions_in(values: Iterable[object], owner: str, homes: frozenset[str] = frozenset()) -> list[types.FunctionType]:
    """Functions of module ``owner`` held by these values: directly, in the classes of ``owner``
    and of ``homes`` (the modules whose namespaces gave the values), in wrappers."""
    return _code_in(values, owner, homes).functions


def clear_caches_of(module: types.ModuleType, txn: Transaction) -> None:
    """A module-level value changed: results cached by the module's functions may be stale."""
    for cache in caches_of(module):
        txn.on_commit(cache.cache_clear)


def caches_of(module: types.ModuleType) -> tuple[Any, ...]:
    """The ``lru_cache``-like wrappers the module holds, directly or in its classes (and remember
    where they are, for ``caches_still_in``)."""
    namespace = vars(module)
    names = [n for n in namespace if n not in _SET_BY_IMPORT and type(namespace[n]) not in HOLDS_NO_CODE]
    suspects = _may_hold_caches([namespace[n] for n in names], module.__name__, 3)
    caches = tuple(_code_in(suspects, module.__name__).caches) if suspects else ()
    _CACHES_SEEN[module.__name__] = CachesSeen(
        len(namespace), tuple(names), tuple(map(namespace.__getitem__, names)), caches
    )
    return caches


def caches_still_in(module: types.ModuleType, changed: Iterable[object]) -> tuple[Any, ...]:
    """``caches_of`` for a module whose code did not run since, where only ``changed`` values
    were re-bound: known from last time if it still holds the same functions and classes at the
    same names (compared by identity in C, no Python loop over the namespace)."""
    known = _CACHES_SEEN.get(module.__name__)
    if known is None or not holds_as_seen(vars(module), known) or not holds_no_code(changed):
        return caches_of(module)
    return known.caches


def holds_as_seen(namespace: dict[str, Any], seen: CachesSeen) -> bool:
    """Does the namespace hold the same functions and classes at the same names as when its
    caches were looked for (compared by identity in C)?"""
    return len(namespace) == seen.size and all(map(operator.is_, map(namespace.get, seen.names), seen.values))


def caches_seen(module: types.ModuleType) -> CachesSeen:
    """Where ``caches_of`` last looked in the module (it looks now if it never did): a caller
    that follows the same module again and again keeps it, to check it as ``caches_still_in``."""
    known = _CACHES_SEEN.get(module.__name__)
    if known is None:
        caches_of(module)
        known = _CACHES_SEEN[module.__name__]
    return known


def holds_no_code(values: Iterable[object]) -> bool:
    """Are these values of types that hold no function (so no cache) of their own?"""
    return HOLDS_NO_CODE.issuperset(map(type, values))


class CachesSeen(NamedTuple):
    """Where ``caches_of`` last looked in a module, and what it found."""

    size: int  # how many names its namespace held
    names: tuple[str, ...]  # the names of the values that are not plain data
    values: tuple[object, ...]  # those values
    caches: tuple[Any, ...]  # the caches found among them


_CACHES_SEEN: dict[str, CachesSeen] = {}  # by module


# Not looked at for caches: the import system's names and the module's docstring.
_SET_BY_IMPORT = SET_BY_IMPORT | {"__doc__"}


def _may_hold_caches(values: Iterable[object], owner: str, depth: int) -> list[object]:
    """The values worth the full walk: not plain data, not plain functions; classes opened."""
    suspects: list[object] = []
    for value in values:
        if type(value) in HOLDS_NO_CODE or _plain_function(value):
            continue
        if is_class(value) and depth:
            if value.__module__ == owner:
                suspects += _may_hold_caches(vars(value).values(), owner, depth - 1)
            continue
        suspects.append(value)
    return suspects


def _plain_function(value: object) -> TypeGuard[types.FunctionType]:
    """A function that neither wraps another nor closes over anything: no cache behind it."""
    return type(value) is types.FunctionType and value.__closure__ is None and not value.__dict__


class _CodeFound(NamedTuple):
    functions: list[types.FunctionType]
    caches: list[Any]  # ``lru_cache``-like wrappers


def _code_in(values: Iterable[object], owner: str, homes: frozenset[str] = frozenset()) -> _CodeFound:
    """The functions and caches of module ``owner`` held by these values, in its classes, in wrappers."""
    found: dict[int, types.FunctionType] = {}
    caches: dict[int, Any] = {}
    seen: set[int] = set()
    stack: list[object] = list(values)
    while stack:
        value = stack.pop()
        if type(value) in HOLDS_NO_CODE or id(value) in seen:
            continue
        seen.add(id(value))
        if is_class(value):
            stack += _own_class_values(value, owner, homes)
            continue
        _take_code(value, owner, found, caches)
    return _CodeFound(list(found.values()), list(caches.values()))


def _own_class_values(cls: type, owner: str, homes: frozenset[str]) -> list[object]:
    """What a class of module ``owner`` (or of ``homes``) holds: a library's class is not looked into."""
    return list(cls.__dict__.values()) if cls.__module__ == owner or cls.__module__ in homes else []


def _take_code(value: object, owner: str, found: dict[int, types.FunctionType], caches: dict[int, Any]) -> None:
    """Add the functions and caches of ``owner`` that ``value`` is or wraps (by id, once)."""
    if _plain_function(value):
        if value.__module__ == owner:  # the common case, without the general walk below
            found[id(value)] = value
        return
    functions, wrappers = functions_named(value, "", owner, any_name=True)
    found.update((id(f), f) for f in functions)
    caches.update((id(c), c) for c in wrappers)


_PLAIN_METACLASSES = (type, abc.ABCMeta, enum.EnumMeta)


def may_have_registered(new: type) -> bool:
    """Could a class hook (``__init_subclass__``, a metaclass) have stored the new class?"""
    if type(new) not in _PLAIN_METACLASSES:
        return True
    return any("__init_subclass__" in vars(base) for base in new.__mro__[1:-1])


def replace_stand_ins(
    stand_ins: Iterable[tuple[object, object]], namespaces: Iterable[dict[str, Any]], txn: Transaction
) -> None:
    """Registries filled by class hooks name the class the user holds, once.

    ``stand_ins`` are (object made by the new code, object kept): a class built
    from the new body, a function a whole re-run made anew. Looks in
    module-level and class-level lists, dicts and sets of these namespaces;
    not through the whole heap.
    """
    pairs = list(stand_ins)
    kept_for = {id(stand_in): kept for stand_in, kept in pairs}
    for place in _places_in(namespaces):
        if _is_container(place):
            _replace_in(place, pairs, txn)
            if len(place) <= _SMALL:
                for item in list(_items(place)):
                    _repoint_partial(item, kept_for, txn)
        else:
            _repoint_partial(place, kept_for, txn)


def forget_registered(classes: Iterable[type], namespaces: Iterable[dict[str, Any]], txn: Transaction) -> None:
    """Classes a failed run made leave the registries (lists, dicts, sets) of these namespaces."""
    made = {id(cls) for cls in classes}
    if not made:
        return
    for place in _places_in(namespaces):
        if _is_registry(place) and any(id(item) in made for item in list(_items(place))):
            txn.keep_contents(place)
            _drop_made(place, made)


_Registry = list[Any] | dict[Any, Any] | set[Any]


def _places_in(namespaces: Iterable[dict[str, Any]]) -> Iterator[object]:
    """Where registries live: the values of these namespaces and, for classes, the values they
    hold themselves; each object once."""
    seen: set[int] = set()
    for namespace in namespaces:
        for value in list(namespace.values()):
            for place in [value, *vars(value).values()] if is_class(value) else [value]:
                if id(place) not in seen:
                    seen.add(id(place))
                    yield place


def _is_registry(place: object) -> TypeGuard[_Registry]:
    """A list, dict or set small enough to hold callbacks and classes (large ones hold data)."""
    return _is_container(place) and len(place) <= _SMALL


def _is_container(place: object) -> TypeGuard[_Registry]:
    """A list, dict or set, by its type alone (see ``is_class``)."""
    return issubclass(type(place), (list, dict, set))


def _items(container: _Registry) -> Iterable[Any]:
    """What a registry holds: a dict's values, a list's or a set's items."""
    return container.values() if isinstance(container, dict) else container


def _drop_made(place: _Registry, made: set[int]) -> None:
    """Take out of ``place`` the objects whose ids are in ``made``, in place."""
    if isinstance(place, dict):
        for key in [k for k, v in place.items() if id(v) in made]:
            del place[key]
    elif isinstance(place, list):
        place[:] = [item for item in place if id(item) not in made]
    else:
        place.difference_update([item for item in place if id(item) in made])


def _repoint_partial(value: object, kept_for: Mapping[int, object], txn: Transaction) -> None:
    """``functools.partial(f, 1)`` made with a stand-in ``f`` calls the kept one (its state is set
    in place: the partial stays the object the user holds)."""
    if type(value) is not functools.partial or id(value.func) not in kept_for:
        return
    before = value.__reduce__()[2]  # (func, args, keywords, __dict__)
    after = (kept_for[id(value.func)], *before[1:])
    txn.call_with_undo(getattr(value, "__setstate__"), after, undo_args=(before,))


def _replace_in(container: _Registry, pairs: list[tuple[object, object]], txn: Transaction) -> None:
    """Each stand-in the container holds (as an item, a dict value or a dict key) becomes the kept one."""
    for stand_in, kept in pairs:
        if isinstance(container, list):
            _replace_in_list(container, stand_in, kept, txn)
        elif isinstance(container, dict):
            _replace_in_dict(container, stand_in, kept, txn)
        else:
            _replace_in_set(container, stand_in, kept, txn)


def _replace_in_list(container: list[Any], stand_in: object, kept: object, txn: Transaction) -> None:
    """The stand-in's place holds the kept object (once: dropped where the kept one is there too)."""
    if not any(item is stand_in for item in container):
        return
    txn.keep_contents(container)
    has_kept = any(item is kept for item in container)
    container[:] = [kept if item is stand_in else item for item in container if not (item is stand_in and has_kept)]


def _replace_in_dict(container: dict[Any, Any], stand_in: object, kept: object, txn: Transaction) -> None:
    """Values that are the stand-in become the kept object; a stand-in key gives way to the kept one."""
    if not any(item is stand_in for item in container.values()) and not _holds(container, stand_in):
        return
    txn.keep_contents(container)
    for key, item in list(container.items()):
        if item is stand_in:
            container[key] = kept
    if _holds(container, stand_in):
        container.setdefault(kept, container.pop(stand_in))


def _replace_in_set(container: set[Any], stand_in: object, kept: object, txn: Transaction) -> None:
    if _holds(container, stand_in):
        txn.keep_contents(container)
        container.discard(stand_in)
        container.add(kept)


def _holds(container: dict[Any, Any] | set[Any], key: object) -> bool:
    """``key in container`` by identity (a class's hash is its identity, unless a metaclass says else)."""
    try:
        return key in container and any(k is key for k in container)
    except TypeError:
        return False


def closures_follow(owner: str, namespaces: Iterable[dict[str, Any]], txn: Transaction) -> list[str]:
    """When inner functions changed, closures made before the edit take their new code.

    Looked for where users keep them: the namespaces given (the module's, the
    user's, other watched modules), inside classes, wrappers and small
    containers; never through the whole heap. Returns the names upgraded.
    """
    if not txn.nested_code:
        return []
    namespaces = list(namespaces)
    homes = frozenset(name for namespace in namespaces if isinstance(name := namespace.get("__name__"), str))
    values = [value for namespace in namespaces for value in list(namespace.values())]
    values += [item for value in values for item in _items_of_small_container(value)]
    functions = _functions_in(values, owner, homes) + _named_elsewhere(values, owner, homes, txn.nested_code)
    return upgrade_closures(functions, txn)


def _named_elsewhere(
    values: list[object], owner: str, homes: frozenset[str], nested: Mapping[types.CodeType, types.CodeType]
) -> list[types.FunctionType]:
    """Closures made by the module's code that say they are another module's: a wrapper around a
    function of the session (``functools.wraps`` copies that function's ``__module__``), a method a
    factory made for a class and named after it (attrs' ``__lt__``: ``__module__`` and
    ``__qualname__`` set to the class's). Found by their code, among the values and in their classes."""
    held = values + [v for value in values if is_class(value) for v in _own_class_values(value, owner, homes)]
    return [v for v in held if type(v) is types.FunctionType and v.__module__ != owner and v.__code__ in nested]


_SMALL = 10_000  # callbacks live in small lists and dicts; large containers hold data


def _items_of_small_container(value: object) -> list[object]:
    """The items of a list, tuple, set or dict (its values) that is small enough to look through."""
    kind, held = type(value), typing.cast(Any, value)  # its type tested alone (see ``is_class``)
    if issubclass(kind, dict) and len(held) <= _SMALL:
        return list(held.values())
    if issubclass(kind, (list, tuple, set, frozenset)) and len(held) <= _SMALL:
        return list(held)
    return []


def follow_moved_lines(
    kept_code: dict[int, tuple[types.FunctionType, types.CodeType]],
    moved_lines: Mapping[int, int],
    txn: Transaction,
) -> None:
    """Code kept across the reload reports the lines where its text now sits.

    Inner code objects move too, and are noted in ``txn.nested_code`` so that
    closures made from them follow (``closures_follow``).
    """
    for function, code in kept_code.values():
        new_line = moved_lines.get(code.co_firstlineno)
        if function.__code__ is code and new_line is not None:
            shifted = _shifted(code, new_line - code.co_firstlineno, txn.nested_code)
            txn.set(function, "__code__", shifted)


def _shifted(code: types.CodeType, delta: int, nested: dict[types.CodeType, types.CodeType]) -> types.CodeType:
    """``code`` moved by ``delta`` lines; inner code too (``nested`` maps old to moved, for closures)."""
    consts = []
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            moved = nested[const] = _shifted(const, delta, nested)
            consts.append(moved)
        else:
            consts.append(const)
    return code.replace(co_firstlineno=code.co_firstlineno + delta, co_consts=tuple(consts))
