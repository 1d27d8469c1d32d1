"""The import hook: a meta-path finder placed first, which hands each user module's import a loader
that reads, hashes and records the module's bytes (``Watchlist.record``) and gives importlib its
``__pycache__`` only when it is known to be of those bytes.

importlib still compiles and runs the module itself: tracebacks of a failing import look exactly
as without hotswap, and after the import the module has its original loader back.
"""

from __future__ import annotations

import _imp
import time
from collections.abc import Callable, Mapping, Sequence
from importlib.machinery import BYTECODE_SUFFIXES, ExtensionFileLoader, ModuleSpec, SourceFileLoader
from importlib.util import MAGIC_NUMBER, source_hash
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ._join import leave_no_trace, spec_after
from ._source import SourceVersion, read_bytes, read_version
from ._userfiles import is_user_extension

if TYPE_CHECKING:
    from ._watch import Watchlist

__all__ = ["ImportHook"]


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
    never written again. The source is read where importlib asks for its stat, the
    one time: the stat given is the one taken from the open file before reading it.
    """

    def __init__(self, original: SourceFileLoader, watchlist: Watchlist) -> None:
        self.name, self.path = original.name, original.path  # (what ``FileLoader.__init__`` sets: one call less)
        self.original = original
        self.watchlist = watchlist
        self._source: bytes | None = None  # the bytes recorded, once read

    def _overridden(self, path: str) -> bool:
        """A worker's module from the session's text, not its file's: no bytecode cache of it."""
        overrides = self.watchlist.overrides
        return overrides is not None and path in overrides()

    def path_stats(self, path: str) -> Mapping[str, Any]:
        if path != self.path:
            return super().path_stats(path)
        if self._overridden(path):
            raise OSError("a worker's module from the session's text: no bytecode cache")
        mtime_ns, _ctime_ns, size, _inode = self._record(read_version(path, until_unchanged=False)).signature
        return {"mtime": mtime_ns / 1e9, "size": size}

    def get_data(self, path: str) -> bytes:
        if path == self.path:
            if self._source is not None:  # (read for ``path_stats``)
                return self._source
            data = self.watchlist.overrides().get(path) if self.watchlist.overrides else None
            if data is not None:  # (a worker: the session's text of it)
                return self._record(SourceVersion(path, data, (0, 0, 0, 0), time.time_ns())).data
            return self._record(read_version(path, until_unchanged=False)).data
        if path.endswith(_BYTECODE_SUFFIXES):
            return _checked_bytecode(path)
        return super().get_data(path)

    def _record(self, version: SourceVersion) -> SourceVersion:
        self.watchlist.record(self.name, version)
        self._source = version.data
        leave_no_trace(self, self.original)
        return version

    def _cache_bytecode(self, source_path: str, bytecode_path: str, data: bytes) -> None:
        """importlib compiled the bytes recorded: write the bytecode checked and hash-based."""
        if self._source is None or source_path != self.path:
            return
        if len(data) < 16 or data[:4] != MAGIC_NUMBER:
            return
        pyc = MAGIC_NUMBER + _CHECKED_HASH.to_bytes(4, "little") + source_hash(self._source) + data[16:]
        super()._cache_bytecode(source_path, bytecode_path, pyc)  # type: ignore[misc]


_BYTECODE_SUFFIXES = tuple(BYTECODE_SUFFIXES)
_CHECKED_HASH = 0b11  # PEP 552 flags: hash-based, checked against the source at each import


def _checked_bytecode(path: str) -> bytes:
    """A ``__pycache__`` file's bytes, if it is checked and hash-based (importlib then compares its
    hash with the source's); any other kind says nothing sure of the source, and is not read."""
    if _imp.check_hash_based_pycs == "never":  # (``--check-hash-based-pycs never``: not compared)
        raise OSError("hash-based bytecode is not checked in this interpreter")
    data = read_bytes(path)
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


class ImportHook:
    """A meta-path finder placed first: it asks the others, and records user modules."""

    def __init__(self, watchlist: Watchlist) -> None:
        self.watchlist: Watchlist | None = watchlist

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        watchlist = self.watchlist
        if watchlist is None:
            return None
        spec = spec_after(self, fullname, path, target)  # (none if this finder left ``sys.meta_path``)
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
