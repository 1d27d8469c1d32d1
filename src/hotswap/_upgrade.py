"""Upgrade old objects in place so that every reference to them runs new code.

``upgrade(old, new, txn)`` is the one dispatch: it makes ``old`` behave like
``new`` and returns the object to bind (``old`` itself when it was upgraded in
place). When it cannot, it raises ``UpgradeError`` whose message says why; the
caller then binds ``new`` and tells the user which object stayed old.

Every write goes through a ``Transaction`` (``_undo``), so a reload that fails
later puts every function and class back exactly as it was.
"""

from __future__ import annotations

import enum
import functools
import types
import typing
from collections.abc import Mapping
from typing import Any

from ._closures import captures_otherwise, pair_nested_code
from ._tombstones import Graves, graves_of
from ._undo import Transaction
from ._vocab import UNBOUND

__all__ = [
    "Transaction",  # its home is ``_undo``; importable from here too
    "UpgradeError",
    "describe",
    "functions_named",
    "is_code",
    "owned_by",
    "try_upgrade",
    "upgrade",
    "upgrade_code",
    "upgrade_class",
]


# Function fields that carry behaviour; all writable on CPython.
_FUNCTION_FIELDS = (
    "__code__",
    "__defaults__",
    "__kwdefaults__",
    "__annotations__",
    "__doc__",
    "__name__",
    "__qualname__",
    "__module__",
)

# Class-dict entries tied to the class object or its memory layout: keep the old ones.
_CLASS_KEEP = frozenset({"__dict__", "__weakref__", "_abc_impl"})


class UpgradeError(Exception):
    """An object cannot be upgraded in place; the message says why."""


_CODE_KINDS = (
    types.FunctionType,
    type,
    staticmethod,
    classmethod,
    property,
    functools.cached_property,
    functools.partial,
)


def is_code(value: object) -> bool:
    """Objects whose identity users hold on to and that carry code: worth upgrading. Asked of
    whatever a namespace holds, so by type, and an attribute read that raises means no: a proxy
    bound to a context (flask's ``current_app`` outside one) raises on every read, ``__class__``
    (which ``isinstance`` reads) included."""
    if issubclass(type(value), _CODE_KINDS):
        return True
    try:
        return callable(value) and hasattr(value, "__wrapped__")
    except Exception:  # noqa: BLE001 - see above
        return False


def owned_by(value: object, owner: str) -> bool:
    if issubclass(type(value), (functools.cached_property, functools.partial)):
        return owned_by(typing.cast(Any, value).func, owner)
    try:
        return getattr(value, "__module__", None) == owner
    except Exception:  # noqa: BLE001 - an object whose attribute reads raise: not the module's code
        return False


def describe(value: object) -> str:
    """A short name for messages: ``function f``, ``class Model``, ``property Box.value``..."""
    named = value.fget if isinstance(value, property) and value.fget is not None else value
    name = getattr(named, "__qualname__", None) or getattr(named, "__name__", None)
    kind = "class" if isinstance(value, type) else type(value).__name__
    return f"{kind} {name}" if name else kind


def upgrade(old: object, new: object, txn: Transaction) -> object:
    """Make ``old`` run like ``new``; return what to bind (``old`` when upgraded in place)."""
    if old is new:
        return old
    known = txn.upgraded.get(id(new), UNBOUND)
    if known is not UNBOUND:
        return known
    if isinstance(old, types.FunctionType) and isinstance(new, types.FunctionType):
        return _upgrade_function(old, new, txn)
    if isinstance(old, type) and isinstance(new, type):
        return upgrade_class(old, new, txn)
    if type(old) is not type(new):
        raise UpgradeError(
            f"it changed kind ({type(old).__name__} -> {type(new).__name__}); "
            "references to the old object keep the old behaviour"
        )
    return _upgrade_descriptor_or_wrapper(old, new, txn)


def _upgrade_descriptor_or_wrapper(old: object, new: object, txn: Transaction) -> object:
    """``old`` and ``new`` are of the same type, neither a function nor a class."""
    if isinstance(old, (staticmethod, classmethod)):
        return _upgrade_method_descriptor(old, new, txn)  # type: ignore[arg-type]
    if isinstance(old, property):
        return _upgrade_property(old, new, txn)  # type: ignore[arg-type]
    if isinstance(old, functools.cached_property):
        return _upgrade_cached_property(old, new, txn)  # type: ignore[arg-type]
    if isinstance(old, functools.partial):
        return _upgrade_partial(old, new, txn)  # type: ignore[arg-type]
    if hasattr(old, "__wrapped__") and hasattr(new, "__wrapped__"):
        return _upgrade_wrapper(old, new, txn)
    raise UpgradeError(f"{type(old).__name__} objects are replaced, not upgraded")


def _upgrade_method_descriptor(
    old: staticmethod[Any, Any] | classmethod[Any, Any, Any],
    new: staticmethod[Any, Any] | classmethod[Any, Any, Any],
    txn: Transaction,
) -> object:
    """A ``staticmethod`` or ``classmethod`` stays; its function gets the new code."""
    inner = upgrade(old.__func__, new.__func__, txn)
    if inner is not old.__func__:
        raise UpgradeError("its function could not be upgraded in place")
    txn.remember(new, old)
    return old


def _upgrade_cached_property(
    old: functools.cached_property[Any], new: functools.cached_property[Any], txn: Transaction
) -> object:
    """The descriptor stays; its function gets the new code. Values already cached stay cached."""
    txn.set(old, "func", try_upgrade(old.func, new.func, txn))
    txn.set(old, "__doc__", new.__doc__)
    txn.remember(new, old)
    return old


def _upgrade_partial(old: functools.partial[Any], new: functools.partial[Any], txn: Transaction) -> object:
    """A partial keeps its identity; its function, arguments and keywords become the new ones."""
    func = try_upgrade(old.func, new.func, txn) if is_code(new.func) else new.func
    set_state = getattr(old, "__setstate__")  # noqa: B009 - partial's own, untyped
    state = old.__reduce__()[2]
    txn.call_with_undo(set_state, (func, new.args, new.keywords, new.__dict__ or None), undo_args=(state,))
    txn.remember(new, old)
    return old


def _check_compatible(old: types.FunctionType, new: types.FunctionType) -> None:
    if captures_otherwise(old.__code__, new.__code__):
        old_free, new_free = old.__code__.co_freevars, new.__code__.co_freevars
        raise UpgradeError(
            f"its free variables changed ({', '.join(old_free) or 'none'} -> "
            f"{', '.join(new_free) or 'none'}): references taken before the edit "
            "keep running the old code"
        )
    if old.__globals__ is not new.__globals__:
        raise UpgradeError("it was defined in another namespace")


def upgrade_code(old: types.FunctionType, new: types.FunctionType, txn: Transaction) -> None:
    """Only what a ``def`` line and body define: code, defaults, annotations, docstring.

    For a function whose decorators did not run again: the attributes they or
    later statements set (``__dict__``, ``__wrapped__``) and its closure stay.
    """
    _check_compatible(old, new)
    pair_nested_code(old.__code__, new.__code__, txn)
    for field in ("__code__", "__defaults__", "__kwdefaults__", "__annotations__", "__doc__"):
        txn.set(old, field, getattr(new, field))
    txn.remember(new, old)


def _upgrade_function(
    old: types.FunctionType, new: types.FunctionType, txn: Transaction
) -> types.FunctionType:
    """The function object stays; it takes the new one's fields, closure values and wrapped function."""
    if not owned_by(old, txn.owner):
        raise UpgradeError(f"it belongs to module {old.__module__!r}")
    _check_compatible(old, new)
    pair_nested_code(old.__code__, new.__code__, txn)
    txn.remember(new, old)  # before recursing: closures may refer back to it
    for old_cell, new_cell in zip(old.__closure__ or (), new.__closure__ or ()):
        _upgrade_cell(old_cell, new_cell, txn)
    new_dict = dict(new.__dict__)
    old_wrapped = old.__dict__.get("__wrapped__", UNBOUND)
    new_wrapped = new_dict.get("__wrapped__", UNBOUND)
    if old_wrapped is not UNBOUND and new_wrapped is not UNBOUND:
        new_dict["__wrapped__"] = try_upgrade(old_wrapped, new_wrapped, txn)
    for field in _FUNCTION_FIELDS:
        txn.set(old, field, getattr(new, field))
    txn.set(old, "__dict__", new_dict)
    return old


def _upgrade_cell(old_cell: types.CellType, new_cell: types.CellType, txn: Transaction) -> None:
    """Give an old closure the value a fresh import would capture, keeping code identities."""
    if old_cell is new_cell:
        return
    try:
        new_value = new_cell.cell_contents
    except ValueError:
        return
    try:
        old_value = old_cell.cell_contents
    except ValueError:
        old_value = UNBOUND
    if old_value is new_value:
        return
    if old_value is not UNBOUND and is_code(new_value) and owned_by(old_value, txn.owner):
        new_value = try_upgrade(old_value, new_value, txn)
        if new_value is old_value:
            return
    txn.set_cell(old_cell, new_value)


def try_upgrade(old: object, new: object, txn: Transaction) -> object:
    """``upgrade``, or ``new`` with a note saying why ``old`` stayed old (and no partial write)."""
    savepoint = txn.savepoint()
    try:
        return upgrade(old, new, txn)
    except UpgradeError as why:
        reason = str(why)
    except (TypeError, AttributeError, ValueError) as why:  # an object that refuses writes
        reason = f"it refused the upgrade ({type(why).__name__}: {why})"
    txn.rollback_to(savepoint)
    txn.notes.append((describe(old), reason))
    return new


def _upgrade_property(old: property, new: property, txn: Transaction) -> property:
    parts = []
    for part in ("fget", "fset", "fdel"):
        old_part, new_part = getattr(old, part), getattr(new, part)
        if (old_part is None) != (new_part is None):
            raise UpgradeError(f"its {part[1:]}ter was added or removed")
        if old_part is not None and upgrade(old_part, new_part, txn) is not old_part:
            raise UpgradeError(f"its {part[1:]}ter could not be upgraded in place")
        parts.append(part)
    txn.set(old, "__doc__", new.__doc__)
    txn.remember(new, old)
    return old


def _upgrade_wrapper(old: Any, new: Any, txn: Transaction) -> object:
    """``functools.lru_cache``-style wrappers: upgrade what they wrap, drop stale results."""
    inner = upgrade(old.__wrapped__, new.__wrapped__, txn)
    if inner is not old.__wrapped__:
        raise UpgradeError("the function it wraps could not be upgraded in place")
    clear = getattr(old, "cache_clear", None)
    if callable(clear):
        txn.on_commit(clear)
    txn.remember(new, old)
    return old


def upgrade_class(old: type, new: type, txn: Transaction) -> type:
    """Give ``old`` the namespace of ``new``, so old instances and subclasses follow."""
    _check_class_layout(old, new)
    txn.remember(new, old)
    _take_bases(old, new, txn)
    old_ns, new_ns = dict(old.__dict__), dict(new.__dict__)
    if isinstance(old, enum.EnumMeta):
        _keep_enum_members(old, new, new_ns, txn)
    kept = _CLASS_KEEP | _slot_names(new)
    gone = {n: v for n, v in old_ns.items() if n not in new_ns and n not in kept}
    for name in gone:
        txn.delete(old, name)
    graves = _bury_methods_gone(old, gone, txn)
    for name, value in new_ns.items():
        if name not in kept:
            _take_class_entry(old, name, old_ns.get(name, UNBOUND), value, txn, graves)
    _point_at_kept_class(new_ns, new, old, txn)
    return old


def _bury_methods_gone(cls: type, gone: Mapping[str, object], txn: Transaction) -> Graves:
    """The methods the new body of ``cls`` no longer defines are kept (``_tombstones``), for a
    later save that defines them again; the module's tombstones, to claim from."""
    methods = {name: value for name, value in gone.items() if _is_method_of(cls, value, txn.owner)}
    graves = graves_of(txn.owner, create=bool(methods))
    for name, value in methods.items():
        graves.bury_method(cls, name, value, txn)
    return graves


def _is_method_of(cls: type, value: object, owner: str) -> bool:
    """Is ``value`` a function (or ``staticmethod``, ``classmethod``, property, ``cached_property``,
    wrapper of one) that the body of ``cls`` defined: not a function of the module set on it from
    outside, which stays that function, nor code a class decorator generated (``@dataclass``'s
    ``__init__``), which the decorator makes again."""
    functions = _functions_in(value.func if isinstance(value, functools.cached_property) else value)
    prefix = f"{cls.__qualname__}."
    return bool(functions) and all(
        f.__module__ == owner and f.__qualname__.startswith(prefix) and not _generated(f) for f in functions
    )


def _generated(function: types.FunctionType) -> bool:
    """Is it code made by ``exec`` (its file ``<string>``), or a wrapper of such code
    (``@dataclass``'s ``__repr__``)?"""
    item: object = function
    for _ in range(16):  # a ``__wrapped__`` chain may loop
        if not isinstance(item, types.FunctionType):
            return False
        if item.__code__.co_filename.startswith("<"):
            return True
        item = item.__dict__.get("__wrapped__")
    return False


def _claim_method(graves: Graves, cls: type, name: str, new: object, txn: Transaction) -> object:
    """What ``cls`` holds as ``name``, a member its earlier version lost and its new body defines
    again: the entry kept for it, upgraded in place, where the new one is of its kind (a function
    for a function, a ``staticmethod`` for a ``staticmethod``...); else ``new``."""
    buried = graves.method(cls, name)
    if buried is None:
        return new
    graves.unbury_method(cls, name, txn)  # back, of whatever kind: a later removal keeps the new one
    if type(buried) is not type(new) or not _is_method_of(cls, new, txn.owner):
        return new
    return try_upgrade(buried, new, txn)


def _take_bases(old: type, new: type, txn: Transaction) -> None:
    if old.__bases__ == new.__bases__:
        return
    try:
        txn.set(old, "__bases__", new.__bases__)
    except TypeError as why:
        raise UpgradeError(f"its base classes changed and old instances cannot follow ({why})") from why


def _take_class_entry(
    old: type, name: str, old_value: object, value: object, txn: Transaction, graves: Graves
) -> None:
    """``old.name`` becomes ``value``: the old object itself, upgraded, where it carries code;
    for a name ``old`` lost to an earlier save, the method kept then (``_claim_method``)."""
    if old_value is UNBOUND:
        if graves:
            value = _claim_method(graves, old, name, value, txn)
    elif is_code(value) and owned_by(old_value, txn.owner):
        value = try_upgrade(old_value, value, txn)
    if old_value is not value:
        txn.set(old, name, value)


def _check_class_layout(old: type, new: type) -> None:
    if type(old) is not type(new):
        raise UpgradeError(
            f"its metaclass changed ({type(old).__name__} -> {type(new).__name__})"
        )
    if _slot_names(old) != _slot_names(new) or old.__basicsize__ != new.__basicsize__:
        raise UpgradeError(
            "its __slots__ or memory layout changed: instances made before cannot take it"
        )
    fields = getattr(old, "_fields", None)
    if issubclass(old, tuple) and fields is not None and fields != getattr(new, "_fields", None):
        raise UpgradeError(
            f"its fields changed ({', '.join(fields)} -> {', '.join(getattr(new, '_fields', ()))}): "
            "tuples made before keep the old fields and the old class"
        )


def _keep_enum_members(old: Any, new: Any, new_ns: dict[str, Any], txn: Transaction) -> None:
    """Old members stay the members (``is``, ``==``, dict keys), with the new definition.

    A member whose name survives is kept and takes the new member's attributes;
    a member of a data-type enum (``IntEnum``...) whose value changed cannot
    change its value in place: the new member replaces it, and the user is told.
    A member removed by an earlier save and now back is the one removed (``_tombstones``).
    Rewrites ``new_ns`` so every member entry and member map names the kept objects.
    """
    kept: dict[int, object] = {}
    graves = _bury_members_gone(old, new, txn)
    for name, member in new._member_map_.items():
        if id(member) in kept:  # an alias of a member already handled
            continue
        previous = old._member_map_.get(name)
        if previous is None and graves:
            previous = _claim_member(graves, old, name, kept, txn)
        if previous is not None and (old._member_type_ is object or previous._value_ == member._value_):
            _keep_member(previous, member, old, new, txn)
            kept[id(member)] = previous
        else:
            _adopt_member(name, member, previous, old, txn)
    _name_kept_members(new_ns, kept)


def _bury_members_gone(old: Any, new: Any, txn: Transaction) -> Graves:
    """Members of ``old`` the new body no longer defines are kept (``_tombstones``); the module's
    tombstones, to claim from."""
    gone = [(name, member) for name, member in old._member_map_.items() if name not in new._member_map_]
    graves = graves_of(txn.owner, create=bool(gone))
    for name, member in gone:
        graves.bury_member(old, name, member, txn)
    return graves


def _claim_member(graves: Graves, old: Any, name: str, kept: dict[int, object], txn: Transaction) -> object:
    """The member ``name`` an earlier save removed from ``old``, if no member holds it now."""
    buried = graves.member(old, name)
    if buried is None:
        return None
    graves.unbury_member(old, name, txn)
    members = old._member_map_.values()
    taken = any(buried is m for m in members) or any(buried is m for m in kept.values())
    return None if taken else buried


def _keep_member(previous: Any, member: Any, old: type, new: type, txn: Transaction) -> None:
    """The old member stays, with the new member's attributes (naming the kept class)."""
    for attr, value in vars(member).items():
        txn.set(previous, attr, old if value is new else value)


def _adopt_member(name: str, member: Any, previous: Any, old: type, txn: Transaction) -> None:
    """A new member (or one whose data value changed) joins the kept class."""
    txn.set(member, "__class__", old)
    txn.set(member, "__objclass__", old)
    if previous is not None:
        txn.notes.append(
            (f"{old.__qualname__}.{name}", "its value changed: references to the old member keep the old value")
        )


def _name_kept_members(new_ns: dict[str, Any], kept: dict[int, object]) -> None:
    """Every member entry and member map of ``new_ns`` names the kept members."""
    for key, value in list(new_ns.items()):
        if id(value) in kept:
            new_ns[key] = kept[id(value)]
        elif key in ("_member_map_", "_value2member_map_"):
            new_ns[key] = {k: kept.get(id(v), v) for k, v in value.items()}


def _slot_names(cls: type) -> frozenset[str]:
    slots = cls.__dict__.get("__slots__", ())
    if isinstance(slots, str):
        slots = (slots,)
    return frozenset(slots)


def _point_at_kept_class(ns: dict[str, object], new: type, old: type, txn: Transaction) -> None:
    """What the class's namespace holds may name the class built from the new body: closures
    (zero-argument ``super()``'s ``__class__`` cell; a hook a base's ``__init_subclass__`` made for
    it: ``typing.Protocol``'s ``__subclasshook__`` asks its class whether it is runtime-checkable)
    and descriptors told their owner by ``__set_name__``. Point them at the class kept."""
    for value in ns.values():
        for func in _functions_in(value):
            for cell in func.__closure__ or ():
                if _filled(cell) and cell.cell_contents is new:
                    txn.set_cell(cell, old)
        if not issubclass(type(value), (type, types.FunctionType, types.ModuleType)):
            for name, attribute in list(_own_dict(value).items()):
                if attribute is new:
                    _point_at(value, name, old, txn)


def _point_at(holder: object, name: str, kept: type, txn: Transaction) -> None:
    """``holder.name = kept``, unless the holder refuses writes (a frozen object keeps what it holds)."""
    try:
        txn.set(holder, name, kept)
    except (AttributeError, TypeError):
        return


def _own_dict(value: object) -> dict[str, object]:
    """``value.__dict__``, or an empty one; no ``__getattr__`` of the object runs."""
    try:
        own = object.__getattribute__(value, "__dict__")
    except AttributeError:
        return {}
    return own if isinstance(own, dict) else {}


def _functions_in(value: object) -> list[types.FunctionType]:
    """The functions ``value`` is or wraps; asked of what a class holds, so by type (see ``is_code``)."""
    kind = type(value)
    if issubclass(kind, types.FunctionType):
        return [typing.cast(types.FunctionType, value)]
    if issubclass(kind, (staticmethod, classmethod)):
        return _functions_in(typing.cast(Any, value).__func__)
    if issubclass(kind, property):
        accessors = typing.cast(property, value)
        return [f for f in (accessors.fget, accessors.fset, accessors.fdel) if type(f) is types.FunctionType]
    try:
        wrapped = getattr(value, "__wrapped__", None) if callable(value) else None
    except Exception:  # noqa: BLE001 - an object whose attribute reads raise holds no function of ours
        return []
    return _functions_in(wrapped) if wrapped is not None else []


def functions_named(
    value: object, name: str, owner: str, *, any_name: bool = False
) -> tuple[list[types.FunctionType], list[Any]]:
    """The functions called ``name`` that ``value`` is or wraps, and the caches on the way.

    Looks through ``__wrapped__``, ``__func__``, property parts, ``.func``
    (``partial``, ``cached_property``) and the closure cells of functions
    (decorators that do not use ``functools.wraps``), never into other objects.
    Returns ``(functions, cached wrappers)``.
    """
    found: list[types.FunctionType] = []
    caches: list[Any] = []
    seen: set[int] = set()
    stack = [value]
    while stack and len(seen) < 64:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if type(item) is types.FunctionType and _named_in(item, name, owner, any_name):
            found.append(item)
        stack += _captured_by(item)
        stack += _wrapped_by(item)
        if _is_cache(item):
            caches.append(item)
    return found, caches


def _named_in(function: types.FunctionType, name: str, owner: str, any_name: bool) -> bool:
    """Is it a function of module ``owner`` called ``name`` (any name, when ``any_name``)?"""
    return (any_name or function.__code__.co_name == name) and function.__module__ == owner


def _captured_by(item: object) -> list[object]:
    """The values a function's closure holds (a decorator without ``functools.wraps`` keeps the
    function it decorates there)."""
    if type(item) is not types.FunctionType:
        return []
    return [c.cell_contents for c in item.__closure__ or () if _filled(c)]


def _is_cache(item: object) -> bool:
    """``functools.lru_cache``/``cache`` wrappers (and look-alikes): results to drop. Read from the
    object's own dict and its type (see ``is_code``)."""
    return (
        callable(item)
        and not issubclass(type(item), type)
        and "__wrapped__" in (own := _own_dict(item))
        and callable(own.get("cache_clear", getattr(type(item), "cache_clear", None)))
    )


def _wrapped_by(item: object) -> list[object]:
    """What ``item`` wraps, told by its type and read from its own dict (see ``is_code``)."""
    kind, wrapper = type(item), typing.cast(Any, item)
    if issubclass(kind, (staticmethod, classmethod)):
        return [wrapper.__func__]
    if issubclass(kind, property):
        return [f for f in (wrapper.fget, wrapper.fset, wrapper.fdel) if f is not None]
    if issubclass(kind, (functools.partial, functools.cached_property)):
        return [wrapper.func]
    if issubclass(kind, type) or not callable(item):
        return []
    held = _own_dict(item)
    if kind is types.FunctionType:
        wrapped = held.get("__wrapped__")
        return [] if wrapped is None else [wrapped]
    # A callable object that wraps a function (``toolz.curry``, a class used as a decorator): what
    # its ``__wrapped__`` holds, whatever it is, and the functions and partials among its attributes.
    return [
        value
        for name, value in held.items()
        if name == "__wrapped__" or issubclass(type(value), (types.FunctionType, functools.partial))
    ]


def _filled(cell: types.CellType) -> bool:
    try:
        _ = cell.cell_contents
    except ValueError:  # an empty cell
        return False
    return True
