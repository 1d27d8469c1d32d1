"""Libraries' derived data, made again after a class is upgraded in place.

A class kept through an edit keeps its identity, so whatever a library derived
from its old body and stored stays as it was: ``abc`` answers ``isinstance`` from
a cache, ``typing`` lists a protocol's members once. Each
library's rebuild is one entry of ``REBUILDS``: a small function of the classes
one reload kept, consulted only when its library is imported already (hotswap
never imports one), writing through the transaction like every other step.
"""

from __future__ import annotations

import abc
import sys
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from ._undo import Transaction

__all__ = ["REBUILDS", "KeptClass", "Rebuild", "rebuild_derived"]


class KeptClass(NamedTuple):
    """A class upgraded in place by one reload, and what it was before."""

    cls: type
    before: Mapping[str, Any]  # its own attributes before the reload
    mro_before: tuple[type, ...]

    @property
    def shape_changed(self) -> bool:
        """Did it gain or lose a member or a base (what structural checks look at)?"""
        return self.mro_before != self.cls.__mro__ or self.before.keys() != vars(self.cls).keys()


class Rebuild(NamedTuple):
    """One library's rebuild: ``run(kept, txn)`` once a reload kept classes, if ``library`` is imported."""

    library: str
    run: Callable[[Sequence[KeptClass], Transaction], None]


def rebuild_derived(kept: Sequence[KeptClass], txn: Transaction) -> None:
    """What each imported library derived from the kept classes is made again."""
    if not kept:
        return
    for rebuild in REBUILDS:
        if rebuild.library in sys.modules:
            rebuild.run(kept, txn)


# -- abc and typing: cached isinstance answers, protocol members ------------------


def forget_abc_answers(kept: Sequence[KeptClass], txn: Transaction) -> None:
    """``isinstance`` asks the ABC's caches first: every ABC that may have answered about a class
    whose members or bases changed forgets its answers (now, and again if the reload is undone)."""
    changed = [k for k in kept if k.shape_changed]
    if not changed:
        return
    for k in changed:
        _protocol_members_again(k.cls, txn)
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
        if "__callable_proto_members_only__" in own:
            txn.set(sub, "__callable_proto_members_only__", all(callable(getattr(sub, m, None)) for m in members))
        if "__non_callable_proto_members__" in own:
            txn.set(sub, "__non_callable_proto_members__", {m for m in members if not callable(getattr(sub, m, None))})


REBUILDS: tuple[Rebuild, ...] = (
    Rebuild("abc", forget_abc_answers),
)
