"""Workers: in a worker process, catch up with the session before each task.

A pool worker joins the session's journal (``_journal``) at start-up
(``worker_init``, see ``_pools``) or, in a pool made before hotswap was loaded,
when it unpickles a task's ``Checkpoint``. Workers read tasks through
``ForkingPickler.loads``; the worker side wraps it: one read of the
memory-mapped generation counter (well under a microsecond) and, only when it
moved, the journal is read and the session's reload step (``_engine``) runs here:
each changed module is brought to the journal's text, in place, state kept,
transactional, and its dependents follow, as in the session. Between tasks, never
while one runs. A worker of a pool made before loading does not know which text a
module it imported before joining runs: it asks the module's code whether it runs
the journal's base text of it, else its file's.
"""

from __future__ import annotations

import json
import mmap
import os
import struct
import sys
import traceback
from collections.abc import Callable
from multiprocessing.reduction import ForkingPickler
from types import ModuleType
from typing import Any

from ._adopt import runs_this_text
from ._engine import ReloadStep
from ._outcomes import Failure
from ._report import describe_failure
from ._source import SourceVersion, digest_of
from ._watch import Watchlist

__all__ = [
    "COUNTER",
    "ENVIRONMENT",
    "Checkpoint",
    "FreshTask",
    "adopt_imported_before",
    "apply_versions",
    "catch_up_with",
    "tell_internal",
    "worker_init",
]

ENVIRONMENT = "HOTSWAP_JOURNAL"  # names the session's journal folder; child processes inherit it
COUNTER = struct.Struct("<Q")  # the journal's generation: bumped after each index written


class Checkpoint:
    """Pickled in a task ahead of it: unpickling it brings the worker up to date (``_fresh(folder)``)."""

    __slots__ = ("folder",)

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def __reduce__(self) -> tuple[Callable[..., object], tuple[str]]:
        return _fresh, (self.folder,)


class FreshTask:
    """A task for a worker that did not join at start-up: unpickled, the worker catches up, then
    the task itself comes out (the worker never sees this wrapper)."""

    __slots__ = ("checkpoint", "task")

    def __init__(self, task: object, checkpoint: Checkpoint) -> None:
        self.task = task
        self.checkpoint = checkpoint

    def __reduce__(self) -> tuple[Callable[..., object], tuple[Checkpoint, object]]:
        # args unpickle in order: the checkpoint first; one global (``_fresh``) for both, pickled once
        return _fresh, (self.checkpoint, self.task)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:  # a thread pool may call it in-process
        return self.task(*args, **kwargs)  # type: ignore[operator]


_NO_TASK = object()


def _fresh(first: object, task: object = _NO_TASK) -> object:
    """Unpickling, in a worker: ``_fresh(folder)`` joins and catches up (a ``Checkpoint``);
    ``_fresh(None, task)`` then gives the task itself (a ``FreshTask``)."""
    if task is _NO_TASK:
        if isinstance(first, str):
            catch_up_with(first)
        return None
    return task


class _Worker:
    """In a worker process: the journal it follows and the versions its modules run.

    A forked worker inherits the session's watchlist (the versions its modules
    ran at the fork); it never reads the session's event queue. A spawned
    worker watches its own imports, and imports a module of the journal from
    the journal's text, so it never sees a save the session has not applied.
    """

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.applied = 0
        self.adopted = False  # the modules it imported before joining are watched
        if session_step is not None:
            self.step = session_step
            self.adopted = True  # the session's, as they were at the fork
        else:
            self.step = ReloadStep(Watchlist(events=False))  # its graph: from the texts imported
            self.step.watchlist.overrides = self._journal_texts
            self.step.watchlist.start()
        with open(os.path.join(folder, "generation"), "rb") as counter:
            self._counter = mmap.mmap(counter.fileno(), COUNTER.size, access=mmap.ACCESS_READ)

    def _journal_texts(self) -> dict[str, bytes]:
        return {e["path"]: e["text"].encode("utf-8") for e in self._modules().values()}

    def _modules(self) -> dict[str, dict[str, str]]:
        try:
            with open(os.path.join(self.folder, "index.json"), encoding="utf-8") as index:
                modules: dict[str, dict[str, str]] = json.load(index)["modules"]
                return modules
        except (OSError, ValueError):
            return {}

    def generation(self) -> int:
        generation: int = COUNTER.unpack_from(self._counter)[0]
        return generation

    def catch_up(self) -> None:
        """Bring every module this worker imported to the journal's versions, and their dependents
        along: the session's reload step, run here."""
        generation = self.generation()
        if generation == self.applied:
            return
        modules = self._modules()
        if not self.adopted:
            adopt_imported_before(self.step.watchlist, modules)
            self.adopted = True
        for failure, key in apply_versions(modules, self.step):
            self._tell(f"{failure.module}-{key}", describe_failure(failure))
        self.applied = generation

    def catch_up_guarded(self) -> None:
        """``catch_up``; a task never fails because of hotswap, and an internal error is said once."""
        try:
            self.catch_up()
        except Exception as error:  # noqa: BLE001 - the worker's boundary
            self.applied = self.generation()  # the same error would come again for every task
            tell_internal(self.folder, error)

    def _tell(self, key: str, message: str) -> None:
        _tell(self.folder, key, message)


def _tell(folder: str, key: str, message: str) -> None:
    """A note for the session (which prints it once), from this worker."""
    note = os.path.join(folder, "failures", f"{os.getpid()}-{key}.txt")
    message = message.replace("hotswap:", f"hotswap: worker {os.getpid()}:", 1)
    try:
        with open(note, "w", encoding="utf-8") as out:
            out.write(message)
    except OSError:
        pass


def tell_internal(folder: str, error: BaseException) -> None:
    where = "".join(traceback.format_exception(error)[-3:]).rstrip()
    _tell(folder, "internal", f"hotswap: internal error while catching up with the session "
          f"({type(error).__name__}: {error}); this worker keeps the versions it had. Please report it:\n{where}")


def apply_versions(modules: dict[str, dict[str, str]], step: ReloadStep) -> list[tuple[Failure, str]]:
    """In a worker: bring each imported module to its entry's text (path, digest, text), and
    make its dependents follow, with the same reload step as the session: in place, state kept,
    transactional, dependencies first. Returns the failures, each with a key naming the version
    that failed (the digest of its text, for a module of the journal)."""
    versions = {}
    for name, entry in modules.items():
        version = _version_to_apply(name, entry, step.watchlist)
        if version is not None:
            versions[name] = version
    if not versions:
        return []
    outcomes = step.run(versions, followers=False).outcomes
    return [(o, _failed_version(name, modules, step.watchlist)) for name, o in outcomes.items() if isinstance(o, Failure)]


def _failed_version(name: str, modules: dict[str, dict[str, str]], watchlist: Watchlist) -> str:
    """A key for the version that failed: the journal's digest of its text, or (a dependent
    whose own text did not change) the digest of the text it runs."""
    if name in modules:
        return modules[name]["digest"][:12]
    watched = watchlist.get(name)
    return watched.running.digest[:12] if watched is not None else "unknown"


def _version_to_apply(name: str, entry: dict[str, str], watchlist: Watchlist) -> SourceVersion | None:
    """The journal's text of an imported module, if it does not run it yet; the module is watched
    from here on, with the text it runs (unknown: it runs the new text whole)."""
    module = sys.modules.get(name)
    if module is None:
        return None
    watched = watchlist.get(name)
    if watched is None:
        running = _running_text(module, entry)
        if running is not None:
            watchlist.record(name, running)
            watched = watchlist.get(name)
    if watched is not None and watched.running.digest == entry["digest"]:
        return None
    data = entry["text"].encode("utf-8")
    version = SourceVersion(entry["path"], data, digest_of(data), (0, 0, 0, 0), 0)
    if watched is None:  # what it runs is unknown: re-run whole from the new text
        watchlist.record(name, version)
        watched = watchlist.get(name)
        assert watched is not None
        watched.trusted = False
    return version


def adopt_imported_before(watchlist: Watchlist, modules: dict[str, dict[str, str]]) -> None:
    """A worker that joined late: the user's modules it imported before are watched (with the
    text of their file) so that they follow what they import; those of the journal are brought
    to its text by ``apply_versions``."""
    for module in list(sys.modules.values()):
        if isinstance(module, ModuleType) and module.__name__ not in modules:
            watchlist.adopt(module)


def _running_text(module: Any, entry: dict[str, str]) -> SourceVersion | None:
    """The text a module imported before this worker joined runs: the session's base text of it, or
    its file (asked of its code), else unknown (it is re-run whole from the new version)."""
    base = entry.get("base_text")
    if base is not None:
        data = base.encode("utf-8")
        version = SourceVersion(entry["path"], data, digest_of(data), (0, 0, 0, 0), 0)
        if runs_this_text(module, version):
            return version
    return _text_of(module)


def _text_of(module: Any) -> SourceVersion | None:
    """The text a module imported before hotswap joined this worker runs: its file, if its code
    matches it (else unknown, and the module is re-run whole from the new version)."""
    path = getattr(module, "__file__", None)
    if not isinstance(path, str) or not path.endswith(".py"):
        return None
    try:
        with open(path, "rb") as source:
            data = source.read()
    except OSError:
        return None
    version = SourceVersion(path, data, digest_of(data), (0, 0, 0, 0), 0)
    return version if runs_this_text(module, version) else None


_worker: _Worker | None = None
session_step: ReloadStep | None = None  # set in the session; a forked worker inherits it
_plain_loads = ForkingPickler.loads


def _loads_up_to_date(data: Any, /, **kwargs: Any) -> Any:
    """``ForkingPickler.loads`` in a worker: catch up with the session before each task."""
    worker = _worker
    if worker is not None and worker.generation() != worker.applied:
        worker.catch_up_guarded()
    return _plain_loads(data, **kwargs)


def catch_up_with(folder: str) -> None:
    """Unpickling a ``Checkpoint`` in a worker of a pool made before loading: join, catch up."""
    worker = _worker
    if worker is None or worker.folder != folder:
        try:
            worker_init(folder, None)
        except Exception as error:  # noqa: BLE001 - a task must never fail because of hotswap
            tell_internal(folder, error)
    elif worker.generation() != worker.applied:
        worker.catch_up_guarded()


def worker_init(folder: str, initializer: Callable[..., object] | None, *initargs: Any) -> None:
    """A pool worker's initializer: install the worker side, then run the user's own."""
    global _worker
    if _worker is None or _worker.folder != folder:
        _worker = _Worker(folder)
        ForkingPickler.loads = _loads_up_to_date
        _worker.catch_up_guarded()
        joined = os.path.join(folder, "joined")  # the session may now send this worker's tasks plain
        os.makedirs(joined, exist_ok=True)
        with open(os.path.join(joined, str(os.getpid())), "wb"):
            pass
    if initializer is not None:
        initializer(*initargs)

