"""Detect: which of the user's modules have a new version on disk.

A module is watched from the moment it is imported: an import hook reads,
hashes and hands importlib its file itself, so the text recorded is exactly
the code that ran, and an edit saved right after the import is seen. Modules
imported before hotswap was loaded are adopted once, at load.

Which files to look at comes from file-system events (``_events``): an idle
check is one non-blocking read, whatever the number of modules. Files where
events cannot be had (another OS, a network file system) are checked with one
``stat`` each instead. Either way a file is read only when its stat signature
changed or is too recent to be trusted, and a content hash decides whether it
really changed.
"""

from __future__ import annotations

import _imp
import itertools
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib.machinery import (
    ExtensionFileLoader,
    ModuleSpec,
    SourceFileLoader,
)
from importlib.util import MAGIC_NUMBER, cache_from_source, source_hash
from types import CodeType, ModuleType
from typing import Any

from ._adopt import code_it_was_imported_from, ran_before, remember_running, runs_this_text, saved_since_start
from ._events import Inotify, is_network_path, open_inotify
from ._join import leave_no_trace, spec_after
from ._source import (
    SourceVersion,
    digest_of,
    pin_in_linecache,
    read_version,
    stat_signature,
    unpin_from_linecache,
)
from ._userfiles import is_user_extension, is_user_file

__all__ = ["Change", "Watched", "Watchlist"]

_NEVER = frozenset({"__main__", "__mp_main__"})
_SAVE_GAP = 0.05  # seconds a file may be missing while an editor saves it
# Returned for a deleted file: a sentinel version whose digest matches nothing.
_GONE = SourceVersion(path="", data=b"", digest="gone", signature=(0, 0, 0, 0), read_at_ns=0)


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


@dataclass(frozen=True)
class Change:
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
        self._lock = threading.Lock()
        self._counter = itertools.count()
        # bumped whenever a module is recorded, forgotten or found untrusted: what is derived
        # from the watched entries (see ``Reloader._leaf_table``) is kept until it moves
        self.generation = 0
        self._hook: _ImportHook | None = None
        self._use_events = events
        self._events: Inotify | None = None
        self._polled: set[str] = set()  # modules whose directory gives no events: stat them
        # texts to import instead of the files' (a worker follows the session, not the disk)
        self.overrides: Callable[[], Mapping[str, bytes]] | None = None
        # module name -> called with the module once it is imported (integrations join late)
        self.after_import: dict[str, Callable[[ModuleType], None]] = {}
        self._unconfirmed: set[str] = set()  # recorded before their watch existed: stat once
        self.on_record: Callable[[Watched], None] | None = None  # told of each module (re)imported

    @property
    def detection(self) -> str:
        """How changes are found, for status displays."""
        if self._events is None:
            return "stat checks of the watched files (no file-system events here)"
        if self._polled:
            return f"file-system events (inotify), and stat checks of {len(self._polled)} module(s) without events"
        return "file-system events (inotify)"

    def __contains__(self, name: object) -> bool:
        return name in self._modules

    def __len__(self) -> int:
        return len(self._modules)

    def names(self) -> list[str]:
        return list(self._modules)

    def get(self, name: str) -> Watched | None:
        return self._modules.get(name)

    def record(self, name: str, version: SourceVersion, *, compiled: bool = False) -> None:
        """A module is (re)imported with exactly this version."""
        with self._lock:
            watched = Watched(name, version.path, version, version, next(self._counter), compiled=compiled)
            replaced = self._modules.get(name)
            if replaced is not None:
                self._unindex(replaced)  # (its file may have been a link to elsewhere)
            self._modules[name] = watched
            self.generation += 1
            self._unconfirmed.add(name)  # a save between our read and the watch: look once
            self._index(watched)
        if not compiled:
            pin_in_linecache(version)
            if self.on_record is not None:
                self.on_record(watched)

    def record_extension(self, name: str, path: str) -> None:
        """A compiled module of the user's: it cannot be reloaded, but a rebuild must be said."""
        try:
            self.record(name, read_version(path), compiled=True)
        except OSError:
            pass

    def _index(self, watched: Watched) -> None:
        """Find the module by its path, and its link's targets; watch the folders they are in."""
        if self._events is not None:
            watched.aliases = _link_targets(watched.path)
        for path in (watched.path, *watched.aliases):
            self._by_path.setdefault(path, set()).add(watched.name)
            directory = os.path.dirname(path)
            self._by_dir.setdefault(directory, set()).add(watched.name)
            if self._events is not None and (is_network_path(directory) or not self._events.watch(directory)):
                self._polled.add(watched.name)

    def _unindex(self, watched: Watched) -> None:
        for path in (watched.path, *watched.aliases):
            self._by_path.get(path, set()).discard(watched.name)
            self._by_dir.get(os.path.dirname(path), set()).discard(watched.name)

    def _follow_link(self, watched: Watched) -> None:
        """A file read anew may be a link pointed elsewhere: watch where it leads now."""
        if self._events is not None and (watched.aliases or os.path.islink(watched.path)):
            if _link_targets(watched.path) != watched.aliases:
                self._unindex(watched)
                self._index(watched)

    def adopt(self, module: ModuleType, *, force: bool = False) -> bool:
        """Watch a module imported before hotswap was loaded (its file as it is now)."""
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
            self.record(name, known)
            return True
        self.record(name, version)
        if not saved_since_start(version):
            return True
        imported = code_it_was_imported_from(module)
        if not runs_this_text(module, version, imported):
            watched = self._modules[name]
            watched.trusted = False
            watched.imported_code = imported
            self.generation += 1
            if self.on_record is not None:
                self.on_record(watched)  # what it imports: from the code that ran, if known
        return True

    def adopt_loaded(self) -> None:
        """One walk of ``sys.modules``, at load time only."""
        for module in list(sys.modules.values()):
            if not isinstance(module, ModuleType):
                continue
            path = getattr(module, "__file__", None)
            loader = getattr(getattr(module, "__spec__", None), "loader", None)
            if isinstance(loader, ExtensionFileLoader) and isinstance(path, str):
                if module.__name__ not in self._modules and is_user_extension(path):
                    self.record_extension(module.__name__, path)
            else:
                self.adopt(module)

    def start(self) -> None:
        if self._use_events and self._events is None:
            self._events = open_inotify()
            for watched in self._modules.values():
                self._index(watched)
        if self._hook is None:
            self._hook = _ImportHook(self)
            sys.meta_path.insert(0, self._hook)

    def stop(self) -> None:
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
                self._forget(name)
                continue
            found.append(watched)
        return found

    def _to_look_at(self, everything: bool) -> list[str]:
        """The modules whose files may have changed since the last check."""
        if self._events is None:
            return list(self._modules)
        touched, folders, lost = self._events.drain()
        if lost or everything:  # events were dropped, or asked to: look at everything
            self._unconfirmed.clear()
            return list(self._modules)
        look = {n for path in touched for n in self._by_path.get(path, ())}
        if folders:  # folders gone, or watched again once back: each of their files
            look |= self._in_folders(folders)
        if self._polled or self._unconfirmed:
            look |= self._polled | self._unconfirmed
            self._unconfirmed.clear()
        return list(look)

    def _in_folders(self, folders: set[str]) -> set[str]:
        return {name for folder in folders for name in self._by_dir.get(folder, ())}

    def _forget(self, name: str) -> None:
        watched = self._modules.pop(name, None)
        self.generation += 1
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


class _RecordingLoader(SourceFileLoader):
    """Hands importlib the bytes it records as the module's source, and bytecode only when it is
    known to be of those bytes.

    Only the data importlib reads and writes is intercepted, so importlib compiles
    and runs the module itself and tracebacks of a failing import look exactly as
    without hotswap. ``__pycache__`` is trusted only in its checked hash-based form
    (PEP 552): importlib then compares a hash of the source it was given (the bytes
    recorded) with the one the file holds; a timestamp-based file (trusted on size
    and whole-second mtime, which an edit may keep) is never read, and the bytecode
    importlib compiles is written checked and hash-based, once: a valid file is
    never written again.
    """

    def __init__(self, original: SourceFileLoader, watchlist: Watchlist) -> None:
        super().__init__(original.name, original.path)
        self.original = original
        self.watchlist = watchlist
        self._bytecode = cache_from_source(original.path)
        self._source: bytes | None = None  # the bytes recorded, once read

    def _overridden(self, path: str) -> bool:
        """A worker's module from the session's text, not its file's: no bytecode cache of it."""
        overrides = self.watchlist.overrides
        return overrides is not None and path in overrides()

    def path_stats(self, path: str) -> Mapping[str, Any]:
        if self._overridden(path):
            raise OSError("a worker's module from the session's text: no bytecode cache")
        return super().path_stats(path)

    def get_data(self, path: str) -> bytes:
        if path == self._bytecode:
            return _checked_bytecode(path)
        if path != self.path:
            return super().get_data(path)
        data = self.watchlist.overrides().get(path) if self.watchlist.overrides else None
        if data is not None:  # (a worker: the session's text of it)
            version = SourceVersion(path, data, digest_of(data), (0, 0, 0, 0), time.time_ns())
        else:
            version = read_version(path)
        self.watchlist.record(self.name, version)
        self._source = version.data
        leave_no_trace(self, self.original)
        return version.data

    def _cache_bytecode(self, source_path: str, bytecode_path: str, data: bytes) -> None:
        """importlib compiled the bytes recorded: write the bytecode checked and hash-based."""
        if self._source is None or source_path != self.path:
            return
        if len(data) < 16 or data[:4] != MAGIC_NUMBER:
            return
        pyc = MAGIC_NUMBER + _CHECKED_HASH.to_bytes(4, "little") + source_hash(self._source) + data[16:]
        super()._cache_bytecode(source_path, bytecode_path, pyc)  # type: ignore[misc]


_CHECKED_HASH = 0b11  # PEP 552 flags: hash-based, checked against the source at each import


def _checked_bytecode(path: str) -> bytes:
    """A ``__pycache__`` file's bytes, if it is checked and hash-based (importlib then compares its
    hash with the source's); any other kind says nothing sure of the source, and is not read."""
    if _imp.check_hash_based_pycs == "never":  # (``--check-hash-based-pycs never``: not compared)
        raise OSError("hash-based bytecode is not checked in this interpreter")
    with open(path, "rb") as cached:
        data = cached.read()
    if len(data) < 16 or data[:4] != MAGIC_NUMBER or int.from_bytes(data[4:8], "little") != _CHECKED_HASH:
        raise OSError("a bytecode cache trusted on size and mtime: compiled again from the source")
    return data


class _ThenLoader:
    """Runs a callback once a module is imported, then leaves no trace on it."""

    def __init__(self, original: Any, then: Callable[[ModuleType], None]) -> None:
        self.original = original
        self.then = then

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        module: ModuleType | None = self.original.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self.original
        if module.__spec__ is not None:
            module.__spec__.loader = self.original
        self.original.exec_module(module)
        self.then(module)


class _ImportHook:
    """A meta-path finder placed first: it asks the others, and records user modules."""

    def __init__(self, watchlist: Watchlist) -> None:
        self.watchlist: Watchlist | None = watchlist

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        watchlist = self.watchlist
        if watchlist is None or self not in sys.meta_path:
            return None
        spec = spec_after(self, fullname, path, target)
        if spec is None or not isinstance(spec.origin, str):
            return spec
        _take_over_loader(watchlist, fullname, spec, spec.origin)
        return spec

    def invalidate_caches(self) -> None:
        pass


def _take_over_loader(watchlist: Watchlist, fullname: str, spec: ModuleSpec, origin: str) -> None:
    """Record the module as it is loaded (a user's), or call back once it is (an integration)."""
    then = watchlist.after_import.get(fullname)
    if then is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
        spec.loader = _ThenLoader(spec.loader, then)  # type: ignore[assignment]
    elif type(spec.loader) is SourceFileLoader and watchlist.is_user(origin):
        spec.loader = _RecordingLoader(spec.loader, watchlist)
    elif isinstance(spec.loader, ExtensionFileLoader) and is_user_extension(origin):
        watchlist.record_extension(fullname, origin)
