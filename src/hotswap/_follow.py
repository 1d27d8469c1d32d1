"""Follow: the short way by which a dependent whose text did not change follows what it imports.

At each edit of a module, most of its dependents need only this: re-bind the
names they took (``THRESHOLD``) and re-run the few statements that read them
(``LIMIT = THRESHOLD * 2``). No definition re-runs, no class statement, no code
object to upgrade, so the general transaction (``_transaction``) is not needed:
a ``Writes`` record of what each name held before is the way back. What a
dependent re-runs (its recipe) is found once per text and names, and kept.
Where the short way cannot vouch for the result, it says so (``None``) and the
general way (``_apply``) runs.
"""

from __future__ import annotations

import ast
import operator
import re
import sys
import types
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from itertools import repeat
from typing import Any

from . import _diff, _parse
from ._aftercare import caches_of, caches_still_in
from ._bounded import MIB, SizedCache
from ._diff import Kind, Plan, Step
from ._outcomes import Failure, Reloaded, run_failure
from ._scan import NAMESPACE
from ._source import SourceVersion
from ._undo import Writes, any_unbound
from ._upgrade import is_code
from ._vocab import PLAIN_DATA, SCALARS, UNBOUND, UNKNOWN, is_dunder

__all__ = [
    "Batch",
    "all_changed",
    "all_plain",
    "came_and_went",
    "follow_unchanged",
    "prepare_follow",
    "prepare_reload",
    "recipe_for",
    "steps_to_visit",
    "used_beyond_import",
]


def follow_unchanged(
    module: types.ModuleType,
    version: SourceVersion,
    rebind: Mapping[str, tuple[object, object]],
    after: tuple[str, ...],
) -> Reloaded | Failure | None:
    """A dependent whose text did not change, where only plain values follow: the short way.

    This is what most dependents need at each edit of what they import (re-bind
    ``THRESHOLD``, re-run ``LIMIT = THRESHOLD * 2``), so it skips what cannot
    happen then: no definition re-runs, no class statement, no code object to
    upgrade. ``None`` when it cannot vouch for that: the general way runs.
    Same result, same rollback on failure (the namespace as it was).
    It runs for each of hundreds of dependents at one edit: written for speed.
    """
    namespace = module.__dict__
    followed = tuple([alias for alias, (old, _) in rebind.items() if namespace.get(alias, UNBOUND) is old])
    recipe = recipe_for(version, followed)
    if recipe is None:
        return None
    if isinstance(recipe, Batch):
        outcome = _run_batch(module, version, recipe, rebind, followed, after)
        if outcome is not None:
            return outcome
        recipe = recipe.moves  # values that are not plain this time: statement by statement
    news = {alias: rebind[alias][1] for alias in followed}
    if any_unbound(news.values()):
        return None  # a name goes: what bound it before may run again
    writes = Writes(namespace)
    try:
        reran, dirty = _run_moves(writes, recipe, news)
    except _NotPlain:
        writes.undo()
        return None
    except BaseException as error:  # noqa: BLE001 - rolled back, said like any failure
        writes.undo()
        return _failure(module, version, error, after)
    return _followed(module, version.path, writes, followed, reran, dirty, after)


def _failure(module: types.ModuleType, version: SourceVersion, error: BaseException, after: tuple[str, ...]) -> Failure:
    """A statement failed with the new values: said as a failure to follow ``after``, its file
    being as it was (rolled back by the caller)."""
    return replace(run_failure(module.__name__, version, error), after=after)


def _run_moves(writes: Writes, moves: tuple[_Move, ...], news: dict[str, object]) -> tuple[list[str], set[str]]:
    """Bind the followed names, then run again, in file order, each statement that reads a name
    whose value changed (or binds one a statement run again changed). Returns the statements run
    and the names they changed; raises ``_NotPlain`` where the general way must run instead."""
    writes.assign(news)
    live = set(news)  # names whose value changed: who reads one runs again
    dirty: set[str] = set()  # of those, the ones a statement run again changed
    reran = []
    for move in moves:
        if move.reads.isdisjoint(live) and move.binds.isdisjoint(dirty):
            continue
        changed = _run_move(writes, move)
        reran.append(move.label)
        dirty |= changed
        live |= changed
    return reran, dirty


def _run_move(writes: Writes, move: _Move) -> set[str]:
    """Run one statement again; the names it changed, or bound but not to their final value yet."""
    if not move.plain:  # a definition, an import, a class: the general way
        raise _NotPlain()
    namespace = writes.namespace
    if writes.snapshot is None and not (move.pure and all_plain(map(namespace.get, move.reads))):
        writes.guard()  # it may run user code: compare all after
    prior = writes.keep(move.binds)
    exec(move.code or move.compile(), namespace)
    changed = set()
    for name, old in zip(move.binds, prior):
        new = namespace.get(name, UNBOUND)
        if new is not old:
            if _may_be_code(new) or _may_be_code(old):  # identity to keep: the general way
                raise _NotPlain()
            changed.add(name)
        elif name in move.bound_later:  # the same object, but not its final value yet
            changed.add(name)
    return changed


def _followed(
    module: types.ModuleType,
    path: str,
    writes: Writes,
    followed: tuple[str, ...],
    reran: list[str],
    dirty: set[str],
    after: tuple[str, ...],
) -> Reloaded:
    """``follow_unchanged``'s outcome, once its statements ran."""
    changes = writes.changes()
    if changes is None:
        return _names_came_or_went(module, path, writes.guard(), followed, reran, after)
    if changes:  # a global the module's cached functions read changed
        for cache in caches_still_in(module, map(_NEW, changes.values())):
            cache.cache_clear()
    return Reloaded(
        module.__name__,
        path,
        rebound=tuple([n for n in changes if n not in followed]) if len(changes) > len(followed) else (),
        reran=tuple(reran),
        followed=followed,
        after=after,
        changes=changes,
        all_changed=(writes.value_before("__all__"), writes.namespace["__all__"]) if "__all__" in dirty else None,
    )


_OLD, _NEW = operator.itemgetter(0), operator.itemgetter(1)  # of an (old, new) pair


def all_plain(values: Iterable[object]) -> bool:
    """Are these values of the types arithmetic on which runs no user code?"""
    return SCALARS.issuperset(map(type, values))


_ARITHMETIC = (
    ast.Name, ast.Constant, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp,
    ast.expr_context, ast.operator, ast.unaryop, ast.boolop, ast.cmpop,
)


def _arithmetic(node: ast.stmt) -> bool:
    """``NAME = <names, constants and operators>``: names bound, nothing called, nothing indexed."""
    if isinstance(node, ast.Assign):
        targets, value = node.targets, node.value
    elif isinstance(node, ast.AnnAssign) and node.value is not None and node.simple:
        targets, value = [node.target], node.value
    else:
        return False
    return all(isinstance(t, ast.Name) for t in targets) and all(isinstance(n, _ARITHMETIC) for n in ast.walk(value))


def _names_came_or_went(
    module: types.ModuleType,
    path: str,
    snapshot: dict[str, Any],
    followed: tuple[str, ...],
    reran: list[str],
    after: tuple[str, ...],
) -> Reloaded:
    """``follow_unchanged``'s outcome when a statement it re-ran added or deleted a global."""
    namespace = module.__dict__
    changes = {n: (old, namespace[n]) for n, old in snapshot.items() if namespace.get(n, old) is not old and not is_dunder(n)}
    added, removed = came_and_went(snapshot, namespace)
    for cache in caches_of(module):  # a global the module's cached functions read changed
        cache.cache_clear()
    return Reloaded(
        module.__name__,
        path,
        added=added,
        removed=removed,
        rebound=tuple(n for n in changes if n not in followed),
        reran=tuple(reran),
        followed=followed,
        after=after,
        changes=changes,
        gone={n: snapshot[n] for n in removed},
        all_changed=all_changed(snapshot, namespace),
    )


def came_and_went(snapshot: dict[str, Any], namespace: dict[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The names (dunders aside) a run added, and those it removed."""
    added = tuple(n for n in namespace if n not in snapshot and not is_dunder(n))
    removed = tuple(n for n in snapshot if n not in namespace and not is_dunder(n))
    return added, removed


class _Move:
    """A statement a dependent may run again the short way: what it reads and binds, how it shows."""

    __slots__ = ("binds", "bound_later", "code", "future_flags", "label", "node", "path", "plain", "pure", "reads")

    def __init__(self, step: Step, plain: bool, path: str, future_flags: int) -> None:
        self.reads, self.binds, self.plain, self.label = step.reads, step.binds, plain, step.label()
        self.bound_later = step.bound_later
        self.pure = plain and _arithmetic(step.node)  # on plain values, it runs no user code
        self.node, self.path, self.future_flags = step.node, path, future_flags
        self.code: types.CodeType | None = None  # compiled when first needed, then kept

    def compile(self) -> types.CodeType:
        self.code = _diff.statement_code([self.node], self.path, self.future_flags)
        return self.code


_NO_RECIPE: tuple[_Move, ...] = ()


def _parsed_unchanged(version: SourceVersion, *, keep: bool = True) -> Plan | None:
    try:
        return _diff.unchanged_plan(version.text, version.path, version.digest, keep=keep)
    except SyntaxError:
        return None


def prepare_reload(version: SourceVersion) -> None:
    """Parse the text now, and read its statements' names (kept in the planner's caches), if it
    parses: the old side of the module's next reload."""
    try:
        _parse.prepare(version.text, version.path)
    except (SyntaxError, ValueError):
        pass  # its reload will say so


def prepare_follow(version: SourceVersion, aliases: Iterable[str]) -> None:
    """Work out now what a first ``follow_unchanged`` of each of these names would (the warm-up,
    in the user's idle time): its recipe, kept in the version's memo, its statements compiled.
    The text is parsed once for all of them, and that parse is not kept."""
    plan: list[Plan | None] = []  # parsed when a name first needs it

    def parsed_once(version: SourceVersion) -> Plan | None:
        if not plan:
            plan.append(_parsed_unchanged(version, keep=False))
        return plan[0]

    for alias in aliases:
        key = (alias,)
        if key not in version.memo:
            recipe = _recipe(version, key, parsed_once)
            for move in recipe if isinstance(recipe, tuple) else ():
                if move.plain and move.code is None:
                    move.compile()


def recipe_for(version: SourceVersion, followed: tuple[str, ...]) -> tuple[_Move, ...] | Batch | None:
    """How a module running this text follows these names the short way (see ``_recipe``)."""
    recipe = version.memo.get(followed, UNKNOWN)
    return _recipe(version, followed) if recipe is UNKNOWN else recipe


def _recipe(
    version: SourceVersion,
    followed: tuple[str, ...],
    parsed: Callable[[SourceVersion], Plan | None] = _parsed_unchanged,
) -> tuple[_Move, ...] | Batch | None:
    """How a module of this text follows these names the short way, found once per version and
    names (kept in its memo): the statements that a followed name, or a name such a statement
    binds, can reach. None when the short way cannot vouch for it (a full re-run, ``globals()``)."""
    recipe: tuple[_Move, ...] | Batch | None
    if not any(used_beyond_import(version.text, name) for name in followed):
        recipe = _NO_RECIPE  # only the import names them: re-bind, nothing to read (no parse)
    elif (plan := parsed(version)) is None or plan.full_reason is not None:
        recipe = None
    else:
        recipe = _recipe_of(plan, version.path, followed)
    version.memo[followed] = recipe
    return recipe


def _recipe_of(plan: Plan, path: str, followed: tuple[str, ...]) -> tuple[_Move, ...] | Batch | None:
    """The statements a followed name can reach, as a batch if they are all arithmetic."""
    steps = steps_to_visit(plan, set(followed))
    if any(NAMESPACE in s.reads for s in steps):
        return None  # ``globals()`` read while names change: the general way
    plain = [not s.dynamic and not s.late and isinstance(s.node, _PLAIN_STATEMENTS) for s in steps]
    moves = tuple(_Move(s, ok, path, plan.future_flags) for s, ok in zip(steps, plain))
    return Batch.of(moves, steps, followed, path, plan.future_flags) or moves


class Batch:
    """A recipe whose statements are all arithmetic (``LIMIT = THRESHOLD * 2``): on plain values
    they run no user code, so they run together, as one code object, and what they changed is
    found by comparing their names' values before and after, in C. The common case, at each
    edit of a module hundreds of others take constants from.

    Each statement runs, even one whose inputs kept their value: arithmetic on the same values
    gives the same values, as a fresh import would. So batches of the same statements (``key``)
    given the very same values give the same results: computed once, they can be assigned in
    every module that runs such a batch (``_leaves.follow_leaves``).
    """

    __slots__ = ("bound", "code", "key", "labels", "moves", "names", "read_order", "reads")

    def __init__(
        self, moves: tuple[_Move, ...], run: list[_Move], followed: tuple[str, ...], names: tuple[str, ...], reads: frozenset[str], path: str, flags: int
    ) -> None:
        self.moves = moves  # the same recipe, statement by statement: for values that are not plain
        self.labels = tuple(move.label for move in run)
        nodes = [move.node for move in run]
        self.code = _diff.statement_code(nodes, path, flags)
        # what the statements compute from the followed names, wherever they are written (``2``
        # and ``2.0`` differ here)
        self.key = sys.intern(f"{flags}:{followed}:{ast.dump(ast.Module(body=nodes, type_ignores=[]))}")
        # the same for every batch of the same statements: one set of objects for all of them
        # (hundreds of modules run ``LIMIT = THRESHOLD * 2``, and each touch of memory costs)
        shared = _BATCH_NAMES.get(self.key)
        if shared is None:
            if len(_BATCH_NAMES) > 4096:
                _BATCH_NAMES.clear()
            shared = _BATCH_NAMES[self.key] = (names, frozenset(names), reads, tuple(sorted(reads)))
        self.names, self.bound, self.reads, self.read_order = shared  # names bound in order; names read

    @classmethod
    def of(cls, moves: tuple[_Move, ...], steps: Iterable[Step], followed: tuple[str, ...], path: str, flags: int) -> Batch | None:
        """The batch for a recipe, if its statements (imports aside) are all arithmetic and bind
        no name an import or a followed name binds (the import of the followed names never runs
        again: nothing else binds them)."""
        run = [move for move, step in zip(moves, steps) if not isinstance(step.node, (ast.Import, ast.ImportFrom))]
        if not run or not all(move.pure for move in run):
            return None
        imported = set(followed).union(*(move.binds for move in moves if move not in run))
        names: dict[str, None] = {}
        reads: set[str] = set()
        for move in run:
            reads |= move.reads - names.keys() - set(followed)
            names.update(dict.fromkeys(sorted(move.binds)))
        if not imported.isdisjoint(names) or any(map(is_dunder, names)):
            return None
        return cls(moves, run, followed, tuple(names), frozenset(reads), path, flags)

    def runs_in(self, namespace: dict[str, Any]) -> bool:
        """Every name it binds is there, every other name it reads holds a plain value (in C)."""
        return namespace.keys() >= self.bound and (not self.reads or all_plain(map(namespace.get, self.reads, repeat(UNBOUND))))

    def inputs(self, namespace: dict[str, Any]) -> object:
        """What its results depend on besides the followed names: the statements, and the very
        objects the other names it reads hold (where ``runs_in``)."""
        return (self.key, *map(id, map(namespace.__getitem__, self.read_order))) if self.reads else self.key

    def writes(self, namespace: dict[str, Any], aliases: tuple[str, ...], olds: tuple[object, ...]) -> Writes:
        """The way back of a run in this namespace, where ``aliases`` hold ``olds``: those, and
        the values its names hold."""
        names = self.names
        before = dict(zip(aliases, olds))
        before.update(zip(names, map(namespace.__getitem__, names)))
        return Writes(namespace, before)

    def run(self, namespace: dict[str, Any], aliases: tuple[str, ...], olds: tuple[object, ...], news: tuple[object, ...]) -> Writes:
        """Re-bind ``aliases`` from ``olds`` (what they hold) to ``news`` (plain values) and run;
        what it wrote. If a statement raises, all is put back and it is raised."""
        writes = self.writes(namespace, aliases, olds)
        namespace.update(zip(aliases, news))
        try:
            exec(self.code, namespace)
        except BaseException:
            writes.undo()
            raise
        return writes


# Batch.key -> the names its statements bind (in order, and as a set) and read (as a set, in order)
_BATCH_NAMES: dict[str, tuple[tuple[str, ...], frozenset[str], frozenset[str], tuple[str, ...]]] = {}


def _run_batch(
    module: types.ModuleType,
    version: SourceVersion,
    batch: Batch,
    rebind: Mapping[str, tuple[object, object]],
    followed: tuple[str, ...],
    after: tuple[str, ...],
) -> Reloaded | Failure | None:
    """``follow_unchanged`` for a batch; None when a value is not plain (or a name it binds is
    not there): then the statements run one by one, and a snapshot guards those that need one."""
    namespace = module.__dict__
    changes = {alias: rebind[alias] for alias in followed}
    news = tuple(map(_NEW, changes.values()))
    if not all_plain(news) or not batch.runs_in(namespace):
        return None
    try:
        writes = batch.run(namespace, followed, tuple(map(_OLD, changes.values())), news)
    except BaseException as error:  # noqa: BLE001 - rolled back, said like any failure
        return _failure(module, version, error, after)
    rebound = writes.changed(batch.names)
    changes.update(rebound)
    for cache in caches_still_in(module, map(_NEW, changes.values())):
        cache.cache_clear()
    return Reloaded(module.__name__, version.path, rebound=tuple(rebound), reran=batch.labels, followed=followed, after=after, changes=changes)


# Statements that bind plain names from an expression: re-running one makes no code object
# hotswap must keep (checked on the values too) and runs no class statement of the module.
_PLAIN_STATEMENTS = (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Expr)


def _may_be_code(value: object) -> bool:
    return type(value) not in PLAIN_DATA and is_code(value)


class _NotPlain(Exception):
    """A re-run statement made a function or class: identity must be kept the general way."""


def used_beyond_import(text: str, name: str) -> bool:
    """Does the text name ``name`` anywhere but the one line that imported it?

    Kept per (text, name): a dependent asks again at every edit of what it imports.
    """
    answers = _USED.get(text)
    if answers is None:
        answers = _USED.put(text, {}, len(text))
    used = answers.get(name)
    if used is None:
        used = answers[name] = len(re.findall(rf"\b{re.escape(name)}\b", text)) > 1
    return used


_USED: SizedCache[str, dict[str, bool]] = SizedCache(16 * MIB, 1024)  # text -> name -> used beyond import


def steps_to_visit(plan: Plan, followed: set[str]) -> Iterable[Step]:
    """Every step, or, when the text did not change, only those a followed name can reach.

    A dependent re-visits the same few statements at each edit of what it
    imports: a superset of the ones that will re-run (those reading a followed
    name, or a name such a statement binds), found once per plan and names.
    """
    if plan not in _REACH:
        unchanged = not plan.removed and not plan.removed_attributes and all(step.kind is Kind.UNCHANGED for step in plan.steps)
        _REACH[plan] = {} if unchanged else None
    known = _REACH[plan]
    if known is None:
        return plan.steps
    key = frozenset(followed)
    steps = known.get(key)
    if steps is None:
        steps = known[key] = _reach(plan, key)
    return steps


# plan -> (for a plan of an unchanged text) followed names -> the steps they reach; kept apart
# from the plan, a value
_REACH: weakref.WeakKeyDictionary[Plan, dict[frozenset[str], tuple[Step, ...]] | None] = weakref.WeakKeyDictionary()


def _reach(plan: Plan, followed: frozenset[str]) -> tuple[Step, ...]:
    """The steps that read a followed name, or a name such a step binds (or all names)."""
    reach, found = set(followed), []
    for step in plan.steps:
        if step.reads & reach or step.binds & reach or NAMESPACE in step.reads:
            found.append(step)
            reach |= step.binds
    return tuple(found)


def all_changed(snapshot: dict[str, Any], namespace: dict[str, Any]) -> tuple[object, object] | None:
    old, new = snapshot.get("__all__", UNBOUND), namespace.get("__all__", UNBOUND)
    return None if old is new else (old, new)
