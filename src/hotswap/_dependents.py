"""Dependents follow: a reload changed the object behind a name; every module and namespace that
took that name with ``from m import`` is re-bound, if the name there still holds the old object.

A watched module so re-bound then re-runs its statements that read the name at
import time (``_follow``). A dependent that nothing else can change in this check
(a *leaf*: it takes names from no other user module, and nothing takes names from
it) follows at once, most of them from a ``LeafTable`` kept per source and changed
names; the others join the queue of the reload step (``_engine``), to run once,
dependencies first. In an import cycle, a module already processed is only re-bound.

What a failed follow leaves behind (``behind``) is caught up at the next change of
what it holds; a failed version of a module is tried again when a module it imports
from changes (``failed``).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from types import ModuleType
from typing import TYPE_CHECKING, Any, NamedTuple

from . import _machinery
from ._graph import STAR, Edge, ImportGraph, resolve_from
from ._jobs import Failed, Held, Job, LeafFollow, Outcome, Pass
from ._outcomes import Failure, Reloaded
from ._source import SourceVersion
from ._vocab import UNBOUND, exported, is_dunder
from ._warmup import WarmUp
from ._watch import Watched, Watchlist

if TYPE_CHECKING:
    from ._leaves import Followed, Leaf, LeafTable

# The reload machinery (``_follow``, ``_leaves``, ``_aftercare``, ``_parse``) is imported where it
# is used, never at load (see ``_machinery``): by then the warm-up or a reload has imported it.

__all__ = ["Dependents", "exports_changed", "package_of"]


class _LeafAnswer(NamedTuple):
    """Is a module a leaf of a source, and what that answer depends on."""

    touched: int  # the graph's stamp of the module (its imports, or the imports from it, changed)
    watching: int  # how many modules were watched
    leaf: bool


class Dependents:
    """Who took which name from whom (the import graph), and how each follows a change."""

    def __init__(self, watchlist: Watchlist) -> None:
        self.watchlist = watchlist
        self._graph = ImportGraph()  # (read it through ``graph``: it settles the modules just imported)
        # namespaces that are not modules (the user's), by label
        self.namespaces: dict[str, Callable[[], dict[str, Any]]] = {}
        self.failed: dict[str, Failed] = {}
        # module -> alias -> what a failed follow left it holding; the next change re-binds it
        self.behind: dict[str, dict[str, Held]] = {}
        # (module, source) -> can only source change the module, and can it change no other? Kept
        # with what it depends on: when the module's imports, or the imports from it, last changed
        # (the graph's ``touched``), and the number of watched modules (see ``_is_leaf``)
        self._leaves: dict[tuple[str, str], _LeafAnswer] = {}
        self.warm_up = WarmUp(self._prepare_follow, settle=watchlist, ready=_machinery.load_in_background)
        self._new_dependents: list[str] = []  # imported since the last ``idle``
        self._sources_parsed: set[str] = set()  # by the warm-up
        self._tables: dict[tuple[str, tuple[str, ...]], LeafTable] = {}  # (source, names) -> its leaves
        self._tables_seen = (0, 0)  # the graph's version and the watchlist's generation at ``idle``
        self._unfilled = False  # tables made since the warm-up last finished (see ``idle``)

    # -- the graph ---------------------------------------------------------------------------

    @property
    def graph(self) -> ImportGraph:
        """The import graph, with the imports of every module imported so far read in."""
        if self.watchlist.unsettled:
            self.watchlist.settle()
        return self._graph

    def read_imports(self, watched: Watched) -> None:
        """Keep the graph current: a module was imported, or now runs another text. (Called with
        the watchlist's lock held, and with the graph as it is: see ``graph``.)"""
        if watched.compiled:
            return
        graph = self._graph
        if not watched.trusted and watched.imported_code is not None:  # its file is not what runs
            graph.update_from_code(watched.name, watched.imported_code, package_of(watched))
            return
        graph.update_from_text(watched.name, watched.running.text, package_of(watched))
        if any(self._may_be_user_edge(edge) for edge in graph.edges_of(watched.name)):
            self.warm_up.add(watched.name)  # it takes names from other user modules: see ``idle``
            self._new_dependents.append(watched.name)

    def add_namespace_import(self, label: str, source: str, name: str, alias: str) -> None:
        """A namespace (the user's) did ``from source import name as alias``: no module need be
        settled for that (a cell after a thousand imports does not wait for their reading)."""
        with self.watchlist.lock:
            self._graph.add_namespace_import(label, source, name, alias)

    def _may_be_user_edge(self, edge: Edge) -> bool:
        """Is it, or may it be (its source not imported yet), a ``from`` import of a user module?"""
        return edge.name != STAR and (edge.source in self.watchlist or edge.source not in sys.modules)

    def closure_roots(self, name: str) -> list[dict[str, Any]]:
        """Where closures made by a module's old code may be kept: the user's, modules using it."""
        roots = [namespace() for namespace in self.namespaces.values()]
        users = map(sys.modules.get, self.graph.dependents_of(name))
        roots += [vars(m) for m in users if isinstance(m, ModuleType)]
        return roots

    # -- following a change --------------------------------------------------------------------

    def propagate(self, outcome: Reloaded, work: Pass) -> None:
        """Names whose object changed: re-bind them where they were imported; leaves follow at
        once, the other dependents join ``work``'s jobs."""
        source, changes = outcome.module, outcome.changes
        table = self._leaf_table(source, tuple(changes))
        if table is None:
            edges = [edge for name in changes for edge in self.graph.importers_of(source, name) if edge.name != STAR]
        else:
            edges = self._follow_table(table, outcome, work)
        leaves: dict[str, list[LeafFollow]] = {}
        leaf = self._leaf_test(source, work.jobs)
        for edge in edges:  # (``from m import *``: see star_imports_follow)
            old, new = changes[edge.name]
            if not self._rebind_elsewhere(edge, old, new, work):
                self._module_follows(edge, old, new, leaves, leaf, work)
        if leaves:
            self._follow_each_leaf(leaves, source, work)
        if outcome.remade:
            self._remake(outcome, work)

    def _remake(self, outcome: Reloaded, work: Pass) -> None:
        """Modules that made something with a function of ``outcome.remade`` (``@traced def f``)
        run those statements again: the same object, followed (``_apply._follow``)."""
        module = sys.modules.get(outcome.module)
        for name in outcome.remade:
            maker = getattr(module, name, UNBOUND)
            for edge in self.graph.importers_of(outcome.module, name):
                watched = self.watchlist.get(edge.importer)
                if edge.name != STAR and watched is not None and edge.importer not in work.done:
                    _job_for(work.jobs, watched).follow(edge.alias, maker, maker, outcome.module, name)

    def _module_follows(
        self,
        edge: Edge,
        old: object,
        new: object,
        leaves: dict[str, list[LeafFollow]],
        leaf: Callable[[Watched], bool],
        work: Pass,
    ) -> None:
        """A watched module that took ``edge.name``: a leaf (followed at once, with the others of
        this change), or a job of this pass."""
        watched = self.watchlist.get(edge.importer)
        module = sys.modules.get(edge.importer)
        if watched is None or module is None:
            return
        held = self._held_by(module, edge.alias, edge.source, edge.name, old) if self.behind else old
        if held is new:  # it holds the new object already (the same object means: remake, see _remake)
            return
        if edge.importer in leaves or leaf(watched):
            leaves.setdefault(edge.importer, []).append(LeafFollow(edge.alias, held, new, edge.name))
        else:
            _job_for(work.jobs, watched).follow(edge.alias, held, new, edge.source, edge.name)

    def _follow_table(self, table: LeafTable, outcome: Reloaded, work: Pass) -> list[Edge]:
        """The table's leaves follow; returns the edges left for the general way."""
        from ._leaves import follow_leaves

        source = outcome.module
        followed: list[Followed] | None = [] if work.followers is not None else None
        handed_back = follow_leaves(table, outcome.changes, work.jobs, work.done, work.rebound(source), followed)
        if followed and work.followers is not None:
            work.followers.append((source, followed))
        return table.others + [edge for leaf in handed_back for edge in leaf.edges]

    def _rebind_elsewhere(self, edge: Edge, old: object, new: object, work: Pass) -> bool:
        """A namespace of the user's, or a module already done in this check (an import cycle):
        re-bound, nothing runs again. False: the importer follows as a module."""
        namespace = self.namespaces.get(edge.importer)
        if namespace is not None:
            if rebind(namespace(), edge.alias, old, new):
                work.rebound(edge.source).append(f"{edge.importer} {edge.alias}")
            return True
        if edge.importer not in work.done:
            return False
        module = sys.modules.get(edge.importer)
        if module is not None and edge.importer in self.watchlist and rebind(module.__dict__, edge.alias, old, new):
            work.rebound(edge.source).append(f"{edge.importer}.{edge.alias}")
        return True

    def _leaf_table(self, source: str, names: tuple[str, ...]) -> LeafTable | None:
        """The leaves of ``source`` for these names, kept while the source's imports (the graph's
        ``touched``) and the watched modules (the watchlist's generation) stay as they were.
        None while a module waits on a failure: those may join the queue again (the general way)."""
        if self.failed or self.behind:
            return None
        stamp = (self.graph.touched.get(source, 0), self.watchlist.generation)
        table = self._tables.get((source, names))
        if table is None or table.stamp != stamp:
            if len(self._tables) >= _TABLES_KEPT:
                self._tables.clear()
            table = self._tables[(source, names)] = self._make_leaf_table(source, names, stamp)
        return table

    def _make_leaf_table(self, source: str, names: tuple[str, ...], stamp: tuple[int, int]) -> LeafTable:
        from ._leaves import LeafTable, Shape

        taken: dict[str, list[Edge]] = {}  # leaf -> its edges from these names
        others: list[Edge] = []
        for name in names:
            for edge in self.graph.importers_of(source, name):
                if edge.name == STAR:
                    continue
                if self._table_may_hold(edge, source):
                    taken.setdefault(edge.importer, []).append(edge)
                else:
                    others.append(edge)
        groups: dict[Shape, list[Leaf]] = {}
        for importer, edges in taken.items():
            leaf = self._leaf(importer, edges)
            if leaf is None:
                others += edges
            else:
                shape = (tuple(edge.alias for edge in edges), tuple(edge.name for edge in edges))
                groups.setdefault(shape, []).append(leaf)
        return LeafTable(stamp, groups, others)

    def _leaf(self, importer: str, edges: list[Edge]) -> Leaf | None:
        """A table's row for a leaf module; None: a value fails when looked at (the general way says it)."""
        from ._aftercare import caches_seen
        from ._leaves import Leaf

        module, watched = sys.modules[importer], self.watchlist.get(importer)
        assert watched is not None
        try:
            caches = caches_seen(module)
        except Exception:  # noqa: BLE001 - said by the general way
            return None
        where = tuple(f"{importer}.{edge.alias}" for edge in edges)
        return Leaf(importer, module, module.__dict__, watched, watched.running, tuple(edges), where, caches)

    def _table_may_hold(self, edge: Edge, source: str) -> bool:
        """Can a leaf table follow this import (an imported leaf module of ``source``)?"""
        watched = self.watchlist.get(edge.importer)
        return (
            edge.importer not in self.namespaces
            and watched is not None
            and edge.importer in sys.modules
            and self._is_leaf(watched, source)
        )

    def _leaf_test(self, source: str, jobs: dict[str, Job]) -> Callable[[Watched], bool]:
        """Can only ``source`` change this module in this check, and can it change no other?"""
        if self.failed or self.behind:
            return lambda watched: False  # they may join the queue again: the general way
        return lambda watched: watched.name not in jobs and self._is_leaf(watched, source)

    def _is_leaf(self, watched: Watched, source: str) -> bool:
        """Of what the module imports, only ``source`` is the user's, and nothing imports from it;
        its text is the one that runs. Kept in ``_leaves`` with what the answer depends on: the
        graph's stamp of the module, and the number of watched modules."""
        if not watched.trusted or watched.compiled:
            return False
        name, graph = watched.name, self.graph
        touched, watching = graph.touched.get(name, 0), len(self.watchlist)
        known = self._leaves.get((name, source))
        if known is not None and known.touched == touched and known.watching == watching:
            return known.leaf
        answer = (
            not graph.has_importers(name)
            and not graph.has_star_importers(name)
            and graph.only_user_source(name, source, self.watchlist.__contains__)
            and all(edge.name != STAR for edge in graph.edges_of(name))  # see star_imports_follow
        )
        self._leaves[(name, source)] = _LeafAnswer(touched, watching, answer)
        return answer

    def _follow_each_leaf(self, leaves: dict[str, list[LeafFollow]], source: str, work: Pass) -> None:
        """Dependents only ``source`` changes, followed now; anything the short way cannot vouch
        for becomes a job, as any other dependent's. A failure is final (its statements ran once)."""
        from ._follow import follow_unchanged

        after, where = (source,), work.rebound(source)
        for name, follows in leaves.items():
            watched, module = self.watchlist.get(name), sys.modules[name]
            assert watched is not None
            started = time.perf_counter()
            rebinding = {f.alias: (f.old, f.new) for f in follows}
            outcome = follow_unchanged(module, watched.running, rebinding, after)
            if isinstance(outcome, Reloaded):
                work.done.add(name)
                work.outcomes[name] = outcome
                where += [f"{name}.{alias}" for alias in outcome.followed]
                continue
            job = Job(watched, None) if outcome is not None else _job_for(work.jobs, watched)
            for follow in follows:
                job.follow(follow.alias, follow.old, follow.new, source, follow.name)
            if outcome is not None:  # it failed: left as it was, what it holds is behind
                work.done.add(name)
                work.outcomes[name] = outcome
                work.seconds[name] = time.perf_counter() - started
                self.note_behind(name, module, job, outcome)

    # -- star imports ----------------------------------------------------------------------------

    def star_imports_follow(self, outcome: Reloaded, work: Pass) -> Reloaded:
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
        return _with_stayed_old(outcome, orphans)

    def _star_import_follows(self, edge: Edge, view: dict[str, tuple[object, object]], work: Pass) -> None:
        """One ``from source import *``: names still bound to what source exported follow it.

        In a module, a name its own text binds after the star import keeps its
        own value, and one it binds before (a default) is bound again when
        source stops exporting it, as a fresh import would do.
        """
        namespace = self.namespaces.get(edge.importer)
        if namespace is not None:  # the user's: what still holds source's object follows
            _user_star_follows(edge, namespace(), view, work.rebound(edge.source))
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
            if held is not new and current.get(name, UNBOUND) is held:
                self._star_name_follows(edge, watched, name, held, new, work)

    def _star_name_follows(self, edge: Edge, watched: Watched, name: str, held: object, new: object, work: Pass) -> None:
        """A module's name that still holds what ``from source import *`` gave it gets the new value."""
        if edge.importer in work.done:  # an import cycle: re-bind, run nothing again
            rebind(vars(sys.modules[edge.importer]), name, held, new)
            work.rebound(edge.source).append(f"{edge.importer}.{name}")
        else:
            _job_for(work.jobs, watched).follow(name, held, new, edge.source, name)

    def _bound_around_star(self, watched: Watched, source: str) -> tuple[frozenset[str], frozenset[str]]:
        """Names a module's text binds before and after its last ``from source import *``."""
        from ._parse import star_imports

        package = package_of(watched)
        try:
            stars = star_imports(watched.running.text, watched.path)
        except (SyntaxError, ValueError):
            return frozenset(), frozenset()
        found = (frozenset[str](), frozenset[str]())
        for node, before, after in stars:
            if resolve_from(node, package) == source:
                found = (before, after)
        return found

    # -- what is behind ------------------------------------------------------------------------

    def _held_by(self, module: ModuleType, alias: str, source: str, name: str, old: object) -> object:
        """What ``module.alias`` holds that ``source.name`` replaces: ``old``, unless a failed follow
        left it holding an earlier value."""
        held = self.behind.get(module.__name__, {}).get(alias)
        if held is None:
            return old
        behind = held.source == source and held.name == name and vars(module).get(alias, UNBOUND) is held.value
        return held.value if behind else old

    def catch_up(self, job: Job, module: ModuleType) -> None:
        """Names a failed follow left behind are re-bound with this reload, from where they are now."""
        for alias, held in self.behind.get(job.watched.name, {}).items():
            origin = sys.modules.get(held.source)
            if alias not in job.rebind and origin is not None and vars(module).get(alias, UNBOUND) is held.value:
                current = vars(origin).get(held.name, UNBOUND)
                if current is not UNBOUND and current is not held.value:
                    job.follow(alias, held.value, current, held.source, held.name)

    def note_behind(self, name: str, module: ModuleType, job: Job, outcome: Outcome) -> None:
        """After a module's follow: what a failure left holding old values, what caught up."""
        if name not in self.behind and not (isinstance(outcome, Failure) and job.rebind):
            return
        namespace = vars(module)
        held = self.behind.pop(name, {})
        if isinstance(outcome, Failure):
            for alias, (old, _) in job.rebind.items():
                if namespace.get(alias, UNBOUND) is old:
                    held[alias] = Held(old, job.sources[alias], job.names.get(alias, alias))
        held = {alias: h for alias, h in held.items() if namespace.get(alias, UNBOUND) is h.value}
        if held:
            self.behind[name] = held

    def forget_behind_not_imported(self, name: str) -> None:
        """A new text ran: names it no longer takes from where they were held back from are its own."""
        held = self.behind.get(name)
        if held:
            taken = {(edge.source, edge.name) for edge in self.graph.edges_of(name)}
            kept = {a: h for a, h in held.items() if (h.source, h.name) in taken or (h.source, STAR) in taken}
            if kept:
                self.behind[name] = kept
            else:
                del self.behind[name]

    def remember_failed(self, watched: Watched, version: SourceVersion) -> None:
        """A new version failed: tried again when a module its text imports from changes."""
        try:
            sources = ImportGraph.sources_in_text(version.text, package_of(watched))
        except (UnicodeDecodeError, ValueError):
            sources = frozenset()
        self.failed[watched.name] = Failed(version, sources)

    def retry_failed_after(self, source: str, work: Pass) -> None:
        """A module changed: a failed version of a module that imports from it may now work."""
        jobs = work.jobs
        for name, (version, sources) in list(self.failed.items()):
            if name in work.done or name == source or (name in jobs and jobs[name].version is not None):
                continue
            watched = self.watchlist.get(name)
            if watched is None or watched.failed_digest != version.digest:
                self.failed.pop(name, None)  # a newer save superseded it
            elif (source in sources or name in self.graph.dependents_of(source)) and work.may_reload(name):
                _job_for(jobs, watched).retry_with(version)

    # -- between cells ---------------------------------------------------------------------------

    def idle(self) -> None:
        """The user's code is done for now (a cell ran): prepare how the modules imported since
        will follow the modules they take names from. In the background (on the warm-up thread)
        for their texts; here, where it may touch the modules' objects, for their caches and the
        leaf tables of what they take (about 45 µs a module, a fifth of what importing it took,
        in the cell that imported them rather than in the cell after an edit). Nothing to do:
        nothing done. Modules imported and not settled yet (see ``Watchlist.settle``): the warm-up
        thread reads their imports first, and this is done at the next cell."""
        if self.watchlist.unsettled:
            self.warm_up.start()
            return
        if self._new_dependents or self.warm_up.pending:
            _machinery.load()  # (the warm-up thread may have done it: see ``_machinery``)
        tables = self._tables_taken_by_new_dependents()
        seen = (self.graph.version, self.watchlist.generation)
        if seen != self._tables_seen:  # imports changed: the tables they made stale, made anew
            self._tables_seen = seen
            tables.update(self._tables)
        for source, names in tables:
            self._leaf_table(source, names)
        if tables:
            self._unfilled = True
        elif self._unfilled and not self.warm_up.busy:  # it found their recipes: the tables take them
            from ._leaves import fill_recipes

            self._unfilled = False
            for table in self._tables.values():
                fill_recipes(table)
        self.warm_up.start()

    def _tables_taken_by_new_dependents(self) -> set[tuple[str, tuple[str, ...]]]:
        """The tables the modules imported since the last ``idle`` appear in (their caches looked for)."""
        from ._aftercare import caches_of

        tables: set[tuple[str, tuple[str, ...]]] = set()
        while self._new_dependents:
            name = self._new_dependents.pop()
            module = sys.modules.get(name)
            if module is None:
                continue
            tables.update((edge.source, (edge.name,)) for edge in self._user_edges(name))
            try:
                caches_of(module)
            except Exception:  # noqa: BLE001 - the first follow looks again, and says what fails
                pass
        return tables

    def _prepare_follow(self, name: str) -> None:
        """The warm-up's work for one module (on its thread): see ``prepare_follow``; and the text
        of each module it takes names from is prepared, once (``prepare_reload``: the old side of
        that module's first reload)."""
        from ._follow import prepare_follow, prepare_reload  # (loaded: the warm-up waits for it)

        watched = self.watchlist.get(name)
        if watched is None or watched.compiled or not watched.trusted:
            return
        edges = self._user_edges(name)
        if edges:
            prepare_follow(watched.running, [edge.alias for edge in edges])
        for source in {edge.source for edge in edges} - self._sources_parsed:
            self._sources_parsed.add(source)
            running = self.watchlist.get(source)
            if running is not None and not running.compiled:
                prepare_reload(running.running)

    def _user_edges(self, name: str) -> list[Edge]:
        """The ``from m import name`` of a module where m is a watched module."""
        return [edge for edge in self.graph.edges_of(name) if edge.name != STAR and edge.source in self.watchlist]


_TABLES_KEPT = 64  # leaf tables (a source and the names that changed in one edit); then made anew


def package_of(watched: Watched) -> str | None:
    """The package a module's relative imports resolve in."""
    if os.path.basename(watched.path) == "__init__.py":
        return watched.name
    return watched.name.rpartition(".")[0] or None


def exports_changed(outcome: Reloaded, namespace: dict[str, Any]) -> dict[str, tuple[object, object]]:
    """What ``from m import *`` gives that changed with this reload of m: name -> (old, new),
    ``UNBOUND`` where it gave or gives nothing (``namespace``: m's, after the reload)."""
    old_namespace = _before(outcome, namespace)
    candidates = set(outcome.changes) | set(outcome.added) | set(outcome.gone)
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


def _before(outcome: Reloaded, namespace: dict[str, Any]) -> dict[str, Any]:
    """A module's namespace as it was before this reload of it (``namespace``: after)."""
    old_namespace = dict(namespace)
    old_namespace.update(outcome.gone)
    old_namespace.update({name: old for name, (old, _) in outcome.changes.items()})
    for name in outcome.added:  # after: a name that came back may be a change too (``_tombstones``)
        del old_namespace[name]
    old_all = outcome.all_changed[0] if outcome.all_changed else namespace.get("__all__", UNBOUND)
    if old_all is UNBOUND:
        old_namespace.pop("__all__", None)
    else:
        old_namespace["__all__"] = old_all
    return old_namespace


def _user_star_follows(edge: Edge, names: dict[str, Any], view: dict[str, tuple[object, object]], where: list[str]) -> None:
    """The user's ``from source import *``: names still bound to what source gave follow it (new
    names come in mode 3 only, see ``_frontend``; a name gone stays, as it was)."""
    for name, (old, new) in view.items():
        if old is not UNBOUND and new is not UNBOUND and rebind(names, name, old, new):
            where.append(f"{edge.importer} {name}")


def rebind(namespace: dict[str, Any], alias: str, old: object, new: object) -> bool:
    """``alias`` goes from ``old`` to ``new`` (``UNBOUND``: it goes), if it still holds ``old``."""
    if namespace.get(alias, UNBOUND) is not old:
        return False  # re-assigned since: the user's choice stands
    if new is UNBOUND:
        del namespace[alias]
    else:
        namespace[alias] = new
    return True


def _with_stayed_old(outcome: Reloaded, stayed: list[tuple[str, str]]) -> Reloaded:
    if not stayed:
        return outcome
    return replace(outcome, stayed_old=outcome.stayed_old + tuple(stayed))


def _job_for(jobs: dict[str, Job], watched: Watched) -> Job:
    """The module's job in this check: a dependent's, made when a first name it took changes."""
    job = jobs.get(watched.name)
    if job is None:
        job = jobs[watched.name] = Job(watched, None)
    return job
