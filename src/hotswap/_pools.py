"""Pools join the journal: the session's side of getting worker processes to follow.

``multiprocessing.Pool``, ``concurrent.futures.ProcessPoolExecutor`` and loky's
executor (joblib's) made after hotswap was loaded start their workers with
hotswap's initializer (``_join.worker_init``), wrapped around the user's own,
in every start method: fork, spawn, forkserver. Pools made before loading cannot
be given an initializer: their tasks carry a ``Checkpoint`` (``FreshTask``) until
every worker alive has joined, and the workers they start later join at start-up
(see ``_patch_pool_worker``). No busy loop, no user code. Nothing is imported
for it: each kind joins when the user's code first imports it.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from types import ModuleType
from typing import Any

from . import _join
from ._join import COUNTER, ENVIRONMENT, Checkpoint, FreshTask, join_then_work, worker_init
from ._watch import Watchlist

__all__ = ["join_pools", "pool_versions"]

ReadersCome = Callable[[], None]  # see ``Journal.readers_come``

_LOKY = ("joblib.externals.loky.process_executor", "loky.process_executor")
_JOINED = "_hotswap_journal"  # set on a pool or executor whose workers start with hotswap's initializer
_LATE = "_hotswap_late"  # an executor made before loading: its ``_LateJoiner``


def join_pools(folder: str, readers_come: ReadersCome, watchlist: Watchlist) -> list[Callable[[], None]]:
    """Pools and executors made from now on, and those alive now, join the journal in ``folder``;
    ``readers_come`` is called when one is made or found. Each kind joins now if its module is
    imported, else when it is. Returns the undos (a list that grows as they join)."""
    undo: list[Callable[[], None]] = []

    def join_pool(module: ModuleType) -> None:  # multiprocessing.pool
        undo.append(_wrap_initializer(module.Pool, readers_come))
        undo.extend(_join_live_pools(module, folder, readers_come))  # created before loading: one look, now
        undo.append(_patch_pool_worker(module, folder))  # and the workers they start later

    def join_executor(module: ModuleType) -> None:  # concurrent.futures.process, loky's process_executor
        executor = getattr(module, "ProcessPoolExecutor", None)
        if isinstance(executor, type) and folder == os.environ.get(ENVIRONMENT):
            undo.extend([_wrap_initializer(executor, readers_come), _wrap_submit(executor, folder, readers_come)])

    kinds = [("multiprocessing.pool", join_pool), ("concurrent.futures.process", join_executor)]
    for name, join in kinds + [(name, join_executor) for name in _LOKY]:
        module = sys.modules.get(name)
        if module is not None:
            join(module)
        else:
            watchlist.after_import[name] = join
    return undo


def _wrap_initializer(pool_class: type, readers_come: ReadersCome) -> Callable[[], None]:
    """Make ``pool_class`` start its workers with the worker side installed; returns the undo."""
    original: Callable[..., None] = getattr(pool_class, "__init__")  # noqa: B009
    signature = inspect.signature(original)

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        folder = os.environ.get(ENVIRONMENT)
        if folder:
            readers_come()
            self.__dict__[_JOINED] = folder
            _POOLS.add(self)
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


def _wrap_submit(executor_class: type, folder: str, readers_come: ReadersCome) -> Callable[[], None]:
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
                _POOLS.add(self)
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


def _join_live_pools(pools: ModuleType, folder: str, readers_come: ReadersCome) -> list[Callable[[], None]]:
    """Process pools alive now whose workers did not start with hotswap: they join through their tasks.

    One look at ``multiprocessing``'s finalizers (a few entries), at load only.
    """
    registry = getattr(sys.modules.get("multiprocessing.util"), "_finalizer_registry", {})
    undo: list[Callable[[], None]] = []
    for finalizer in list(registry.values()):
        reference = getattr(finalizer, "_weakref", None)
        pool = reference() if isinstance(reference, weakref.ref) else None
        if (
            not isinstance(pool, pools.Pool)
            or isinstance(pool, pools.ThreadPool)
            or pool.__dict__.get(_JOINED) == folder
            or isinstance(getattr(pool, "_taskqueue", None), _FreshTaskQueue)
        ):
            continue
        readers_come()
        _POOLS.add(pool)
        workers: list[Any] = pool._pool
        joiner = _LateJoiner(folder, functools.partial(_pids_of, workers))
        stand_in = _FreshTaskQueue(pool._taskqueue, joiner)
        pool._taskqueue = stand_in
        undo.append(functools.partial(_put_back_queue, weakref.ref(pool), stand_in))
    return undo


def _patch_pool_worker(pools: ModuleType, folder: str) -> Callable[[], None]:
    """Every ``multiprocessing.Pool`` worker process started from now on joins at start-up.

    A Pool's own initializer cannot be changed once it runs: its worker-handler
    thread was given it when the pool started, and replaces a worker that
    exits (``maxtasksperchild``, a crash) with a new one started with it. But
    it names the worker's function, ``multiprocessing.pool.worker``, when it
    starts each process: while hotswap is loaded, that name holds
    ``_join.join_then_work`` (pickled by reference for spawn and forkserver: a
    worker imports only ``_join``).
    """
    plain = pools.worker
    if isinstance(plain, functools.partial) and plain.func is join_then_work:  # (a session before this one)
        plain = _join.pool_worker_of_session[1] if _join.pool_worker_of_session else plain
    _join.pool_worker_of_session = (os.getpid(), plain)
    patched = functools.partial(join_then_work, folder)
    setattr(pools, "worker", patched)  # noqa: B010

    def restore() -> None:
        if getattr(pools, "worker") is patched:  # noqa: B009
            setattr(pools, "worker", plain)  # noqa: B010

    return restore


_POOLS: weakref.WeakSet[Any] = weakref.WeakSet()  # pools and executors that joined, for ``%hotswap``


def pool_versions(joined: str, generation: int) -> list[str]:
    """One line per pool alive: how many of its workers run which version (``joined/<pid>``)."""
    lines = []
    for pool in list(_POOLS):
        pids = _workers_of(pool)
        if not pids:
            continue
        counts: dict[int | None, int] = {}
        for pid in pids:
            version = _version_of(joined, pid)
            counts[version] = counts.get(version, 0) + 1
        workers = f"{len(pids)} worker" + ("s" if len(pids) > 1 else "")
        lines.append(f"{_kind(pool)}: {workers}, " + _versions_said(counts, generation))
    return lines


def _workers_of(pool: Any) -> list[int]:
    processes = pool.__dict__.get("_pool") or pool.__dict__.get("_processes") or ()
    if isinstance(processes, dict):
        return [pid for pid in processes if isinstance(pid, int)]
    return [p.pid for p in list(processes) if getattr(p, "pid", None) and p.is_alive()]


def _version_of(joined: str, pid: int) -> int | None:
    try:
        with open(os.path.join(joined, str(pid)), "rb") as mark:
            data = mark.read(COUNTER.size)
    except OSError:
        return None  # not joined yet: it joins with its next task
    return COUNTER.unpack(data)[0] if len(data) == COUNTER.size else 0  # (empty: joined, no edit yet)


def _versions_said(counts: dict[int | None, int], generation: int) -> str:
    parts = []
    for version, count in sorted(counts.items(), key=lambda item: -1 if item[0] is None else item[0], reverse=True):
        if version is None:
            parts.append(f"{count} not joined yet (starting, or made before loading: join with their next task)")
        elif version == generation:
            parts.append(f"{count} on version {version} (current)")
        else:
            parts.append(f"{count} on version {version} (catch up before their next task)")
    return ", ".join(parts)


def _kind(pool: Any) -> str:
    context = getattr(pool, "_ctx", None) or getattr(pool, "_mp_context", None)
    method = context.get_start_method() if context is not None and hasattr(context, "get_start_method") else None
    name = f"{type(pool).__module__.split('.')[0]}.{type(pool).__name__}"
    return f"{name} ({method})" if method else name


def _pids_of(processes: list[Any]) -> list[int]:
    return [process.pid for process in list(processes)]


def _put_back_queue(pool: weakref.ref[Any], stand_in: _FreshTaskQueue) -> None:
    live = pool()
    if live is not None and getattr(live, "_taskqueue", None) is stand_in:
        live._taskqueue = stand_in.queue
