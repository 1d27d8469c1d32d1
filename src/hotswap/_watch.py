"""Detect: which of the user's modules have a new version on disk.

A module is watched from the moment it is imported: the import hook (``_hook``)
reads, hashes and hands importlib its file itself, so the text recorded is
exactly the code that ran, and an edit saved right after the import is seen.
Modules imported before hotswap was loaded are adopted, from a list made at load.
In the session, what a record derives (its entry indexed, its lines pinned, its
imports read) is settled after the cell, or by whoever needs it first: a cell
that imports a thousand modules, and ``%load_ext`` after it, do not wait for it.

Which files to look at comes from file-system events (``_events``): an idle
check is one non-blocking read, whatever the number of modules. Files where
events cannot be had (another OS, a network file system) are checked with one
``stat`` each instead. Either way a file is read only when its stat signature
changed or is too recent to be trusted, and a content hash decides whether it
really changed.
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.machinery import ExtensionFileLoader, SourceFileLoader
from types import CodeType, ModuleType
from typing import NamedTuple

from ._adopt import code_it_was_imported_from, ran_before, remember_running, runs_this_text, saved_since_start
from ._events import Inotify, is_network_path, lock_of_the_child, open_inotify
from ._hook import ImportHook
from ._source import (
    SourceVersion,
    is_pinned,
    pin_in_linecache,
    read_version,
    stat_signature,
    unpin_from_linecache,
)
from ._userfiles import folder_of, is_user_extension, is_user_file

__all__ = ["Change", "Watched", "Watchlist"]

_NEVER = frozenset({"__main__", "__mp_main__"})
_SAVE_GAP = 0.05  # seconds a file may be missing while an editor saves it


class _Gone(SourceVersion):
    """Returned for a deleted file: a sentinel version whose digest matches no text's."""

    digest = "gone"


_GONE = _Gone(path="", data=b"", signature=(0, 0, 0, 0), read_at_ns=0)


def source_path(module: ModuleType) -> str | None:
    """The ``.py`` file a module was loaded from, if it has one we could re-run.

    Only modules a plain source loader made: others (pytest's assertion
    rewriting, import hooks that transform code) would lose what their loader
    did if hotswap re-ran their plain text.
    """
    if getattr(module, "__name__", None) in _NEVER:
        return None
    path = getattr(module, "__file__", None)
    spec = getattr(module, "__spec__", None)
    if not isinstance(path, str) or spec is None or not path.endswith(".py"):
        return None
    if not isinstance(getattr(module, "__loader__", None), SourceFileLoader):
        return None
    return path


@dataclass(slots=True)
class Watched:
    """A module under watch: the version running now and the last one read."""

    name: str
    path: str
    running: SourceVersion
    last_read: SourceVersion
    order: int
    failed_digest: str | None = None  # a broken version already reported
    missing: bool = False  # its file is gone (reported once)
    # False when the module was adopted and its code differs from its file: the
    # file was saved after the import, so the next check re-runs the whole module
    trusted: bool = True
    compiled: bool = False  # a C extension: a new build is reported, never loaded
    # not trusted: the code its import ran, when __pycache__ still has it (its imports are read there)
    imported_code: CodeType | None = None
    # a symlink: the paths it leads to (each link's target, the real file), watched as well
    aliases: tuple[str, ...] = ()


class Change(NamedTuple):
    """A module's file has a new version, or (``version`` is None) is gone.

    ``back``: the file said gone is there again with the text that runs; nothing
    to apply, it is simply no longer gone.
    """

    watched: Watched
    version: SourceVersion | None
    back: bool = False


class Watchlist:
    """The user's modules, by name, with the text each one is running."""

    def __init__(self, is_user: Callable[[str], bool] = is_user_file, *, events: bool = True) -> None:
        self.is_user = is_user
        self._modules: dict[str, Watched] = {}
        self._by_path: dict[str, set[str]] = {}  # file (or a link's target) -> modules loaded from it
        self._by_dir: dict[str, set[str]] = {}  # folder -> modules with a file (or link target) there
        # held while the watched entries, or what is derived from them (``on_record``), change
        self.lock = threading.RLock()
        self._counter = itertools.count()
        self._generation = 0  # see ``generation``
        self._hook: ImportHook | None = None
        self._use_events = events
        self._events: Inotify | None = None
        self._polled: set[str] = set()  # modules whose directory gives no events: stat them
        # texts to import instead of the files' (a worker follows the session, not the disk)
        self.overrides: Callable[[], Mapping[str, bytes]] | None = None
        # module name -> called with the module once it is imported (integrations join late)
        self.after_import: dict[str, Callable[[ModuleType], None]] = {}
        self._unconfirmed: set[str] = set()  # recorded before their watch existed: stat once
        self._drained_at_ns = 0  # when the last check took the file-system events
        self.on_record: Callable[[Watched], None] | None = None  # told of each module (re)imported
        # the session: a module imported is recorded (watched, its lines pinned, ``on_record``
        # told) at ``settle``, not while it is imported: a cell importing a thousand modules does
        # not wait for it (its bytes are read and hashed at once: that is what runs)
        self.settle_later = False
        # imported (a version, compiled or not) or to adopt (a module), not recorded yet, in order
        self._fresh: deque[tuple[str, SourceVersion | ModuleType, bool]] = deque()
        self._taking = False  # recording the oldest fresh module (see ``_take_fresh``)
        _ALL.add(self)
        self._unsettled: dict[str, None] = {}  # recorded, not settled yet (in order)
        self._pinned_elsewhere: list[Watched] = []  # settled on another thread: see ``_confirm_pins``

    @property
    def detection(self) -> str:
        """How changes are found, for status displays."""
        if self._events is None:
            return "stat checks of the watched files (no file-system events here)"
        if self._polled:
            return f"file-system events (inotify), and stat checks of {len(self._polled)} module(s) without events"
        return "file-system events (inotify)"

    def __contains__(self, name: object) -> bool:
        self._current()
        return name in self._modules

    def __len__(self) -> int:
        self._current()
        return len(self._modules)

    def names(self) -> list[str]:
        self._current()
        return list(self._modules)

    def get(self, name: str) -> Watched | None:
        if self._fresh:
            self._current()
        return self._modules.get(name)

    @property
    def generation(self) -> int:
        """Bumped whenever a module is recorded, forgotten or found untrusted: what is derived
        from the watched entries (see ``Dependents._leaf_table``) is kept until it moves."""
        self._current()
        return self._generation

    # -- recording ---------------------------------------------------------------------------

    def record(self, name: str, version: SourceVersion, *, compiled: bool = False) -> None:
        """A module is (re)imported with exactly this version."""
        if self.settle_later:  # (no lock taken here: importlib holds the module's own meanwhile)
            self._watch_folder(version.path)  # a save from now on is seen; the rest can wait
            self._fresh.append((name, version, compiled))
            return
        with self.lock:
            self._take_fresh()
            self._record_now(name, version, compiled=compiled)

    def _record_now(self, name: str, version: SourceVersion, *, compiled: bool = False) -> None:
        watched = Watched(name, version.path, version, version, next(self._counter), compiled=compiled)
        replaced = self._modules.get(name)
        if replaced is not None:
            self._unindex(replaced)  # (its file may have been a link to elsewhere)
        self._modules[name] = watched
        self._generation += 1
        if not self._index(watched, version.read_at_ns) or version.read_at_ns < self._drained_at_ns:
            # a save between our read and the watch, or one whose event a check took before this
            # record was in the index (an import on another thread, meanwhile): look once
            self._unconfirmed.add(name)
        if not compiled:
            self._changed(watched)

    def record_extension(self, name: str, path: str) -> None:
        """A compiled module of the user's: it cannot be reloaded, but a rebuild must be said."""
        try:
            self.record(name, read_version(path), compiled=True)
        except OSError:
            pass

    def _changed(self, watched: Watched) -> None:
        """What is derived from a module's entry is to be made again: now, or at ``settle``."""
        if self.settle_later:
            self._unsettled[watched.name] = None
        else:
            self._settle(watched)

    # -- settling: what a record derives, after the cell -----------------------------------------

    @property
    def unsettled(self) -> int:
        """How many modules were imported or adopted, or had their entry changed, since they were
        last settled."""
        return len(self._fresh) + len(self._unsettled)

    def settle(self, until: Callable[[], bool] | None = None) -> None:
        """Record the modules imported (or to adopt) since, pin their lines and tell ``on_record``
        of them (their imports), oldest first. Called by whoever needs it first: the thread that
        does it after a cell, asking ``until`` between two modules (it never waits long for the
        lock: a reload holds it), or what is about to use the import graph (it waits for the
        module that thread is at, so none is half-done when it returns)."""
        while True:
            if until is None:
                self.lock.acquire()
            elif until() or not self.lock.acquire(timeout=0.02):
                if until():
                    return
                continue
            try:
                if self._fresh:
                    self._take_one_fresh()
                elif self._unsettled:
                    self._settle_one(elsewhere=until is not None)
                else:
                    return
            finally:
                self.lock.release()

    def _settle(self, watched: Watched) -> None:
        try:
            pin_in_linecache(watched.running)
            if self.on_record is not None:
                self.on_record(watched)
        except Exception:  # noqa: BLE001 - its lines and imports unknown: never the reload's failure
            pass

    def _current(self) -> None:
        """The watched entries, with every module imported or to adopt so far in them."""
        if self._fresh:
            with self.lock:
                self._take_fresh()

    def _take_fresh(self) -> None:
        while self._fresh and not self._taking:
            self._take_one_fresh()

    def _take_one_fresh(self) -> None:
        """The oldest fresh module, recorded (taken off the queue once done: another thread that
        finds the queue empty finds nothing half-done; this one, re-entering from what recording
        it calls, finds ``_taking`` and leaves the queue to the loop it is in)."""
        if self._taking:
            return
        name, fresh, compiled = self._fresh[0]
        self._taking = True
        try:
            if isinstance(fresh, SourceVersion):
                self._record_now(name, fresh, compiled=compiled)
            elif name not in self._modules:  # (picked as the user's by ``adopt_loaded``: not asked again)
                self._adopt_now(fresh, force=True)
        finally:
            self._taking = False
            self._fresh.popleft()

    def settle_at_once(self) -> None:
        """From now on record and settle each module as it is imported (a forked worker: no cell
        ends there, no warm-up thread), everything pending first."""
        self.settle()
        self.settle_later = False

    def _settle_one(self, *, elsewhere: bool = False) -> None:
        name = next(iter(self._unsettled))
        try:
            watched = self._modules.get(name)
            if watched is not None and not watched.compiled:
                self._settle(watched)
                if elsewhere:
                    self._pinned_elsewhere.append(watched)
        finally:
            self._unsettled.pop(name, None)

    def _confirm_pins(self) -> None:
        """A pin made on another thread loses a race with ``linecache`` reading the file for a
        traceback here at that moment (its entry is written last): pinned again where it did."""
        while self._pinned_elsewhere:
            watched = self._pinned_elsewhere.pop()
            if self._modules.get(watched.name) is watched and not is_pinned(watched.running):
                pin_in_linecache(watched.running)

    # -- where the files are -------------------------------------------------------------------

    def _watch_folder(self, path: str) -> None:
        if self._events is not None:
            self._events.watch(folder_of(path))

    def _index(self, watched: Watched, read_at_ns: int) -> bool:
        """Find the module by its path, and its link's targets; watch the folders they are in.
        ``True`` if every one of them was watched before ``read_at_ns`` (a save since is seen)."""
        events = self._events
        if events is not None:
            watched.aliases = _link_targets(watched.path)
        under_watch = events is not None
        for path in (watched.path, *watched.aliases):
            self._by_path.setdefault(path, set()).add(watched.name)
            directory = os.path.dirname(path)
            self._by_dir.setdefault(directory, set()).add(watched.name)
            if events is not None:
                under_watch = under_watch and events.watched_before(directory, read_at_ns)
                if is_network_path(directory) or not events.watch(directory):
                    self._polled.add(watched.name)
        return under_watch

    def _unindex(self, watched: Watched) -> None:
        for path in (watched.path, *watched.aliases):
            self._by_path.get(path, set()).discard(watched.name)
            self._by_dir.get(os.path.dirname(path), set()).discard(watched.name)

    def _follow_link(self, watched: Watched) -> None:
        """A file read anew may be a link pointed elsewhere: watch where it leads now."""
        if self._events is not None and (watched.aliases or os.path.islink(watched.path)):
            if _link_targets(watched.path) != watched.aliases:
                self._unindex(watched)
                self._index(watched, watched.last_read.read_at_ns)

    # -- adopting: modules imported before hotswap was loaded ----------------------------------------

    def adopt(self, module: ModuleType, *, force: bool = False) -> bool:
        """Watch a module imported before hotswap was loaded (its file as it is now)."""
        with self.lock:
            self._take_fresh()
            return self._adopt_now(module, force=force)

    def _adopt_now(self, module: ModuleType, *, force: bool) -> bool:
        name = module.__name__
        path = source_path(module)
        if name in self._modules or path is None or not (force or self.is_user(path)):
            return name in self._modules
        try:
            version = read_version(path)
        except OSError:
            return False
        known = ran_before(module, version)
        if known is not None:  # (if not the file's text, the next check applies the file's)
            self._record_now(name, known)
            return True
        self._record_now(name, version)
        if not saved_since_start(version):
            return True
        imported = code_it_was_imported_from(module)
        if not runs_this_text(module, version, imported):
            watched = self._modules[name]
            watched.trusted = False
            watched.imported_code = imported
            self._generation += 1
            self._unconfirmed.add(name)  # the next check applies its file's text
            self._changed(watched)  # what it imports: from the code that ran, if known
        return True

    def adopt_loaded(self) -> None:
        """One walk of ``sys.modules``, at load time only. The session (``settle_later``) only
        picks the user's modules out, and watches their folders: each is read and compared with
        its file at ``settle``, after the cell."""
        for module in list(sys.modules.values()):
            if not isinstance(module, ModuleType):
                continue
            path = getattr(module, "__file__", None)
            loader = getattr(getattr(module, "__spec__", None), "loader", None)
            if isinstance(loader, ExtensionFileLoader) and isinstance(path, str):
                if module.__name__ not in self._modules and is_user_extension(path):
                    self.record_extension(module.__name__, path)
            elif not self.settle_later:
                self.adopt(module)
            elif (source := source_path(module)) is not None and self.is_user(source):
                self._watch_folder(source)
                self._fresh.append((module.__name__, module, False))

    def start(self) -> None:
        if self._use_events and self._events is None:
            self._events = open_inotify()
            for watched in self._modules.values():
                self._index(watched, watched.last_read.read_at_ns)
        if self._hook is None:
            self._hook = ImportHook(self)
            sys.meta_path.insert(0, self._hook)

    def stop(self) -> None:
        with self.lock:  # the modules imported since: what they run is remembered (not those to adopt)
            while self._fresh:
                name, fresh, compiled = self._fresh.popleft()
                if isinstance(fresh, SourceVersion):
                    self._record_now(name, fresh, compiled=compiled)
        for watched in self._modules.values():
            unpin_from_linecache(watched.path)
            module = sys.modules.get(watched.name)
            if isinstance(module, ModuleType) and watched.trusted and not watched.compiled:
                remember_running(module, watched.running)  # for a session loaded after this one
        if self._events is not None:
            self._events.close()
            self._events = None
        if self._hook is not None:
            self._hook.watchlist = None
            if self._hook in sys.meta_path:
                sys.meta_path.remove(self._hook)
            self._hook = None

    def poll(
        self, wanted: Callable[[str], bool], *, retry_failed: bool = False, everything: bool = False
    ) -> list[Change]:
        """New versions of the wanted modules, in the order they were first imported.

        Costs one non-blocking read when events are available and nothing
        changed, however many modules are watched; ``everything`` looks at
        every file (``%autoreload now``).
        """
        self._current()
        self._confirm_pins()
        names = self._to_look_at(everything)
        if not names:
            return []
        looked_at = [(w, self._read_if_changed(w)) for w in self._watched_of(names, wanted)]
        if any(version is _GONE and not watched.missing for watched, version in looked_at):
            # a save by rename (or a checkout) may be mid-way: one wait, for all the files at once
            time.sleep(_SAVE_GAP)
            looked_at = [(w, self._read_if_changed(w) if v is _GONE else v) for w, v in looked_at]
        changes = [c for w, v in looked_at if (c := _change_of(w, v, retry_failed)) is not None]
        changes.sort(key=lambda change: change.watched.order)
        return changes

    def _watched_of(self, names: list[str], wanted: Callable[[str], bool]) -> list[Watched]:
        """The wanted ones among these modules (those gone from ``sys.modules``: forgotten)."""
        found = []
        for name in names:
            watched = self._modules.get(name)
            if watched is None or not wanted(name):
                continue
            if name not in sys.modules:
                with self.lock:
                    self._forget(name)
                continue
            found.append(watched)
        return found

    def _to_look_at(self, everything: bool) -> list[str]:
        """The modules whose files may have changed since the last check."""
        if self._events is None:
            return list(self._modules)
        self._drained_at_ns = time.time_ns()
        touched, folders, lost = self._events.drain()
        if self._unconfirmed:
            with self.lock:  # (a record settled on another thread adds to it)
                unconfirmed, self._unconfirmed = self._unconfirmed, set()
        else:
            unconfirmed = self._unconfirmed
        if lost or everything:  # events were dropped, or asked to: look at everything
            return list(self._modules)
        look = {n for path in touched for n in self._by_path.get(path, ())}
        if folders:  # folders gone, or watched again once back: each of their files
            look |= self._in_folders(folders)
        return list(look | self._polled | unconfirmed) if self._polled or unconfirmed else list(look)

    def _in_folders(self, folders: set[str]) -> set[str]:
        return {name for folder in folders for name in self._by_dir.get(folder, ())}

    def _forget(self, name: str) -> None:
        self._take_fresh()
        watched = self._modules.pop(name, None)
        self._unsettled.pop(name, None)
        self._generation += 1
        if watched is not None:
            self._unindex(watched)
        self._polled.discard(name)
        self._unconfirmed.discard(name)

    def _read_if_changed(self, watched: Watched) -> SourceVersion | None:
        """The file's version if it may have changed, ``None`` if not, ``_GONE`` if deleted."""
        try:
            signature = stat_signature(os.stat(watched.path))
            if signature == watched.last_read.signature and not watched.last_read.is_racy():
                return None
            watched.last_read = read_version(watched.path)
        except FileNotFoundError:
            return _GONE
        except OSError:
            return None  # unreadable for now: look again at the next check
        self._follow_link(watched)
        return watched.last_read


_ALL: weakref.WeakSet[Watchlist] = weakref.WeakSet()


def _lock_of_the_child() -> None:
    """A child process forked while another thread held a watchlist's lock (a reload, a settle)
    would wait for it for ever: that thread is not in the child. It gets a lock of its own (and so
    do its file-system events)."""
    for watchlist in list(_ALL):
        lock = lock_of_the_child(watchlist.lock)
        if lock is not watchlist.lock:
            watchlist.lock = lock
            watchlist._taking = False
        if watchlist._events is not None:
            watchlist._events.after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_lock_of_the_child)


def _change_of(watched: Watched, version: SourceVersion | None, retry_failed: bool) -> Change | None:
    """The module's new version to load, if its file has one (a deletion: said once)."""
    if version is _GONE:
        return _gone(watched)
    came_back, watched.missing = watched.missing, False
    if not watched.trusted:
        version = version or watched.last_read
    elif version is None or version.digest == watched.running.digest:
        return Change(watched, watched.running, back=True) if came_back else None
    if version.digest == watched.failed_digest and not retry_failed and not came_back:
        return None  # (a file deleted and saved again is tried again: what it imports may have changed)
    return Change(watched, version)


def _link_targets(path: str) -> tuple[str, ...]:
    """Where a module's file leads when it is a symlink: each link on the way, then the real file.

    Editing the target changes no entry of the link's folder: the target's folder
    is watched too, and each link's (re-pointing one is a save of the module).
    """
    if not os.path.islink(path):
        return ()
    targets = []
    current = path
    try:
        for _ in range(40):  # as many links as the kernel follows
            current = os.path.normpath(os.path.join(os.path.dirname(current), os.readlink(current)))
            targets.append(current)
            if not os.path.islink(current):
                break
    except OSError:
        pass
    targets.append(os.path.realpath(path))
    return tuple(t for t in dict.fromkeys(targets) if t != path)


def _gone(watched: Watched) -> Change | None:
    """A deleted file's change, the first time it is found missing."""
    if watched.missing:
        return None
    watched.missing = True
    return Change(watched, None)
