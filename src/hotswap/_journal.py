"""The journal: what the session's modules run, for worker processes to catch up with.

A temporary folder, named in ``HOTSWAP_JOURNAL`` (child processes inherit it):

- ``index.json``: for every module changed (or broken) since hotswap started,
  its path, whether the session watches it only because it was asked to
  (``%aimport``, ``include_paths``), the digest of the text of its last good
  version, and that of the text it ran before its first reload (its *base*: a
  worker that imported the module before the edit reached it runs that text).
  A few hundred bytes per module: a worker reads it once per version, not
  once per import.
- ``texts/<digest>``: each text, once, named by its content; written once,
  dropped when no index of the last two versions names it (with its bytecode,
  ``<digest>.<tag>``, which the first worker to import it writes).
- ``generation``: an 8-byte counter the session bumps after writing the index;
  workers map it to memory and read it before each task.
- ``joined/<pid>``: a worker that joined, holding the version it runs (for
  ``%hotswap``); it takes it away when it ends.
- ``failures/``: a worker that could not apply a version writes a note there;
  the session says it once, naming the worker.

Source text travels, not paths, and a broken save never reaches it. Nothing is
written until a pool or an executor is made (or found at load): a session
without workers pays no file write per edit. A write that fails (a full or
read-only disk, the folder cleaned away) is said once, never raises into the
user's code, and is tried again at each cell until it works: workers then
catch up (the session keeps the counter file its workers map open, so even a
folder cleaned away and made again reaches them).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from collections.abc import Callable

try:
    import fcntl
except ImportError:  # Windows: journals of killed sessions are not swept
    fcntl = None  # type: ignore[assignment]

from ._join import COUNTER, ENVIRONMENT, read_index, write_atomically
from ._pools import join_pools, pool_versions
from ._source import SourceVersion
from ._userfiles import is_user_file
from ._watch import Watchlist

__all__ = ["Journal"]


class Journal:
    """The session's side: what workers must run, written after each reload."""

    def __init__(self) -> None:
        self.folder = _process_folder()
        self._texts: dict[str, dict[str, str]] = {}
        self._bases: dict[str, SourceVersion] = {}  # module -> the text it ran before its first reload
        self._counters: list[int] = []  # the generation files workers may map (see _bump)
        counter = os.open(self._path("generation"), os.O_RDWR)
        self._counters.append(counter)
        self.generation = COUNTER.unpack(os.pread(counter, COUNTER.size, 0))[0]
        self._failures_seen = set(_listing(self._path("failures")))  # said by an earlier load
        self._failures_mtime = 0
        self._restore: list[Callable[[], None]] = []
        self._watchlist: Watchlist | None = None
        self._readers = False  # a pool or executor was made or found: workers may read the index
        self._unwritten = False  # versions published since the index was last written
        self._cannot_write: str | None = None  # why the last write failed (said once)
        self._news: list[str] = []  # what the journal itself has to say at the next cell
        self._named: tuple[set[str], set[str]] = (set(), set())  # texts the last two indexes name

    def _path(self, *names: str) -> str:
        return os.path.join(self.folder, *names)

    def start(self, watchlist: Watchlist) -> None:
        """Name the journal for child processes, and join pools created from now on."""
        os.environ[ENVIRONMENT] = self.folder
        self._watchlist = watchlist
        self._texts = self._carried_over(watchlist)
        self._restore = join_pools(self.folder, self.readers_come, watchlist)

    def _carried_over(self, watchlist: Watchlist) -> dict[str, dict[str, str]]:
        """The versions an earlier load of hotswap in this process published that the session
        still runs (pools that outlive a reload keep following them; new workers start from them).
        The rest is left out: written over at the next write."""
        modules = read_index(self.folder) or {}
        carried = {}
        for name, record in modules.items():
            watched = watchlist.get(name)
            if watched is not None and watched.running.digest == record.get("digest"):
                carried[name] = self._entry(name, watched.running)
        self._unwritten = len(carried) != len(modules)
        return carried

    def stop(self) -> None:
        if os.environ.get(ENVIRONMENT) == self.folder:
            del os.environ[ENVIRONMENT]
        while self._restore:
            self._restore.pop()()
        while self._counters:
            os.close(self._counters.pop())

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
            entry = self._entry(name, version)
            base = self._bases.get(name)
            if base is not None and base.digest != version.digest:
                entry.update(base_digest=base.digest, base_text=base.text)
            self._texts[name] = entry
        self.generation += 1
        self._unwritten = True
        if self._readers:
            self._write()

    def _entry(self, name: str, version: SourceVersion) -> dict[str, str]:
        entry = {"path": version.path, "digest": version.digest, "text": version.text}
        if self._watched_on_request(name, version.path):
            entry["aimport"] = "yes"  # the worker need not judge whether it is the user's code
        return entry

    def _watched_on_request(self, name: str, path: str) -> bool:
        """Watched although not the user's code by the default rule: marked with ``%aimport``, or
        under ``c.Hotswap.include_paths``."""
        watchlist = self._watchlist
        return watchlist is not None and watchlist.get(name) is not None and not is_user_file(path)

    def readers_come(self) -> None:
        """A pool or an executor is made or found: from now on, every version is written at once."""
        self._readers = True
        if self._unwritten:
            self._write()

    def _write(self) -> None:
        """Write the index and bump the counter; a failure is said once and tried again at each cell."""
        try:
            self._write_index()
        except OSError as error:
            if self._cannot_write is None:
                self._news.append(self._lagging(error))
            self._cannot_write = f"{type(error).__name__}: {error}"
            return
        if self._cannot_write is not None:
            self._cannot_write = None
            self._news.append(
                f"hotswap: the journal is written again ({self.folder}): worker processes run "
                "the session's versions from their next task."
            )
        self._unwritten = False

    def _lagging(self, error: OSError) -> str:
        names = ", ".join(sorted(self._texts)) or "none"
        return (
            f"hotswap: could not write the journal worker processes read ({self.folder}): "
            f"{type(error).__name__}: {error};\n  workers of pools keep the versions they run "
            f"(of {names}) until it can be written: tried again at each cell."
        )

    def _write_index(self) -> None:
        _make_room(self.folder)
        modules, named = {}, set()
        for name, entry in self._texts.items():
            record = {"path": entry["path"], "digest": entry["digest"]}
            self._store(entry["digest"], entry["text"])
            named.add(entry["digest"])
            if "base_digest" in entry:
                self._store(entry["base_digest"], entry["base_text"])
                record["base"] = entry["base_digest"]
                named.add(entry["base_digest"])
            if "aimport" in entry:
                record["aimport"] = entry["aimport"]
            modules[name] = record
        index = json.dumps({"generation": self.generation, "modules": modules}).encode("utf-8")
        write_atomically(self._path("index.json"), index)
        self._bump()
        self._named = (self._named[1], named)
        self._drop_texts_unnamed()
        _drop_workers_gone(self._path("joined"))

    def _store(self, digest: str, text: str) -> None:
        path = self._path("texts", digest)
        if not os.path.exists(path):
            write_atomically(path, text.encode("utf-8"))

    def _bump(self) -> None:
        """The new generation, in the counter file and in every one that workers may still map
        (the folder may have been cleaned away and made again: they map the file it had)."""
        path = self._path("generation")
        try:
            now = os.stat(path)
            held = [os.fstat(counter) for counter in self._counters]
            if not any(os.path.samestat(now, then) for then in held):
                self._counters.append(os.open(path, os.O_RDWR))
        except FileNotFoundError:
            self._counters.append(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        for counter in self._counters:
            os.pwrite(counter, COUNTER.pack(self.generation), 0)

    def _drop_texts_unnamed(self) -> None:
        """Texts no index of the last two versions names (a worker may still be reading the one before)."""
        named = self._named[0] | self._named[1]
        for name in os.listdir(self._path("texts")):
            if name.split(".")[0] not in named and not name.endswith(".tmp"):  # (<digest>.<tag>: its bytecode)
                try:
                    os.remove(self._path("texts", name))
                except OSError:
                    pass

    def failures(self) -> list[str]:
        """What to say at this cell: the journal's own news, and messages from workers that could
        not apply a version, each returned once. A write that failed is tried again first."""
        if self._unwritten and self._readers:
            self._write()
        news, self._news = self._news, []
        return news + self._notes_from_workers()

    def _notes_from_workers(self) -> list[str]:
        folder = self._path("failures")
        try:
            mtime = os.stat(folder).st_mtime_ns
            if mtime == self._failures_mtime:
                return []
            self._failures_mtime = mtime
            messages = []
            for name in sorted(os.listdir(folder)):
                if name not in self._failures_seen:
                    self._failures_seen.add(name)
                    with open(os.path.join(folder, name), encoding="utf-8") as note:
                        messages.append(note.read())
        except OSError:
            return []
        return messages

    def versions(self) -> list[str]:
        """Per pool alive, which version its workers run (for ``%hotswap``)."""
        return pool_versions(self._path("joined"), self.generation)


_FOLDER: str | None = None
_PREFIX = "hotswap-journal-"
_LOCK = "owner.lock"  # held (flock) by the session's process while it lives: see _hold_lock
_HELD: list[int] = []  # the lock's descriptor, open for the life of the process


def _process_folder() -> str:
    """One journal folder per session process: pools that outlive a reload of hotswap keep following."""
    global _FOLDER
    if _FOLDER is None:
        _sweep_journals_of_sessions_gone()
        _FOLDER = tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-")
        atexit.register(_remove_if_ours, _FOLDER, os.getpid())
    _make_room(_FOLDER)
    return _FOLDER


def _make_room(folder: str) -> None:
    """The journal's folders and files, made again if a temporary-folder cleaner took them
    (at the same path: workers and pools know it by name)."""
    if os.path.isdir(os.path.join(folder, "texts")):
        return
    os.makedirs(folder, mode=0o700, exist_ok=True)
    for name in ("failures", "joined", "texts"):
        os.makedirs(os.path.join(folder, name), exist_ok=True)
    if not os.path.exists(os.path.join(folder, _LOCK)):
        _hold_lock(folder)
    counter = os.path.join(folder, "generation")
    if not os.path.exists(counter):
        write_atomically(counter, COUNTER.pack(0))


def _listing(folder: str) -> list[str]:
    try:
        return os.listdir(folder)
    except OSError:
        return []


def _drop_workers_gone(joined: str) -> None:
    """Marks of workers that ended without taking theirs (killed): the folder would grow for ever
    with ``maxtasksperchild``."""
    for name in os.listdir(joined):
        try:
            os.kill(int(name), 0)
        except ProcessLookupError:
            try:
                os.remove(os.path.join(joined, name))
            except OSError:
                pass
        except (ValueError, OSError):  # not a pid; or a process of another user: alive
            pass


def _remove_if_ours(folder: str, owner: int) -> None:
    """At exit, in the session's process only: a child it forked runs the same exit handlers when
    it ends normally, and must not take the journal from the session and its workers."""
    if os.getpid() == owner:
        shutil.rmtree(folder, ignore_errors=True)


def _hold_lock(folder: str) -> None:
    """The session lives while this lock is held: the kernel lets go of it when the process ends,
    however it ends (``kill -9`` too), and it is seen across PID namespaces sharing the folder."""
    if fcntl is None:
        return
    descriptor = os.open(os.path.join(folder, _LOCK), os.O_CREAT | os.O_RDWR, 0o600)
    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    _HELD.append(descriptor)


def _sweep_journals_of_sessions_gone() -> None:
    """Remove the journals whose session ended without removing them (killed): a session's full
    source texts would stay in the temporary folder for ever. Once, when a session starts."""
    if fcntl is None:
        return
    root = tempfile.gettempdir()
    try:
        names = [name for name in os.listdir(root) if name.startswith(_PREFIX)]
    except OSError:
        return
    for name in names:
        folder = os.path.join(root, name)
        if _owner_gone(os.path.join(folder, _LOCK)):
            shutil.rmtree(folder, ignore_errors=True)


def _owner_gone(lock: str) -> bool:
    """Is nobody holding this journal's lock? (No lock file: a journal being made, or of an
    older hotswap: left alone.)"""
    assert fcntl is not None
    try:
        descriptor = os.open(lock, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # held: its session (or a child it forked) still runs
    finally:
        os.close(descriptor)  # (a lock taken goes with the descriptor)
    return True
