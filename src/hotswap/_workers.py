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
import multiprocessing.util
import os
import struct
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping
from multiprocessing.reduction import ForkingPickler
from types import ModuleType
from typing import Any

from ._adopt import runs_this_text
from ._engine import ReloadStep
from ._outcomes import Failure
from ._report import describe_failure
from ._source import SourceVersion, digest_of
from ._watch import Watchlist, real_path, source_path

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
    "write_atomically",
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
    The index is read once per version (``_index``), not at each import.
    """

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.applied = 0
        self.adopted = False  # the modules it imported before joining are watched
        self.texts = JournalTexts(folder)
        self._index: tuple[int, dict[str, dict[str, str]]] = (0, {})  # generation -> modules
        self._imports: tuple[int, _JournalImports] = (0, _JournalImports({}, self.texts))
        if session_step is not None:
            self.step = session_step
            self.adopted = True  # the session's, as they were at the fork
        else:
            self.step = ReloadStep(Watchlist(events=False))  # its graph: from the texts imported
            self.step.watchlist.overrides = self._journal_imports
            self.step.watchlist.start()
        self._counter: mmap.mmap | None = None
        self._map_counter()
        self._mark = _Mark(folder)

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
        counter = self._counter or self._map_counter()
        if counter is None:
            return self.applied
        generation: int = COUNTER.unpack_from(counter)[0]
        return generation

    def _modules(self) -> dict[str, dict[str, str]] | None:
        """The index of the journal's current version, read once per version (``None``: unreadable)."""
        generation = self.generation()
        if generation == self._index[0]:
            return self._index[1]
        try:
            with open(os.path.join(self.folder, "index.json"), "rb") as index:
                modules: dict[str, dict[str, str]] = json.loads(index.read())["modules"]
        except (OSError, ValueError, KeyError):
            return None
        self._index = (generation, modules)
        return modules

    def _journal_imports(self) -> Mapping[str, bytes]:
        """Path -> text of the modules of the journal, for the imports of this worker."""
        modules = self._modules() or {}
        if self._imports[0] != self._index[0]:
            trusted = {e["path"]: e for name, e in modules.items() if self._refusal(name, e, None) is None}
            self._imports = (self._index[0], _JournalImports(trusted, self.texts))
        return self._imports[1]

    def _refusal(self, name: str, entry: dict[str, str], running_at: str | None) -> str | None:
        return refusal(name, entry, self.step.watchlist, running_at)

    def catch_up(self) -> None:
        """Bring every module this worker imported to the journal's versions, and their dependents
        along: the session's reload step, run here."""
        generation = self.generation()
        if generation == self.applied:
            return
        modules = self._modules()
        if modules is None:
            return  # the journal is being made again: the next task looks again
        if not self.adopted:
            adopt_imported_before(self.step.watchlist, modules)
            self.adopted = True
        for failure, key in apply_versions(modules, self.step, self.texts):
            self._tell(f"{failure.module}-{key}", describe_failure(failure))
        self.applied = generation
        self._mark.runs(generation)

    def catch_up_guarded(self) -> None:
        """``catch_up``; a task never fails because of hotswap, and an internal error is said once."""
        try:
            self.catch_up()
        except Exception as error:  # noqa: BLE001 - the worker's boundary
            self.applied = self.generation()  # the same error would come again for every task
            tell_internal(self.folder, error)

    def _tell(self, key: str, message: str) -> None:
        _tell(self.folder, key, message)


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
    """The texts of the journal's versions, by the digest the index names; ``INLINE``: in the entry."""

    def __init__(self, folder: str | None) -> None:
        self.folder = folder

    def text(self, entry: dict[str, str]) -> bytes | None:
        if self.folder is None:
            return entry["text"].encode("utf-8")
        return self._read(entry["digest"])

    def base(self, entry: dict[str, str]) -> bytes | None:
        if self.folder is None:
            base = entry.get("base_text")
            return None if base is None else base.encode("utf-8")
        digest = entry.get("base")
        return None if digest is None else self._read(digest)

    def _read(self, digest: str) -> bytes | None:
        assert self.folder is not None
        try:
            with open(os.path.join(self.folder, "texts", digest), "rb") as text:
                return text.read()
        except OSError:
            return None


INLINE = JournalTexts(None)  # Dask ships the texts inside the plugin


class _JournalImports(Mapping[str, bytes]):
    """Path -> a module's text in the journal, read when the module is imported (and checked
    against its digest: a text that does not match is not used, and the file is imported)."""

    def __init__(self, entries: dict[str, dict[str, str]], texts: JournalTexts) -> None:
        self._entries = entries
        self._texts = texts

    def __getitem__(self, path: str) -> bytes:
        entry = self._entries[path]
        data = self._texts.text(entry)
        if data is None or digest_of(data) != entry["digest"]:
            raise KeyError(path)
        return data

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


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


def apply_versions(
    modules: dict[str, dict[str, str]], step: ReloadStep, texts: JournalTexts = INLINE
) -> list[tuple[Failure, str]]:
    """In a worker: bring each imported module to its entry's text (path, digest, text), and
    make its dependents follow, with the same reload step as the session: in place, state kept,
    transactional, dependencies first. Returns the failures (a version refused is one), each
    with a key naming the version that failed (the digest of its text, for a module of the journal)."""
    versions, refused = {}, []
    for name, entry in modules.items():
        try:
            version = _version_to_apply(name, entry, step.watchlist, texts)
        except _Refused as refusal:
            refused.append((refusal.failure, entry["digest"][:12]))
            continue
        if version is not None:
            versions[name] = version
    if not versions:
        return refused
    outcomes = step.run(versions, followers=False).outcomes
    failed = [(o, _failed_version(name, modules, step.watchlist)) for name, o in outcomes.items() if isinstance(o, Failure)]
    return refused + failed


def _failed_version(name: str, modules: dict[str, dict[str, str]], watchlist: Watchlist) -> str:
    """A key for the version that failed: the journal's digest of its text, or (a dependent
    whose own text did not change) the digest of the text it runs."""
    if name in modules:
        return modules[name]["digest"][:12]
    watched = watchlist.get(name)
    return watched.running.digest[:12] if watched is not None else "unknown"


class _Refused(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.error)
        self.failure = failure


def refusal(name: str, entry: dict[str, str], watchlist: Watchlist, running_at: str | None) -> str | None:
    """Why a worker must not apply this entry, if it must not: it names a module the session does
    not watch (not the user's code, and not marked with ``%aimport``), or one this worker runs
    from another file."""
    path = entry["path"]
    if not (entry.get("aimport") or watchlist.is_user(path)):
        return f"{name} is not one of the session's modules ({path} is not the user's code)"
    if running_at is not None and running_at != path and real_path(running_at) != real_path(path):
        return f"{name} runs {running_at} in this worker, the session's version is of {path}"
    return None


def _version_to_apply(
    name: str, entry: dict[str, str], watchlist: Watchlist, texts: JournalTexts
) -> SourceVersion | None:
    """The journal's text of an imported module, if it does not run it yet; the module is watched
    from here on, with the text it runs (unknown: it runs the new text whole). Raises ``_Refused``
    for an entry the session cannot have meant (see ``refusal``) or a text that is not its digest's."""
    module = sys.modules.get(name)
    if module is None:
        return None
    watched = watchlist.get(name)
    problem = refusal(name, entry, watchlist, watched.path if watched is not None else source_path(module))
    if problem is not None:
        raise _Refused(Failure(name, entry["path"], None, f"not applied: {problem}"))
    if watched is None:
        running = _running_text(module, entry, texts)
        if running is not None:
            watchlist.record(name, running)
            watched = watchlist.get(name)
    if watched is not None and watched.running.digest == entry["digest"]:
        return None
    data = texts.text(entry)
    if data is None or digest_of(data) != entry["digest"]:
        why = "its text is missing" if data is None else "its text does not match its digest"
        raise _Refused(Failure(name, entry["path"], None, f"not applied: the journal's version of {name}: {why}"))
    version = SourceVersion(entry["path"], data, entry["digest"], (0, 0, 0, 0), 0)
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


def _running_text(module: Any, entry: dict[str, str], texts: JournalTexts) -> SourceVersion | None:
    """The text a module imported before this worker joined runs: the session's base text of it, or
    its file (asked of its code), else unknown (it is re-run whole from the new version)."""
    base = texts.base(entry)
    if base is not None:
        version = SourceVersion(entry["path"], base, digest_of(base), (0, 0, 0, 0), 0)
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
    """A pool worker's initializer: install the worker side, then run the user's own. hotswap's
    part never raises: the worker must start, and run its tasks, whatever the journal's state."""
    global _worker
    if _worker is None or _worker.folder != folder:
        try:
            _worker = _Worker(folder)
            ForkingPickler.loads = _loads_up_to_date
            _worker.catch_up_guarded()
        except Exception as error:  # noqa: BLE001 - the worker's boundary
            tell_internal(folder, error)
    if initializer is not None:
        initializer(*initargs)
