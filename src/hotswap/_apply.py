"""Apply: run what a module's new version needs, then commit it or roll it back exactly.

Two strategies, one transaction. By default only what the diff (``_diff``)
says changed runs again, statement by statement, in the module's own
namespace, and a changed function body is upgraded without running anything
else, so module state survives. Where the diff cannot vouch for a partial
update, the whole module re-runs, as a fresh import would.

Either way the namespace is snapshotted first. While code runs, ``class``
statements of the module are intercepted: a class that existed before is
upgraded in place and the *old* class object is bound, so that subclasses,
instances made at import time and decorators all see the class the user
already holds. Re-created functions are upgraded in place and the old objects
re-bound. If anything fails, the snapshot and the undo log put the module back
exactly as it was.
"""

from __future__ import annotations

import ast
import builtins
import functools
import gc
import operator
import re
import sys
import threading
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import compress, repeat
from typing import Any

from . import _diff
from ._aftercare import (
    caches_of,
    caches_still_in,
    clear_caches_of,
    closures_follow,
    follow_moved_lines,
    forget_registered,
    functions_bound_to,
    may_have_registered,
    placehold_new_fields,
    replace_stand_ins,
)
from ._diff import Kind, Plan, Step
from ._graph import resolve_from
from ._outcomes import Failure, Reloaded, run_failure, syntax_failure
from ._scan import NAMESPACE
from ._source import SourceVersion
from ._upgrade import (
    Transaction,
    UpgradeError,
    functions_named,
    is_code,
    owned_by,
    try_upgrade,
    upgrade_code,
)
from ._vocab import (
    PLAIN_DATA,
    SCALARS,
    SET_BY_IMPORT,
    UNBOUND,
    UNKNOWN,
    exported,
    is_dunder,
)

__all__ = [
    "UNBOUND",
    "Batch",
    "all_plain",
    "Failure",
    "Reloaded",
    "exported",
    "follow_unchanged",
    "collector_paused",
    "prepare_follow",
    "prepare_reload",
    "recipe_for",
    "reload_module",
    "reloading",
    "used_beyond_import",
]


_build_class_lock = threading.Lock()


@dataclass
class _Run:
    """One reload of one module: the snapshot, the undo log, and what happened."""

    module: types.ModuleType
    snapshot: dict[str, Any]
    txn: Transaction
    claimed: set[int] = field(default_factory=set)  # old classes already upgraded
    classes: list[str] = field(default_factory=list)
    upgraded: list[str] = field(default_factory=list)
    reran: list[str] = field(default_factory=list)
    followed: list[str] = field(default_factory=list)
    unbound: list[str] = field(default_factory=list)  # followed names that no longer exist
    intercepting: bool = True
    roots: Callable[[], Iterable[dict[str, Any]]] | None = None
    after: tuple[str, ...] = ()  # a dependent: the modules it imports from that changed
    running: SourceVersion | None = None  # the text the module ran until now, if known
    whole: bool = False  # the whole module runs again
    class_notes: dict[int, list[tuple[str, str]]] = field(default_factory=dict)  # id(old class) -> notes
    old_fields: dict[int, frozenset[str]] = field(default_factory=dict)  # id(class) -> dataclass fields
    # classes built from a new body and replaced by the kept class, that class hooks may have seen
    stand_ins: dict[int, tuple[object, object]] = field(default_factory=dict)
    # classes new in this run that class hooks may have stored: forgotten if the run fails
    fresh_classes: list[type] = field(default_factory=list)

    @property
    def namespace(self) -> dict[str, Any]:
        return self.module.__dict__


class _NeedsWholeModule(Exception):
    """The partial update cannot vouch for the result: re-run the whole module."""


def reload_module(
    module: types.ModuleType,
    version: SourceVersion,
    running: SourceVersion | None = None,
    *,
    whole: str | None = None,
    rebind: Mapping[str, tuple[object, object]] | None = None,
    roots: Callable[[], Iterable[dict[str, Any]]] | None = None,
    after: tuple[str, ...] = (),
) -> Reloaded | Failure:
    """Bring ``module`` from the ``running`` text to ``version``; on failure leave it as it was.

    ``whole`` forces a whole-module re-run and says why (e.g. ``--full``).
    ``rebind`` names values this module took from modules that changed
    (alias -> (old, new)): each alias still bound to the old object is re-bound,
    and what reads it at import time runs again. ``UNBOUND`` as old: the alias
    was not bound (``from m import *`` gains a name); as new: it goes, and
    what bound it before runs again (a default set before ``from m import *``). ``roots`` gives the other
    namespaces where closures made by this module's old code may be kept.
    ``after`` names the modules it imports from that changed, for the report.
    """
    name = module.__name__
    rebind = rebind or {}
    same_text = running is not None and running.digest == version.digest
    unbinds = any(new is UNBOUND for _, new in rebind.values())  # what bound them before may run
    if same_text and not whole and not unbinds and not any(used_beyond_import(version.text, a) for a in rebind):
        # Only dependencies changed and nothing but the import names them: re-bind only.
        return _transaction(module, version, lambda run: _follow_only(run, version.path, rebind), roots, after, running)
    if same_text and not whole:
        fast = follow_unchanged(module, version, rebind, after)
        if fast is not None:
            return fast
    try:
        if whole or running is None:
            plan = None
        elif same_text:
            plan = _diff.unchanged_plan(version.text, version.path, version.digest)
        else:
            plan = _diff.plan(running.text, version.text, path=version.path)
            _compile_changed(plan, version.path)
    except SyntaxError as error:
        if same_text and not whole:  # it follows what it imports, though its text cannot be read
            return _transaction(module, version, lambda run: _follow_only(run, version.path, rebind), roots, after, running)
        return syntax_failure(name, version.path, error)
    if plan is not None and plan.full_reason is None:
        try:
            return _transaction(module, version, lambda run: _apply_plan(run, plan, version.path, rebind), roots, after, running)
        except _NeedsWholeModule as why:
            whole = str(why)
    elif plan is not None:
        whole = plan.full_reason
        if running is not None and running.digest == version.digest:
            # Only dependencies changed and the text cannot be re-run in part: re-bind only.
            return _transaction(module, version, lambda run: _follow_only(run, version.path, rebind), roots, after, running)
    try:
        code = version.compile()
    except SyntaxError as error:
        return syntax_failure(name, version.path, error)
    reason = whole or "no earlier text to compare with"
    return _transaction(module, version, lambda run: _run_whole(run, code, version.path, reason, version.text), roots, after, running)


def _compile_changed(plan: Plan, path: str) -> None:
    """Compile every statement that will run again before any runs: an error the parser lets
    through (``return`` outside a function) fails the reload before it began. (These codes are
    kept for the run; a changed body that fails to compile is an upgrade the undo log reverts.)"""
    if plan.full_reason is None:
        for step in plan.steps:
            if step.kind is Kind.RUN:
                _diff.statement_code([step.node], path, plan.future_flags)


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
    followed = []
    for alias, (old, _) in rebind.items():
        if namespace.get(alias, UNBOUND) is old:
            followed.append(alias)
    names = tuple(followed)
    recipe = recipe_for(version, names)
    if recipe is None:
        return None
    if isinstance(recipe, Batch):
        outcome = _run_batch(module, version, recipe, rebind, names, after)
        if outcome is not None:
            return outcome
        recipe = recipe.moves  # values that are not plain this time: statement by statement
    # each name written -> its value before the follow: enough to undo and to report while every
    # statement run is arithmetic on plain values (which runs no user code); else the snapshot
    before: dict[str, object] = {}
    snapshot: dict[str, Any] | None = None
    live = set(followed)  # names whose value changed: who reads one runs again
    dirty: set[str] = set()  # of those, the ones a statement run again changed
    reran = []
    try:
        for alias in followed:
            new = rebind[alias][1]
            if new is UNBOUND:
                raise _NotPlain()  # a name goes: what bound it before may run again
            before[alias] = namespace.get(alias, UNBOUND)
            namespace[alias] = new
        for move in recipe:
            if move.reads.isdisjoint(live) and move.binds.isdisjoint(dirty):
                continue
            if not move.plain:  # a definition, an import, a class: the general way
                raise _NotPlain()
            if snapshot is None and not (move.pure and all_plain(map(namespace.get, move.reads))):
                snapshot = _snapshot_before(namespace, before)  # it may run user code: compare all after
            binds = move.binds
            prior = [namespace.get(name, UNBOUND) for name in binds]
            for name, old in zip(binds, prior):
                before.setdefault(name, old)
            exec(move.code or move.compile(), namespace)
            reran.append(move.label)
            for name, old in zip(binds, prior):
                new = namespace.get(name, UNBOUND)
                if new is not old:
                    if _may_be_code(new) or _may_be_code(old):  # identity to keep: the general way
                        raise _NotPlain()
                    dirty.add(name)
                    live.add(name)
                elif name in move.bound_later:  # the same object, but not its final value yet
                    dirty.add(name)
                    live.add(name)
    except _NotPlain:
        _undo(namespace, before, snapshot)
        return None
    except BaseException as error:  # noqa: BLE001 - rolled back, said like any failure
        _undo(namespace, before, snapshot)
        return run_failure(module.__name__, version, error)
    changes = _followed_changes(namespace, before, snapshot)
    if changes is None:
        snapshot = snapshot if snapshot is not None else _snapshot_before(namespace, before)
        return _names_came_or_went(module, version.path, snapshot, followed, reran, after)
    if changes:  # a global the module's cached functions read changed
        for cache in caches_still_in(module, map(_NEW, changes.values())):
            cache.cache_clear()
    return Reloaded(
        module.__name__,
        version.path,
        rebound=tuple([n for n in changes if n not in followed]) if len(changes) > len(followed) else (),
        reran=tuple(reran),
        followed=names,
        after=after,
        changes=changes,
        all_changed=(_value_before("__all__", before, snapshot), namespace["__all__"]) if "__all__" in dirty else None,
    )


def _followed_changes(
    namespace: dict[str, Any], before: dict[str, object], snapshot: dict[str, Any] | None
) -> dict[str, tuple[object, object]] | None:
    """Name -> (old, new) for what a follow changed (dunders aside); None if a name came or went.

    Without a snapshot only the names it wrote can have changed; with one, every name is compared.
    """
    if snapshot is None:
        changes = {}
        for name, old in before.items():
            if old is UNBOUND:
                return None  # a name it bound was not there
            new = namespace[name]
            if new is not old and not is_dunder(name):
                changes[name] = (old, new)
        return changes
    if list(namespace) != list(snapshot):
        return None
    changed = compress(namespace, map(operator.is_not, snapshot.values(), namespace.values()))  # in C
    return {n: (snapshot[n], namespace[n]) for n in changed if not is_dunder(n)}


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


def _value_before(name: str, before: dict[str, object], snapshot: dict[str, Any] | None) -> object:
    """What ``name`` held before the follow began."""
    return snapshot.get(name, UNBOUND) if snapshot is not None else before[name]


def _snapshot_before(namespace: dict[str, Any], before: dict[str, object]) -> dict[str, Any]:
    """The namespace as it was before the follow's writes."""
    snapshot = dict(namespace)
    _write_back(snapshot, before)
    return snapshot


def _undo(namespace: dict[str, Any], before: dict[str, object], snapshot: dict[str, Any] | None) -> None:
    if snapshot is not None:
        _put_back(namespace, snapshot)
    else:
        _write_back(namespace, before)


def _write_back(names: dict[str, Any], before: dict[str, object]) -> None:
    """Put back what the follow's writes overwrote."""
    for name, old in before.items():
        if old is UNBOUND:
            names.pop(name, None)
        else:
            names[name] = old


def _names_came_or_went(
    module: types.ModuleType,
    path: str,
    snapshot: dict[str, Any],
    followed: list[str],
    reran: list[str],
    after: tuple[str, ...],
) -> Reloaded:
    """``follow_unchanged``'s outcome when a statement it re-ran added or deleted a global."""
    namespace = module.__dict__
    changes = {n: (old, namespace[n]) for n, old in snapshot.items() if namespace.get(n, old) is not old}
    changes = {n: change for n, change in changes.items() if not is_dunder(n)}
    added = tuple(n for n in namespace if n not in snapshot and not is_dunder(n))
    removed = tuple(n for n in snapshot if n not in namespace and not is_dunder(n))
    for cache in caches_of(module):  # a global the module's cached functions read changed
        cache.cache_clear()
    return Reloaded(
        module.__name__,
        path,
        added=added,
        removed=removed,
        rebound=tuple(n for n in changes if n not in followed),
        reran=tuple(reran),
        followed=tuple(followed),
        after=after,
        changes=changes,
        gone={n: snapshot[n] for n in removed},
        all_changed=_all_changed(snapshot, namespace),
    )


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
        _diff.prepare(version.text, version.path)
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
        steps = _steps_to_visit(plan, set(followed))
        plain = [not s.dynamic and not s.late and isinstance(s.node, _PLAIN_STATEMENTS) for s in steps]
        recipe = tuple(_Move(s, ok, version.path, plan.future_flags) for s, ok in zip(steps, plain))
        if any(NAMESPACE in s.reads for s in steps):
            recipe = None  # ``globals()`` read while names change: the general way
        else:
            recipe = Batch.of(recipe, steps, followed, version.path, plan.future_flags) or recipe
    version.memo[followed] = recipe
    return recipe


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

    def run(self, namespace: dict[str, Any], aliases: tuple[str, ...], olds: tuple[object, ...], news: tuple[object, ...]) -> tuple[object, ...]:
        """Re-bind ``aliases`` from ``olds`` (what they hold) to ``news`` (plain values) and run;
        the values of its names before. If a statement raises, all is put back and it is raised."""
        names = self.names
        before = tuple(map(namespace.__getitem__, names))
        namespace.update(zip(aliases, news))
        try:
            exec(self.code, namespace)
        except BaseException:
            namespace.update(zip(names, before))
            namespace.update(zip(aliases, olds))
            raise
        return before

    def changes(self, namespace: dict[str, Any], before: tuple[object, ...]) -> dict[str, tuple[object, object]]:
        """Name -> (old, new) for the names it bound to another object."""
        names = self.names
        return {name: (old, new) for name, old, new in zip(names, before, map(namespace.__getitem__, names)) if old is not new}


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
        before = batch.run(namespace, followed, tuple(map(_OLD, changes.values())), news)
    except BaseException as error:  # noqa: BLE001 - rolled back, said like any failure
        return run_failure(module.__name__, version, error)
    rebound = batch.changes(namespace, before)
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


def _put_back(namespace: dict[str, Any], snapshot: dict[str, Any]) -> None:
    namespace.clear()
    namespace.update(snapshot)


@functools.lru_cache(maxsize=8192)
def used_beyond_import(text: str, name: str) -> bool:
    """Does the text name ``name`` anywhere but the one line that imported it?

    Kept per (text, name): a dependent asks again at every edit of what it imports.
    """
    return len(re.findall(rf"\b{re.escape(name)}\b", text)) > 1


def _transaction(
    module: types.ModuleType,
    version: SourceVersion,
    body: Callable[[_Run], Reloaded],
    roots: Callable[[], Iterable[dict[str, Any]]] | None = None,
    after: tuple[str, ...] = (),
    running: SourceVersion | None = None,
) -> Reloaded | Failure:
    """Run ``body`` against a snapshot: commit on success, restore exactly on any failure.

    Other threads are kept from running meanwhile (the interpreter is told to
    switch threads far less often), so code running in the background sees the
    module before or after the reload, not half-way. Best effort: a thread
    already waiting for its turn (one busy with pure Python) can still get one
    after the usual 5 ms, and so can any thread while the module's own code
    blocks (sleeps, waits on I/O).
    """
    run = _Run(module, dict(module.__dict__), Transaction(module.__name__), roots=roots, after=after, running=running)
    try:
        with reloading(), _running(run):
            outcome = body(run)
    except _NeedsWholeModule:
        _restore(run)
        raise
    except _InternalError as error:
        _restore(run)
        cause = error.__cause__
        return Failure(
            module.__name__, version.path, None, f"{type(cause).__name__}: {cause}", internal=True
        )
    except BaseException as error:  # noqa: BLE001 - every failure is rolled back
        _restore(run)
        _unregister(run)
        return run_failure(module.__name__, version, error)
    run.txn.commit()
    return outcome


@contextmanager
def reloading() -> Iterator[None]:
    """One check: threads held off and class statements intercepted, once for all its modules.

    A caller that reloads many modules (the reloader, at each check) enters it
    once around all of them; ``reload_module`` enters it itself otherwise.
    The cyclic garbage collector waits meanwhile (``collector_paused``).
    """
    global _reloading
    if _reloading:
        yield
        return
    with _build_class_lock:
        interval = sys.getswitchinterval()
        sys.setswitchinterval(_LONG_SWITCH_INTERVAL)
        original: Callable[..., Any] = builtins.__build_class__
        builtins.__build_class__ = functools.partial(_build_class, original)
        _reloading = True
        try:
            with collector_paused():
                yield
        finally:
            _reloading = False
            builtins.__build_class__ = original
            sys.setswitchinterval(interval)


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector waits meanwhile (nested: the outermost pause decides).

    A reload allocates in a burst (parsed texts, snapshots, one outcome per
    dependent), and each collection it would trigger walks what is alive then.
    A caller that also reports the outcomes pauses it around both: once they
    are dropped, most of that burst is gone and no collection is due.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


_reloading = False
_current_run: _Run | None = None  # the module being reloaded now, if any


@contextmanager
def _running(run: _Run) -> Iterator[None]:
    global _current_run
    outer, _current_run = _current_run, run
    try:
        yield
    finally:
        _current_run = outer


# Seconds. Threads that start waiting for the interpreter while a module is re-applied
# wait this long before asking for it. Not longer: a thread that was already waiting
# (on the usual 5 ms) can still get one turn, and the reload must then get back soon.
_LONG_SWITCH_INTERVAL = 0.5


class _InternalError(Exception):
    """hotswap itself failed while committing (not the user's code)."""


def _keep_attributes_written(run: _Run, nodes: list[ast.stmt], namespace: Mapping[str, Any]) -> None:
    """``Point.tag = 5`` is about to run on an object the module had: undone if the reload fails."""
    for owner, attribute in _diff.attributes_written(nodes):
        obj = namespace.get(owner, UNBOUND)
        if obj is not UNBOUND and not isinstance(obj, types.ModuleType):
            run.txn.keep_attribute(obj, attribute)


def _run_whole(run: _Run, code: types.CodeType, path: str, reason: str, text: str) -> Reloaded:
    run.whole = True
    try:
        _keep_attributes_written(run, _diff.parse(text, path).body, run.snapshot)
    except SyntaxError:
        pass  # it compiled: only a text that does not parse as given (a null byte) lands here
    _reset_namespace(run.namespace, run.snapshot)
    exec(code, run.namespace)
    try:
        for name, new in list(run.namespace.items()):
            old = run.snapshot.get(name, UNBOUND)
            if old is not UNBOUND and name not in SET_BY_IMPORT:
                _keep_identity(run, name, old, new)
        _keep_submodules(run)
    except Exception as error:
        raise _InternalError() from error
    return _outcome(run, path, whole_module=reason)


def _follow(run: _Run, rebind: Mapping[str, tuple[object, object]]) -> set[str]:
    """Re-bind names taken from changed modules, where they still hold the old object."""
    namespace = run.namespace
    for alias, (old, new) in rebind.items():
        if namespace.get(alias, UNBOUND) is not old or old is new:
            continue
        if new is UNBOUND:
            del namespace[alias]
            run.unbound.append(alias)
        else:
            namespace[alias] = new
        run.followed.append(alias)
    return set(run.followed)


def _follow_only(run: _Run, path: str, rebind: Mapping[str, tuple[object, object]]) -> Reloaded:
    _follow(run, rebind)
    return _outcome(run, path)


def _apply_plan(
    run: _Run, plan: Plan, path: str, rebind: Mapping[str, tuple[object, object]]
) -> Reloaded:
    """Run what changed, and what reads a name whose value changed, in file order."""
    namespace = run.namespace
    moved = [n for s in plan.steps if s.moved for n in s.binds]
    kept_code = functions_bound_to(run.module, path, moved) if moved else {}
    followed = _follow(run, rebind)  # statements reading these re-run; imports binding them need not
    dirty: set[str] = set(run.unbound)  # gone: what bound them before runs again
    for name in plan.removed:
        if name in namespace and not _is_submodule(run.module, name, namespace[name]):
            star = _star_imported(run.module, plan, name)
            if star is UNBOUND:
                del namespace[name]
            else:  # the statement that shadowed it is gone: ``from m import *`` gives it again
                namespace[name] = star
            dirty.add(name)
    classes_to_rerun = _remove_attributes_no_longer_set(run, plan)
    for step in _steps_to_visit(plan, followed):
        touched = bool(step.reads & (dirty | followed) or step.binds & dirty)
        touched |= isinstance(step.node, ast.ClassDef) and step.node.name in classes_to_rerun
        touched |= NAMESPACE in step.reads and bool(dirty or followed)
        if step.kind is Kind.UNCHANGED and not touched:
            if step.dynamic and dirty:  # ``from m import *`` after a statement that re-bound a name
                _star_import_again(run, step, dirty)
            continue
        if step.kind is Kind.BODY and not touched and _upgrade_function_body(run, step, path, plan):
            continue
        if step.kind is Kind.METHODS and not touched and _upgrade_methods(run, step, path, plan):
            continue
        dirty |= _rerun(run, step, path, plan)
    follow_moved_lines(kept_code, plan.moved_lines, run.txn)
    if not any(isinstance(s.node, ast.Expr) and isinstance(s.node.value, ast.Constant) for s in plan.steps[:1]):
        namespace["__doc__"] = None
    return _outcome(run, path)


def _star_import_again(run: _Run, step: Step, names: set[str]) -> None:
    """An unchanged ``from m import *`` gives again the names of ``names`` that m exports: a
    statement before it (a default, ``twice = None``) re-ran, and the star import comes after."""
    for given in _star_sources(run.module, step.node):
        run.namespace.update({name: given[name] for name in names if exported(given, name)})


def _star_imported(module: types.ModuleType, plan: Plan, name: str) -> object:
    """What the last ``from m import *`` of the new text gives ``name``, or ``UNBOUND``."""
    value: object = UNBOUND
    for step in plan.steps:
        for given in _star_sources(module, step.node) if step.dynamic else ():
            if exported(given, name):
                value = given[name]
    return value


def _star_sources(module: types.ModuleType, node: ast.stmt) -> Iterator[dict[str, Any]]:
    """The namespaces of the modules a statement of ``module`` does ``from ... import *`` from."""
    for inner in ast.walk(node):
        if isinstance(inner, ast.ImportFrom) and any(alias.name == "*" for alias in inner.names):
            source = sys.modules.get(resolve_from(inner, module.__package__ or None) or "")
            if source is not None:
                yield vars(source)


def _remove_attributes_no_longer_set(run: _Run, plan: Plan) -> set[str]:
    """``Point.tag = 5`` deleted from the text: the module's own class loses ``tag``, as on a
    fresh import. Returns the classes whose own body defines such an attribute: their class
    statement runs again (in place) to give it back its body's value."""
    if not plan.removed_attributes or run.running is None:
        return set()
    body_names = _diff.class_body_names(run.running.text, run.running.path)
    rerun = set()
    for owner, attribute in plan.removed_attributes:
        cls = run.namespace.get(owner)
        if isinstance(cls, type) and cls.__module__ == run.module.__name__ and attribute in vars(cls):
            if attribute in body_names.get(owner, ()):
                rerun.add(owner)
            else:
                run.txn.delete(cls, attribute)
    return rerun


def _steps_to_visit(plan: Plan, followed: set[str]) -> Iterable[Step]:
    """Every step, or, when the text did not change, only those a followed name can reach.

    A dependent re-visits the same few statements at each edit of what it
    imports: a superset of the ones that will re-run (those reading a followed
    name, or a name such a statement binds), found once per plan and names.
    """
    if "_reach" not in plan.__dict__:  # a plan is a value: this is only a memo on it
        unchanged = not plan.removed and not plan.removed_attributes and all(step.kind is Kind.UNCHANGED for step in plan.steps)
        plan.__dict__["_reach"] = {} if unchanged else None
    known: dict[frozenset[str], tuple[Step, ...]] | None = plan.__dict__["_reach"]
    if known is None:
        return plan.steps
    key = frozenset(followed)
    steps = known.get(key)
    if steps is None:
        reach, found = set(key), []
        for step in plan.steps:
            if step.reads & reach or step.binds & reach or NAMESPACE in step.reads:
                found.append(step)
                reach |= step.binds
        steps = known[key] = tuple(found)
    return steps


def _rerun(run: _Run, step: Step, path: str, plan: Plan) -> set[str]:
    """Run one statement again; return the names whose object it changed."""
    if step.dynamic:
        raise _NeedsWholeModule(f"{step.label()} binds names that cannot be known in advance")
    if NAMESPACE in step.reads:  # re-run now, it would also see names bound after it
        raise _NeedsWholeModule(f"{step.label()} reads the module's names, which changed")
    if step.late:
        late = sorted(step.late)[0]
        raise _NeedsWholeModule(
            f"{step.label()} depends on {late!r} as it was at that point, which running it again alone would not see"
        )
    namespace = run.namespace
    before = {name: namespace.get(name, UNBOUND) for name in step.binds}
    _keep_attributes_written(run, [step.node], namespace)
    exec(_diff.statement_code([step.node], path, plan.future_flags), namespace)
    run.reran.append(step.label())
    changed = set(step.bound_later)  # not their final value: what comes after runs, whatever it is
    for name, old in before.items():
        new = namespace.get(name, UNBOUND)
        if name in changed:
            continue
        if new is not old and not (old is not UNBOUND and new is not UNBOUND and _keep_identity(run, name, old, new)):
            changed.add(name)
    return changed


def _keep_identity(run: _Run, name: str, old: Any, new: Any) -> bool:
    """Where a name now holds a re-created function or class, upgrade the old one and re-bind it."""
    if old is new:
        return True
    if not (is_code(old) and is_code(new) and owned_by(old, run.module.__name__)):
        return False
    kept = try_upgrade(old, new, run.txn)
    if kept is not old:
        return False
    run.namespace[name] = old
    run.upgraded.append(name)
    run.stand_ins[id(new)] = (new, old)  # `HANDLERS = [f]` ran with the new f: it must hold the kept one
    return True


def _upgrade_function_body(run: _Run, step: Step, path: str, plan: Plan) -> bool:
    """A function whose decorators did not change: new code into the old function, nothing re-run."""
    node = step.node
    assert isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    old_functions, caches = functions_named(run.namespace.get(node.name), node.name, run.module.__name__)
    if len(old_functions) != 1:
        return False
    scratch: dict[str, Any] = {_diff.KEEP: _keep}
    exec(_diff.statement_code([_diff.without_decorators(node)], path, plan.future_flags), run.namespace, scratch)
    if not _upgrade_exactly(run, old_functions[0], scratch[node.name]):
        return False
    for cache in caches:
        run.txn.on_commit(cache.cache_clear)
    run.upgraded.append(node.name)
    return True


def _upgrade_methods(run: _Run, step: Step, path: str, plan: Plan) -> bool:
    """A class whose method bodies alone changed: upgrade those methods, run nothing else."""
    node = step.node
    assert isinstance(node, ast.ClassDef)
    cls = run.namespace.get(node.name)
    if not isinstance(cls, type) or cls.__module__ != run.module.__name__ or cls.__qualname__ != node.name:
        return False
    savepoint = run.txn.savepoint()
    for position in step.methods:
        method = node.body[position]
        assert isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef))
        old = _method_function(cls, method)
        new = _bare_method(run, node, position, path, plan)
        if old is None or not isinstance(new, types.FunctionType) or not _upgrade_exactly(run, old[0], new):
            run.txn.rollback_to(savepoint)
            return False
        for cache in old[1]:
            run.txn.on_commit(cache.cache_clear)
    run.upgraded.append(node.name)
    return True


def _keep(function: object) -> object:
    return function


def _bare_method(run: _Run, node: ast.ClassDef, position: int, path: str, plan: Plan) -> object:
    """The new function of one ``def`` of a class body, made in a bare class of the same name.

    One bare class per method: a property's getter and setter share a name.
    """
    scratch: dict[str, Any] = {}
    run.intercepting = False  # the bare class is a vehicle, not a new version of the class
    run.namespace[_diff.KEEP] = _keep  # class bodies look names up in the module
    try:
        code = _diff.statement_code([_diff.method_class(node, (position,))], path, plan.future_flags)
        exec(code, run.namespace, scratch)
    finally:
        run.intercepting = True
        run.namespace.pop(_diff.KEEP, None)
    method = node.body[position]
    assert isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef))
    return scratch[node.name].__dict__.get(method.name)


def _method_function(cls: type, method: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[types.FunctionType, list[Any]] | None:
    """The function object behind one ``def`` of a class body (a property has up to three)."""
    found, caches = functions_named(cls.__dict__.get(method.name), method.name, cls.__module__)
    if len(found) == 1:
        return found[0], caches
    binding = cls.__dict__.get(method.name)
    if isinstance(binding, property):
        part = "fget"
        for decorator in method.decorator_list:
            if isinstance(decorator, ast.Attribute) and decorator.attr in ("setter", "deleter"):
                part = "fset" if decorator.attr == "setter" else "fdel"
        function = getattr(binding, part)
        if isinstance(function, types.FunctionType):
            return function, caches
    return None


def _upgrade_exactly(run: _Run, old: types.FunctionType, new: types.FunctionType) -> bool:
    """``upgrade_code``, or no trace at all (the caller then re-runs the statement instead)."""
    savepoint = run.txn.savepoint()
    try:
        upgrade_code(old, new, run.txn)
    except (UpgradeError, TypeError, ValueError, AttributeError):
        run.txn.rollback_to(savepoint)
        return False
    return True


def _outcome(run: _Run, path: str, whole_module: str | None = None) -> Reloaded:
    if run.txn.nested_code or run.stand_ins:  # only then look beyond this module
        namespaces = [run.namespace, *(run.roots() if run.roots else ())]
        run.upgraded += closures_follow(run.module.__name__, namespaces, run.txn)
        if run.stand_ins:
            replace_stand_ins(run.stand_ins.values(), namespaces, run.txn)
    placehold_new_fields(run.old_fields, run.namespace, run.txn)
    namespace, snapshot = run.namespace, run.snapshot
    if run.class_notes:
        kept = {id(v) for v in namespace.values()}
        for old_class, notes in run.class_notes.items():
            if old_class not in kept:  # e.g. @dataclass(slots=True) made a class that was upgraded
                run.txn.notes += notes
    changed: list[str] = []
    added: list[str] = []
    for name, value in namespace.items():
        before = snapshot.get(name, UNBOUND)
        if before is not value and not is_dunder(name):
            (added if before is UNBOUND else changed).append(name)
    upgraded = list(dict.fromkeys(run.upgraded + [c for c in run.classes if c in namespace]))
    removed = [n for n in snapshot if n not in namespace and not is_dunder(n)]
    if removed or any(n not in upgraded for n in changed):
        clear_caches_of(run.module, run.txn)  # a global they read may have changed
    return Reloaded(
        module=run.module.__name__,
        path=path,
        upgraded=tuple(upgraded),
        added=tuple(added),
        removed=tuple(removed),
        rebound=tuple(n for n in changed if n not in upgraded and n not in run.followed),
        stayed_old=tuple(dict.fromkeys(run.txn.notes)),
        reran=tuple(run.reran),
        whole_module=whole_module,
        followed=tuple(run.followed),
        after=run.after,
        changes={n: (snapshot[n], namespace[n]) for n in changed},
        gone={n: snapshot[n] for n in removed},
        all_changed=_all_changed(snapshot, namespace),
    )


def _all_changed(snapshot: dict[str, Any], namespace: dict[str, Any]) -> tuple[object, object] | None:
    old, new = snapshot.get("__all__", UNBOUND), namespace.get("__all__", UNBOUND)
    return None if old is new else (old, new)


def _reset_namespace(namespace: dict[str, Any], snapshot: dict[str, Any]) -> None:
    """Start from what a fresh import starts from, so the result is what it would give."""
    namespace.clear()
    namespace.update({k: snapshot[k] for k in SET_BY_IMPORT if k in snapshot})
    namespace["__doc__"] = None


def _unregister(run: _Run) -> None:
    """A failed run's class statements ran their hooks: registries name the classes as before."""
    if not run.stand_ins and not run.fresh_classes:
        return
    namespaces = [run.namespace, *(run.roots() if run.roots else ())]
    txn = Transaction(run.module.__name__)
    replace_stand_ins(run.stand_ins.values(), namespaces, txn)  # (new class, the class kept)
    forget_registered(run.fresh_classes, namespaces, txn)
    txn.commit()


def _restore(run: _Run) -> None:
    namespace = run.module.__dict__
    namespace.clear()
    namespace.update(run.snapshot)
    run.txn.rollback()


def _keep_attributes_set_outside(run: _Run, cls: type, before: dict[str, Any], qualname: str) -> None:
    """Attributes the class got from outside its body (``Point.tag = 5`` after it, a user's
    ``m.Point.debug = True``) survive its body re-running, as the statements that set them
    do not run again. Known only where the text it ran is known; dunders are the class's own."""
    if run.running is None:
        return
    try:
        own = _diff.class_body_names(run.running.text, run.running.path).get(qualname)
    except SyntaxError:
        return
    if own is None:
        return
    if run.whole:  # what the text set after the class runs again too, if it is still there
        owner = qualname.partition(".")[0]
        own = own | {a for o, a in _diff.attributes_set(run.running.text, run.running.path) if o == owner}
    for name, value in before.items():
        if name not in vars(cls) and name not in own and not (name.startswith("_") and name.endswith("_")):
            run.txn.set(cls, name, value)


def _find_old_class(snapshot: dict[str, Any], qualname: str) -> type | None:
    if "<locals>" in qualname:
        return None
    first, *rest = qualname.split(".")
    found = snapshot.get(first)
    for part in rest:
        found = getattr(found, "__dict__", {}).get(part)
    return found if isinstance(found, type) else None


def _build_class(original: Callable[..., Any], func: Any, name: str, *bases: Any, **kwds: Any) -> Any:
    """While a module runs, its class statements yield the classes the user already holds."""
    new = original(func, name, *bases, **kwds)
    run = _current_run
    if (
        run is None
        or not run.intercepting
        or getattr(func, "__globals__", None) is not run.namespace
        or not isinstance(new, type)
    ):
        return new
    old = _find_old_class(run.snapshot, func.__qualname__)
    if old is None or id(old) in run.claimed or old.__module__ != new.__module__:
        if may_have_registered(new):
            run.fresh_classes.append(new)
        return new
    run.claimed.add(id(old))
    run.old_fields[id(old)] = frozenset(getattr(old, "__dataclass_fields__", ()))
    notes = len(run.txn.notes)
    before = run.txn.keep_class_dict(old)  # what decorators then set on it is undone on failure too
    kept = try_upgrade(old, new, run.txn)
    if kept is old:
        _keep_attributes_set_outside(run, old, before, func.__qualname__)
        run.classes.append(func.__qualname__)
        if may_have_registered(new):
            run.stand_ins[id(new)] = (new, old)
    else:  # said at the end, unless a decorator's class is then upgraded in its place
        run.class_notes[id(old)] = run.txn.notes[notes:]
        del run.txn.notes[notes:]
    return kept


def _keep_submodules(run: _Run) -> None:
    """A package's submodules are attributes the import system set: a re-run keeps them."""
    for name, value in run.snapshot.items():
        if name not in run.namespace and _is_submodule(run.module, name, value):
            run.namespace[name] = value


def _is_submodule(package: types.ModuleType, name: str, value: object) -> bool:
    return isinstance(value, types.ModuleType) and value.__name__ == f"{package.__name__}.{name}"

