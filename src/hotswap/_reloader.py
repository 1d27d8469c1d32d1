"""The pipeline, once per check: changed files -> modules in order -> apply or roll back.

``Reloader`` knows nothing of IPython: a plain REPL, a test, or the IPython
extension drive it the same way, by calling ``check()`` before running code.
"""

from __future__ import annotations

import enum
import importlib
import linecache
import sys
import threading
from collections.abc import Callable
from types import ModuleType

from ._apply import Failure, Reloaded, reload_module
from ._watch import Change, Watchlist, is_user_file

__all__ = ["Mode", "Outcome", "Reloader"]

Outcome = Reloaded | Failure


class Mode(enum.IntEnum):
    """When modules are reloaded; the numbers are those of ``%autoreload``."""

    OFF = 0  # never on its own; ``%autoreload now`` still works
    EXPLICIT = 1  # before each cell, only modules marked with ``%aimport``
    ALL = 2  # before each cell, every watched module not excluded
    COMPLETE = 3  # as ALL, and new names reach star- and from-imports of the user

    @classmethod
    def parse(cls, word: str) -> Mode:
        """``"2"``, ``"all"``, ``"ALL"`` -> ``Mode.ALL``; raises ``ValueError`` otherwise."""
        word = word.strip().lower()
        for mode in cls:
            if word in (str(mode.value), mode.name.lower()):
                return mode
        raise ValueError(f"unknown mode {word!r}")


class Reloader:
    """Keeps the user's modules in step with their files.

    >>> reloader = Reloader()
    >>> reloader.mode = Mode.ALL
    >>> reloader.check()   # before running the user's code
    []
    """

    def __init__(self, is_user: Callable[[str], bool] = is_user_file) -> None:
        self.watchlist = Watchlist(is_user)
        self.mode = Mode.OFF
        self.full = False  # always re-run whole modules (``--full``, ``2-``)
        self.explicit: dict[str, None] = {}  # marked with %aimport, in order
        self.excluded: dict[str, None] = {}  # marked with %aimport -name
        self._busy = threading.Lock()

    def start(self) -> None:
        """Watch imports from now on, and adopt the user's modules already imported."""
        self.watchlist.start()
        self.watchlist.adopt_loaded()

    def stop(self) -> None:
        self.watchlist.stop()

    def include(self, name: str) -> ModuleType:
        """Import ``name`` and mark it for reloading in every mode (``%aimport name``)."""
        self.excluded.pop(name, None)
        self.explicit[name] = None
        module = importlib.import_module(name)
        self.watchlist.adopt(module, force=True)
        return module

    def exclude(self, name: str) -> None:
        """Never reload ``name`` (``%aimport -name``)."""
        self.explicit.pop(name, None)
        self.excluded[name] = None

    def check(self, *, everything: bool = False) -> list[Outcome]:
        """Apply what changed on disk; ``everything`` is ``%autoreload now``.

        Returns one outcome per module that had a new version. A module whose
        new version fails is left exactly as it was; that version is not tried
        again until the file changes (or ``everything`` asks for it).
        """
        if not everything and self.mode is Mode.OFF:
            return []
        if not self._busy.acquire(blocking=False):
            return []  # re-entered from code a reload runs: never nest reloads
        try:
            changes = self.watchlist.poll(self._candidates(everything), retry_failed=everything)
            return [self._apply(change) for change in changes]
        finally:
            self._busy.release()

    def _candidates(self, everything: bool) -> list[str]:
        if everything or self.mode >= Mode.ALL:
            names = self.watchlist.names()
        else:
            names = [n for n in self.explicit if n in self.watchlist]
        return [n for n in names if n not in self.excluded]

    def _apply(self, change: Change) -> Outcome:
        watched, version = change.watched, change.version
        module = sys.modules[watched.name]
        whole = "asked for with --full" if self.full else None
        outcome = reload_module(module, version, watched.running, whole=whole)
        if isinstance(outcome, Reloaded):
            watched.running = version
            watched.failed_digest = None
            linecache.checkcache(version.path)
        else:  # reported once; retried when the file changes or on ``everything``
            watched.failed_digest = version.digest
        return outcome
