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


def _process_folder() -> str:
    """One journal folder per session process: pools that outlive a reload of hotswap keep following."""
    global _FOLDER
    if _FOLDER is None or not os.path.isdir(_FOLDER):
        _FOLDER = tempfile.mkdtemp(prefix="hotswap-journal-")
        atexit.register(shutil.rmtree, _FOLDER, True)
        os.makedirs(os.path.join(_FOLDER, "failures"))
        os.makedirs(os.path.join(_FOLDER, "joined"))
        with open(os.path.join(_FOLDER, "generation"), "wb") as counter:
            counter.write(COUNTER.pack(0))
    return _FOLDER
