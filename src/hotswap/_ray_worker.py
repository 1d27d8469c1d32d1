"""Ray, on a worker: the session's versions applied before each task that carries a newer one.

What the session sends (see ``_ray``) reaches a worker three ways, all through
pickles Ray makes anyway:

* A remote function is exported wrapped in ``Following``. Unpickling it *joins*
  first (``join``: the session's texts are fetched from Ray's key-value store and
  become what this process imports for those modules), then unpickles the
  function itself. Each call carries a *stamp* (one integer: the session's
  token and its generation) as one more keyword argument: a worker behind that generation applies the
  session's versions first (``catch_up``), then runs the task.
* A function, class or module of the user's code the session pickles (an actor's
  class, an argument) is pickled by name (``by_name``), so that a worker joins
  before importing it and runs the module's own objects: what hotswap upgrades
  in place there. Behind a ``@ray.remote`` at module level, the function or
  class it wraps is meant.
* An actor's method calls carry the stamp too; on a worker that joined, the
  executors Ray makes for an actor's methods take it out and catch up first.

A task never sees its code change while it runs: a worker catches up only as a
task starts, and Ray runs one task at a time in a worker (an actor with
``max_concurrency`` above one may have another call running meanwhile). The
reload step is the session's (``_workers.apply_versions``): in place, state
kept, transactional, dependents along. What it could not apply is written where
the session reads it (``<session>/worker/<worker id>``) and said at a later cell.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import os
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from ._join import JournalTexts

__all__ = [
    "KEYWORD",
    "NAMESPACE",
    "Following",
    "Stamp",
    "by_name",
    "catch_up",
    "generation_of",
    "in_ray",
    "join",
    "kv_delete",
    "kv_get",
    "kv_keys",
    "kv_put",
    "stamp_of",
    "token_of",
    "unwrapped",
    "with_stamp",
]

KEYWORD = "__hotswap_generation__"  # the stamp's keyword argument, in every call the session makes
NAMESPACE = "hotswap"  # the namespace of hotswap's keys in Ray's key-value store

# A task's stamp: the session's token (a random 31-bit number, one per loading of hotswap) in the
# high bits, the generation it was submitted at in the low 32. One integer: the cheapest argument
# Ray carries (a tuple costs about 35 µs more per task to submit).
Stamp = int
_LOW = 32


def stamp_of(token: int, generation: int) -> Stamp:
    return token << _LOW | generation


def token_of(stamp: Stamp) -> int:
    return stamp >> _LOW


def generation_of(stamp: Stamp) -> int:
    return stamp & ((1 << _LOW) - 1)


session_pid: int | None = None  # set in the session's own process: there, nothing to join


class Following:
    """A remote function as Ray exports it: joins the session when unpickled, catches up before
    each call. Its signature is the function's and the stamp's keyword (Ray checks calls against
    it when they are submitted: a wrong call is still refused there)."""

    def __init__(self, function: Callable[..., Any], token: int) -> None:
        self.token = token
        self._wrap(function)

    def _wrap(self, function: Callable[..., Any]) -> None:
        self.function = function
        functools.update_wrapper(self, function)
        self.__signature__ = with_stamp(inspect.signature(function))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        _take_stamp(kwargs)
        return self.function(*args, **kwargs)

    def __reduce__(self) -> tuple[Any, ...]:
        # The session is joined (``_joined``) before the function is unpickled (the state):
        # a function of the user's modules is then imported from the session's texts.
        return (_joined, (self.token,), (self.token, self.function))

    def __setstate__(self, state: tuple[int, Callable[..., Any]]) -> None:
        self.token = state[0]
        self._wrap(state[1])


def with_stamp(signature: inspect.Signature) -> inspect.Signature:
    """``signature`` with the stamp's keyword-only parameter (before ``**kwargs``, if any)."""
    parameters = list(signature.parameters.values())
    if any(parameter.name == KEYWORD for parameter in parameters):
        return signature
    stamp = inspect.Parameter(KEYWORD, inspect.Parameter.KEYWORD_ONLY, default=None)
    at = next((i for i, p in enumerate(parameters) if p.kind is p.VAR_KEYWORD), len(parameters))
    return signature.replace(parameters=[*parameters[:at], stamp, *parameters[at:]])


def _joined(token: int) -> Following:
    join(token)
    return Following.__new__(Following)


def by_name(token: int, module: str, qualname: str, value: bytes | None = None) -> Any:
    """A function, class or module of the user's code, as this process has it (after joining);
    ``value``, the object pickled by value, where its module cannot be imported here."""
    join(token)
    try:
        found: Any = importlib.import_module(module)
    except ImportError:
        if value is None:
            raise
        import pickle

        return pickle.loads(value)  # noqa: S301 - what Ray itself would have unpickled
    for part in qualname.split(".") if qualname else ():
        found = getattr(found, part)
    return unwrapped(found)


def unwrapped(found: Any) -> Any:
    """What a ``@ray.remote`` at module level wraps (a function, a class), else ``found``."""
    meta = getattr(found, "__ray_metadata__", None)  # an actor class
    if meta is not None and isinstance(getattr(found, "__dict__", None), dict):
        original = getattr(getattr(meta, "modified_class", None), "__ray_actor_class__", None)
        return original if original is not None else found
    function = getattr(found, "_function", None)  # a remote function
    if function is not None and type(found).__name__ == "RemoteFunction":
        return function.function if isinstance(function, Following) else function
    return found


# -- this process, following one session ------------------------------------------------------


class _Texts(JournalTexts):
    """The session's texts, by digest, fetched once each from Ray's key-value store."""

    def __init__(self, key: str) -> None:
        super().__init__(None)
        self.key = key
        self.fetched: dict[str, bytes] = {}

    def fetch(self, digest: str) -> bytes | None:
        data = self.fetched.get(digest)
        if data is None:
            data = kv_get(f"{self.key}/text/{digest}")
            if data is not None:
                self.fetched[digest] = data
        return data

    def text(self, entry: dict[str, str]) -> bytes | None:
        return self.fetch(entry["digest"])

    def base(self, entry: dict[str, str]) -> bytes | None:
        digest = entry.get("base_digest")
        return None if digest is None else self.fetch(digest)

    def keep_only(self, entries: Iterable[dict[str, str]]) -> None:
        """Forget the texts the index no longer names (a big module saved often: one copy kept)."""
        named = {digest for entry in entries for digest in (entry["digest"], entry.get("base_digest")) if digest}
        self.fetched = {digest: data for digest, data in self.fetched.items() if digest in named}


class _Follower:
    """One worker process following one session: its reload step, the generation it runs, and
    what it imports in place of the files (the session's texts)."""

    def __init__(self, token: int) -> None:
        import ray

        from ._engine import ReloadStep
        from ._watch import Watchlist

        self.token = token
        self.key = key = f"{ray.get_runtime_context().get_job_id()}-{token:08x}"  # as the session names it
        self.applied = -1  # the session's generation this process runs (-1: not looked yet)
        self.texts = _Texts(key)
        self.imports: dict[str, bytes] = {}  # path -> the session's text, for modules imported later
        self.step = ReloadStep(Watchlist(events=False))
        self.step.watchlist.overrides = lambda: self.imports
        self.step.watchlist.start()
        self.adopted = False  # the user's modules imported before joining are watched
        self.messages: list[str] = []

    def catch_up(self, generation: int) -> None:
        """Apply the session's newest versions, if newer than what runs here (at least
        ``generation``: the session writes them before it submits a task stamped with it)."""
        from ._report import describe_failure
        from ._workers import adopt_imported_before, apply_versions

        index = kv_get(f"{self.key}/index")
        if index is None:
            self.applied = max(self.applied, 0)
            return
        published = json.loads(index)
        if published["generation"] <= self.applied:
            return
        modules: dict[str, dict[str, str]] = published["modules"]
        self.imports = {entry["path"]: data for entry in modules.values() if (data := self.texts.text(entry)) is not None}
        if not self.adopted:
            adopt_imported_before(self.step.watchlist, modules)
            self.adopted = True
        failures = apply_versions(modules, self.step, self.texts)
        self.messages = [describe_failure(failure) for failure, _ in failures]
        self.applied = published["generation"]
        self.texts.keep_only(modules.values())
        self._report()

    def _report(self) -> None:
        """What this worker runs, for the session to say (and show in its status)."""
        import ray

        worker = ray.get_runtime_context().get_worker_id()
        report = {"applied": self.applied, "messages": self.messages, "pid": os.getpid()}
        kv_put(f"{self.key}/worker/{worker}", json.dumps(report).encode())

    def leave(self) -> None:
        self.imports = {}
        self.step.watchlist.stop()


_lock = threading.RLock()
_follower: _Follower | None = None


def join(token: int) -> None:
    """This process follows the session ``token`` from now on (nothing to do in the session itself,
    nor in a process that is no Ray worker: one that unpickles what the session pickled for Ray)."""
    follower = _follower
    if (follower is not None and follower.token == token) or not _follows_here():
        return
    with _lock:
        try:
            _join(token)
        except Exception as error:  # noqa: BLE001 - imports then come from the files
            _failed(token, 0, error)


def catch_up(stamp: Stamp) -> None:
    """Before a task stamped ``stamp``: bring this process to at least its generation. Never
    raises (the task then runs the code this process has, and the session is told)."""
    token, generation = token_of(stamp), generation_of(stamp)
    follower = _follower
    if (follower is not None and follower.token == token and follower.applied >= generation) or not _follows_here():
        return
    with _lock:
        try:
            _join(token)
            assert _follower is not None
            if _follower.applied < generation:
                _follower.catch_up(generation)
        except Exception as error:  # noqa: BLE001 - a task must not fail because hotswap did
            _failed(token, generation, error)


def _take_stamp(kwargs: dict[str, Any]) -> None:
    """A call's stamp, taken out of its keyword arguments: this process catches up first."""
    stamp = kwargs.pop(KEYWORD, None)
    if stamp is not None:
        catch_up(stamp)


def _follows_here() -> bool:
    """Is this a Ray worker, not the session's own process?"""
    return os.getpid() != session_pid and in_ray()


def _join(token: int) -> None:
    global _follower
    if _follower is not None and _follower.token == token:
        return
    if _follower is not None:
        _follower.leave()  # hotswap was loaded again in the session: another token, from scratch
        _follower = None
    _follow_actor_calls()
    _follower = _Follower(token)
    _follower.catch_up(0)


def _failed(token: int, generation: int, error: BaseException) -> None:
    follower = _follower
    if follower is None or follower.token != token:
        return
    follower.messages = [f"hotswap: could not bring this worker to the session's versions: {type(error).__name__}: {error}"]
    follower.applied = max(follower.applied, generation)  # not tried again before a newer version
    try:
        follower._report()
    except Exception:  # noqa: BLE001, S110 - the store is unreachable: nothing to tell it
        pass


# -- actors -----------------------------------------------------------------------------------

_executors_patched = False


def _follow_actor_calls() -> None:
    """From now on, the executors Ray makes for an actor's methods (as its class is loaded, after
    it was unpickled: after joining) take the stamp out of each call and catch up first."""
    global _executors_patched
    if _executors_patched:
        return
    from ray._private.function_manager import FunctionActorManager

    original = FunctionActorManager._make_actor_method_executor

    def _make_actor_method_executor(self: Any, method_name: str, method: Callable[..., Any]) -> Any:
        executor = original(self, method_name, method)
        return executor if method_name.startswith("__ray") else _stamped(executor)

    FunctionActorManager._make_actor_method_executor = _make_actor_method_executor
    _executors_patched = True


def _stamped(executor: Callable[..., Any]) -> Callable[..., Any]:
    def actor_method_executor(__ray_actor: Any, *args: Any, **kwargs: Any) -> Any:
        _take_stamp(kwargs)
        return executor(__ray_actor, *args, **kwargs)

    actor_method_executor.name = executor.name  # type: ignore[attr-defined]  # (what Ray reads)
    actor_method_executor.method = executor.method  # type: ignore[attr-defined]
    return actor_method_executor


# -- Ray: its connection and its key-value store ------------------------------------------------


def in_ray() -> bool:
    """Is Ray connected in this process (never connecting it)?"""
    ray = sys.modules.get("ray")
    return ray is not None and bool(ray.is_initialized())


def kv_get(key: str) -> bytes | None:
    from ray.experimental.internal_kv import _internal_kv_get

    value: bytes | None = _internal_kv_get(key, namespace=NAMESPACE)
    return value


def kv_put(key: str, value: bytes) -> None:
    from ray.experimental.internal_kv import _internal_kv_put

    _internal_kv_put(key, value, namespace=NAMESPACE)


def kv_keys(prefix: str) -> list[str]:
    from ray.experimental.internal_kv import _internal_kv_list

    return [key.decode() for key in _internal_kv_list(prefix, namespace=NAMESPACE)]


def kv_delete(key: str, *, prefix: bool = False, timeout: float | None = None) -> None:
    """Delete ``key`` (every key it begins, with ``prefix``), waiting at most ``timeout``."""
    from ray.experimental import internal_kv

    internal_kv.global_gcs_client.internal_kv_del(key.encode(), prefix, NAMESPACE.encode(), timeout=timeout)
