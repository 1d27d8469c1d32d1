"""The session's side of the pipeline, once per check: changed files -> modules in order ->
apply or roll back -> dependents follow -> what workers must run -> report.

``Reloader`` knows nothing of IPython: a plain REPL, a test, or the IPython
extension drive it the same way, by calling ``check()`` before running code.
It decides which files to look at (the mode, ``%aimport``), hands their new
texts to the reload step (``_engine``: the very step every worker runs), keeps
the history the status shows, and publishes what ran for the workers.
"""

from __future__ import annotations

import enum
import importlib
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from types import ModuleType
from typing import Any, NamedTuple

from . import _join
from ._engine import ReloadStep
from ._graph import ImportGraph
from ._jobs import Job, Outcome, Pass
from ._journal import Journal
from ._outcomes import Failure, Reloaded
from ._source import SourceVersion
from ._userfiles import is_user_file
from ._warmup import WarmUp
from ._watch import Change, Watched, Watchlist

__all__ = ["Event", "Mode", "Outcome", "Reloader"]


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
        self.watchlist.settle_later = True  # what an import derives: read after the cell (``idle``)
        self.step = ReloadStep(self.watchlist)  # what applies texts and makes dependents follow
        self.workers = workers  # edits reach the workers of local pools
        self.journal: Journal | None = None
        self.history: deque[Event] = deque(maxlen=20)  # the last reloads, newest last
        self.broken: dict[str, Event] = {}  # module -> the failure still waiting for a good save
        self.mode = Mode.OFF
        self.explicit: dict[str, None] = {}  # marked with %aimport, in order
        self.excluded: dict[str, None] = {}  # marked with %aimport -name
        # a module was marked (%aimport): its saves while it was not reloaded were passed over, so
        # the next check looks at every file, not only at those the file-system events name
        self._look_at_all = False
        self._busy = threading.Lock()

    @property
    def graph(self) -> ImportGraph:
        return self.step.dependents.graph

    @property
    def namespaces(self) -> dict[str, Callable[[], dict[str, Any]]]:
        """Namespaces that are not modules (the user's), by label: their ``from`` imports follow too."""
        return self.step.dependents.namespaces

    @property
    def warm_up(self) -> WarmUp:
        return self.step.dependents.warm_up

    @property
    def full(self) -> bool:
        """Always re-run whole modules (``--full``, ``2-``)."""
        return self.step.full

    @full.setter
    def full(self, value: bool) -> None:
        self.step.full = value

    def start(self) -> None:
        """Watch imports from now on, and adopt the user's modules already imported."""
        self.watchlist.start()
        self.watchlist.adopt_loaded()
        if self.workers and self.journal is None:
            self.journal = Journal()
            self.journal.start(self.watchlist)
            _join.session_step = self.step

    def stop(self) -> list[str]:
        """Stop watching and following; returns what could not be undone, for the caller to say."""
        problems = []
        if "hotswap._dask" in sys.modules:  # Dask's workers and schedulers forget this session
            from ._dask import leave_clients

            problems = leave_clients()
        if "hotswap._ray" in sys.modules:  # and Ray's key-value store
            from ._ray import leave_ray

            problems += leave_ray()
        self.warm_up.close()
        self.watchlist.stop()
        if self.journal is not None:
            self.journal.stop()
            self.journal = None
            if _join.session_step is self.step:
                _join.session_step = None
        return problems

    def worker_failures(self) -> list[str]:
        """What worker processes could not apply, each said once (cheap when no edit happened)."""
        if self.journal is None:
            return []
        problems = self.journal.failures() if self.journal.generation else []
        if "distributed.client" in sys.modules:  # the user has Dask: its workers follow too
            from ._dask import follow_clients

            problems += follow_clients(self.journal.generation, self.journal.texts)
        if "ray" in sys.modules:  # the user has Ray: the tasks submitted from here carry the versions
            from ._ray import follow_ray

            problems += follow_ray(self.journal, self.watchlist)
        return problems

    def worker_versions(self) -> list[str]:
        """For the status: one line per set of workers following the session, the version they run
        (from what they last answered: never waits for a worker)."""
        if self.journal is None:
            return []
        lines = self.journal.versions()  # local pools
        if "distributed.client" in sys.modules:
            from ._dask import versions

            lines += versions(self.journal.generation)
        if "hotswap._ray" in sys.modules:
            from ._ray import versions as ray_versions

            lines += ray_versions(self.journal.generation)
        return lines

    def include(self, name: str) -> ModuleType:
        """Import ``name`` and mark it for reloading in every mode (``%aimport name``)."""
        self.excluded.pop(name, None)
        self.explicit[name] = None
        self._look_at_all = True  # compared with its file at the next check
        module = importlib.import_module(name)
        self.watchlist.adopt(module, force=True)
        return module

    def exclude(self, name: str) -> None:
        """Never reload ``name`` (``%aimport -name``)."""
        self.explicit.pop(name, None)
        self.excluded[name] = None

    def track_import(self, namespace: str, source: str, name: str, alias: str) -> None:
        """``namespace`` (a label in ``namespaces``) did ``from source import name as alias``."""
        self.step.dependents.add_namespace_import(namespace, source, name, alias)

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
            wanted = self._wanted(everything)
            changes = self.watchlist.poll(wanted, retry_failed=everything, everything=self._looks_at_all(everything))
            changes = self._back(changes)  # files back as they were: nothing to apply for them
            if not changes:
                return []
            gone: list[Outcome] = [_gone(c.watched) for c in changes if c.version is None]
            for outcome in gone:
                self.step.dependents.failed.pop(outcome.module, None)  # it keeps its last good version
                self._remember(Event(time.time(), outcome, 0.0))
            jobs = {c.watched.name: Job(c.watched, c.version) for c in changes if c.version}
            return gone + self._run(jobs, followers, wanted)
        finally:
            self._busy.release()

    def _looks_at_all(self, everything: bool) -> bool:
        """Does this check look at every file (``everything``, or a module was just marked)?"""
        look_at_all, self._look_at_all = self._look_at_all, False
        return everything or look_at_all

    def _back(self, changes: list[Change]) -> list[Change]:
        """Files said deleted are there again with the text that runs: no longer gone, nothing to do."""
        for change in changes:
            said = self.broken.get(change.watched.name)
            if change.back and said is not None and isinstance(said.outcome, Failure) and said.outcome.deleted:
                del self.broken[change.watched.name]
        return [change for change in changes if not change.back]

    def _wanted(self, everything: bool) -> Callable[[str], bool]:
        """Which modules this check may reload (asked only of those that may have changed)."""
        if everything or self.mode >= Mode.ALL:
            return lambda name: name not in self.excluded
        return lambda name: name in self.explicit and name not in self.excluded

    def _run(self, jobs: dict[str, Job], followers: bool, wanted: Callable[[str], bool]) -> list[Outcome]:
        """The reload step, then what workers must run, the history, and what to say."""
        work = self.step.run_jobs(jobs, followers=followers, may_reload=wanted)
        self._drop_failures_said(work)
        outcomes = work.outcomes
        if self.journal is not None:
            for name, base in work.bases.items():
                self.journal.remember_base(name, base)
            self.journal.publish(self._new_versions(outcomes))
        self._remember_pass(work)
        from ._leaves import followed_outcomes  # (the reload imported it)

        said = [o for o in outcomes.values() if _worth_reporting(o)]
        for source, followed in work.followers or ():
            said += [o for o in followed_outcomes(followed, source) if _worth_reporting(o)]
        return said

    def _remember_pass(self, work: Pass) -> None:
        now = time.time()
        for name, outcome in work.outcomes.items():
            if isinstance(outcome, Reloaded) and outcome.after and not outcome.stayed_old:
                if self.broken:
                    self.broken.pop(name, None)  # a dependent that followed: said by its source
            else:
                self._remember(Event(now, outcome, work.seconds[name]))

    def _drop_failures_said(self, work: Pass) -> None:
        """A failed version tried again after a dependency changed, failing the same way: said already."""
        for name in work.retried:
            outcome, said = work.outcomes.get(name), self.broken.get(name)
            if isinstance(outcome, Failure) and said is not None and said.outcome == outcome:
                del work.outcomes[name]

    def idle(self) -> None:
        """The user's code is done for now (a cell ran): see ``Dependents.idle``."""
        self.step.dependents.idle()

    def _new_versions(self, outcomes: dict[str, Outcome]) -> dict[str, SourceVersion]:
        """The texts modules run after this check, for the workers (broken saves never)."""
        versions = {}
        for name, outcome in outcomes.items():
            if not outcome.after and (isinstance(outcome, Reloaded) or outcome.ran):  # (ran: see Failure)
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
            self.broken[outcome.module] = event._replace(when=since)
        else:
            self.broken.pop(outcome.module, None)
        if isinstance(outcome, Failure) or not outcome.after or outcome.stayed_old:
            self.history.append(event)


class Event(NamedTuple):
    """One reload, when it happened and what it took."""

    when: float  # time.time()
    outcome: Outcome
    seconds: float


def _gone(watched: Watched) -> Failure:
    return Failure(watched.name, watched.path, None, "its file was deleted", deleted=True)


def _worth_reporting(outcome: Outcome) -> bool:
    """A dependent whose file did not change is news only if something happened in it."""
    if isinstance(outcome, Failure) or not outcome.after:
        return True
    return bool(outcome.reran or outcome.rebound_elsewhere or outcome.stayed_old)
