"""Workers: edits applied in the session reach the worker processes of local pools.

The design, in four parts:

* **A journal** (a temporary folder named in ``HOTSWAP_JOURNAL``, which child
  processes inherit): ``index.json`` holds, for every module changed (or broken)
  since hotswap started, the text of its last good version; ``generation`` is an
  8-byte counter the session bumps after writing the index. Source text travels,
  not paths, and a broken save never reaches it.
* **Pools join at start-up.** ``multiprocessing.Pool`` and
  ``concurrent.futures.ProcessPoolExecutor`` created after hotswap was loaded get
  an initializer (wrapping the user's own) that installs the worker side, in
  every start method: fork, spawn, forkserver.
* **A generation check before each task is unpickled.** Workers read tasks
  through ``ForkingPickler.loads``; the worker side wraps it: one read of the
  memory-mapped counter (well under a microsecond) and, only when it moved,
  the journal is read and each changed module is brought up to date with the
  same engine as the session: in place, state kept, transactional. Between
  tasks, never while one runs.
* **Failures are said once, by the session.** A worker that cannot apply a
  version writes a note in the journal's ``failures`` folder; the session
  prints it at the next cell, naming the worker.
"""

from __future__ import annotations

import atexit
import functools
import inspect
import json
import mmap
import multiprocessing.pool
import os
import shutil
import struct
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.reduction import ForkingPickler
from types import ModuleType
from typing import Any

from ._apply import reload_module
from ._outcomes import Failure, Reloaded
from ._report import describe_failure
from ._source import SourceVersion, digest_of
from ._watch import Watchlist, runs_this_text

__all__ = ["Journal", "apply_versions", "worker_init"]

ENVIRONMENT = "HOTSWAP_JOURNAL"
_LOKY = ("joblib.externals.loky.process_executor", "loky.process_executor")
_COUNTER = struct.Struct("<Q")


class Journal:
    """The session's side: what workers must run, written after each reload."""

    def __init__(self) -> None:
        self.folder = _process_folder()
        self._texts: dict[str, dict[str, str]] = {}
        with open(self._path("generation"), "rb") as counter:
            self.generation = _COUNTER.unpack(counter.read(_COUNTER.size))[0]
        self._failures_seen: set[str] = set()
        self._failures_mtime = 0
        self._restore: list[Callable[[], None]] = []

    def _path(self, name: str) -> str:
        return os.path.join(self.folder, name)

    def start(self, watchlist: Watchlist) -> None:
        """Name the journal for child processes, and join pools created from now on."""
        os.environ[ENVIRONMENT] = self.folder
        self._restore += [_wrap_initializer(multiprocessing.pool.Pool), _wrap_initializer(ProcessPoolExecutor)]
        for name in _LOKY:  # joblib's workers: now if imported, else when they are
            module = sys.modules.get(name)
            if module is not None:
                self._join_loky(module)
            else:
                watchlist.after_import[name] = self._join_loky

    def _join_loky(self, module: ModuleType) -> None:
        executor = getattr(module, "ProcessPoolExecutor", None)
        if isinstance(executor, type) and self.folder == os.environ.get(ENVIRONMENT):
            self._restore.append(_wrap_initializer(executor))

    def stop(self) -> None:
        if os.environ.get(ENVIRONMENT) == self.folder:
            del os.environ[ENVIRONMENT]
        while self._restore:
            self._restore.pop()()

    @property
    def texts(self) -> dict[str, dict[str, str]]:
        """Module -> the last good version (path, digest, text) of each module changed since start."""
        return self._texts

    def publish(self, versions: dict[str, SourceVersion]) -> None:
        """New good versions of modules: workers apply them before their next task."""
        if not versions:
            return
        for name, version in versions.items():
            self._texts[name] = {"path": version.path, "digest": version.digest, "text": version.text}
        temporary = self._path("index.json.tmp")
        with open(temporary, "w", encoding="utf-8") as index:
            json.dump({"generation": self.generation + 1, "modules": self._texts}, index)
        os.replace(temporary, self._path("index.json"))
        self.generation += 1
        with open(self._path("generation"), "r+b") as counter:
            counter.write(_COUNTER.pack(self.generation))

    def failures(self) -> list[str]:
        """Messages from workers that could not apply a version, each returned once."""
        folder = self._path("failures")
        try:
            mtime = os.stat(folder).st_mtime_ns
        except OSError:
            return []
        if mtime == self._failures_mtime:
            return []
        self._failures_mtime = mtime
        messages = []
        for name in sorted(os.listdir(folder)):
            if name not in self._failures_seen:
                self._failures_seen.add(name)
                with open(os.path.join(folder, name), encoding="utf-8") as note:
                    messages.append(note.read())
        return messages


_FOLDER: str | None = None


def _process_folder() -> str:
    """One journal folder per session process: pools that outlive a reload of hotswap keep following."""
    global _FOLDER
    if _FOLDER is None or not os.path.isdir(_FOLDER):
        _FOLDER = tempfile.mkdtemp(prefix="hotswap-journal-")
        atexit.register(shutil.rmtree, _FOLDER, True)
        os.makedirs(os.path.join(_FOLDER, "failures"))
        with open(os.path.join(_FOLDER, "generation"), "wb") as counter:
            counter.write(_COUNTER.pack(0))
    return _FOLDER


def _wrap_initializer(pool_class: type) -> Callable[[], None]:
    """Make ``pool_class`` start its workers with the worker side installed; returns the undo."""
    original: Callable[..., None] = getattr(pool_class, "__init__")  # noqa: B009
    signature = inspect.signature(original)

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        folder = os.environ.get(ENVIRONMENT)
        if folder:
            bound = signature.bind(self, *args, **kwargs)
            user = bound.arguments.get("initializer")
            bound.arguments["initializer"] = functools.partial(worker_init, folder, user)
            args, kwargs = bound.args[1:], bound.kwargs
        original(self, *args, **kwargs)

    setattr(pool_class, "__init__", __init__)  # noqa: B010

    def restore() -> None:
        if getattr(pool_class, "__init__") is __init__:  # noqa: B009
            setattr(pool_class, "__init__", original)  # noqa: B010

    return restore


# -- the worker's side -------------------------------------------------------------------


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
        if session_watchlist is not None:
            self.watchlist = session_watchlist
        else:
            self.watchlist = Watchlist(events=False)
            self.watchlist.overrides = self._journal_texts
            self.watchlist.start()
        with open(os.path.join(folder, "generation"), "rb") as counter:
            self._counter = mmap.mmap(counter.fileno(), _COUNTER.size, access=mmap.ACCESS_READ)

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
        generation: int = _COUNTER.unpack_from(self._counter)[0]
        return generation

    def catch_up(self) -> None:
        """Bring every module this worker imported to the journal's versions."""
        generation = self.generation()
        if generation == self.applied:
            return
        for failure, digest in apply_versions(self._modules(), self.watchlist):
            self._tell(failure, digest)
        self.applied = generation

    def _tell(self, failure: Failure, digest: str) -> None:
        note = os.path.join(self.folder, "failures", f"{os.getpid()}-{failure.module}-{digest[:12]}.txt")
        message = describe_failure(failure).replace("hotswap:", f"hotswap: worker {os.getpid()}:", 1)
        try:
            with open(note, "w", encoding="utf-8") as out:
                out.write(message)
        except OSError:
            pass


def apply_versions(modules: dict[str, dict[str, str]], watchlist: Watchlist) -> list[tuple[Failure, str]]:
    """In a worker: bring each imported module to its entry's text (path, digest, text).

    The same engine as the session: in place, state kept, transactional.
    Returns the failures, with the digest of the version that failed.
    """
    failures = []
    for name, entry in modules.items():
        module = sys.modules.get(name)
        watched = watchlist.get(name)
        running = watched.running if watched is not None else _text_of(module)
        if module is None or (running is not None and running.digest == entry["digest"]):
            continue
        data = entry["text"].encode("utf-8")
        version = SourceVersion(entry["path"], data, digest_of(data), (0, 0, 0, 0), 0)
        outcome = reload_module(module, version, running)
        if isinstance(outcome, Reloaded):
            if watched is not None:
                watched.running = version
            else:
                watchlist.record(name, version)
        else:
            failures.append((outcome, entry["digest"]))
    return failures


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
session_watchlist: Watchlist | None = None  # set in the session; a forked worker inherits it
_plain_loads = ForkingPickler.loads


def _loads_up_to_date(data: Any, /, **kwargs: Any) -> Any:
    """``ForkingPickler.loads`` in a worker: catch up with the session before each task."""
    worker = _worker
    if worker is not None and worker.generation() != worker.applied:
        try:
            worker.catch_up()
        except Exception:  # noqa: BLE001 - a task must never fail because of hotswap
            pass
    return _plain_loads(data, **kwargs)


def worker_init(folder: str, initializer: Callable[..., object] | None, *initargs: Any) -> None:
    """A pool worker's initializer: install the worker side, then run the user's own."""
    global _worker
    if _worker is None or _worker.folder != folder:
        _worker = _Worker(folder)
        ForkingPickler.loads = _loads_up_to_date
        _worker.catch_up()
    if initializer is not None:
        initializer(*initargs)
