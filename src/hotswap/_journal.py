"""The journal: what the session's modules run, for worker processes to catch up with.

A temporary folder, named in ``HOTSWAP_JOURNAL`` (child processes inherit it):
``index.json`` holds, for every module changed (or broken) since hotswap started,
the text of its last good version (and the text it had before its first reload,
its *base*); ``generation`` is an 8-byte counter the session bumps after writing
the index. Source text travels, not paths, and a broken save never reaches it.
Nothing is written until a pool or an executor is made (or found at load): a
session without workers pays no file write per edit. A worker that cannot apply
a version writes a note in ``failures/``; the session says it once, naming the
worker.
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

from ._pools import join_pools
from ._source import SourceVersion
from ._watch import Watchlist
from ._workers import COUNTER, ENVIRONMENT

__all__ = ["Journal"]


class Journal:
    """The session's side: what workers must run, written after each reload."""

    def __init__(self) -> None:
        self.folder = _process_folder()
        self._texts: dict[str, dict[str, str]] = {}
        self._bases: dict[str, SourceVersion] = {}  # module -> the text it ran before its first reload
        with open(self._path("generation"), "rb") as counter:
            self.generation = COUNTER.unpack(counter.read(COUNTER.size))[0]
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
        self._restore = join_pools(self.folder, self.readers_come, watchlist)

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
            counter.write(COUNTER.pack(self.generation))
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
_PREFIX = "hotswap-journal-"
_LOCK = "owner.lock"  # held (flock) by the session's process while it lives: see _hold_lock
_HELD: list[int] = []  # the lock's descriptor, open for the life of the process


def _process_folder() -> str:
    """One journal folder per session process: pools that outlive a reload of hotswap keep following."""
    global _FOLDER
    if _FOLDER is None or not os.path.isdir(_FOLDER):
        _sweep_journals_of_sessions_gone()
        _FOLDER = tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-")
        _hold_lock(_FOLDER)
        atexit.register(_remove_if_ours, _FOLDER, os.getpid())
        os.makedirs(os.path.join(_FOLDER, "failures"))
        os.makedirs(os.path.join(_FOLDER, "joined"))
        with open(os.path.join(_FOLDER, "generation"), "wb") as counter:
            counter.write(COUNTER.pack(0))
    return _FOLDER


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
