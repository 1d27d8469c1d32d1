"""Leaf dependents, followed all at once: the common case at each edit of a module that many
others take names from (200 modules ``from core import THRESHOLD``, each ``LIMIT = THRESHOLD * 2``).

A leaf of ``source`` takes names from no other user module and gives none to any: in a check,
only ``source`` can change it, and it changes nothing further. What following it needs (its
namespace, the names it took, how it re-runs what reads them) is found once and kept in a table
per source and changed names, for as long as the import graph and the watched modules stay as
they were. An edit then walks the table: a handful of objects touched per leaf, no outcome made
for it unless one is asked for. A leaf the table cannot vouch for this time (a name re-assigned
since, a value that is not plain, a statement that fails) is handed back, untouched, to go the
general way as any other dependent: the table only ever takes a shortcut to the same result.
"""

from __future__ import annotations

import operator
import sys
from collections.abc import Container, Mapping
from dataclasses import dataclass
from itertools import repeat
from types import ModuleType
from typing import Any, NamedTuple

from ._aftercare import CachesSeen, caches_of, caches_seen, holds_as_seen, holds_no_code
from ._follow import Batch, all_plain, recipe_for
from ._graph import Edge
from ._outcomes import Reloaded
from ._source import SourceVersion
from ._undo import Writes
from ._vocab import UNBOUND, UNKNOWN
from ._watch import Watched

__all__ = ["Followed", "Leaf", "LeafTable", "Shape", "fill_recipes", "follow_leaves", "followed_outcomes"]



@dataclass(slots=True, eq=False)
class Leaf:
    """One leaf of a source, and how it took the names of its table."""

    name: str
    module: ModuleType
    namespace: dict[str, Any]
    watched: Watched
    running: SourceVersion  # the text it ran when the table was made
    edges: tuple[Edge, ...]  # its imports of the table's names, for the general way
    where: tuple[str, ...]  # "dep_000.THRESHOLD", for reports
    caches: CachesSeen  # where its caches were last looked for
    recipe: Any = UNKNOWN  # how it re-runs what reads them: found at its first follow (or idle)


# the names a leaf bound, and the names of the source it bound them to
Shape = tuple[tuple[str, ...], tuple[str, ...]]


@dataclass(slots=True)
class LeafTable:
    """The leaves of one source for one tuple of its names, by how they took them, and the
    other imports of those names."""

    stamp: tuple[int, int]  # the graph's stamp of the source, the watchlist's generation
    groups: dict[Shape, list[Leaf]]
    others: list[Edge]  # namespaces, modules that are not leaves: the general way


class Followed(NamedTuple):
    """What a leaf that followed did: the names it bound, what they held and hold now, and the
    way back of its recipe's statements (None when only names were re-bound)."""

    leaf: Leaf
    aliases: tuple[str, ...]
    olds: tuple[object, ...]
    news: tuple[object, ...]
    writes: Writes | None


def follow_leaves(
    table: LeafTable,
    changes: Mapping[str, tuple[object, object]],
    busy: Container[str],
    done: set[str],
    where: list[str],
    followed: list[Followed] | None,
) -> list[Leaf]:
    """Follow the table's leaves that are as it knew them and not ``busy`` (their own save is
    in this check); those followed join ``done``, ``where`` and ``followed`` (if it is kept).
    The others are handed back."""
    handed_back: list[Leaf] = []
    for (aliases, takes), leaves in table.groups.items():
        group = _Group(aliases, tuple(changes[name][0] for name in takes), tuple(changes[name][1] for name in takes))
        handed_back += _follow_group(group, leaves, busy, done, where, followed)
    return handed_back


class _Group:
    """The leaves that took the same names the same way, at one edit: what they follow, and the
    results of their batches, by inputs (computed once, assigned in every leaf of those inputs)."""

    __slots__ = ("aliases", "assigned", "kept", "news", "no_code", "olds", "plain", "rebinding")

    def __init__(self, aliases: tuple[str, ...], olds: tuple[object, ...], news: tuple[object, ...]) -> None:
        self.aliases, self.olds, self.news = aliases, olds, news
        self.plain = all_plain(news)
        self.kept = not any(map(operator.is_, news, repeat(UNBOUND)))  # no name goes
        self.no_code = holds_no_code(news)  # (a batch binds plain values only)
        self.rebinding = dict(zip(aliases, news))
        self.assigned: dict[object, dict[str, object]] = {}  # batch inputs -> the names to assign


class _HandBack(Exception):
    """This leaf goes the general way: nothing of it was changed."""


def _follow_group(
    group: _Group, leaves: list[Leaf], busy: Container[str], done: set[str], where: list[str], followed: list[Followed] | None
) -> list[Leaf]:
    """``follow_leaves`` for the leaves of one group (written for speed: it runs for each of
    hundreds of modules)."""
    handed_back: list[Leaf] = []
    is_, modules_get = operator.is_, sys.modules.get
    aliases, olds = group.aliases, group.olds
    first, first_old, single = aliases[0], olds[0], len(aliases) == 1
    for leaf in leaves:
        name, namespace = leaf.name, leaf.namespace
        if (
            name in busy
            or name in done
            or leaf.watched.running is not leaf.running
            or modules_get(name) is not leaf.module
            or namespace.get(first, UNBOUND) is not first_old
            or not (single or all(map(is_, map(namespace.get, aliases, repeat(UNBOUND)), olds)))
        ):
            handed_back.append(leaf)  # re-imported, re-assigned, or its own save: the general way
            continue
        try:
            writes = _follow_leaf(group, leaf, followed is not None)
        except _HandBack:
            handed_back.append(leaf)
            continue
        done.add(name)
        where += leaf.where
        if followed is not None:
            followed.append(Followed(leaf, aliases, olds, group.news, writes))
    return handed_back


def _follow_leaf(group: _Group, leaf: Leaf, keep: bool) -> Writes | None:
    """Follow one leaf as its recipe says, and clear its caches; its way back if ``keep``
    (or if it ran its statements). Raises ``_HandBack``, having changed nothing, where the
    recipe cannot vouch for it this time."""
    namespace = leaf.namespace
    recipe = leaf.recipe
    if recipe is UNKNOWN:
        recipe = leaf.recipe = recipe_for(leaf.running, group.aliases)
    writes = None
    if type(recipe) is Batch:
        writes = _run_batch(group, recipe, namespace, keep)
    elif recipe == () and group.kept:
        namespace.update(group.rebinding)  # nothing reads them at import: re-bound
    else:
        raise _HandBack()
    seen = leaf.caches  # as ``caches_still_in``, with where they were kept in the leaf
    if not (group.no_code and holds_as_seen(namespace, seen)):
        caches_of(leaf.module)
        seen = leaf.caches = caches_seen(leaf.module)
    for cache in seen.caches:
        cache.cache_clear()
    return writes


def _run_batch(group: _Group, batch: Batch, namespace: dict[str, Any], keep: bool) -> Writes | None:
    """Run a leaf's batch, or assign what the same batch gave on the same inputs."""
    if not (group.plain and batch.runs_in(namespace)):
        raise _HandBack()  # a value that is not plain, a name gone: the general way
    inputs = batch.inputs(namespace)
    values = group.assigned.get(inputs)
    if values is None:
        try:
            ran = batch.run(namespace, group.aliases, group.olds, group.news)
        except BaseException:  # noqa: BLE001 - put back: the general way runs it, and says it
            raise _HandBack() from None
        group.assigned[inputs] = {**group.rebinding, **{n: namespace[n] for n in batch.names}}
        return ran
    writes = batch.writes(namespace, group.aliases, group.olds) if keep else None
    namespace.update(values)
    return writes


def fill_recipes(table: LeafTable) -> None:
    """Take the recipes the warm-up found (the first follow of each leaf then needs no lookup)."""
    for (aliases, _), leaves in table.groups.items():
        for leaf in leaves:
            if leaf.recipe is UNKNOWN:
                leaf.recipe = leaf.running.memo.get(aliases, UNKNOWN)


def followed_outcomes(followed: list[Followed], source: str) -> list[Reloaded]:
    """One outcome per leaf that followed, as the general way makes them (for reports)."""
    outcomes = []
    after = (source,)
    for leaf, aliases, olds, news, writes in followed:
        changes = dict(zip(aliases, zip(olds, news)))
        recipe = leaf.recipe
        rebound = writes.changed(recipe.names) if writes is not None else {}
        changes.update(rebound)
        outcomes.append(
            Reloaded(
                leaf.name,
                leaf.watched.path,
                rebound=tuple(rebound),
                reran=recipe.labels if isinstance(recipe, Batch) else (),
                followed=aliases,
                after=after,
                changes=changes,
            )
        )
    return outcomes
