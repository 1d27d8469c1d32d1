"""The pipeline, once per check: changed files -> modules in order -> apply or roll back
-> dependents follow.

``Reloader`` knows nothing of IPython: a plain REPL, a test, or the IPython
extension drive it the same way, by calling ``check()`` before running code.

Dependents: when a reload changes the object behind a name (a constant, an
instance, a function that could not be upgraded in place), every watched
module and every registered namespace that took that name with ``from m import``
is re-bound, if the name there still holds the old object; a watched module so
re-bound then re-runs its statements that read the name at import time. Modules
are processed dependencies first, each at most once per check: in an import
cycle, a module already processed is only re-bound.
"""

from __future__ import annotations

import enum
import functools
import importlib
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from types import ModuleType
from typing import Any

from . import _workers
from ._aftercare import caches_of, caches_seen
from ._apply import (
    follow_unchanged,
    prepare_follow,
    prepare_reload,
    reload_module,
    reloading,
)
from ._graph import STAR, Edge, ImportGraph, resolve_from
from ._leaves import (
    Followed,
    Leaf,
    LeafTable,
    Shape,
    fill_recipes,
    follow_leaves,
    followed_outcomes,
)
from ._outcomes import Failure, Reloaded
from ._parse import star_imports
from ._source import SourceVersion, pin_in_linecache
from ._vocab import UNBOUND, exported, is_dunder
from ._warmup import WarmUp
from ._watch import Watched, Watchlist, is_user_file
from ._workers import Journal

__all__ = ["Event", "Mode", "Outcome", "Reloader"]

Outcome = Reloaded | Failure


class Mode(enum.IntEnum):
    """When modules are reloaded; the numbers are those of ``%autoreload``."""

    OFF = 0  # never on its own; ``%autoreload now`` still works
    EXPLICIT = 1  # before each cell, only modules marked with ``%aimport``
    ALL = 2  # before each cell, every watched module not excluded
    COMPLETE = 3  # as ALL, and new names reach star- and from-imports of the user

    @classmethod
    def parse(cls, word: str) -> Mode:
        """``"2"``, ``"all"``, ``"ALL"`` -> ``Mode.ALL``; raises ``ValueError`` otherwise."""
        word = word.strip().lower()
        for mode in cls:
            if word in (str(mode.value), mode.name.lower()):
                return mode
        raise ValueError(f"unknown mode {word!r}")


class Reloader:
    """Keeps the user's modules in step with their files.

    >>> reloader = Reloader()
    >>> reloader.mode = Mode.ALL
    >>> reloader.check()   # before running the user's code
    []
    """

    def __init__(
        self, is_user: Callable[[str], bool] = is_user_file, *, events: bool = True, workers: bool = True
    ) -> None:
        self.watchlist = Watchlist(is_user, events=events)
        self.watchlist.on_record = self._read_imports
        self.workers = workers  # edits reach the workers of local pools
        self.journal: Journal | None = None
        self.history: deque[Event] = deque(maxlen=20)  # the last reloads, newest last
        self.broken: dict[str, Event] = {}  # module -> the failure still waiting for a good save
        self.mode = Mode.OFF
        self.full = False  # always re-run whole modules (``--full``, ``2-``)
        self.explicit: dict[str, None] = {}  # marked with %aimport, in order
        self.excluded: dict[str, None] = {}  # marked with %aimport -name
        # namespaces that are not modules (the user's), by label, for dependents
        self.namespaces: dict[str, Callable[[], dict[str, Any]]] = {}
        self.graph = ImportGraph()
        self._busy = threading.Lock()
        # module -> its new version that failed, and the modules that text imports from:
        # tried again when one of those changes (it may have failed for want of a name)
        self._failed: dict[str, tuple[SourceVersion, frozenset[str]]] = {}
        # (module, source) -> can only source change the module, and can it change no other? Kept
        # with what it depends on: when the module's imports, or the imports from it, last changed
        # (the graph's ``touched``), and the number of watched modules (see ``_is_leaf``)
        self._leaves: dict[tuple[str, str], tuple[int, int, bool]] = {}
        # module -> alias -> (object it still holds, source, name): a follow that failed left
        # it behind; the next change of source.name re-binds it from there
        self._held_back: dict[str, dict[str, tuple[object, str, str]]] = {}
        self.warm_up = WarmUp(self._prepare_follow)
        self._new_dependents: list[str] = []  # imported since the last ``idle``
        self._sources_parsed: set[str] = set()  # by the warm-up
        self._tables: dict[tuple[str, tuple[str, ...]], LeafTable] = {}  # (source, names) -> its leaves
        self._tables_seen = (0, 0)  # the graph's version and the watchlist's generation at ``idle``
        self._unfilled = False  # tables made since the warm-up last finished (see ``idle``)

    def start(self) -> None:
        """Watch imports from now on, and adopt the user's modules already imported."""
        self.watchlist.start()
        self.watchlist.adopt_loaded()
        if self.workers and self.journal is None:
            self.journal = Journal()
            self.journal.start(self.watchlist)
            _workers.session_watchlist = self.watchlist

    def stop(self) -> None:
        self.warm_up.close()
        self.watchlist.stop()
        if self.journal is not None:
            self.journal.stop()
            self.journal = None
            if _workers.session_watchlist is self.watchlist:
                _workers.session_watchlist = None

    def worker_failures(self) -> list[str]:
        """What worker processes could not apply, each said once (cheap when no edit happened)."""
        if self.journal is None:
            return []
        problems = self.journal.failures() if self.journal.generation else []
        if "distributed.client" in sys.modules:  # the user has Dask: its workers follow too
            from ._dask import follow_clients

            problems += follow_clients(self.journal.generation, self.journal.texts)
        return problems

    def include(self, name: str) -> ModuleType:
        """Import ``name`` and mark it for reloading in every mode (``%aimport name``)."""
        self.excluded.pop(name, None)
        self.explicit[name] = None
        module = importlib.import_module(name)
        self.watchlist.adopt(module, force=True)
        return module

    def exclude(self, name: str) -> None:
        """Never reload ``name`` (``%aimport -name``)."""
        self.explicit.pop(name, None)
        self.excluded[name] = None

    def track_import(self, namespace: str, source: str, name: str, alias: str) -> None:
        """``namespace`` (a label in ``namespaces``) did ``from source import name as alias``."""
        self.graph.add_namespace_import(namespace, source, name, alias)

    def check(self, *, everything: bool = False, followers: bool = True) -> list[Outcome]:
        """Apply what changed on disk; ``everything`` is ``%autoreload now``.

        Returns one outcome per module that had a new version, and per dependent
        that re-ran a statement or failed. A module whose new version fails is
        left exactly as it was; that version is not tried again until the file
        changes (or ``everything`` asks for it). ``followers=False``: no outcome
        for a dependent that simply followed (a caller that would not say it
        spares making hundreds of them at an edit of a much-imported module).
        """
        if not everything and self.mode is Mode.OFF:
            return []
        if not self._busy.acquire(blocking=False):
            return []  # re-entered from code a reload runs: never nest reloads
        try:
            changes = self.watchlist.poll(
                self._wanted(everything), retry_failed=everything, everything=everything
            )
            if not changes:
                return []
            gone: list[Outcome] = [_gone(c.watched) for c in changes if c.version is None]
            for outcome in gone:
                self._failed.pop(outcome.module, None)  # a deleted file keeps its last good version
                self._remember(Event(time.time(), outcome, 0.0))
            jobs = {c.watched.name: _Job(c.watched, c.version) for c in changes if c.version}
            return gone + self._run(jobs, followers)
        finally:
            self._busy.release()

    def _wanted(self, everything: bool) -> Callable[[str], bool]:
        """Which modules this check may reload (asked only of those that may have changed)."""
        if everything or self.mode >= Mode.ALL:
            return lambda name: name not in self.excluded
        return lambda name: name in self.explicit and name not in self.excluded

    def _run(self, jobs: dict[str, _Job], followers: bool) -> list[Outcome]:
        """Apply the jobs, dependencies first; dependents join the queue as values change."""
        work = _Pass(jobs, followers=[] if followers else None)
        with reloading():  # once for all modules; no file is written meanwhile
            self._apply_in_order(work)
        outcomes = work.outcomes
        if self.journal is not None:
            self.journal.publish(self._new_versions(outcomes))
        for source, where in work.elsewhere.items():
            outcome = outcomes.get(source)
            if isinstance(outcome, Reloaded):
                outcomes[source] = replace(outcome, rebound_elsewhere=tuple(where))
        now = time.time()
        for name, outcome in outcomes.items():
            if isinstance(outcome, Reloaded) and outcome.after and not outcome.stayed_old:
                if self.broken:
                    self.broken.pop(name, None)  # a dependent that followed: said by its source
            else:
                self._remember(Event(now, outcome, work.seconds[name]))
        said = [o for o in outcomes.values() if _worth_reporting(o)]
        for source, followed in work.followers or ():
            said += [o for o in followed_outcomes(followed, source) if _worth_reporting(o)]
        return said

    def _apply_in_order(self, work: _Pass) -> None:
        jobs, done, outcomes = work.jobs, work.done, work.outcomes
        queue: deque[str] = deque()
        while jobs:
            if not queue:  # (re)order what is pending, dependencies first
                queue.extend(self.graph.order(list(jobs)))
            name = queue.popleft()
            if name not in jobs:
                continue
            job = jobs.pop(name)
            done.add(name)
            started = time.perf_counter()
            outcome = self._follow(job) if job.version is None else None
            if outcome is None:
                outcome = self._apply(job)
            # a module whose own save failed still followed what it imports: passed on too
            followed = outcome if isinstance(outcome, Reloaded) else job.followed
            if outcome is not None:
                outcomes[name] = outcome  # before the dependents that follow it, for reports
            if followed is not None:
                for alias in followed.followed:
                    work.rebound(job.sources[alias]).append(f"{name}.{alias}")
                pending = len(jobs)
                if followed.changes and self.graph.has_importers(name):
                    self._propagate(followed, work)
                if self._failed and followed is outcome:
                    self._retry_failed_after(name, work)
                if followed.gone or self.graph.has_star_importers(name):
                    passed_on = self._star_imports_follow(followed, work)
                    outcome = passed_on if followed is outcome else outcome
                if len(jobs) != pending:
                    queue.clear()  # new dependents: order again
            if outcome is not None:
                work.seconds[name] = time.perf_counter() - started
                outcomes[name] = outcome

    def _new_versions(self, outcomes: dict[str, Outcome]) -> dict[str, SourceVersion]:
        """The texts modules run after this check, for the workers (broken saves never)."""
        versions = {}
        for name, outcome in outcomes.items():
            if isinstance(outcome, Reloaded) and not outcome.after:
                watched = self.watchlist.get(name)
                if watched is not None:
                    versions[name] = watched.running
        return versions

    def _remember(self, event: Event) -> None:
        """History for status displays; a broken module stays listed until it is fixed.

        Dependents that followed are not listed one by one: the module they
        follow says where its names were re-bound (200 of them would push it out).
        """
        outcome = event.outcome
        if isinstance(outcome, Failure):
            since = self.broken.get(outcome.module, event).when
            self.broken[outcome.module] = replace(event, when=since)
        else:
            self.broken.pop(outcome.module, None)
        if isinstance(outcome, Failure) or not outcome.after or outcome.stayed_old:
            self.history.append(event)

    def _follow(self, job: _Job) -> Outcome | None:
        """A dependent whose file did not change, the short way (``follow_unchanged``) when it can:
        the common case at each edit of a module many others import from. None: the general way."""
        watched = job.watched
        module = sys.modules.get(watched.name)
        if module is None or watched.compiled or not watched.trusted or watched.name in self._held_back:
            return None
        after = job.after()
        outcome = follow_unchanged(module, watched.running, job.rebind, after)
        if isinstance(outcome, Failure):
            self._note_held_back(watched.name, module, job, outcome)
            return replace(outcome, after=after)
        return outcome

    def _apply(self, job: _Job) -> Outcome | None:
        watched = job.watched
        module = sys.modules.get(watched.name)
        if module is None:
            return None
        if watched.compiled:
            if job.version is None:
                return None  # a dependency changed: nothing to re-run in compiled code
            watched.failed_digest = job.version.digest  # said once per build
            return Failure(watched.name, watched.path, None, "a new build is on disk", compiled=True)
        version = job.version or watched.running
        whole = "asked for with --full" if self.full and job.version else None
        if not watched.trusted:
            whole = "its file was saved after it was imported, before hotswap was loaded"
        if watched.name in self._held_back:
            self._catch_up(job, module)
        rebind = job.rebind
        roots = functools.partial(self._closure_roots, watched.name)
        after = job.after() if job.version is None else ()
        running = watched.running if watched.trusted else None  # untrusted: what runs is unknown
        outcome = reload_module(module, version, running, whole=whole, rebind=rebind, roots=roots, after=after)
        self._note_held_back(watched.name, module, job, outcome)
        if job.version is None:  # a dependent: its file is as it was
            return outcome if isinstance(outcome, Reloaded) else replace(outcome, after=after)
        if isinstance(outcome, Reloaded):
            if self.journal is not None and watched.trusted:
                self.journal.remember_base(watched.name, watched.running)
            watched.running = version
            watched.trusted, watched.imported_code = True, None
            watched.failed_digest = None
            self._failed.pop(watched.name, None)
            pin_in_linecache(version)
            self._read_imports(watched)
            self._forget_held_back_not_imported(watched.name)
            return outcome
        # reported once; retried when the file changes, when a module it imports from
        # changes, or on ``everything``
        said_before = self.broken.get(watched.name)
        watched.failed_digest = version.digest
        self._failed[watched.name] = (version, self._sources_in(watched, version))
        if rebind:  # its own save is broken, but what it imported still follows
            followed = reload_module(module, watched.running, watched.running, rebind=rebind, roots=roots)
            job.followed = followed if isinstance(followed, Reloaded) else None
            self._note_held_back(watched.name, module, job, followed)  # what followed is not behind
        if job.retry and said_before is not None and said_before.outcome == outcome:
            return None  # tried again after a dependency changed: the same failure, already said
        return outcome

    def _retry_failed_after(self, source: str, work: _Pass) -> None:
        """A module changed: a failed version of a module that imports from it may now work."""
        jobs, done = work.jobs, work.done
        for name, (version, sources) in list(self._failed.items()):
            if name in done or name == source or (name in jobs and jobs[name].version is not None):
                continue
            watched = self.watchlist.get(name)
            if watched is None or watched.failed_digest != version.digest:
                self._failed.pop(name, None)  # a newer save superseded it
                continue
            if source not in sources and name not in self.graph.dependents_of(source):
                continue
            job = jobs.get(name)
            if job is None:
                jobs[name] = _Job(watched, version, retry=True)
            elif job.version is None:  # already following a name of source: try its version too
                job.version, job.retry = version, True

    def _propagate(self, outcome: Reloaded, work: _Pass) -> None:
        """Names whose object changed: re-bind them where they were imported.

        A dependent that nothing else can change in this check (it takes names
        from no other user module, and nothing takes names from it) follows at
        once, the short way (most of them from a ``LeafTable``); the others join
        the queue, to run once, in order.
        """
        source, changes = outcome.module, outcome.changes
        table = self._leaf_table(source, tuple(changes))
        if table is None:
            edges = [edge for name in changes for edge in self.graph.importers_of(source, name) if edge.name != STAR]
        else:
            followed: list[Followed] | None = [] if work.followers is not None else None
            handed_back = follow_leaves(table, changes, work.jobs, work.done, work.rebound(source), followed)
            if followed and work.followers is not None:
                work.followers.append((source, followed))
            edges = table.others + [edge for leaf in handed_back for edge in leaf.edges]
        jobs, done = work.jobs, work.done
        leaves: dict[str, list[Any]] = {}  # importer -> [watched, module, (alias, old, new, name)...]
        leaf = self._leaf_test(source, jobs)
        for edge in edges:  # (``from m import *``: see _star_imports_follow)
            importer, alias, name = edge.importer, edge.alias, edge.name
            old, new = changes[name]
            namespace = self.namespaces.get(importer)
            if namespace is not None:
                if _rebind(namespace(), alias, old, new):
                    work.rebound(source).append(f"{importer} {alias}")
                continue
            watched = self.watchlist.get(importer)
            module = sys.modules.get(importer)
            if watched is None or module is None:
                continue
            if importer in done:  # an import cycle: re-bind, run nothing again
                if _rebind(module.__dict__, alias, old, new):
                    work.rebound(source).append(f"{importer}.{alias}")
                continue
            held = self._held_by(module, alias, source, name, old) if self._held_back else old
            if importer in leaves or leaf(watched):
                leaves.setdefault(importer, [watched, module]).append((alias, held, new, name))
            else:
                _job_for(jobs, watched).follow(alias, held, new, source, name)
        if leaves:
            self._follow_each_leaf(leaves, source, work)

    def _leaf_table(self, source: str, names: tuple[str, ...]) -> LeafTable | None:
        """The leaves of ``source`` for these names, kept while the source's imports (the graph's
        ``touched``) and the watched modules (the watchlist's generation) stay as they were.
        None while a module waits on a failure: those may join the queue again (the general way)."""
        if self._failed or self._held_back:
            return None
        stamp = (self.graph.touched.get(source, 0), self.watchlist.generation)
        table = self._tables.get((source, names))
        if table is None or table.stamp != stamp:
            if len(self._tables) >= _TABLES_KEPT:
                self._tables.clear()
            table = self._tables[(source, names)] = self._make_leaf_table(source, names, stamp)
        return table

    def _make_leaf_table(self, source: str, names: tuple[str, ...], stamp: tuple[int, int]) -> LeafTable:
        taken: dict[str, list[Edge]] = {}  # leaf -> its edges from these names
        others: list[Edge] = []
        for name in names:
            for edge in self.graph.importers_of(source, name):
                if edge.name == STAR:
                    continue
                watched = self.watchlist.get(edge.importer)
                if (
                    edge.importer in self.namespaces
                    or watched is None
                    or edge.importer not in sys.modules
                    or not self._is_leaf(watched, source)
                ):
                    others.append(edge)
                else:
                    taken.setdefault(edge.importer, []).append(edge)
        groups: dict[Shape, list[Leaf]] = {}
        for importer, edges in taken.items():
            module, watched = sys.modules[importer], self.watchlist.get(importer)
            assert watched is not None
            try:
                caches = caches_seen(module)
            except Exception:  # noqa: BLE001 - a value that fails when looked at: the general way says it
                others += edges
                continue
            shape = (tuple(edge.alias for edge in edges), tuple(edge.name for edge in edges))
            where = tuple(f"{importer}.{edge.alias}" for edge in edges)
            leaf = Leaf(importer, module, module.__dict__, watched, watched.running, tuple(edges), where, caches)
            groups.setdefault(shape, []).append(leaf)
        return LeafTable(stamp, groups, others)

    def _leaf_test(self, source: str, jobs: dict[str, _Job]) -> Callable[[Watched], bool]:
        """Can only ``source`` change this module in this check, and can it change no other?"""
        if self._failed or self._held_back:
            return lambda watched: False  # they may join the queue again: the general way
        return lambda watched: watched.name not in jobs and self._is_leaf(watched, source)

    def _is_leaf(self, watched: Watched, source: str) -> bool:
        """Of what the module imports, only ``source`` is the user's, and nothing imports from it;
        its text is the one that runs. Kept in ``_leaves`` with what the answer depends on: the
        graph's stamp of the module, and the number of watched modules."""
        if not watched.trusted or watched.compiled:
            return False
        name, graph = watched.name, self.graph
        stamp = (graph.touched.get(name, 0), len(self.watchlist))
        known = self._leaves.get((name, source))
        if known is not None and known[:2] == stamp:
            return known[2]
        answer = (
            not graph.has_importers(name)
            and not graph.has_star_importers(name)
            and graph.only_user_source(name, source, self.watchlist.__contains__)
            and all(edge.name != STAR for edge in graph.edges_of(name))  # see _star_imports_follow
        )
        self._leaves[(name, source)] = (*stamp, answer)
        return answer

    def _follow_each_leaf(self, leaves: dict[str, list[Any]], source: str, work: _Pass) -> None:
        """Dependents only ``source`` changes, followed now; anything the short way cannot vouch
        for becomes a job, as any other dependent's. A failure is final (its statements ran once)."""
        after, done, outcomes, where = (source,), work.done, work.outcomes, work.rebound(source)
        for name, (watched, module, *follows) in leaves.items():
            rebind = {alias: (old, new) for alias, old, new, _ in follows}
            started = time.perf_counter()
            outcome = follow_unchanged(module, watched.running, rebind, after)
            if isinstance(outcome, Reloaded):
                done.add(name)
                outcomes[name] = outcome
                for alias in outcome.followed:
                    where.append(f"{name}.{alias}")
                continue
            job = _Job(watched, None) if outcome is not None else _job_for(work.jobs, watched)
            for alias, old, new, taken in follows:
                job.follow(alias, old, new, source, taken)
            if outcome is not None:  # it failed: left as it was, what it holds is behind
                done.add(name)
                outcomes[name] = outcome
                work.seconds[name] = time.perf_counter() - started
                self._note_held_back(name, module, job, outcome)

    def _star_imports_follow(self, outcome: Reloaded, work: _Pass) -> Reloaded:
        """``from m import *`` elsewhere follows what m now exports (its names and ``__all__``);
        a name removed from m that is imported by name elsewhere is said (a fresh import would fail)."""
        source = sys.modules.get(outcome.module)
        stars = self.graph.star_importers(outcome.module)
        if stars and source is not None:
            view = exports_changed(outcome, vars(source))
            for edge in stars if view else ():
                self._star_import_follows(edge, view, work)
        orphans = []
        for name in outcome.gone:
            for edge in self.graph.importers_of(outcome.module, name):
                if edge.name != STAR and edge.importer not in self.namespaces:
                    orphans.append(
                        (f"{edge.importer}.{edge.alias}", f"{outcome.module} no longer defines {name}: "
                         f"{edge.importer} keeps the old object (a fresh import of it would fail)")
                    )
        return replace(outcome, stayed_old=outcome.stayed_old + tuple(orphans)) if orphans else outcome

    def _star_import_follows(self, edge: Edge, view: dict[str, tuple[object, object]], work: _Pass) -> None:
        """One ``from source import *``: names still bound to what source exported follow it.

        In a module, a name its own text binds after the star import keeps its
        own value, and one it binds before (a default) is bound again when
        source stops exporting it, as a fresh import would do.
        """
        where = work.rebound(edge.source)
        namespace = self.namespaces.get(edge.importer)
        if namespace is not None:  # the user's: what still holds source's object follows
            names = namespace()  # (new names come in mode 3 only; a name gone stays, as it was)
            for name, (old, new) in view.items():
                if old is not UNBOUND and new is not UNBOUND and _rebind(names, name, old, new):
                    where.append(f"{edge.importer} {name}")
            return
        watched = self.watchlist.get(edge.importer)
        module = sys.modules.get(edge.importer)
        if watched is None or module is None or watched.compiled:
            return
        before, after = self._bound_around_star(watched, edge.source)
        current = vars(module)
        for name, (old, new) in view.items():
            if name in after:
                continue  # the module's own value wins
            held = current.get(name, UNBOUND) if name in before else old
            if held is new or current.get(name, UNBOUND) is not held:
                continue
            if edge.importer in work.done:  # an import cycle: re-bind, run nothing again
                _rebind(current, name, held, new)
                where.append(f"{edge.importer}.{name}")
            else:
                _job_for(work.jobs, watched).follow(name, held, new, edge.source, name)

    def _bound_around_star(self, watched: Watched, source: str) -> tuple[frozenset[str], frozenset[str]]:
        """Names a module's text binds before and after its last ``from source import *``."""
        package = _package_of(watched)
        try:
            stars = star_imports(watched.running.text, watched.path)
        except (SyntaxError, ValueError):
            return frozenset(), frozenset()
        found = (frozenset[str](), frozenset[str]())
        for node, before, after in stars:
            if resolve_from(node, package) == source:
                found = (before, after)
        return found

    def _closure_roots(self, name: str) -> list[dict[str, Any]]:
        """Where closures made by a module's old code may be kept: the user's, modules using it."""
        roots = [namespace() for namespace in self.namespaces.values()]
        users = map(sys.modules.get, self.graph.dependents_of(name))
        roots += [vars(m) for m in users if isinstance(m, ModuleType)]
        return roots

    def _held_by(self, module: ModuleType, alias: str, source: str, name: str, old: object) -> object:
        """What ``module.alias`` holds that ``source.name`` replaces: ``old``, unless a failed follow
        left it holding an earlier value."""
        held_back = self._held_back.get(module.__name__)
        if held_back is None or alias not in held_back:
            return old
        held, held_source, held_name = held_back[alias]
        behind = held_source == source and held_name == name and vars(module).get(alias, UNBOUND) is held
        return held if behind else old

    def _catch_up(self, job: _Job, module: ModuleType) -> None:
        """Names a failed follow left behind are re-bound with this reload, from where they are now."""
        for alias, (held, source, name) in self._held_back.get(job.watched.name, {}).items():
            origin = sys.modules.get(source)
            if alias not in job.rebind and origin is not None and vars(module).get(alias, UNBOUND) is held:
                current = vars(origin).get(name, UNBOUND)
                if current is not UNBOUND and current is not held:
                    job.follow(alias, held, current, source, name)

    def _note_held_back(self, name: str, module: ModuleType, job: _Job, outcome: Outcome) -> None:
        if name not in self._held_back and not (isinstance(outcome, Failure) and job.rebind):
            return
        namespace = vars(module)
        held = self._held_back.pop(name, {})
        if isinstance(outcome, Failure):
            for alias, (old, _) in job.rebind.items():
                if namespace.get(alias, UNBOUND) is old:
                    held[alias] = (old, job.sources[alias], job.names.get(alias, alias))
        held = {a: h for a, h in held.items() if namespace.get(a, UNBOUND) is h[0]}
        if held:
            self._held_back[name] = held

    def _forget_held_back_not_imported(self, name: str) -> None:
        """A new text ran: names it no longer takes from where they were held back from are its own."""
        held = self._held_back.get(name)
        if held:
            taken = {(edge.source, edge.name) for edge in self.graph.edges_of(name)}
            kept = {a: h for a, h in held.items() if (h[1], h[2]) in taken or (h[1], STAR) in taken}
            if kept:
                self._held_back[name] = kept
            else:
                del self._held_back[name]

    def _sources_in(self, watched: Watched, version: SourceVersion) -> frozenset[str]:
        try:
            return ImportGraph.sources_in_text(version.text, _package_of(watched))
        except (UnicodeDecodeError, ValueError):
            return frozenset()

    def idle(self) -> None:
        """The user's code is done for now (a cell ran): prepare how the modules imported since
        will follow the modules they take names from. In the background (on the warm-up thread)
        for their texts; here, where it may touch the modules' objects, for their caches and the
        leaf tables of what they take (about 45 µs a module, a fifth of what importing it took,
        in the cell that imported them rather than in the cell after an edit). Nothing to do:
        nothing done."""
        tables: set[tuple[str, tuple[str, ...]]] = set()
        while self._new_dependents:
            name = self._new_dependents.pop()
            module = sys.modules.get(name)
            if module is not None:
                tables.update(
                    (edge.source, (edge.name,))
                    for edge in self.graph.edges_of(name)
                    if edge.name != STAR and edge.source in self.watchlist
                )
                try:
                    caches_of(module)
                except Exception:  # noqa: BLE001 - the first follow looks again, and says what fails
                    pass
        seen = (self.graph.version, self.watchlist.generation)
        if seen != self._tables_seen:  # imports changed: the tables they made stale, made anew
            self._tables_seen = seen
            tables.update(self._tables)
        for source, names in tables:
            self._leaf_table(source, names)
        if tables:
            self._unfilled = True
        elif self._unfilled and not self.warm_up.busy:  # it found their recipes: the tables take them
            self._unfilled = False
            for table in self._tables.values():
                fill_recipes(table)
        self.warm_up.start()

    def _prepare_follow(self, name: str) -> None:
        """The warm-up's work for one module (on its thread): see ``prepare_follow``; and the text
        of each module it takes names from is prepared, once (``prepare_reload``: the old side of
        that module's first reload)."""
        watched = self.watchlist.get(name)
        if watched is None or watched.compiled or not watched.trusted:
            return
        edges = [edge for edge in self.graph.edges_of(name) if edge.name != STAR and edge.source in self.watchlist]
        if edges:
            prepare_follow(watched.running, [edge.alias for edge in edges])
        for source in {edge.source for edge in edges} - self._sources_parsed:
            self._sources_parsed.add(source)
            running = self.watchlist.get(source)
            if running is not None and not running.compiled:
                prepare_reload(running.running)

    def _read_imports(self, watched: Watched) -> None:
        """Keep the graph current: a module was imported, or now runs another text."""
        if watched.compiled:
            return
        if not watched.trusted and watched.imported_code is not None:  # its file is not what runs
            self.graph.update_from_code(watched.name, watched.imported_code, _package_of(watched))
            return
        self.graph.update_from_text(watched.name, watched.running.text, _package_of(watched))
        if any(self._may_be_user_edge(edge) for edge in self.graph.edges_of(watched.name)):
            self.warm_up.add(watched.name)  # it takes names from other user modules: see ``idle``
            self._new_dependents.append(watched.name)

    def _may_be_user_edge(self, edge: Edge) -> bool:
        """Is it, or may it be (its source not imported yet), a ``from`` import of a user module?"""
        return edge.name != STAR and (edge.source in self.watchlist or edge.source not in sys.modules)


@dataclass(frozen=True)
class Event:
    """One reload, when it happened and what it took."""

    when: float  # time.time()
    outcome: Outcome
    seconds: float


@dataclass(slots=True)
class _Job:
    """One module to bring up to date in this check."""

    watched: Watched
    version: SourceVersion | None  # None: same text, only modules it imports from changed
    retry: bool = False  # a version that failed, tried again because a module it imports changed
    rebind: dict[str, tuple[object, object]] = field(default_factory=dict)  # alias -> (old, new)
    sources: dict[str, str] = field(default_factory=dict)  # alias -> the module it is from
    names: dict[str, str] = field(default_factory=dict)  # alias -> its name in that module
    followed: Reloaded | None = None  # its version failed, but it followed what it imports

    def follow(self, alias: str, old: object, new: object, source: str, name: str) -> None:
        """Re-bind ``alias`` (``source.name``) from ``old`` to ``new`` in this job."""
        self.rebind[alias] = (old, new)
        self.sources[alias] = source
        self.names[alias] = name

    def after(self) -> tuple[str, ...]:
        """The modules it follows, for reports (one, mostly)."""
        sources = set(self.sources.values())
        return tuple(sources) if len(sources) < 2 else tuple(sorted(sources))


@dataclass(slots=True)
class _Pass:
    """One check's work in progress: the jobs left, the modules done, what it found and where."""

    jobs: dict[str, _Job]
    done: set[str] = field(default_factory=set)
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    elsewhere: dict[str, list[str]] = field(default_factory=dict)  # source -> "where.name" re-bound
    seconds: dict[str, float] = field(default_factory=dict)  # module -> time its reload took
    # per source, the leaves that followed from its table (None: no outcome is made for them)
    followers: list[tuple[str, list[Followed]]] | None = None

    def rebound(self, source: str) -> list[str]:
        """Where names of ``source`` were re-bound, to add to."""
        return self.elsewhere.setdefault(source, [])


_TABLES_KEPT = 64  # leaf tables (a source and the names that changed in one edit); then made anew


def _package_of(watched: Watched) -> str | None:
    """The package a module's relative imports resolve in."""
    if os.path.basename(watched.path) == "__init__.py":
        return watched.name
    return watched.name.rpartition(".")[0] or None


def exports_changed(outcome: Reloaded, namespace: dict[str, Any]) -> dict[str, tuple[object, object]]:
    """What ``from m import *`` gives that changed with this reload of m: name -> (old, new),
    ``UNBOUND`` where it gave or gives nothing (``namespace``: m's, after the reload)."""
    changes, gone, added = outcome.changes, outcome.gone, set(outcome.added)
    new_all = namespace.get("__all__", UNBOUND)
    old_all = outcome.all_changed[0] if outcome.all_changed else new_all
    old_namespace = dict(namespace)
    for name in added:
        del old_namespace[name]
    old_namespace.update(gone)
    old_namespace.update({name: old for name, (old, _) in changes.items()})
    if old_all is UNBOUND:
        old_namespace.pop("__all__", None)
    else:
        old_namespace["__all__"] = old_all
    candidates = set(changes) | added | set(gone)
    if outcome.all_changed:  # every name may have come or gone
        candidates |= set(namespace) | set(old_namespace)
    view = {}
    for name in candidates:
        if is_dunder(name):
            continue
        old = old_namespace[name] if exported(old_namespace, name) else UNBOUND
        new = namespace[name] if exported(namespace, name) else UNBOUND
        if old is not new:
            view[name] = (old, new)
    return view


def _gone(watched: Watched) -> Failure:
    return Failure(watched.name, watched.path, None, "its file was deleted", deleted=True)


def _worth_reporting(outcome: Outcome) -> bool:
    """A dependent whose file did not change is news only if something happened in it."""
    if isinstance(outcome, Failure) or not outcome.after:
        return True
    return bool(outcome.reran or outcome.rebound_elsewhere or outcome.stayed_old)


def _rebind(namespace: dict[str, Any], alias: str, old: object, new: object) -> bool:
    """``alias`` goes from ``old`` to ``new`` (``UNBOUND``: it goes), if it still holds ``old``."""
    if namespace.get(alias, UNBOUND) is not old:
        return False  # re-assigned since: the user's choice stands
    if new is UNBOUND:
        del namespace[alias]
    else:
        namespace[alias] = new
    return True


def _job_for(jobs: dict[str, _Job], watched: Watched) -> _Job:
    """The module's job in this check: a dependent's, made when a first name it took changes."""
    job = jobs.get(watched.name)
    if job is None:
        job = jobs[watched.name] = _Job(watched, None)
    return job


