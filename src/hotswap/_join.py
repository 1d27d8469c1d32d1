"""Joining the session: the part of hotswap every worker process imports.

A pool worker joins the session's journal (``_journal``) at start-up
(``worker_init``, see ``_pools``) or, in a pool made before hotswap was loaded,
when it unpickles a task's ``Checkpoint``. Workers read tasks through
``ForkingPickler.loads``; the worker side wraps it: one read of the
memory-mapped generation counter (well under a microsecond) and, only when it
moved, the journal's index is read (once per version) and, if a module this
worker imported runs another text, the session's reload step runs here
(``_workers.Follower``): in place, state kept, transactional, dependents along.
Between tasks, never while one runs.

**As fast as without hotswap.** This module imports the standard library only:
a spawned worker that joins must start about as fast as one without hotswap.
Until a version must be applied to a module it imported, a worker loads its
modules as Python does (bytecode cache and all), except the modules of the
journal, whose text is the journal's (``_JournalFinder``: a worker never runs a
save the session did not apply); it notes which modules it imported, and the
reload step (``_workers``, ``_engine``) is imported only when an edit reaches one.
"""

from __future__ import annotations

import json
import marshal
import math
import mmap
import os
import pickle
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable
from importlib.machinery import ModuleSpec, SourceFileLoader
from importlib.util import MAGIC_NUMBER
from types import CodeType, ModuleType

from ._userfiles import is_user_file

TYPE_CHECKING = False  # (not ``typing``'s: a worker need not import ``typing`` to join)
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from ._engine import ReloadStep
    from ._workers import Follower

__all__ = [
    "COUNTER",
    "ENVIRONMENT",
    "INLINE",
    "Checkpoint",
    "FreshTask",
    "Joined",
    "JournalTexts",
    "catch_up_with",
    "digest_of",
    "leave_no_trace",
    "read_index",
    "join_then_work",
    "spec_after",
    "tell_internal",
    "worker_init",
    "write_atomically",
]

ENVIRONMENT = "HOTSWAP_JOURNAL"  # names the session's journal folder; child processes inherit it
COUNTER = struct.Struct("<Q")  # the journal's generation: bumped after each index written
WARM_UP_AFTER = 0.5  # seconds after a spawned worker joined: it imports the reload step (``warm_up``)

Modules = dict[str, dict[str, str]]  # the index: module -> its entry (path, digest, base, aimport)


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


class Joined:
    """In a worker process: the journal it follows, and what it imported since it last caught up.

    A forked worker inherits the session's reload step (its modules ran the
    session's versions at the fork); a spawned one makes its own when an edit
    first reaches a module it imported (``follower``).
    """

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.applied = 0
        self.texts = JournalTexts(folder)
        self.imported: list[str] = []  # modules imported since the follower last looked (by name)
        self.from_journal: dict[str, tuple[str, str, bytes]] = {}  # module -> (path, digest, text) it runs
        self.follower: Follower | None = None
        self._finder: _JournalFinder | None = None
        self._index: tuple[int, Modules] = (0, {})  # generation -> modules
        self._counter: mmap.mmap | None = None
        self._map_counter()
        self._mark = _Mark(folder)
        # when the reload step is imported without waiting for an edit (see ``warm_up``)
        self.warm_at = time.monotonic() + WARM_UP_AFTER if session_step is None else math.inf
        if session_step is None:  # spawned: what it imports from now on is noted (and the journal's served)
            self._finder = _JournalFinder(self)
            sys.meta_path.insert(0, self._finder)

    def _map_counter(self) -> mmap.mmap | None:
        """The session's counter, mapped; ``None`` while the journal cannot be read (its folder
        cleaned away): tasks run with the versions the worker has, and each looks again (one
        failed ``open``) until the session has made it again."""
        try:
            with open(os.path.join(self.folder, "generation"), "rb") as counter:
                self._counter = mmap.mmap(counter.fileno(), COUNTER.size, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            return None
        return self._counter

    def generation(self) -> int:
        counter = self._counter
        if counter is None:
            counter = self._map_counter()
            if counter is None:
                return self.applied
        generation: int = COUNTER.unpack_from(counter)[0]
        return generation

    def modules(self) -> Modules | None:
        """The index of the journal's current version, read once per version (``None``: unreadable)."""
        generation = self.generation()
        if generation == self._index[0]:
            return self._index[1]
        modules = read_index(self.folder)
        if modules is not None:
            self._index = (generation, modules)
        return modules

    def catch_up(self) -> None:
        """Bring every module this worker imported to the journal's versions, and their dependents
        along; nothing to import or run while no edit reached a module it imported."""
        generation = self.generation()
        if generation == self.applied:
            return
        modules = self.modules()
        if modules is None:
            return  # the journal is being made again: the next task looks again
        if self.follower is None and (session_step is not None or self._runs_another_text(modules)):
            self._make_follower()
        if self.follower is not None:
            for key, message in self.follower.catch_up(modules):
                _tell(self.folder, key, message)
        self.applied = generation
        self._mark.runs(generation)

    def _make_follower(self) -> Follower:
        from ._workers import Follower

        self.warm_at = math.inf
        self.follower = Follower(self, session_step)
        return self.follower

    def warm_up(self) -> None:
        """Between two tasks, once the worker has run a while: import the reload step and watch
        what the worker imported, so that the first edit costs what later ones do. Not at
        start-up (a worker must start as fast as without hotswap), and not in a thread of its own
        (its imports would race the task's: Python may then hand one a half-made module)."""
        try:
            if self.follower is None:
                self._make_follower().watch_imports(self.modules() or {})
            from . import _machinery

            _machinery.load()  # (what applies a version, imported by the first one otherwise)
        except Exception as error:  # noqa: BLE001 - the worker's boundary
            tell_internal(self.folder, error)
        self.warm_at = math.inf

    def _runs_another_text(self, modules: Modules) -> bool:
        """Does a module of the journal that this worker imported run another text than the journal's?"""
        for name, entry in modules.items():
            if name in sys.modules:
                imported = self.from_journal.get(name)
                if imported is None or imported[1] != entry["digest"]:
                    return True
        return False

    def catch_up_guarded(self) -> None:
        """``catch_up``; a task never fails because of hotswap, and an internal error is said once."""
        try:
            self.catch_up()
        except Exception as error:  # noqa: BLE001 - the worker's boundary
            self.applied = self.generation()  # the same error would come again for every task
            tell_internal(self.folder, error)


class _JournalFinder:
    """A meta-path finder placed first in a spawned worker: a module of the journal is loaded from
    the journal's text (checked against its digest); the others as without hotswap. Notes each
    module imported, for the follower to watch."""

    def __init__(self, joined: Joined) -> None:
        self.joined = joined
        self._inside = threading.local()  # (an import made while finding: left to the others)

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None) -> ModuleSpec | None:
        if getattr(self._inside, "finding", False):
            return None
        self._inside.finding = True
        try:
            return self._find(fullname, path, target)
        finally:
            self._inside.finding = False

    def _find(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None) -> ModuleSpec | None:
        spec = spec_after(self, fullname, path, target)
        if spec is None or type(spec.loader) is not SourceFileLoader or not isinstance(spec.origin, str):
            return spec
        self.joined.imported.append(fullname)
        entry = self._journal_entry(fullname, spec.origin)
        if entry is not None:
            data = self.joined.texts.text(entry)
            if data is not None and digest_of(data) == entry["digest"]:  # (else: the file, and the follower says so)
                self.joined.from_journal[fullname] = (spec.origin, entry["digest"], data)
                spec.loader = _JournalLoader(spec.loader, data, self.joined.texts.path_of(entry["digest"]))
        return spec

    def _journal_entry(self, name: str, path: str) -> dict[str, str] | None:
        """The journal's entry for this module, if it names it at this path and it is the session's."""
        entry = (self.joined.modules() or {}).get(name)
        if entry is None or entry["path"] != path or not (entry.get("aimport") or is_user_file(path)):
            return None
        return entry

    def invalidate_caches(self) -> None:
        pass


class _JournalLoader(SourceFileLoader):
    """Runs the journal's text of a module, then leaves no trace on it.

    Its bytecode is cached beside the text, by the text's digest (``texts/<digest>.<tag>``):
    the first worker that imports it compiles it, the others load it, as fast as from
    ``__pycache__`` (which describes the file, not this text: never used for it).
    """

    def __init__(self, original: SourceFileLoader, text: bytes, cache: str) -> None:
        super().__init__(original.name, original.path)
        self.original = original
        self.text = text
        self.cache = f"{cache}.{sys.implementation.cache_tag}"

    def get_code(self, fullname: str) -> CodeType:
        leave_no_trace(self, self.original)
        code = self._cached_code()
        if code is None:
            code = compile(self.text, self.path, "exec", dont_inherit=True)
            try:
                write_atomically(self.cache, MAGIC_NUMBER + marshal.dumps(code))
            except OSError:
                pass  # (the next worker compiles it too)
        return code

    def get_data(self, path: str) -> bytes:
        return self.text if path == self.path else super().get_data(path)

    def _cached_code(self) -> CodeType | None:
        try:
            with open(self.cache, "rb") as cached:
                data = cached.read()
            if data.startswith(MAGIC_NUMBER):
                code = marshal.loads(data[len(MAGIC_NUMBER) :])
                if isinstance(code, CodeType) and code.co_filename == self.path:
                    return code
        except (OSError, ValueError, EOFError, TypeError):
            pass
        return None


def leave_no_trace(loader: SourceFileLoader, original: SourceFileLoader) -> None:
    """A module being loaded by ``loader`` (hotswap's, standing in for ``original``) gets the
    original back: it looks exactly as a plain import makes it."""
    module = sys.modules.get(loader.name)
    if module is not None and getattr(module, "__loader__", None) is loader:
        module.__loader__ = original
        if module.__spec__ is not None:
            module.__spec__.loader = original


def read_index(folder: str) -> Modules | None:
    """The journal's index (module -> entry), or ``None`` while it cannot be read."""
    try:
        with open(os.path.join(folder, "index.json"), "rb") as index:
            modules: Modules = json.loads(index.read())["modules"]
    except (OSError, ValueError, KeyError):
        return None
    return modules


def spec_after(
    finder: object, fullname: str, path: Sequence[str] | None, target: ModuleType | None
) -> ModuleSpec | None:
    """The spec the finders after ``finder`` on ``sys.meta_path`` give (none if it left it)."""
    meta_path: list[object] = sys.meta_path  # type: ignore[assignment]  # (any finder is looked for)
    try:
        after = meta_path.index(finder) + 1
    except ValueError:
        return None
    for other in meta_path[after:]:
        find = getattr(other, "find_spec", None)
        if find is None:
            return None  # a legacy finder: let the import system take over
        spec: ModuleSpec | None = find(fullname, path, target)
        if spec is not None:
            return spec
    return None


try:  # (``hashlib`` would load OpenSSL first: a few ms at every start-up, for no use here)
    from _blake2 import blake2b
except ImportError:  # not CPython
    from hashlib import blake2b


def digest_of(data: bytes) -> str:
    """The digest that names a text, in the session and in every worker (here: a worker joins
    without ``_source``)."""
    return blake2b(data, digest_size=16).hexdigest()


class _Mark:
    """``joined/<pid>``: this worker joined (a pool made before loading then sends its tasks plain),
    and the version it runs (for ``%hotswap``). Taken away when the worker process ends."""

    def __init__(self, folder: str) -> None:
        self.path = os.path.join(folder, "joined", str(os.getpid()))
        self.descriptor: int | None = None
        self._open()

    def _open(self) -> None:
        try:
            self.descriptor = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
        except OSError:
            return  # the journal's folder is gone: the session makes it again at its next write
        import multiprocessing.util  # (a worker has it; the session imports this module without it)

        multiprocessing.util.Finalize(None, self._leave, exitpriority=0)

    def runs(self, generation: int) -> None:
        if self.descriptor is None:
            self._open()
        if self.descriptor is not None:
            try:
                os.pwrite(self.descriptor, COUNTER.pack(generation), 0)
            except OSError:
                pass

    def _leave(self) -> None:
        try:
            os.remove(self.path)
        except OSError:
            pass


class JournalTexts:
    """The texts of the journal's versions, by the digest the index names; ``INLINE``: in the entry
    (Dask ships the texts inside its plugin)."""

    def __init__(self, folder: str | None) -> None:
        self.folder = folder

    def text(self, entry: dict[str, str]) -> bytes | None:
        if self.folder is None:
            return entry["text"].encode("utf-8")
        return self._read(entry["digest"])

    def base(self, entry: dict[str, str]) -> bytes | None:
        """The text the module ran before its first reload in the session."""
        if self.folder is None:
            base = entry.get("base_text")
            return None if base is None else base.encode("utf-8")
        digest = entry.get("base")
        return None if digest is None else self._read(digest)

    def path_of(self, digest: str) -> str:
        assert self.folder is not None
        return os.path.join(self.folder, "texts", digest)

    def _read(self, digest: str) -> bytes | None:
        try:
            with open(self.path_of(digest), "rb") as text:
                return text.read()
        except OSError:
            return None


INLINE = JournalTexts(None)


def write_atomically(path: str, data: bytes) -> None:
    """Readers see the whole file or the one before, never half of it."""
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "wb") as out:
        out.write(data)
    os.replace(temporary, path)


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


_worker: Joined | None = None
session_step: ReloadStep | None = None  # set in the session; a forked worker inherits it
_plain_loads: Callable[..., Any] = pickle.loads  # ``ForkingPickler.loads`` before a worker joined


def _loads_up_to_date(data: Any, /, **kwargs: Any) -> Any:
    """``ForkingPickler.loads`` in a worker: catch up with the session before each task."""
    worker = _worker
    if worker is not None:
        if worker.generation() != worker.applied:
            worker.catch_up_guarded()
        elif worker.warm_at < time.monotonic():
            worker.warm_up()
    return _plain_loads(data, **kwargs)


def catch_up_with(folder: str) -> None:
    """Unpickling a ``Checkpoint`` in a worker of a pool made before loading: join, catch up."""
    worker = _worker
    if worker is None or worker.folder != folder:
        worker_init(folder, None)
    elif worker.generation() != worker.applied:
        worker.catch_up_guarded()


# (the session's pid, ``multiprocessing.pool.worker`` as it was): set in the session when it
# names ``join_then_work`` as the pool's worker; a forked worker inherits it
pool_worker_of_session: tuple[int, Callable[..., None]] | None = None


def join_then_work(folder: str, *args: Any, **kwargs: Any) -> None:
    """``multiprocessing.pool.worker`` while hotswap is loaded (see ``_pools``): join (in a
    process of its own), then work."""
    session = pool_worker_of_session
    if session is None:  # a spawned worker: its ``multiprocessing.pool.worker`` is the plain one
        import multiprocessing.pool

        work = getattr(multiprocessing.pool, "worker")  # noqa: B009
    else:
        work = session[1]
    if session is None or os.getpid() != session[0]:  # a ThreadPool's "workers" are threads of the session
        worker_init(folder, None)
    work(*args, **kwargs)


def worker_init(folder: str, initializer: Callable[..., object] | None, *initargs: Any) -> None:
    """A pool worker's initializer: install the worker side, then run the user's own. hotswap's
    part never raises: the worker must start, and run its tasks, whatever the journal's state."""
    global _worker, _plain_loads
    if _worker is None or _worker.folder != folder:
        try:
            from multiprocessing.reduction import ForkingPickler

            _worker = Joined(folder)
            if ForkingPickler.loads is not _loads_up_to_date:
                _plain_loads = ForkingPickler.loads
            ForkingPickler.loads = _loads_up_to_date
            _worker.catch_up_guarded()
        except Exception as error:  # noqa: BLE001 - the worker's boundary
            tell_internal(folder, error)
    if initializer is not None:
        initializer(*initargs)
