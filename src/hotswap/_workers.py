"""Workers: edits applied in the session reach the worker processes of local pools.

The design, in five parts:

* **A journal** (a temporary folder named in ``HOTSWAP_JOURNAL``, which child
  processes inherit): ``index.json`` holds, for every module changed (or broken)
  since hotswap started, the text of its last good version (and the text it
  had before its first reload, its *base*); ``generation`` is an 8-byte counter
  the session bumps after writing the index. Source text travels, not paths,
  and a broken save never reaches it. Nothing is written until a pool or an
  executor is made (or found at load): a session without workers pays no file
  write per edit.
* **Pools created after loading join at start-up.** ``multiprocessing.Pool``,
  ``concurrent.futures.ProcessPoolExecutor`` and loky's executor created after
  hotswap was loaded get an initializer (wrapping the user's own) that installs
  the worker side, in every start method: fork, spawn, forkserver.
* **A generation check before each task is unpickled.** Workers read tasks
  through ``ForkingPickler.loads``; the worker side wraps it: one read of the
  memory-mapped counter (well under a microsecond) and, only when it moved,
  the journal is read and each changed module is brought up to date with the
  same engine as the session: in place, state kept, transactional. Between
  tasks, never while one runs.
* **Pools created before loading: their tasks carry the check until their
  workers have joined.** Those workers never ran hotswap's initializer, and may
  not even have hotswap imported. So from ``%load_ext hotswap`` on, the session
  wraps each task it sends them in a ``FreshTask``: pickled, it is
  ``_fresh(Checkpoint(folder), task)``. Unpickling runs the checkpoint's
  reduction first (``_fresh(folder)``), which imports ``hotswap._workers`` in
  the worker, joins it to the journal (hooks its ``ForkingPickler.loads``, as
  the initializer does), catches up and writes ``joined/<pid>`` in the
  journal; only then is the task itself unpickled (so a module it imports
  comes from the journal's text), and ``_fresh`` hands back the task itself:
  the worker calls the user's callable, with no frame of hotswap around it.
  Workers such a pool starts later join at start-up (an executor's
  ``_initializer`` becomes hotswap's; a Pool's worker function does, see
  ``_patch_pool_worker``); once every worker alive has joined (the session
  lists ``joined/`` at most every 50 ms while waiting), tasks go unwrapped and
  cost what they cost in a pool made after loading. No busy loop, no user
  code. Which pools: live ``multiprocessing.Pool`` objects are found once, at
  load, through ``multiprocessing.util._finalizer_registry`` (every Pool
  registers a ``Finalize`` holding a weak reference to itself); their task
  queue gets a stand-in whose ``put`` wraps the tasks (the pool's handler
  thread keeps reading the real queue). Executors (``ProcessPoolExecutor``,
  loky's, so joblib's reusable one) need no search: their class's ``submit``
  does it when the executor did not join at start-up (they start workers on
  demand, so even one not used yet is covered). A worker of such a pool does
  not know which text a module it imported before joining runs: it asks the
  module's code whether it runs the journal's base text of it, else its file's.
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
import multiprocessing.util
import os
import shutil
import struct
import sys
import tempfile
import time
import traceback
import weakref
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.reduction import ForkingPickler
from types import ModuleType
from typing import Any

from ._adopt import runs_this_text
from ._apply import reload_module
from ._outcomes import Failure, Reloaded
from ._report import describe_failure
from ._source import SourceVersion, digest_of
from ._watch import Watchlist

__all__ = ["Checkpoint", "FreshTask", "Journal", "apply_versions", "worker_init"]

ENVIRONMENT = "HOTSWAP_JOURNAL"
_LOKY = ("joblib.externals.loky.process_executor", "loky.process_executor")
_COUNTER = struct.Struct("<Q")
_JOINED = "_hotswap_journal"  # set on a pool or executor whose workers start with hotswap's initializer
_LATE = "_hotswap_late"  # an executor made before loading: its ``_LateJoiner``


class Journal:
    """The session's side: what workers must run, written after each reload."""

    def __init__(self) -> None:
        self.folder = _process_folder()
        self._texts: dict[str, dict[str, str]] = {}
        self._bases: dict[str, SourceVersion] = {}  # module -> the text it ran before its first reload
        with open(self._path("generation"), "rb") as counter:
            self.generation = _COUNTER.unpack(counter.read(_COUNTER.size))[0]
        self._failures_seen: set[str] = set()
        self._failures_mtime = 0
        self._restore: list[Callable[[], None]] = []
        self._readers = False  # a pool or executor was made or found: workers may read the index
        self._unwritten = False  # versions published since the index was last written

    def _path(self, name: str) -> str:
        return os.path.join(self.folder, name)

    def start(self, watchlist: Watchlist) -> None:
        """Name the journal for child processes, and join pools created from now on."""
        os.environ[ENVIRONMENT] = self.folder
        come = self.readers_come
        self._restore += [_wrap_initializer(multiprocessing.pool.Pool, come), _wrap_initializer(ProcessPoolExecutor, come)]
        self._restore += [_wrap_submit(ProcessPoolExecutor, self.folder, come)]
        self._restore += _join_live_pools(self.folder, come)  # created before loading: one look, now
        self._restore.append(_patch_pool_worker(self.folder))  # and the workers they start later
        for name in _LOKY:  # joblib's workers: now if imported, else when they are
            module = sys.modules.get(name)
            if module is not None:
                self._join_loky(module)
            else:
                watchlist.after_import[name] = self._join_loky

    def _join_loky(self, module: ModuleType) -> None:
        executor = getattr(module, "ProcessPoolExecutor", None)
        if isinstance(executor, type) and self.folder == os.environ.get(ENVIRONMENT):
            come = self.readers_come
            self._restore += [_wrap_initializer(executor, come), _wrap_submit(executor, self.folder, come)]

    def stop(self) -> None:
        if os.environ.get(ENVIRONMENT) == self.folder:
            del os.environ[ENVIRONMENT]
        while self._restore:
            self._restore.pop()()

    @property
    def texts(self) -> dict[str, dict[str, str]]:
        """Module -> the last good version (path, digest, text) of each module changed since start."""
        return self._texts

    def remember_base(self, name: str, running: SourceVersion) -> None:
        """The text a module ran before its first reload: what a worker that joined late may run."""
        self._bases.setdefault(name, running)

    def publish(self, versions: dict[str, SourceVersion]) -> None:
        """New good versions of modules: workers apply them before their next task.

        Written to disk only once a worker may read them: until a pool or an
        executor exists, an edit costs no file write (``readers_come`` writes).
        """
        if not versions:
            return
        for name, version in versions.items():
            entry = {"path": version.path, "digest": version.digest, "text": version.text}
            base = self._bases.get(name)
            if base is not None and base.digest != version.digest:
                entry.update(base_digest=base.digest, base_text=base.text)
            self._texts[name] = entry
        self.generation += 1
        self._unwritten = True
        if self._readers:
            self._write()

    def readers_come(self) -> None:
        """A pool or an executor is made or found: from now on, every version is written at once."""
        self._readers = True
        if self._unwritten:
            self._write()

    def _write(self) -> None:
        temporary = self._path("index.json.tmp")
        with open(temporary, "w", encoding="utf-8") as index:
            json.dump({"generation": self.generation, "modules": self._texts}, index)
        os.replace(temporary, self._path("index.json"))
        with open(self._path("generation"), "r+b") as counter:
            counter.write(_COUNTER.pack(self.generation))
        self._unwritten = False

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
        os.makedirs(os.path.join(_FOLDER, "joined"))
        with open(os.path.join(_FOLDER, "generation"), "wb") as counter:
            counter.write(_COUNTER.pack(0))
    return _FOLDER


def _wrap_initializer(pool_class: type, readers_come: Callable[[], None]) -> Callable[[], None]:
    """Make ``pool_class`` start its workers with the worker side installed; returns the undo."""
    original: Callable[..., None] = getattr(pool_class, "__init__")  # noqa: B009
    signature = inspect.signature(original)

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        folder = os.environ.get(ENVIRONMENT)
        if folder:
            readers_come()
            self.__dict__[_JOINED] = folder
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


class _LateJoiner:
    """A pool or executor made before loading, until each of its workers has joined.

    Its tasks are sent as ``FreshTask`` while some worker alive has not joined
    (a worker that joins writes ``joined/<pid>`` in the journal, after it hooked
    ``ForkingPickler.loads``); workers it starts from now on run hotswap's
    initializer, so once those alive at load have joined, tasks go as they are
    and cost what they cost in a pool made after loading. The journal is looked
    at most every ``LOOK_EVERY`` seconds.
    """

    LOOK_EVERY = 0.05

    def __init__(self, folder: str, pids: Callable[[], Iterable[int]]) -> None:
        self.folder = folder
        self.checkpoint = Checkpoint(folder)
        self.pids = pids
        self.done = False
        self._next_look = 0.0

    def waiting(self) -> bool:
        if self.done:
            return False
        now = time.monotonic()
        if now < self._next_look:
            return True
        self._next_look = now + self.LOOK_EVERY
        try:
            joined = set(os.listdir(os.path.join(self.folder, "joined")))
            self.done = all(str(pid) in joined for pid in self.pids())
        except (OSError, RuntimeError):  # RuntimeError: the pool's dict of workers changed meanwhile
            return True
        return not self.done


def _join_later(pool: Any, folder: str, pids: Callable[[], Iterable[int]]) -> tuple[_LateJoiner, Callable[[], None]]:
    """Workers ``pool`` starts from now on run hotswap's initializer; returns the joiner and the undo."""
    original = pool._initializer
    joined = functools.partial(worker_init, folder, original)
    pool._initializer = joined
    reference = weakref.ref(pool)

    def restore() -> None:
        live = reference()
        if live is not None and live._initializer is joined:
            live._initializer = original
        if live is not None:
            live.__dict__.pop(_LATE, None)  # loaded again: it joins again

    return _LateJoiner(folder, pids), restore


def _wrap_submit(executor_class: type, folder: str, readers_come: Callable[[], None]) -> Callable[[], None]:
    """Executors that did not join at start-up (made before loading) send tasks as ``FreshTask``
    until their workers have joined."""
    original: Callable[..., Any] = getattr(executor_class, "submit")  # noqa: B009
    undo: list[Callable[[], None]] = []

    @functools.wraps(original)
    def submit(self: Any, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        state = self.__dict__
        if state.get(_JOINED) != folder:
            joiner = state.get(_LATE)
            if joiner is None or joiner.folder != folder:
                readers_come()
                processes = state.get("_processes")
                joiner, restore = _join_later(self, folder, lambda: list(processes or ()))
                state[_LATE] = joiner
                undo.append(restore)
            if joiner.waiting():
                fn = FreshTask(fn, joiner.checkpoint)
        return original(self, fn, *args, **kwargs)

    setattr(executor_class, "submit", submit)  # noqa: B010

    def restore() -> None:
        if getattr(executor_class, "submit") is submit:  # noqa: B009
            setattr(executor_class, "submit", original)  # noqa: B010
        while undo:
            undo.pop()()

    return restore


class _FreshTaskQueue:
    """Stands in for the task queue of a Pool made before loading, for its submitting methods only.

    ``apply_async``, ``map``, ``imap``... put ``(tasks, set_length)`` on
    ``pool._taskqueue``; the pool's handler thread reads the real queue (it
    holds it since the pool started). While a worker has not joined, each task
    ``(job, i, func, args, kwds)`` goes on with ``func`` as a ``FreshTask``:
    ``args`` (``map``'s chunks, with the user's function) unpickle after the
    checkpoint.
    """

    def __init__(self, queue: Any, joiner: _LateJoiner) -> None:
        self.queue = queue
        self.joiner = joiner

    def put(self, item: Any) -> None:
        if isinstance(item, tuple) and len(item) == 2 and self.joiner.waiting():
            item = (self._fresh(item[0]), item[1])
        self.queue.put(item)

    def _fresh(self, tasks: Iterable[Any]) -> Iterator[Any]:
        checkpoint = self.joiner.checkpoint
        for job, index, func, args, kwds in tasks:
            yield job, index, FreshTask(func, checkpoint), args, kwds

    def __getattr__(self, name: str) -> Any:
        return getattr(self.queue, name)


def _join_live_pools(folder: str, readers_come: Callable[[], None]) -> list[Callable[[], None]]:
    """Process pools alive now whose workers did not start with hotswap: they join through their tasks.

    One look at ``multiprocessing``'s finalizers (a few entries), at load only.
    """
    registry = getattr(multiprocessing.util, "_finalizer_registry", {})
    undo: list[Callable[[], None]] = []
    for finalizer in list(registry.values()):
        reference = getattr(finalizer, "_weakref", None)
        pool = reference() if isinstance(reference, weakref.ref) else None
        if (
            not isinstance(pool, multiprocessing.pool.Pool)
            or isinstance(pool, multiprocessing.pool.ThreadPool)
            or pool.__dict__.get(_JOINED) == folder
            or isinstance(getattr(pool, "_taskqueue", None), _FreshTaskQueue)
        ):
            continue
        readers_come()
        workers: list[Any] = pool._pool  # type: ignore[attr-defined]
        joiner = _LateJoiner(folder, functools.partial(_pids_of, workers))
        stand_in = _FreshTaskQueue(pool._taskqueue, joiner)  # type: ignore[attr-defined]
        pool._taskqueue = stand_in  # type: ignore[attr-defined]
        undo.append(functools.partial(_put_back_queue, weakref.ref(pool), stand_in))
    return undo


_plain_pool_worker: Callable[..., None] = getattr(multiprocessing.pool, "worker")  # noqa: B009
_session_pid = 0


def _patch_pool_worker(folder: str) -> Callable[[], None]:
    """Every ``multiprocessing.Pool`` worker process started from now on joins at start-up.

    A Pool's own initializer cannot be changed once it runs: its worker-handler
    thread was given it when the pool started, and replaces a worker that
    exits (``maxtasksperchild``, a crash) with a new one started with it. But
    it names the worker's function, ``multiprocessing.pool.worker``, when it
    starts each process: while hotswap is loaded, that name holds
    ``_join_then_work`` (pickled by reference for spawn and forkserver).
    """
    global _session_pid
    _session_pid = os.getpid()
    patched = functools.partial(_join_then_work, folder)
    setattr(multiprocessing.pool, "worker", patched)  # noqa: B010

    def restore() -> None:
        if getattr(multiprocessing.pool, "worker") is patched:  # noqa: B009
            setattr(multiprocessing.pool, "worker", _plain_pool_worker)  # noqa: B010

    return restore


def _join_then_work(folder: str, *args: Any, **kwargs: Any) -> None:
    """``multiprocessing.pool.worker`` while hotswap is loaded: join (in a process of its own), then work."""
    if os.getpid() != _session_pid:  # a ThreadPool's "workers" are threads of the session
        try:
            worker_init(folder, None)
        except Exception as error:  # noqa: BLE001 - the pool's worker must run anyway
            _tell_internal(folder, error)
    _plain_pool_worker(*args, **kwargs)


def _pids_of(processes: list[Any]) -> list[int]:
    return [process.pid for process in list(processes)]


def _put_back_queue(pool: weakref.ref[Any], stand_in: _FreshTaskQueue) -> None:
    live = pool()
    if live is not None and getattr(live, "_taskqueue", None) is stand_in:
        live._taskqueue = stand_in.queue


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
            self._tell(f"{failure.module}-{digest[:12]}", describe_failure(failure))
        self.applied = generation

    def catch_up_guarded(self) -> None:
        """``catch_up``; a task never fails because of hotswap, and an internal error is said once."""
        try:
            self.catch_up()
        except Exception as error:  # noqa: BLE001 - the worker's boundary
            self.applied = self.generation()  # the same error would come again for every task
            _tell_internal(self.folder, error)

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


def _tell_internal(folder: str, error: BaseException) -> None:
    where = "".join(traceback.format_exception(error)[-3:]).rstrip()
    _tell(folder, "internal", f"hotswap: internal error while catching up with the session "
          f"({type(error).__name__}: {error}); this worker keeps the versions it had. Please report it:\n{where}")


def apply_versions(modules: dict[str, dict[str, str]], watchlist: Watchlist) -> list[tuple[Failure, str]]:
    """In a worker: bring each imported module to its entry's text (path, digest, text).

    The same engine as the session: in place, state kept, transactional.
    Returns the failures, with the digest of the version that failed.
    """
    failures = []
    for name, entry in modules.items():
        module = sys.modules.get(name)
        if module is None:
            continue
        watched = watchlist.get(name)
        running = watched.running if watched is not None else _running_text(module, entry)
        if running is not None and running.digest == entry["digest"]:
            if watched is None:
                watchlist.record(name, running)
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
session_watchlist: Watchlist | None = None  # set in the session; a forked worker inherits it
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
            _tell_internal(folder, error)
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
