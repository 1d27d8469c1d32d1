"""Dask distributed, the session's side: every live client's workers follow the session, on any
machine (the worker's side: ``_dask_worker``).

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
from collections.abc import Iterator
from typing import Any

from ._dask_worker import HotswapPlugin, Reply, name_of, report

__all__ = ["follow_clients", "identity", "leave_clients", "plugin_name", "versions"]

LEAVE_SECONDS = 5.0  # how long unloading (or exiting) waits for the schedulers to drop the plugin
logger = logging.getLogger(__name__)


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
    return name_of(identity())


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
    """Unregister the plugin once per scheduler, in turn, each given what is left until
    ``deadline``. No thread of its own: at exit, Python 3.12 starts none."""
    by_scheduler = {_address(client): client for client in reversed(clients)}
    problems = []
    for address, client in by_scheduler.items():
        problem = _unregister(client, address, deadline - time.monotonic())
        if problem is not None:
            problems.append(problem)
    return problems


def _unregister(client: Any, address: str, seconds: float) -> str | None:
    """Unregister the plugin from one scheduler, waiting at most ``seconds`` (on the client's own
    event loop); what went wrong, if anything."""
    unregister = getattr(client, "_unregister_worker_plugin", None)  # (the public one cannot be timed)
    try:
        if seconds <= 0:
            raise TimeoutError
        if unregister is None:
            client.unregister_worker_plugin(plugin_name())
        else:
            client.sync(unregister, name=plugin_name(), nanny=None, callback_timeout=seconds)
    except ValueError:
        pass  # not there: its registration failed (said then), or the scheduler restarted since
    except (TimeoutError, asyncio.TimeoutError):
        return _not_removed(address, f"no answer in {LEAVE_SECONDS:g} s")
    except Exception as error:  # noqa: BLE001 - unloading and exiting must not fail for a cluster
        return _not_removed(address, f"{type(error).__name__}: {error}")
    return None


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
