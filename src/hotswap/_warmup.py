"""Warm-up: while the user is idle, settle the modules just imported and work out how each new
dependent will follow.

After a cell that imported modules, one background thread does, while the
interpreter waits for the next cell, and then stops:

1. it settles the modules imported (``Watchlist.settle``: recorded, their lines
   pinned, their imports read), so that a cell importing a thousand modules
   does not wait for it;
2. it imports the reload machinery if that is safe (``_machinery``), so that
   the first edit does not wait for it either;
3. it prepares each new dependent: the first edit of a module that hundreds of
   others take names from would otherwise parse each of them in the cell after
   the save (a few hundred µs each: 200 dependents, tens of ms).

It fills what the first edit would fill: it runs no user code and changes no
module, so a cell that starts before it is done just does the rest itself. It
waits for no lock a reload holds for long (it looks whether it should stop), and
it is stopped before the process forks (a child gets no half-done thread).
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import deque
from collections.abc import Callable
from typing import Protocol

__all__ = ["WarmUp"]


class Settles(Protocol):
    """Modules recorded and not settled yet (``Watchlist``)."""

    @property
    def unsettled(self) -> int: ...

    def settle(self, until: Callable[[], bool] | None = None) -> None: ...


class WarmUp:
    """Names of modules to prepare, and the thread that prepares them."""

    def __init__(
        self, prepare: Callable[[str], None], settle: Settles | None = None, ready: Callable[[], bool] = lambda: True
    ) -> None:
        self._prepare = prepare
        self._settles = settle
        self._ready = ready  # may ``prepare`` run (it may import what it needs)? If not, pending waits
        self._pending: deque[str] = deque()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._closed = False
        _ALL.add(self)

    def add(self, name: str) -> None:
        """A module was imported or runs a new text: prepare it at the next ``start``."""
        self._pending.append(name)

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def _unsettled(self) -> bool:
        return self._settles is not None and self._settles.unsettled > 0

    @property
    def busy(self) -> bool:
        """Is there work left, or a thread still at it?"""
        return bool(self._pending) or self._unsettled or (self._thread is not None and self._thread.is_alive())

    def start(self) -> None:
        """Prepare what is pending, in the background (after a cell: the user is reading its output)."""
        if not (self._pending or self._unsettled) or self._stop.is_set() or self._closed:
            return
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(target=self._run, name="hotswap-warm-up", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (what is still pending stays pending) and wait for it."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            # (it may wait for the watchlist's lock, held by the thread that forks: then it goes on
            # once that is released, and a child process gets no copy of it anyway)
            thread.join(timeout=_JOIN_SECONDS)
            if thread.is_alive():
                self._thread = thread
        self._stop.clear()

    def close(self) -> None:
        """Stop for good (hotswap is unloaded): nothing pending, and no fork starts it again."""
        self._closed = True
        self._pending.clear()
        self.stop()
        _ALL.discard(self)

    def _run(self) -> None:
        if self._settles is not None:
            try:
                self._settles.settle(until=self._stop.is_set)
            except Exception:  # noqa: BLE001 - left unsettled: whoever reads the graph next settles them
                pass
        try:
            if self._stop.is_set() or not self._ready():
                return
        except Exception:  # noqa: BLE001 - not ready: what needs it imports it on its own thread
            return
        while self._pending and not self._stop.is_set():
            try:
                name = self._pending.popleft()
                self._prepare(name)
            except Exception:  # noqa: BLE001,S112 - a cache left empty: the first edit fills it
                continue


_JOIN_SECONDS = 1.0
_ALL: weakref.WeakSet[WarmUp] = weakref.WeakSet()


def _stop_all() -> None:
    for warm_up in list(_ALL):
        warm_up.stop()


def _start_all() -> None:
    for warm_up in list(_ALL):
        warm_up.start()


if hasattr(os, "register_at_fork"):
    # fork() copies only the thread that calls it: stop ours first, go on after in the parent
    os.register_at_fork(before=_stop_all, after_in_parent=_start_all)
