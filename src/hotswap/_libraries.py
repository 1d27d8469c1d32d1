"""Libraries' derived data, made again after a class is upgraded in place.

A class kept through an edit keeps its identity, so whatever a library derived
from its old body and stored stays as it was: ``abc`` answers ``isinstance`` from
a cache, ``typing`` lists a protocol's members once, ``singledispatch`` caches
its choice per class, dataclasses, pydantic and attrs copy a base's fields into
each subclass, pydantic compiles a validator that calls the functions the class
had when it was made. Each library's rebuild is one entry of ``REBUILDS``: a
small function of what one reload kept (``Upgraded``), consulted only when its
library is imported already (hotswap never imports one), writing through the
transaction like every other step.
"""

from __future__ import annotations

import abc
import dataclasses
import functools
import sys
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from ._undo import Transaction
from ._vocab import is_class

__all__ = ["REBUILDS", "KeptClass", "Rebuild", "Upgraded", "rebuild_derived"]


class KeptClass(NamedTuple):
    """A class upgraded in place by one reload, and what it was before."""

    cls: type
    before: Mapping[str, Any]  # its own attributes before the reload
    mro_before: tuple[type, ...]

    @property
    def shape_changed(self) -> bool:
        """Did it gain or lose a member, an annotated name (a protocol's ``mode: str``) or a base:
        what structural checks look at?"""
        now = vars(self.cls)
        return (
            self.mro_before != self.cls.__mro__
            or self.before.keys() != now.keys()
            or _annotated(self.before) != _annotated(now)
        )


def _annotated(namespace: Mapping[str, Any]) -> frozenset[str]:
    annotations = namespace.get("__annotations__")
    return frozenset(annotations) if isinstance(annotations, dict) else frozenset()


Namespaces = Callable[[], Iterable[dict[str, Any]]]


class Upgraded(NamedTuple):
    """What one reload kept in place, the transaction its writes go through, and where the user's
    other code lives (the module's namespace, its dependents', the user's), looked at on demand.
    A rebuild adds to ``remake_subclasses`` a kept class whose subclasses copied what changed
    (a dataclass's fields): the modules that import it run their statements that read it again."""

    classes: Sequence[KeptClass]
    txn: Transaction
    namespaces: Namespaces
    remake_subclasses: list[type]


class Rebuild(NamedTuple):
    """One library's rebuild: ``run(upgraded)`` once a reload kept classes, if ``library`` is
    imported (None: whatever is)."""

    library: str | None
    run: Callable[[Upgraded], None]


def rebuild_derived(kept: Sequence[KeptClass], txn: Transaction, namespaces: Namespaces) -> list[type]:
    """What each imported library derived from the kept classes is made again; returns the kept
    classes whose subclasses elsewhere must be made again."""
    if not kept:
        return []
    upgraded = Upgraded(kept, txn, namespaces, [])
    for rebuild in REBUILDS:
        if rebuild.library is None or rebuild.library in sys.modules:
            rebuild.run(upgraded)
    return upgraded.remake_subclasses


# -- abc and typing: cached isinstance answers, protocol members ------------------


def forget_abc_answers(upgraded: Upgraded) -> None:
    """``isinstance`` asks the ABC's caches first: every ABC that may have answered about a class
    whose members or bases changed forgets its answers (now, and again if the reload is undone)."""
    kept, txn = upgraded.classes, upgraded.txn
    changed = [k for k in kept if k.shape_changed]
    if not changed:
        return
    for k in changed:
        _protocol_members_again(k.cls, txn)
        _abstract_methods_again(k.cls, txn)
    abcs = _abcs_that_may_have_answered(changed)
    txn.call_with_undo(_forget_answers, abcs, undo_args=(abcs,))


def _abcs_that_may_have_answered(changed: Iterable[KeptClass]) -> list[abc.ABCMeta]:
    """The changed ABCs and their subclasses, the ABCs each changed class had or has as a base,
    and the ABCs that answer by looking at members (``Iterable``, every protocol)."""
    found: dict[int, abc.ABCMeta] = {}
    for k in changed:
        for cls in (*_with_subclasses(k.cls), *k.mro_before, *k.cls.__mro__):
            if isinstance(cls, abc.ABCMeta):
                found[id(cls)] = cls
    found.update((id(cls), cls) for cls in _structural_abcs())
    return list(found.values())


def _structural_abcs() -> Iterator[abc.ABCMeta]:
    """The ABCs whose answer depends on the members a class has, not on its bases."""
    import collections.abc
    import contextlib
    import os

    places = [vars(collections.abc).values(), vars(contextlib).values(), [os.PathLike]]
    yield from (v for place in places for v in place if isinstance(v, abc.ABCMeta))
    for protocol_base in _protocol_bases():
        protocol: type
        for protocol in type.__subclasses__(protocol_base):
            if isinstance(protocol, abc.ABCMeta):
                yield protocol


def _protocol_bases() -> list[type]:
    """``typing.Protocol``, and ``typing_extensions``' own where it has one (a protocol names its
    base directly: a sub-protocol repeats ``Protocol`` in its bases)."""
    bases: list[type] = [typing.Protocol]
    extensions = sys.modules.get("typing_extensions")
    other = getattr(extensions, "Protocol", None)
    if isinstance(other, type) and other is not typing.Protocol:
        bases.append(other)
    return bases


def _with_subclasses(cls: type) -> list[type]:
    seen: dict[int, type] = {id(cls): cls}
    todo = [cls]
    while todo:
        sub: type
        for sub in type.__subclasses__(todo.pop()):
            if id(sub) not in seen:
                seen[id(sub)] = sub
                todo.append(sub)
    return list(seen.values())


def _forget_answers(abcs: Iterable[abc.ABCMeta]) -> None:
    for cls in abcs:
        abc.ABCMeta._abc_caches_clear(cls)  # type: ignore[attr-defined]  # abc's own method, not in typeshed


def _abstract_methods_again(changed: type, txn: Transaction) -> None:
    """``ABCMeta`` lists a class's abstract methods when it is made: the subclasses of a changed
    ABC list them again (a method it made abstract: a subclass lacking it can no longer be
    instantiated, as after a fresh import), parents before children."""
    if not isinstance(changed, abc.ABCMeta):
        return
    for sub in _with_subclasses(changed)[1:]:
        if isinstance(sub, abc.ABCMeta):
            txn.keep_attribute(sub, "__abstractmethods__")
            abc.update_abstractmethods(typing.cast(Any, sub))


def _protocol_members_again(changed: type, txn: Transaction) -> None:
    """``typing`` lists a protocol's members when the class is made (3.12+): a sub-protocol of a
    changed protocol made before the edit lists them again. Only what this Python stores is set."""
    members_of = getattr(typing, "_get_protocol_attrs", None)
    if members_of is None or not vars(changed).get("_is_protocol"):
        return
    for sub in _with_subclasses(changed)[1:]:
        own = vars(sub)
        if not own.get("_is_protocol") or "__protocol_attrs__" not in own:
            continue
        members = members_of(sub)
        txn.set(sub, "__protocol_attrs__", members)
        not_callable = {m for m in members if not callable(getattr(sub, m, None))}
        derived = {"__callable_proto_members_only__": not not_callable, "__non_callable_proto_members__": not_callable}
        for name, value in derived.items():
            if name in own:
                txn.set(sub, name, value)


# -- functools: the implementation singledispatch chose per class -----------------------


def forget_dispatch_choices(upgraded: Upgraded) -> None:
    """``functools.singledispatch`` caches the implementation it chose for each class: a class whose
    bases changed is dispatched again by every dispatcher the user's namespaces hold (the module's,
    its dependents', the user's; a ``singledispatchmethod``'s is in its class)."""
    if not any(k.mro_before != k.cls.__mro__ for k in upgraded.classes):
        return
    dispatchers: dict[int, Callable[[], None]] = {}
    for namespace in upgraded.namespaces():
        for value in namespace.values():
            for candidate in (value, *(vars(value).values() if is_class(value) else ())):
                clear = _dispatch_cache_clear(candidate)
                if clear is not None:
                    dispatchers[id(candidate)] = clear
    clears = list(dispatchers.values())
    upgraded.txn.call_with_undo(_clear_all, clears, undo_args=(clears,))


def _dispatch_cache_clear(value: object) -> Callable[[], None] | None:
    """A ``singledispatch`` function's (or ``singledispatchmethod``'s) cache clearing, if it is one:
    read from the function's own dict, its type tested by ``type()`` (no attribute hook of the
    user's objects runs: ``isinstance`` would read a proxy's ``__class__``)."""
    if issubclass(type(value), functools.singledispatchmethod):
        value = vars(value).get("dispatcher")
    if type(value) is not types.FunctionType or "registry" not in vars(value):
        return None
    clear = vars(value).get("_clear_cache")
    return clear if callable(clear) else None


def _clear_all(clears: Iterable[Callable[[], None]]) -> None:
    for clear in clears:
        clear()


# -- dataclasses, pydantic, attrs: fields copied into subclasses ---------------------


_RECORD_FIELDS = ("__dataclass_fields__", "__pydantic_fields__", "__attrs_attrs__")


def _fields_changed(k: KeptClass, fields: str) -> bool:
    """Did the names of the fields a library lists in ``fields`` (``__dataclass_fields__``...) change?"""
    before, now = _field_names(k.before, fields), _field_names(vars(k.cls), fields)
    return before is not None and now is not None and before != now


def _field_names(namespace: Mapping[str, Any], fields: str) -> frozenset[str] | None:
    """The names of the fields a class's namespace lists under ``fields`` (a dict by name, as
    dataclasses and pydantic keep them, or attrs' ``Attribute`` tuple); None if it lists none."""
    items = namespace.get(fields)
    if items is None:
        return None
    return frozenset(item if isinstance(item, str) else item.name for item in typing.cast(Iterable[Any], items))


def remake_subclasses_of_changed_records(upgraded: Upgraded) -> None:
    """dataclasses, pydantic and attrs copy a class's fields into its subclasses when they are made:
    the subclasses of a kept class whose fields changed are made again (a fresh import makes them
    from the new fields)."""
    for k in upgraded.classes:
        subclasses: list[type] = type.__subclasses__(k.cls)
        if subclasses and any(_fields_changed(k, f) for f in _RECORD_FIELDS):
            upgraded.remake_subclasses.append(k.cls)
            for sub in subclasses:
                if not hasattr(sys.modules.get(sub.__module__), "__file__"):
                    upgraded.txn.notes.append((
                        f"class {sub.__qualname__} (made in the session)",
                        f"made from {k.cls.__qualname__} before its fields changed, it keeps the fields it "
                        "was made with until its class statement runs again",
                    ))


# -- fields added after objects were made --------------------------------------------


class FieldAddedLater:
    """A field that objects made before it existed lack. Read on one of them: its default, stored
    on that object as a fresh one would hold it (``default(obj)``), or, with no default, an error
    that says why. Read on a subclass (pydantic making one looks for a default there), it is not
    there: only the objects of the class it was put on lack the field."""

    def __init__(self, cls: type, name: str, default: Callable[[object], object] | None) -> None:
        self.cls, self.name, self.default = cls, name, default

    def __get__(self, instance: object, owner: type | None = None) -> object:
        if instance is None:
            if owner is not None and owner is not self.cls:
                raise AttributeError(self.name)
            return self
        if self.default is None:
            raise AttributeError(
                f"{self.cls.__qualname__}.{self.name}: this object was made before the field {self.name!r} "
                "existed and it has no default (hotswap added it in place)"
            )
        value = self.default(instance)
        vars(instance)[self.name] = value
        return value

    def __repr__(self) -> str:
        return f"<field {self.name!r} added after some {self.cls.__qualname__} objects were made>"


class _Missing:
    """What an object made before a field without a default was added reads for it: its ``repr``
    and ``==`` still work."""

    def __repr__(self) -> str:
        return "<missing: this object was made before the field existed>"


MISSING_FIELD = _Missing()

Defaults = Mapping[str, "tuple[Callable[[object], object] | None, str]"]  # field -> (default, what reading gives)


def place_added_fields(k: KeptClass, before: frozenset[str], defaults: Defaults, txn: Transaction) -> None:
    """The fields objects made before lack get a ``FieldAddedLater`` on the class (said once, at the
    save that added them; kept through later saves while the field lasts)."""
    cls = k.cls
    for name, (default, reading) in defaults.items():
        if name in vars(cls):
            continue  # the class holds a value for it (a class attribute): old objects read that
        if name in before and not isinstance(k.before.get(name), FieldAddedLater):
            continue
        txn.set(cls, name, FieldAddedLater(cls, name, default))
        if name not in before:
            txn.notes.append((f"class {cls.__qualname__}", f"objects made before have no field {name!r}: {reading}"))


# -- dataclasses: instances made before a field was added ----------------------------


def dataclass_fields_for_objects_made_before(upgraded: Upgraded) -> None:
    """A field with a default is a class attribute, which objects made before read; one with a
    factory or none is not: those objects read the factory's value, or ``<missing: ...>``, so
    their ``==`` and ``repr`` still work (a class with ``__slots__`` has no room for either)."""
    for k in upgraded.classes:
        before = _field_names(k.before, "__dataclass_fields__")
        if before is not None and dataclasses.is_dataclass(k.cls) and "__slots__" not in vars(k.cls):
            defaults = {f.name: _dataclass_default(f) for f in dataclasses.fields(k.cls)}
            place_added_fields(k, before, defaults, upgraded.txn)


def _dataclass_default(field: dataclasses.Field[Any]) -> tuple[Callable[[object], object], str]:
    factory = field.default_factory
    if factory is not dataclasses.MISSING:
        return (lambda instance: factory()), "they read its default"
    default = field.default
    if default is not dataclasses.MISSING:
        return (lambda instance: default), "they read its default"
    return (lambda instance: MISSING_FIELD), f"they read it as {MISSING_FIELD!r}"


# -- pydantic (v2): the validator and serializer, compiled from the class ----------------

_PYDANTIC_BUILT = ("__pydantic_core_schema__", "__pydantic_validator__", "__pydantic_serializer__", "__pydantic_complete__")


def rebuild_pydantic_models(upgraded: Upgraded) -> None:
    """A model's validator calls the functions the class had when it was made: after its body ran
    again, those of the class built from the new body, which the kept class's upgraded functions
    replaced. The model's decorators are pointed at the kept functions and its schema is built again,
    so a later edit of a validator's body reaches validation; so is every model that uses it as a
    field's type. Objects made before a field was added read its default (set on them at the first
    read), or are said to lack it."""
    kept, txn = upgraded.classes, upgraded.txn
    models = [k for k in kept if _base_model_of(k.cls) and "__pydantic_decorators__" in vars(k.cls)]
    for k in models:
        txn.set(k.cls, "__pydantic_decorators__", _decorators_kept(vars(k.cls)["__pydantic_decorators__"], txn.upgraded))
        _build_again(k.cls, txn, "validators edited later reach it only after its class body runs again")
        _objects_made_before(k, txn)
    if models:
        _rebuild_models_using(models, {id(k.cls) for k in kept}, txn)


def _base_model_of(cls: type) -> type | None:
    return next((b for b in cls.__mro__[1:] if b.__module__ == "pydantic.main" and b.__name__ == "BaseModel"), None)


def _build_again(cls: Any, txn: Transaction, else_: str) -> None:
    """``model_rebuild(force=True)``; if pydantic refuses, the class keeps what it validated with, said."""
    built = {name: vars(cls)[name] for name in _PYDANTIC_BUILT if name in vars(cls)}
    try:
        cls.model_rebuild(force=True)
    except Exception as why:  # noqa: BLE001 - what it validated with still works
        for name, value in built.items():
            txn.set(cls, name, value)
        txn.notes.append((
            f"class {cls.__qualname__}",
            f"pydantic could not build its validator again ({type(why).__name__}: {why}): {else_}",
        ))


def _rebuild_models_using(models: Sequence[KeptClass], kept: set[int], txn: Transaction) -> None:
    """pydantic copies the schema of a model used as a field type (``items: list[Item]``) into the
    using model's validator: every model whose schema names a model that ran again is built again."""
    base_model = _base_model_of(models[0].cls)
    assert base_model is not None
    changed = {id(k.cls) for k in models}
    for model in _with_subclasses(base_model)[1:]:
        schema = vars(model).get("__pydantic_core_schema__")
        if id(model) in kept or not isinstance(schema, dict) or not _names_a_class(schema, changed):
            continue
        txn.keep_class_dict(model)
        _build_again(model, txn, "it validates its fields of models that changed as they were")


def _names_a_class(schema: dict[str, Any], classes: set[int]) -> bool:
    """Does a pydantic core schema (nested dicts and lists) hold one of ``classes``?"""
    todo: list[object] = [schema]
    while todo:
        item = todo.pop()
        if isinstance(item, dict):
            todo.extend(item.values())
        elif isinstance(item, (list, tuple)):
            todo.extend(item)
        elif isinstance(item, type) and id(item) in classes:
            return True
    return False


def _objects_made_before(k: KeptClass, txn: Transaction) -> None:
    cls = k.cls
    fields_before = _field_names(k.before, "__pydantic_fields__")
    if fields_before is not None:
        place_added_fields(k, fields_before, _pydantic_defaults(cls), txn)
    if any(isinstance(value, FieldAddedLater) for value in vars(cls).values()):
        for name in _READ_ALL_FIELDS:
            own = vars(cls).get(name)
            if own is None or vars(own).get("fills_added_fields") is cls:
                txn.set(cls, name, _filling_first(cls, name))


# What pydantic reads from an object's ``__dict__`` all at once (its serializer, ``==``, ``repr``, copies).
_READ_ALL_FIELDS = (
    "model_dump", "model_dump_json", "model_copy", "__eq__", "__repr_args__", "__iter__", "__copy__",
    "__deepcopy__", "__getstate__",
)


def _filling_first(cls: type, name: str) -> Callable[..., Any]:
    """``name`` as pydantic defines it, once the object (and the other one, for ``==``) holds the
    fields added after it was made: what a fresh object holds."""

    def read_all(self: object, *args: Any, **kwargs: Any) -> Any:
        fill_added_fields(self)
        if args and isinstance(args[0], cls):
            fill_added_fields(args[0])
        return getattr(super(cls, typing.cast(Any, self)), name)(*args, **kwargs)

    read_all.__name__, read_all.__qualname__ = name, f"{cls.__qualname__}.{name}"
    vars(read_all)["fills_added_fields"] = cls
    return read_all


def fill_added_fields(instance: object) -> None:
    """Store on ``instance`` what each field added after it was made gives it (its default)."""
    own = vars(instance)
    for klass in type(instance).__mro__:
        for name, value in list(vars(klass).items()):
            if isinstance(value, FieldAddedLater) and name not in own and value.default is not None:
                value.__get__(instance, type(instance))


def _decorators_kept(decorators: Any, kept_for: Mapping[int, object]) -> Any:
    """A copy of pydantic's ``DecoratorInfos`` whose entries call the kept functions."""

    def kept(entry: Any) -> Any:
        func = _kept_callable(entry.func, kept_for)
        return entry if func is entry.func else dataclasses.replace(entry, func=func)

    changes = {
        f.name: {name: kept(entry) for name, entry in getattr(decorators, f.name).items()}
        for f in dataclasses.fields(decorators)
        if isinstance(getattr(decorators, f.name), dict)
    }
    return dataclasses.replace(decorators, **changes)


def _kept_callable(func: object, kept_for: Mapping[int, object]) -> object:
    """``func``, or what the reload kept in its place; a bound method (pydantic keeps a classmethod
    bound to the class) binds the kept function to the kept class."""
    if isinstance(func, types.MethodType):
        function, owner = kept_for.get(id(func.__func__), func.__func__), kept_for.get(id(func.__self__), func.__self__)
        if function is func.__func__ and owner is func.__self__:
            return func
        return types.MethodType(typing.cast(Callable[..., Any], function), owner)
    return kept_for.get(id(func), func)


def _pydantic_defaults(cls: Any) -> Defaults:
    def default_of(info: Any) -> Callable[[object], object]:
        def default(instance: object) -> object:
            try:
                return info.get_default(call_default_factory=True, validated_data=dict(vars(instance)))
            except TypeError:  # before pydantic 2.10: no factory takes the data
                return info.get_default(call_default_factory=True)

        return default

    fields: Mapping[str, Any] = getattr(cls, "__pydantic_fields__", {})
    return {
        name: (None, "they raise AttributeError on reading it") if info.is_required()
        else (default_of(info), "they read its default")
        for name, info in fields.items()
    }


# -- attrs: instances made before a field was added ----------------------------------


def attrs_fields_for_objects_made_before(upgraded: Upgraded) -> None:
    """attrs keeps no class attribute for a field: an object made before one was added (a class
    without ``__slots__``: with them, the layout changed and the class is not kept) reads its
    default, or ``<missing: ...>`` as dataclasses' do, so its ``==`` and ``repr`` still work."""
    for k in upgraded.classes:
        before = _field_names(k.before, "__attrs_attrs__")
        now = vars(k.cls).get("__attrs_attrs__")
        if before is not None and now is not None and "__slots__" not in vars(k.cls):
            place_added_fields(k, before, {a.name: _attrs_default(a) for a in now}, upgraded.txn)


def _attrs_default(attribute: Any) -> tuple[Callable[[object], object], str]:
    default = attribute.default
    factory = getattr(default, "factory", None)
    if callable(factory) and type(default).__name__ == "Factory":
        takes_self = getattr(default, "takes_self", False)
        return (lambda instance: factory(instance) if takes_self else factory()), "they read its default"
    if type(default).__name__ == "_Nothing":
        return (lambda instance: MISSING_FIELD), f"they read it as {MISSING_FIELD!r}"
    return (lambda instance: default), "they read its default"


REBUILDS: tuple[Rebuild, ...] = (
    Rebuild("abc", forget_abc_answers),
    Rebuild(None, remake_subclasses_of_changed_records),
    Rebuild("dataclasses", dataclass_fields_for_objects_made_before),
    Rebuild("functools", forget_dispatch_choices),
    Rebuild("pydantic", rebuild_pydantic_models),
    Rebuild("attr", attrs_fields_for_objects_made_before),
)
