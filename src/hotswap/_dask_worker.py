"""Dask, on a worker: the session's versions applied between tasks, each session's kept apart.

``HotswapPlugin`` is what a session registers (see ``_dask``); on the worker, its
``setup`` hands the versions to ``_OnWorker``: one per worker process, with the
session's reload step (``_workers.apply_versions``) and, per session, the
generation it runs, its texts and its failures. The first session that sends
a text of a module owns it on this worker; another session's different text of
it is refused (and said to that session). ``teardown`` drops a session's texts,
unless its plugin is back by the next turn of the event loop (a new registration
tears the old one down first).

**Threads.** A Dask worker runs tasks in a pool of threads, and the plugin is
set up in the worker's event loop: applying a version there while a task runs
in another thread would change code under that task. So the worker's thread
pools get a gate (their ``submit`` runs each task through ``_Gate.call``):
when a version must be applied, the plugin closes the gate (tasks that start
from then on wait at it), waits in the event loop, without blocking it, until
no task is running (a task that seceded, e.g. inside ``worker_client()``, is
waiting for others and does not count), applies the version, and opens the
gate. Tasks already running finish with the code they started with; tasks
sent after the save run the new code. The registration waits at most
``SETTLE_SECONDS`` for running tasks; past that, the worker applies the
version when they end (tasks sent meanwhile wait for it).
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any

from distributed import WorkerPlugin

from . import _machinery
from ._engine import ReloadStep
from ._report import describe_failure
from ._watch import Watchlist
from ._workers import adopt_imported_before, apply_versions

__all__ = ["HotswapPlugin", "Reply", "name_of", "report"]

SETTLE_SECONDS = 0.25  # how long a registration waits for tasks running on a worker
_NO_KEY = object()


class _Gate:
    """Tasks pass it to run; closed, it holds new tasks back until an edit is applied.

    No lock on the way through (a task costs a set insertion and removal): a
    task enters ``_inside`` and only then reads ``_closed``; the event loop sets
    ``_closed`` and only then reads ``_inside``. Each step is atomic under the
    GIL, so either the task sees the gate closed (and steps back to wait), or
    the event loop sees the task inside (and waits for it to end).
    """

    def __init__(self) -> None:
        self._closed = False
        self._open = threading.Event()
        self._open.set()
        self._inside: set[int] = set()  # threads running a task

    def call(self, function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        ident = threading.get_ident()
        inside = self._inside
        inside.add(ident)
        while self._closed:
            inside.discard(ident)
            self._open.wait()
            inside.add(ident)
        try:
            return function(*args, **kwargs)
        finally:
            inside.discard(ident)

    def close(self) -> None:
        self._open.clear()
        self._closed = True

    def open(self) -> None:
        self._closed = False
        self._open.set()

    def running(self, worker: Any) -> int:
        """Tasks inside that run code (a seceded task waits for others: it does not count)."""
        inside = self._inside.copy()
        seceded = {task.key for task in getattr(worker.state, "long_running", ())}
        active: dict[int, Any] = getattr(worker, "active_threads", {})
        return sum(1 for ident in inside if active.get(ident, _NO_KEY) not in seceded)


class _OnWorker:
    """hotswap's state on one Dask worker: one process, one set of modules, shared by the
    sessions whose clients use this worker."""

    def __init__(self, worker: Any) -> None:
        self.gate = _Gate()
        self.step = ReloadStep(Watchlist(events=False))  # the sessions' reload step, run here
        _machinery.load_in_background()  # (on the worker's loop: tasks run in other threads)
        self.watchlist = self.step.watchlist
        self.watchlist.start()
        self.adopted = False  # the modules it imported before are watched
        self.sessions: dict[str, _Session] = {}  # by identity, in the order they came
        self.owners: dict[str, str] = {}  # module -> the session whose text of it this worker runs
        self.texts: dict[str, bytes] = {}  # path -> text to import: the owners' texts
        self.watchlist.overrides = lambda: self.texts
        self.settling: asyncio.Future[None] | None = None
        executors: dict[str, Any] = getattr(worker, "executors", {})
        for name, executor in executors.items():
            # the pools that run tasks in this process ("offload" (de)serializes messages)
            if name != "offload" and "ThreadPoolExecutor" in type(executor).__name__:
                _gate_submit(executor, self.gate)

    def join(self, identity: str, epoch: int, modules: dict[str, dict[str, str]]) -> _Session:
        """A session's versions arrive: it owns the modules nobody sent before; another text of a
        module another session owns is refused (the worker runs one text of each module)."""
        session = self.sessions.get(identity)
        if session is None or session.epoch != epoch:  # hotswap was loaded again in that session
            self.leave(identity)
            session = self.sessions[identity] = _Session(identity, epoch)
        session.modules = modules
        session.refused = {}
        for name, entry in modules.items():
            owner = self.owners.setdefault(name, identity)
            if owner != identity and self.sessions[owner].modules[name]["digest"] != entry["digest"]:
                session.refused[name] = owner
        self._gather_texts()
        return session

    def leave(self, identity: str) -> None:
        """A session is gone (unloaded, ended): its texts and what it owned are dropped, so imports
        come from disk again (or from the next session that sends a text of those modules)."""
        if self.sessions.pop(identity, None) is None:
            return
        self.owners = {name: owner for name, owner in self.owners.items() if owner != identity}
        self._gather_texts()

    def _gather_texts(self) -> None:
        """Imports come from the union of the sessions' texts, each module from its owner's."""
        texts: dict[str, bytes] = {}
        for name, owner in self.owners.items():
            entry = self.sessions[owner].modules[name]
            texts.setdefault(entry["path"], entry["text"].encode("utf-8"))
        self.texts = texts

    def needs_applying(self, modules: dict[str, dict[str, str]]) -> bool:
        """Does a module this worker imported run another text? (Modules not imported yet will
        be imported from the new texts: nothing to wait for.)"""
        for name, entry in modules.items():
            if name in sys.modules:
                watched = self.watchlist.get(name)
                if watched is None or watched.running.digest != entry["digest"]:
                    return True
        return False

    async def settle(self, worker: Any) -> None:
        """Wait until no task runs, then apply each session's newest pending version and open the gate."""
        try:
            while self.gate.running(worker):
                await asyncio.sleep(0.005)
            for session in list(self.sessions.values()):
                if session.pending is not None:
                    self._apply(session)
        finally:
            self.gate.open()

    def _apply(self, session: _Session) -> None:
        assert session.pending is not None
        generation, modules = session.pending
        session.pending = None
        if not self.adopted:
            every = {name: entry for s in self.sessions.values() for name, entry in s.modules.items()}
            adopt_imported_before(self.watchlist, every)
            self.adopted = True
        failures = apply_versions(modules, self.step)
        session.messages = session.refusals() + [describe_failure(failure) for failure, _ in failures]
        session.applied = generation


class _Session:
    """One session's part of a worker: the versions it sent, which it runs, and what failed."""

    def __init__(self, identity: str, epoch: int) -> None:
        self.identity = identity
        self.epoch = epoch  # which loading of hotswap in that session sent it
        self.modules: dict[str, dict[str, str]] = {}  # its last versions (path, digest, text)
        self.refused: dict[str, str] = {}  # module -> the session whose other text of it runs here
        self.applied = 0  # the generation of this session this worker runs
        self.messages: list[str] = []  # refusals and failures of the last version applied
        self.pending: tuple[int, dict[str, dict[str, str]]] | None = None

    def accepted(self) -> dict[str, dict[str, str]]:
        """The versions this worker runs for the session (not those another session owns)."""
        return {name: entry for name, entry in self.modules.items() if name not in self.refused}

    def refusals(self) -> list[str]:
        """What the session is told of the modules refused, each said once per worker."""
        return [
            f"hotswap: {name} not updated: another session on this cluster ({owner}) sent another "
            f"text of it first; this worker keeps running that session's version of {name}, and "
            f"this session's tasks run it too (give the module another name in one session, or "
            f"use a cluster of its own)"
            for name, owner in self.refused.items()
        ]


def _gate_submit(executor: Any, gate: _Gate) -> None:
    """Every task this pool runs passes the gate (an attribute of this one pool object)."""
    if getattr(executor.submit, "_hotswap_gate", None) is not None:
        return
    original = executor.submit

    def submit(function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        return original(gate.call, function, *args, **kwargs)

    submit._hotswap_gate = gate  # type: ignore[attr-defined]
    executor.submit = submit


def _on_worker(worker: Any) -> _OnWorker:
    state: _OnWorker | None = getattr(worker, "_hotswap", None)
    if state is None:
        state = _OnWorker(worker)
        worker._hotswap = state
    return state


class HotswapPlugin(WorkerPlugin):
    """On a worker: apply a session's versions between tasks, and import later modules from them."""

    def __init__(self, identity: str, epoch: int, generation: int, modules: dict[str, dict[str, str]]) -> None:
        self.identity = identity
        self.epoch = epoch
        self.generation = generation
        self.modules = modules
        self.origin = _process()

    async def setup(self, worker: Any) -> None:
        if _process() == self.origin:
            return  # a worker in the session's process (processes=False): its modules are the session's
        state = _on_worker(worker)
        session = state.join(self.identity, self.epoch, self.modules)
        if self.generation <= session.applied:
            return
        modules = session.accepted()
        if session.pending is None and not state.needs_applying(modules):
            session.applied, session.messages = self.generation, session.refusals()
            return
        session.pending = (self.generation, modules)
        state.gate.close()  # from now on, tasks wait for the new version
        if state.settling is None or state.settling.done():
            state.settling = asyncio.ensure_future(state.settle(worker))
        await asyncio.wait({state.settling}, timeout=SETTLE_SECONDS)

    def teardown(self, worker: Any) -> None:
        """Unregistered (the session unloaded hotswap or ended): its texts leave the worker. A new
        registration of the session's plugin also tears this one down first, then sets the new
        one up: the session stays unless its plugin is not back by the next turn of the loop."""
        state: _OnWorker | None = getattr(worker, "_hotswap", None)
        if state is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            state.leave(self.identity)
            return
        loop.call_soon(_leave_unless_back, worker, state, self.identity)


def _leave_unless_back(worker: Any, state: _OnWorker, identity: str) -> None:
    if name_of(identity) not in getattr(worker, "plugins", {}):
        state.leave(identity)


def name_of(identity: str) -> str:
    return f"hotswap-{identity}"


def _process() -> tuple[str, int]:
    return socket.gethostname(), os.getpid()


Reply = tuple[int, list[str], list[str]]  # a worker's generation of the session, failures, modules refused


def report(identity: str, epoch: int, dask_worker: Any = None) -> Reply:
    """On a worker (``client.run``): the generation of the session it runs, what failed in it, and
    the modules it runs another session's text of."""
    state: _OnWorker | None = getattr(dask_worker, "_hotswap", None)
    session = state.sessions.get(identity) if state is not None else None
    if session is None or session.epoch != epoch:
        return 0, [], []
    return session.applied, list(session.messages), sorted(session.refused)
