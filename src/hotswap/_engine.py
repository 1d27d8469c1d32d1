"""The reload step: apply these new texts, then make every dependent follow.

One component, run unchanged wherever modules must catch up: by ``Reloader`` in
the session (the texts come from the files) and by every worker process (the
texts come from the session's journal, see ``_workers``). Each keeps its own
import graph, built from the texts its modules run, so dependents follow in a
worker exactly as they do in the session.

The machinery it runs (``_apply``, ``_follow``, ``_transaction``...) is imported
by the first ``run_jobs``, not at load (see ``_machinery``).

Modules are processed dependencies first, each at most once per step: a module
whose text changed runs its new version (``_apply``); a dependent whose text did
not change follows the names it took (``_dependents``), the short way when it can.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from types import ModuleType

from . import _machinery
from ._dependents import Dependents, rebind
from ._graph import STAR
from ._jobs import Held, Job, Outcome, Pass, every_module
from ._outcomes import Failure, Reloaded, internal_failure
from ._report import ASKED_FOR_WHOLE
from ._source import SourceVersion, pin_in_linecache
from ._vocab import UNBOUND
from ._watch import Watchlist

__all__ = ["Job", "Outcome", "Pass", "ReloadStep"]


class ReloadStep:
    """Brings modules to new texts, dependencies first, and their dependents along."""

    def __init__(self, watchlist: Watchlist) -> None:
        self.watchlist = watchlist
        self.dependents = Dependents(watchlist)
        watchlist.on_record = self.dependents.read_imports
        self.full = False  # always re-run whole modules (``--full``, ``2-``)

    def run(self, versions: dict[str, SourceVersion], *, followers: bool = True) -> Pass:
        """Apply the new ``versions`` (module -> text) of watched modules, and what follows.

        ``followers=False``: no outcome for a dependent that simply followed.
        Returns the whole pass: its ``outcomes`` hold one per module that had a
        new version and per dependent that followed or failed.
        """
        jobs = {}
        for name, version in versions.items():
            watched = self.watchlist.get(name)
            if watched is not None:
                jobs[name] = Job(watched, version)
        return self.run_jobs(jobs, followers=followers)

    def run_jobs(
        self, jobs: dict[str, Job], *, followers: bool = True, may_reload: Callable[[str], bool] = every_module
    ) -> Pass:
        _machinery.load()
        from ._transaction import reloading

        work = Pass(jobs, followers=[] if followers else None, may_reload=may_reload)
        # once for all modules; no file is written meanwhile, and (the session: see ``Watchlist
        # .settle``) no module settled by another thread. Where modules are recorded as they are
        # imported (a worker), the lock is not held throughout: an import on another thread takes it.
        settling = self.watchlist.lock if self.watchlist.settle_later else contextlib.nullcontext()
        with reloading(), settling:
            self._apply_in_order(work)
        for source, where in work.elsewhere.items():
            outcome = work.outcomes.get(source)
            if isinstance(outcome, Reloaded):
                work.outcomes[source] = replace(outcome, rebound_elsewhere=tuple(where))
        return work

    def _apply_in_order(self, work: Pass) -> None:
        jobs, graph = work.jobs, self.dependents.graph
        queue: deque[str] = deque()
        while jobs:
            if not queue:  # (re)order what is pending, dependencies first
                queue.extend(graph.order(list(jobs)))
            name = queue.popleft()
            if name not in jobs:
                continue
            pending = len(jobs)
            job = jobs.pop(name)
            module = sys.modules.get(name)
            # a dependent's names, to put back if hotswap fails half-way (its own text: a transaction)
            kept = dict(vars(module)) if job.version is None and module is not None else None
            try:
                self._bring_up_to_date(job, work)
            except Exception as error:  # noqa: BLE001 - one module's failure; the others go on
                self._internal_error(job, work, error, kept)
            if len(jobs) >= pending:
                queue.clear()  # new dependents: order again

    def _bring_up_to_date(self, job: Job, work: Pass) -> None:
        """One module: its new text, or the names it follows; then what follows from it."""
        name = job.watched.name
        work.done.add(name)
        started = time.perf_counter()
        outcome = self._follow(job) if job.version is None else None
        if outcome is None:
            outcome = self._apply(job, work)
        # a module whose own save failed still followed what it imports: passed on too
        followed = outcome if isinstance(outcome, Reloaded) else job.followed
        if outcome is not None:
            work.outcomes[name] = outcome  # before the dependents that follow it, for reports
        if followed is not None:
            passed_on = self._pass_on(followed, job, work, own=followed is outcome)
            outcome = passed_on if followed is outcome else outcome
        if outcome is not None:
            work.seconds[name] = time.perf_counter() - started
            work.outcomes[name] = outcome

    def _internal_error(self, job: Job, work: Pass, error: Exception, kept: dict[str, object] | None) -> None:
        """An error inside hotswap while bringing one module up to date: said as hotswap's, with
        the state the module is in; what it left undone is picked up at the next change.

        Its update done (``ran``), passing it on failed: who still holds its old values is behind.
        Not done: a dependent gets its names back (``kept``) and follows at the next change; a
        new text is not tried again until the file changes or ``%autoreload now``.
        """
        watched, dependents = job.watched, self.dependents
        name = watched.name
        done = work.outcomes.get(name)
        ran = isinstance(done, Reloaded) or (job.version is not None and watched.running is job.version)
        module = sys.modules.get(name)
        failure = internal_failure(name, watched.path, error, ran=ran)
        if not ran and job.version is not None:
            watched.failed_digest = job.version.digest
        elif not ran and module is not None and kept is not None:
            namespace = vars(module)
            namespace.clear()
            namespace.update(kept)
            dependents.note_behind(name, module, job, failure)
        if isinstance(done, Reloaded):
            _left_behind(dependents, done, work)
        work.outcomes[name] = replace(failure, after=job.after() if job.version is None else ())
        work.seconds.setdefault(name, 0.0)

    def _pass_on(self, followed: Reloaded, job: Job, work: Pass, *, own: bool) -> Reloaded:
        """What changed in a module reaches who took it; ``own``: its own text ran."""
        name, dependents = followed.module, self.dependents
        for alias in followed.followed:
            work.rebound(job.sources[alias]).append(f"{name}.{alias}")
        if (followed.changes or followed.remade) and dependents.graph.has_importers(name):
            dependents.propagate(followed, work)
        if dependents.failed and own:
            dependents.retry_failed_after(name, work)
        if followed.gone or dependents.graph.has_star_importers(name):
            return dependents.star_imports_follow(followed, work)
        return followed

    def _follow(self, job: Job) -> Outcome | None:
        """A dependent whose file did not change, the short way (``follow_unchanged``) when it can:
        the common case at each edit of a module many others import from. None: the general way."""
        watched = job.watched
        module = sys.modules.get(watched.name)
        if module is None or watched.compiled or not watched.trusted or watched.name in self.dependents.behind:
            return None
        from ._follow import follow_unchanged

        outcome = follow_unchanged(module, watched.running, job.rebind, job.after())
        if isinstance(outcome, Failure):
            self.dependents.note_behind(watched.name, module, job, outcome)
        return outcome

    def _apply(self, job: Job, work: Pass) -> Outcome | None:
        watched = job.watched
        module = sys.modules.get(watched.name)
        if module is None:
            return None
        if watched.compiled:
            return _rebuilt(job)
        dependents = self.dependents
        if watched.name in dependents.behind:
            dependents.catch_up(job, module)
        version = job.version or watched.running
        roots = functools.partial(dependents.closure_roots, watched.name)
        after = job.after() if job.version is None else ()
        running = watched.running if watched.trusted else None  # untrusted: what runs is unknown
        from ._apply import reload_module

        outcome = reload_module(
            module, version, running, whole=self._whole(job), rebind=job.rebind, roots=roots, after=after
        )
        dependents.note_behind(watched.name, module, job, outcome)
        if job.version is None:  # a dependent: its file is as it was
            return outcome if isinstance(outcome, Reloaded) else replace(outcome, after=after)
        if isinstance(outcome, Reloaded):
            self._runs_now(job, job.version, work)
            return outcome
        self._failed(job, job.version, module, work)
        return outcome

    def _whole(self, job: Job) -> str | None:
        """Why the whole module must run again, if it must."""
        if not job.watched.trusted:
            return "its file was saved after it was imported, before hotswap was loaded"
        return ASKED_FOR_WHOLE if self.full and job.version else None

    def _runs_now(self, job: Job, version: SourceVersion, work: Pass) -> None:
        """A module's new text ran: it is the one it runs from now on."""
        watched = job.watched
        if watched.trusted:
            work.bases[watched.name] = watched.running
        watched.running = version
        watched.trusted, watched.imported_code = True, None
        watched.failed_digest = None
        self.dependents.failed.pop(watched.name, None)
        pin_in_linecache(version)
        self.dependents.read_imports(watched)
        self.dependents.forget_behind_not_imported(watched.name)

    def _failed(self, job: Job, version: SourceVersion, module: ModuleType, work: Pass) -> None:
        """Reported once; retried when the file changes, when a module it imports from changes,
        or on ``everything``. What it imported still follows."""
        watched, dependents = job.watched, self.dependents
        watched.failed_digest = version.digest
        dependents.remember_failed(watched, version)
        if job.rebind:  # its own save is broken, but what it imported still follows
            roots = functools.partial(dependents.closure_roots, watched.name)
            from ._apply import reload_module

            followed = reload_module(module, watched.running, watched.running, rebind=job.rebind, roots=roots)
            job.followed = followed if isinstance(followed, Reloaded) else None
            dependents.note_behind(watched.name, module, job, followed)  # what followed is not behind
        if job.retry:
            work.retried.add(watched.name)


def _left_behind(dependents: Dependents, outcome: Reloaded, work: Pass) -> None:
    """Passing a module's changes on failed half-way: the user's namespaces are re-bound (nothing
    runs there); a module that still holds an old value is behind, caught up at the next change."""
    source = outcome.module
    for name, (old, new) in outcome.changes.items():
        if old is UNBOUND:
            continue  # a new name: nobody holds an old value of it
        for edge in dependents.graph.importers_of(source, name):
            namespace = dependents.namespaces.get(edge.importer)
            if edge.name == STAR:
                continue  # (``from m import *``: followed at the next change by what it exports)
            if namespace is not None:
                rebind(namespace(), edge.alias, old, new)
            elif _still_holds(edge.importer, edge.alias, old, work):
                dependents.behind.setdefault(edge.importer, {})[edge.alias] = Held(old, source, name)


def _still_holds(importer: str, alias: str, old: object, work: Pass) -> bool:
    """Does a module that will not follow in this check still hold the old value?"""
    module = sys.modules.get(importer)
    job = work.jobs.get(importer)
    if module is None or importer in work.done or (job is not None and alias in job.rebind):
        return False  # done already, or follows in this check
    return vars(module).get(alias, UNBOUND) is old


def _rebuilt(job: Job) -> Failure | None:
    """A compiled module: a new build is said (once per build); nothing of it can re-run."""
    if job.version is None:
        return None  # a dependency changed: nothing to re-run in compiled code
    job.watched.failed_digest = job.version.digest
    return Failure(job.watched.name, job.watched.path, None, "a new build is on disk", compiled=True)
