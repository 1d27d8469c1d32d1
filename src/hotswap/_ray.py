"""Ray, the session's side: tasks and actor calls submitted after a reload run the new code, on
every worker of the session's Ray job, on any machine (the worker's side: ``_ray_worker``).

Imported only when the user's session has ``ray`` loaded. Ray has no way to run
something on all of a job's workers, and a worker runs whatever its process
imported; so the session changes what it sends, never what Ray does:

* **Texts** travel through Ray's own key-value store (in its control store, the
  GCS), under ``hotswap/<job>-<token>/``: each text once, by digest, and an index
  of the session's versions (module -> path, digest). Written before the first
  task stamped with a generation is submitted; texts no index of the last two
  names are deleted.
* **Tasks.** A remote function is wrapped once, the first time it is submitted
  while hotswap follows Ray (``Following``), and every submission carries the
  session's generation as one more keyword argument (``__hotswap_generation__``).
* **Actors.** Their classes, and any function, class or module of the user's
  code the session pickles for Ray, are pickled by name (Ray's ``cloudpickle``
  is asked first, through its ``reducer_override``): a worker joins before it
  imports them, and runs its own module's objects, which hotswap upgrades in
  place there; an actor keeps its state. Calls of an actor whose class was sent
  that way carry the generation too.

A remote function or actor class Ray exported before hotswap followed it is
exported again (a remote function, under a new identity) or left alone (an
actor: its calls carry nothing, and it keeps its code). A job configured to load
code from the workers' own files (``code_search_path``) is left alone.

**Outcomes.** A worker that caught up writes what it runs and what it could not
apply under ``<session>/worker/<worker id>``; after a cell that submitted tasks,
a background thread reads them, and failures are said at a later cell. The
status (``%hotswap``) shows the last answers.

**Leaving.** ``%unload_ext``, ``ray.shutdown()`` and the session's exit delete
the session's keys (in bounded time) and take the patches away: tasks submitted
then carry nothing, and workers keep the code they run.
"""

from __future__ import annotations

import atexit
import collections
import json
import logging
import os
import secrets
import sys
import threading
import weakref
from collections.abc import Callable, Iterable
from types import FunctionType, ModuleType
from typing import Any

from ._journal import Journal
from ._ray_worker import (
    KEYWORD,
    Following,
    Stamp,
    by_name,
    generation_of,
    stamp_of,
    token_of,
    unwrapped,
    with_stamp,
)
from ._ray_worker import in_ray as _is_connected
from ._ray_worker import kv_delete as _delete
from ._ray_worker import kv_get as _get
from ._ray_worker import kv_keys as _keys
from ._ray_worker import kv_put as _put
from ._watch import Watchlist

__all__ = ["follow_ray", "leave_ray", "versions"]

LEAVE_SECONDS = 5.0  # how long leaving waits for Ray's key-value store to delete the keys
logger = logging.getLogger(__name__)


class _Session:
    """What the session sent to the Ray job it is connected to."""

    def __init__(self, journal: Journal, watchlist: Watchlist) -> None:
        self.journal = journal
        self.watchlist = watchlist
        self.token = secrets.randbits(31)  # one per loading of hotswap: the workers start afresh
        self.lock = threading.Lock()
        self.job: Any = None  # Ray's (cluster, job) the key is for
        self.key: str | None = None
        self.published = -1  # the generation whose index is in the store
        self.named: tuple[set[str], set[str]] = (set(), set())  # digests the last two indexes name
        self.submitted = False  # stamped tasks submitted since the last question to the workers
        self.problems: list[str] = []  # what could not be done, said at the next cell
        self.poll: _Poll | None = None
        self.heard: _Poll | None = None
        self.said: set[str] = set()

    def stamp(self) -> Stamp | None:
        """What a task submitted now carries; the session's versions are in the store first.
        ``None``: Ray is not connected (or loads code from its own files): nothing to carry."""
        worker = _connected_worker()
        if worker is None or getattr(worker, "load_code_from_local", False):
            return None
        job, generation = worker.current_cluster_and_job, self.journal.generation
        if job != self.job or generation != self.published:
            with self.lock:
                try:
                    self._publish(worker, job, generation)
                except Exception as error:  # noqa: BLE001 - the task runs; the session is told (once)
                    problem = f"hotswap: could not send the new versions to Ray: {type(error).__name__}: {error}"
                    if problem not in self.problems:
                        self.problems.append(problem)
                    return None
        self.submitted = True
        return stamp_of(self.token, generation)

    def _publish(self, worker: Any, job: Any, generation: int) -> None:
        if job != self.job:  # connected to another job (ray.init again): a new key, from scratch
            self.job, self.key = job, f"{worker.current_job_id.hex()}-{self.token:08x}"
            self.published, self.named = -1, (set(), set())
            _leave_at_exit_once()
        if generation == self.published:
            return
        if self.published >= 0:
            _export_again(_sent_by_value)
        entries = dict(self.journal.texts)
        named = self._send_texts(entries)
        index = {name: {k: v for k, v in entry.items() if k not in ("text", "base_text")} for name, entry in entries.items()}
        _put(f"{self.key}/index", json.dumps({"generation": generation, "modules": index}).encode())
        for digest in self.named[0] - self.named[1] - named:  # named by neither of the last two
            _delete(f"{self.key}/text/{digest}")
        self.named = (self.named[1], named)
        self.published = generation

    def _send_texts(self, entries: dict[str, dict[str, str]]) -> set[str]:
        """Each text the index names (a version, and the text it replaced), once; their digests."""
        named = set()
        for entry in entries.values():
            for digest, text in ((entry["digest"], entry["text"]), (entry.get("base_digest"), entry.get("base_text"))):
                if digest is None or text is None or digest in named:
                    continue
                named.add(digest)
                if digest not in self.named[0] and digest not in self.named[1]:
                    _put(f"{self.key}/text/{digest}", text.encode("utf-8"))
        return named

    def name_of(self, obj: Any) -> tuple[str, str] | None:
        """(module, qualified name) of ``obj``, if it is a module the session watches, or a function
        or class of one not made inside a function (``""`` for a module)."""
        where = _where(obj)
        return where if where is not None and self.watchlist.get(where[0]) is not None else None

    def news(self) -> list[str]:
        """What could not be done, and failures the workers reported; a new question to them
        (in the background) when stamped tasks went out since the last."""
        problems, self.problems = self.problems, []
        poll = self.poll
        if poll is not None and not poll.thread.is_alive():
            self.poll, self.heard = None, poll
            problems += [message for message in poll.news() if message not in self.said]
            self.said.update(problems)
        if self.poll is None and self.submitted and self.key is not None and self.published > 0:
            self.submitted = False
            self.poll = _Poll(self.key)
        return problems

    def leave(self) -> str | None:
        """Delete the session's keys, waiting at most ``LEAVE_SECONDS``; what went wrong, if anything.
        (No thread of its own: at exit, Python 3.12 starts none. Ray's store takes the timeout.)"""
        if self.key is None or not _is_connected():
            return None
        key, self.key, self.job = self.key, None, None
        try:
            _delete(f"{key}/", prefix=True, timeout=LEAVE_SECONDS)
        except Exception as error:  # noqa: BLE001 - said by the caller; leaving must not fail
            return (
                f"hotswap: could not delete this session's versions from Ray's key-value store "
                f"({type(error).__name__}: {error}); they stay until the cluster stops"
            )
        return None


class _Poll:
    """Reads, in a background thread, what each worker of the session wrote it runs."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.reports: dict[str, dict[str, Any]] = {}
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._ask, daemon=True)
        self.thread.start()

    def _ask(self) -> None:
        try:
            for key in _keys(f"{self.key}/worker/"):
                data = _get(key)
                if data is not None:
                    self.reports[key.rsplit("/", 1)[-1]] = json.loads(data)
        except Exception as error:  # noqa: BLE001 - said at the next cell
            self.error = error

    def news(self) -> list[str]:
        if self.error is not None:
            return [f"hotswap: could not ask Ray's workers whether they run the new versions: {self.error}"]
        return [
            message.replace("hotswap:", f"hotswap: Ray worker {report.get('pid', worker)}:", 1)
            for worker, report in sorted(self.reports.items())
            for message in report.get("messages", ())
        ]

    def describe(self, generation: int) -> str:
        """``2 workers heard from, 2 on version 3 (current)``."""
        if self.error is not None:
            return f"could not ask its workers ({type(self.error).__name__}: {self.error})"
        counts = collections.Counter(report.get("applied", 0) for report in self.reports.values())
        total = len(self.reports)
        parts = [f"{total} worker{'s' if total != 1 else ''} heard from"]
        for applied, count in sorted(counts.items(), reverse=True):
            state = "current" if applied == generation else "catches up at its next task"
            parts.append(f"{count} on version {applied} ({state})")
        return ", ".join(parts)


_session: _Session | None = None


def follow_ray(journal: Journal, watchlist: Watchlist) -> list[str]:
    """At each cell: follow Ray from now on (once), and what to say. Cheap when no task went out."""
    global _session
    if _session is None or _session.journal is not journal:
        if _session is not None:
            _session.leave()
        _session = _Session(journal, watchlist)
        problem = _patch_ray()
        if problem:
            _session.problems.append(problem)
    return _session.news()


def leave_ray() -> list[str]:
    """Stop following Ray (``%unload_ext``): the session's keys deleted, Ray as it was."""
    global _session
    session, _session = _session, None
    _unpatch_ray()
    problem = session.leave() if session is not None else None
    return [problem] if problem else []


def versions(generation: int) -> list[str]:
    """For the status: which version the session's Ray workers run, from their last answer."""
    session = _session
    if session is None or session.key is None:
        return []
    job = session.key.split("-", 1)[0]
    poll = session.heard
    return [f"Ray job {job}: {poll.describe(generation) if poll else 'its workers have not answered yet'}"]


# -- what a session changes in Ray (in the session's process only) -----------------------------

_patched: list[tuple[Any, str, Any]] = []  # (owner, attribute, original), to put back
_following_classes: set[bytes] = set()  # actor classes sent by name: their calls carry the stamp
# Remote functions whose function Ray got by value too (for a worker that cannot import its module):
# such a worker keeps the value it unpickled, so each new version is exported again.
_sent_by_value: weakref.WeakSet[Any] = weakref.WeakSet()
_pickling = threading.local()  # references made while one actor class is pickled


def _patch_ray() -> str | None:
    """Ray's submissions carry the stamp from now on; what Ray lacks for it, if anything (its
    private APIs change: hotswap is tested with the versions its test extra names)."""
    if _patched:
        return None
    try:
        import ray
        import ray.cloudpickle as cloudpickle
        from ray._private.function_manager import FunctionActorManager
        from ray.actor import ActorHandle
        from ray.remote_function import RemoteFunction

        from . import _ray_worker

        FunctionActorManager.__dict__["_make_actor_method_executor"]  # noqa: B018 - (what workers wrap)
        _ray_worker.session_pid = os.getpid()
        _patch(RemoteFunction, "_remote", _remote_function_remote)
        _patch(ActorHandle, "_actor_method_call", _actor_method_call)
        _patch(FunctionActorManager, "export_actor_class", _export_actor_class)
        _patch(cloudpickle.CloudPickler, "reducer_override", _reducer_override)
        _patch(ray, "shutdown", _shutdown)
    except (ImportError, AttributeError, KeyError) as error:
        _unpatch_ray()
        version = getattr(sys.modules.get("ray"), "__version__", "?")
        return (
            f"hotswap: Ray {version} lacks what hotswap uses to follow it ({type(error).__name__}: {error}); "
            "Ray's workers keep the code they imported (hotswap is tested with Ray 2.60)"
        )
    return None


def _patch(owner: Any, attribute: str, make: Callable[[Any], Any]) -> None:
    original = owner.__dict__[attribute] if isinstance(owner, type) else getattr(owner, attribute)
    _patched.append((owner, attribute, original))
    setattr(owner, attribute, make(original))


def _unpatch_ray() -> None:
    while _patched:
        owner, attribute, original = _patched.pop()
        setattr(owner, attribute, original)


def _stamp() -> Stamp | None:
    session = _session
    return session.stamp() if session is not None else None


def _remote_function_remote(original: Callable[..., Any]) -> Callable[..., Any]:
    def _remote(self: Any, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        stamp = _stamp() if not self._is_cross_language and _follows(self._function) else None
        if stamp is not None:
            if not isinstance(self._function, Following):
                _wrap(self, token_of(stamp))
            if generation_of(stamp):  # (before the first edit, nothing to catch up with: no argument)
                kwargs = {**(kwargs or {}), KEYWORD: stamp}
        return original(self, args, kwargs, **options)

    return _remote


def _export_again(remote_functions: Iterable[Any]) -> None:
    """Each of these remote functions is exported again at its next submission, under a new identity
    (a worker that ran it by value unpickles the new version; the others find it by name, as before)."""
    for remote_function in list(remote_functions):
        with remote_function._inject_lock:
            _new_identity(remote_function)


def _new_identity(remote_function: Any) -> None:
    """(Under its lock.) Exported again at its next submission: workers keep what they loaded of
    the old identity, and load the new one afresh."""
    import uuid

    remote_function._last_export_cluster_and_job = None
    remote_function._uuid = uuid.uuid4()


def _follows(function: Any) -> bool:
    """Is this remote function the user's (defined in the session, or in a module it watches)?
    Those of libraries (Ray's own, Ray Data's...) are left as they are."""
    if isinstance(function, Following):
        return True
    module = getattr(function, "__module__", None)
    session = _session
    return module == "__main__" or (session is not None and isinstance(module, str) and session.watchlist.get(module) is not None)


def _wrap(remote_function: Any, token: int) -> None:
    """The function is exported wrapped from now on; exported already, it is exported again under a
    new identity (workers keep the old one's function, which takes no stamp)."""
    with remote_function._inject_lock:
        if isinstance(remote_function._function, Following):
            return
        remote_function._function = Following(remote_function._function, token)
        if remote_function._function_signature is not None:
            remote_function._function_signature = None
            _new_identity(remote_function)


def _actor_method_call(original: Callable[..., Any]) -> Callable[..., Any]:
    def call(self: Any, method_name: str, args: Any = None, kwargs: Any = None, *more: Any, **options: Any) -> Any:
        descriptor = self._ray_actor_creation_function_descriptor
        if (
            not method_name.startswith("__ray")
            and not self._ray_is_cross_language
            and descriptor.function_id.binary() in _following_classes
        ):
            stamp = _stamp()
            if stamp is not None and generation_of(stamp):
                _accept_stamp(self._ray_method_signatures, method_name)
                kwargs = {**(kwargs or {}), KEYWORD: stamp}
        return original(self, method_name, args, kwargs, *more, **options)

    return call


def _accept_stamp(signatures: dict[str, list[Any]], method_name: str) -> None:
    """Ray checks a call against the method's parameters as it submits it: the stamp is one."""
    import inspect

    parameters = signatures.get(method_name)
    if parameters is not None and all(p.name != KEYWORD for p in parameters):
        signatures[method_name] = list(with_stamp(inspect.Signature(parameters)).parameters.values())


def _export_actor_class(original: Callable[..., Any]) -> Callable[..., Any]:
    def export_actor_class(self: Any, Class: Any, descriptor: Any, method_names: Any) -> Any:
        if _stamp() is None:
            return original(self, Class, descriptor, method_names)
        _pickling.references = 0
        try:
            result = original(self, Class, descriptor, method_names)
            if _pickling.references:  # its workers join as they load it: its calls may carry stamps
                _following_classes.add(descriptor.function_id.binary())
        finally:
            _pickling.references = None
        return result

    return export_actor_class


def _reducer_override(original: Callable[..., Any]) -> Callable[..., Any]:
    def reducer_override(self: Any, obj: Any) -> Any:
        if isinstance(obj, (FunctionType, type, ModuleType)) and obj is not getattr(_pickling, "by_value", None):
            reference = _reference(obj)
            if reference is not None:
                return reference
        return original(self, obj)

    return reducer_override


def _reference(obj: Any) -> tuple[Callable[..., Any], tuple[int, str, str, bytes | None]] | None:
    """``obj`` pickled by name, if it is a module of the user's code the session watches, or a
    function or class defined at its top level (or in a class there). One that a ``@ray.remote``
    hides (Ray would send it by value) carries its value too: for a worker that cannot import
    its module (it ran without it before)."""
    session = _session
    if session is None or session.key is None:
        return None
    where = session.name_of(obj)
    if where is None:
        return None
    name, qualname = where
    found = _found_at(sys.modules.get(name), qualname)
    if found is not obj and (found is None or unwrapped(found) is not obj):
        return None
    if getattr(_pickling, "references", None) is not None:
        _pickling.references += 1
    if found is obj:
        return by_name, (session.token, name, qualname, None)
    if type(found).__name__ == "RemoteFunction":
        _sent_by_value.add(found)
    return by_name, (session.token, name, qualname, _by_value(obj))


def _where(obj: Any) -> tuple[str, str] | None:
    if isinstance(obj, ModuleType):
        return obj.__name__, ""
    name, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not isinstance(name, str) or not isinstance(qualname, str) or "<" in qualname:
        return None
    return name, qualname


def _found_at(module: ModuleType | None, qualname: str) -> Any:
    found: Any = module
    for part in qualname.split(".") if qualname else ():
        found = getattr(found, part, None)
    return found


def _by_value(obj: Any) -> bytes:
    """``obj`` pickled as Ray's ``cloudpickle`` would without hotswap."""
    import ray.cloudpickle as cloudpickle

    outer, _pickling.by_value = getattr(_pickling, "by_value", None), obj
    try:
        data: bytes = cloudpickle.dumps(obj)
    finally:
        _pickling.by_value = outer
    return data


def _shutdown(original: Callable[..., Any]) -> Callable[..., Any]:
    def shutdown(*args: Any, **kwargs: Any) -> Any:
        session = _session
        problem = session.leave() if session is not None else None
        if problem:
            logger.warning(problem)
        return original(*args, **kwargs)

    return shutdown


# -- Ray, as the session's process sees it -----------------------------------------------------


def _connected_worker() -> Any:
    """Ray's driver worker, once connected (``ray.init``, or the first task's automatic one);
    ``None`` through Ray Client (``ray://``: the driver is on the cluster, not followed)."""
    ray = sys.modules.get("ray")
    if ray is None or _client_mode():
        return None
    if not ray.is_initialized():
        try:
            from ray._private.auto_init_hook import auto_init_ray

            auto_init_ray()
        except Exception:  # noqa: BLE001 - Ray says why itself, at the task
            return None
        if not ray.is_initialized():
            return None
    return ray._private.worker.global_worker


def _client_mode() -> bool:
    hook = sys.modules.get("ray._private.client_mode_hook")
    should_convert = getattr(hook, "client_mode_should_convert", None)
    return bool(should_convert()) if should_convert is not None else False


_at_exit: int | None = None


def _leave_at_exit_once() -> None:
    """At the session's exit, delete its keys: registered once connected (after Ray's own exit
    handler, so it runs before Ray disconnects)."""
    global _at_exit
    if _at_exit != os.getpid():
        _at_exit = os.getpid()
        atexit.register(_leave_at_exit, os.getpid())


def _leave_at_exit(pid: int) -> None:
    session = _session
    if os.getpid() == pid and session is not None:
        problem = session.leave()
        if problem:
            print(problem, file=sys.stderr)
