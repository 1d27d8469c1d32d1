"""Dask distributed: every live client's workers follow the session, on any machine.

Imported only when the user's session has ``distributed`` loaded. Workers on
other machines do not share the session's files: the texts themselves travel,
inside a worker plugin registered on every live client after each reload and on
clients made since. Workers that join later (``cluster.scale``, restarts) get
the plugin, so they start from the current versions; modules they import later
come from those texts too.

**Sessions.** Several sessions (notebooks, people) may share a cluster. Each
session has an identity (host, pid, a random token made once per process), and
its plugin is registered under a name of its own (``hotswap-<identity>``): a
new registration replaces the session's own plugin, never another session's.
On a worker, each session's versions, the generation it runs and its failures
are kept apart. The worker process is shared, though, and its modules are one:
the first session that sends a text of a module owns it there; another text of
that module from another session is refused (the worker keeps the owner's, the
refused session is told, naming the module and the worker). Imports come from
the union of the sessions' texts, each module from its owner's.

**Leaving.** A plugin stays on the scheduler after its client is gone, and
workers restarted later would start from its texts: the last a dead session
sent, not what is on disk. So ``%unload_ext`` and the session's exit (an
``atexit`` handler registered when a client is first followed, after
``distributed``'s own, so it runs before they close the clients) unregister the
session's plugin from every live client's scheduler, in bounded time. Its
``teardown`` on each worker drops the session's texts: imports come from disk
again. A new registration of the same plugin also tears the old one down, then
sets the new one up, so a worker drops the session only if its plugin is not
back by the next turn of its event loop. Each loading of hotswap in a session
is a new *epoch*: generations start afresh, never compared with an earlier one.

When a client appears (the first cell after it was made, or after loading), a
plugin with no versions yet is registered in a background thread: each worker
imports hotswap then, not at the first save, and no cell waits for it. The
first save waits for that registration to end before registering its own, so
the two cannot arrive out of order.

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

**Outcomes** (what failed on which worker) are asked with ``client.run`` in a
background thread after each registration, and said at a following cell, as
failures of local pools are (the save's own cell does not wait for them); a
worker still waiting for its running tasks is asked again at the next cell.
The last answers also give the status (``%hotswap``) its lines: which version
each client's workers run (``versions``), without asking anything then.

**Clients** are kept by object, weakly, and dropped once not running: a closed
client is forgotten, and a new one is followed, whatever its ``id``.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import logging
import os
import secrets
import socket
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from distributed import WorkerPlugin

from ._engine import ReloadStep
from ._report import describe_failure
from ._watch import Watchlist
from ._workers import adopt_imported_before, apply_versions

__all__ = ["HotswapPlugin", "follow_clients", "identity", "leave_clients", "plugin_name", "report", "versions"]

SETTLE_SECONDS = 0.25  # how long a registration waits for tasks running on a worker
LEAVE_SECONDS = 5.0  # how long unloading (or exiting) waits for the schedulers to drop the plugin
_NO_KEY = object()
logger = logging.getLogger(__name__)


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
    if _name(identity) not in getattr(worker, "plugins", {}):
        state.leave(identity)


def _name(identity: str) -> str:
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


# -- the session's side ------------------------------------------------------------------

_identity: tuple[int, str] | None = None  # (pid, identity): a process forked from the session is another


def identity() -> str:
    """This session, among all that may share a cluster: its host, its pid and a random token
    (pids repeat across machines and containers, and over time)."""
    global _identity
    if _identity is None or _identity[0] != os.getpid():
        _identity = (os.getpid(), f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}")
    return _identity[1]


def plugin_name() -> str:
    """The plugin's name on the scheduler: one per session, so sessions never replace each other's."""
    return _name(identity())


class _Followed:
    """What the session knows of one client. Kept by the client object, weakly, and dropped once the
    client is not running: a closed client is forgotten, and a new one (whatever its ``id``) is new."""

    def __init__(self) -> None:
        self.registered: int | None = None  # the generation registered on its workers
        self.background: threading.Thread | None = None  # its first registration, under way
        self.poll: _Poll | None = None  # the question to its workers about the last version sent
        self.heard: _Poll | None = None  # the last question answered: what the status shows

    def answer(self) -> _Poll | None:
        """The workers' latest answer (a question answered, not yet said, counts)."""
        poll = self.poll
        return poll if poll is not None and not poll.thread.is_alive() else self.heard


_clients: weakref.WeakKeyDictionary[Any, _Followed] = weakref.WeakKeyDictionary()
_said: set[str] = set()
_epoch = 0  # bumped each time the session leaves its clients: what it sends next starts afresh
_at_exit: int | None = None  # the process whose exit takes the plugin away (a fork is another)


def leave_clients() -> list[str]:
    """Take this session's plugin away from every live client's scheduler (``%unload_ext``, exit).

    Its workers drop the session's texts (imports come from disk again), and
    workers restarted later no longer start from them. Never raises and never
    takes much more than ``LEAVE_SECONDS`` (a scheduler gone, or hung, is given up on);
    returns what could not be done, for the caller to say.
    """
    global _epoch
    clients = [client for client in _live_clients() if client in _clients]
    under_way = [followed.background for followed in _clients.values() if followed.background is not None]
    _clients.clear()
    _said.clear()
    _epoch += 1
    deadline = time.monotonic() + LEAVE_SECONDS
    for thread in under_way:  # a first registration must not arrive after its removal
        thread.join(max(0.0, deadline - time.monotonic()))
    return _unregister_everywhere(clients, deadline)


def _unregister_everywhere(clients: list[Any], deadline: float) -> list[str]:
    """Unregister the plugin once per scheduler, all at once, each waited for until ``deadline``."""
    by_scheduler = {_address(client): client for client in reversed(clients)}
    problems: list[str] = []
    threads = {}
    for address, client in by_scheduler.items():
        thread = threading.Thread(target=_unregister, args=(client, address, problems), daemon=True)
        thread.start()
        threads[address] = thread
    for address, thread in threads.items():
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            problems.append(_not_removed(address, f"no answer in {LEAVE_SECONDS:g} s"))
    return problems


def _unregister(client: Any, address: str, problems: list[str]) -> None:
    try:
        client.unregister_worker_plugin(plugin_name())
    except ValueError:
        pass  # not there: its registration failed (said then), or the scheduler restarted since
    except Exception as error:  # noqa: BLE001 - unloading and exiting must not fail for a cluster
        problems.append(_not_removed(address, f"{type(error).__name__}: {error}"))


def _not_removed(address: str, why: str) -> str:
    return (
        f"hotswap: could not take this session's plugin away from the Dask scheduler {address} ({why}); "
        "its workers keep running this session's last versions, and workers that restart start from "
        "them, until the scheduler restarts"
    )


def _address(client: Any) -> str:
    return str(getattr(client.scheduler, "address", None) or "(no address)")


def _leave_at_exit_once() -> None:
    """At the session's exit, leave the clients. Registered after ``distributed`` was imported, so
    it runs before distributed's own exit handlers (last in, first out) close the clients."""
    global _at_exit
    if _at_exit != os.getpid():
        _at_exit = os.getpid()
        atexit.register(_leave_at_exit, os.getpid())


def _leave_at_exit(pid: int) -> None:
    if os.getpid() == pid:  # not in a child forked from the session, which ends with its handlers
        for problem in leave_clients():
            logger.warning(problem)
            print(problem, file=sys.stderr)


def follow_clients(generation: int, modules: dict[str, dict[str, str]]) -> list[str]:
    """Register the current versions on every live client that lacks them; returns problems to say.

    Cheap when nothing changed: one look at each live client. What the workers
    make of a version is asked in the background, and said at a later cell.
    """
    problems: list[str] = []
    _forget_closed()
    for client in _live_clients():
        followed = _clients.get(client)
        if followed is None:
            followed = _clients[client] = _Followed()
            _leave_at_exit_once()
        problems += _news_from(client, followed)
        if followed.registered == generation:
            continue
        followed.registered = generation
        if not modules:  # nothing to carry yet: workers import hotswap now, in the background
            thread = threading.Thread(target=_register_first, args=(client, followed, generation), daemon=True)
            followed.background = thread
            thread.start()
            continue
        problem = _register_after_first(client, followed, generation, modules)
        if problem:
            problems.append(problem)
    return problems


def _forget_closed() -> None:
    """Clients closed (or reconnecting: their scheduler may be another) are dropped from the books."""
    for client in list(_clients):
        if getattr(client, "status", "") != "running":
            _clients.pop(client, None)


def _live_clients() -> Iterator[Any]:
    """The session's running (not asynchronous) Dask clients, each checked when its turn comes."""
    clients = getattr(sys.modules.get("distributed.client"), "_global_clients", None)
    for client in list(clients.values()) if clients else ():
        if getattr(client, "status", "") == "running" and not getattr(client, "asynchronous", False):
            yield client


def _news_from(client: Any, followed: _Followed) -> list[str]:
    """What the client's workers said of the last version sent, once they answered."""
    poll = followed.poll
    if poll is None or poll.thread.is_alive():
        return []
    followed.poll, followed.heard = None, poll
    news = poll.news()
    if not poll.done:  # tasks still running there: ask again at the next cell
        followed.poll = _Poll(client, poll.generation)
    return news


def _register_first(client: Any, followed: _Followed, generation: int) -> None:
    """In the background: the plugin without versions, then the question (for the status)."""
    if _register(client, generation, {}) is None:
        followed.poll = _Poll(client, generation)


def _register_after_first(
    client: Any, followed: _Followed, generation: int, modules: dict[str, dict[str, str]]
) -> str | None:
    """Register a version once the client's first registration (if under way) ended, so the two
    cannot arrive out of order; then ask its workers, in the background, what they made of it."""
    earlier, followed.background = followed.background, None
    if earlier is not None:
        earlier.join()
    problem = _register(client, generation, modules)
    if problem is None:
        followed.poll = _Poll(client, generation)
    return problem


def _register(client: Any, generation: int, modules: dict[str, dict[str, str]]) -> str | None:
    try:
        client.register_plugin(HotswapPlugin(identity(), _epoch, generation, modules), name=plugin_name())
    except Exception as error:  # noqa: BLE001 - the session must not fail for a cluster
        return f"hotswap: could not send the new versions to Dask workers: {type(error).__name__}: {error}"
    return None


class _Poll:
    """Asks, in a background thread, what each worker of a client made of a version."""

    def __init__(self, client: Any, generation: int) -> None:
        self.generation = generation
        self.done = True
        self.replies: dict[str, Reply] = {}  # worker address -> its reply
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._ask, args=(client,), daemon=True)
        self.thread.start()

    def _ask(self, client: Any) -> None:
        try:
            self.replies = client.run(report, identity(), _epoch)
        except Exception as error:  # noqa: BLE001 - a worker may be gone
            self.error = error

    def news(self) -> list[str]:
        """Failures, each said once; ``done`` stays False while a worker has not applied the version."""
        if self.error is not None:
            return [f"hotswap: could not ask Dask workers whether they run the new versions: {self.error}"]
        problems = []
        for address, (applied, messages, _) in sorted(self.replies.items()):
            if applied < self.generation:
                self.done = False  # tasks still running there: the version applies when they end
                continue
            for message in messages:
                said = message.replace("hotswap:", f"hotswap: Dask worker {address}:", 1)
                if said not in _said:
                    _said.add(said)
                    problems.append(said)
        return problems


def versions(generation: int) -> list[str]:
    """For the status: one line per live client, which version of the session its workers run, from
    the last answer of its workers (asked in the background: the status never waits for a cluster).

    >>> versions(3)  # doctest: +SKIP
    ['Dask tcp://127.0.0.1:8786: 2 workers, 1 on version 3 (current), 1 on version 2 (waiting for running tasks)']
    """
    lines = []
    for client in _live_clients():
        followed = _clients.get(client)
        if followed is not None:
            lines.append(f"Dask {_address(client)}: {_describe(followed.answer(), generation)}")
    return lines


def _describe(poll: _Poll | None, generation: int) -> str:
    """``2 workers, 2 on version 3 (current)``, from one answer of a client's workers."""
    if poll is None:
        return "its workers have not answered yet"
    if poll.error is not None:
        return f"could not ask its workers ({type(poll.error).__name__}: {poll.error})"
    replies = poll.replies.values()
    counts = collections.Counter(applied for applied, _, _ in replies)
    parts = [f"{len(replies)} worker{'s' if len(replies) != 1 else ''}"]
    for applied, count in sorted(counts.items(), reverse=True):
        if applied == generation:
            parts.append(f"{count} on version {applied} (current)")
        elif poll.generation == generation:
            parts.append(f"{count} on version {applied} (waiting for running tasks)")
        else:
            parts.append(f"{count} on version {applied} (version {generation} on its way)")
    refused = sorted({name for _, _, names in replies for name in names})
    if refused:
        parts.append(f"another session's text of {', '.join(refused)} runs there")
    return ", ".join(parts)
