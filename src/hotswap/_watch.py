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

import ast
import functools
import itertools
import marshal
import os
import site
import sys
import sysconfig
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.machinery import (
    EXTENSION_SUFFIXES,
    ExtensionFileLoader,
    ModuleSpec,
    SourceFileLoader,
)
from importlib.util import cache_from_source
from types import CodeType, ModuleType
from typing import Any

from ._events import Inotify, is_network_path, open_inotify
from ._source import (
    SourceVersion,
    digest_of,
    pin_in_linecache,
    read_version,
    stat_signature,
    unpin_from_linecache,
)
from ._vocab import UNKNOWN, assignment_targets, attribute_of_name, is_dunder

__all__ = ["Change", "Watched", "Watchlist", "is_user_extension", "is_user_file"]

_NEVER = frozenset({"__main__", "__mp_main__"})
_SAVE_GAP = 0.05  # seconds a file may be missing while an editor saves it
# Returned for a deleted file: a sentinel version whose digest matches nothing.
_GONE = SourceVersion(path="", data=b"", digest="gone", signature=(0, 0, 0, 0), read_at_ns=0)
_OWN_DIR = os.path.dirname(os.path.realpath(__file__)) + os.sep


def _library_roots() -> tuple[str, ...]:
    roots: set[str] = set()
    paths = sysconfig.get_paths()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        if key in paths:
            roots.add(paths[key])
    try:
        roots.update(site.getsitepackages())
        roots.add(site.getusersitepackages())
    except AttributeError:  # some embedded interpreters lack these
        pass
    return tuple(os.path.realpath(r).rstrip(os.sep) + os.sep for r in roots if r)


_LIBRARY_ROOTS = _library_roots()


def is_user_file(path: str) -> bool:
    """Is this the user's own Python source (not the stdlib, not an installed package)?

    Editable installs count as the user's code: their files live in the
    user's tree, not under site-packages.
    """
    if not path.endswith(".py"):
        return False
    return _in_user_tree(path)


def is_user_extension(path: str) -> bool:
    """A compiled extension module built in the user's tree (e.g. with Cython, in place)."""
    return path.endswith(tuple(EXTENSION_SUFFIXES)) and _in_user_tree(path)


def real_path(path: str) -> str:
    """``os.path.realpath``, resolving each folder once: a load looks at every loaded module."""
    folder, name = os.path.split(path)
    real = os.path.join(_real_folder(folder), name)
    return os.path.realpath(real) if os.path.islink(real) else real


@functools.lru_cache(maxsize=4096)
def _real_folder(folder: str) -> str:
    return os.path.realpath(folder)


def _in_user_tree(path: str) -> bool:
    real = real_path(path)
    parts = real.split(os.sep)
    if "site-packages" in parts or "dist-packages" in parts:
        return False
    return not real.startswith(_LIBRARY_ROOTS) and not real.startswith(_OWN_DIR)


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


@dataclass(frozen=True)
class Change:
    """A module's file has a new version, or (``version`` is None) is gone."""

    watched: Watched
    version: SourceVersion | None


class Watchlist:
    """The user's modules, by name, with the text each one is running."""

    def __init__(self, is_user: Callable[[str], bool] = is_user_file, *, events: bool = True) -> None:
        self.is_user = is_user
        self._modules: dict[str, Watched] = {}
        self._by_path: dict[str, set[str]] = {}  # file -> modules loaded from it
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
        self.overrides: Callable[[], dict[str, bytes]] | None = None
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
            self._modules[name] = watched
            self.generation += 1
            self._by_path.setdefault(version.path, set()).add(name)
            self._unconfirmed.add(name)  # a save between our read and the watch: look once
            self._watch_directory(name, version.path)
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

    def _watch_directory(self, name: str, path: str) -> None:
        if self._events is None:
            return
        directory = os.path.dirname(path)
        if is_network_path(directory) or not self._events.watch(directory):
            self._polled.add(name)

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
        self.record(name, version)
        if not _saved_since_start(version):
            return True
        imported = _code_it_was_imported_from(module)
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
            for name, watched in self._modules.items():
                self._watch_directory(name, watched.path)
        if self._hook is None:
            self._hook = _ImportHook(self)
            sys.meta_path.insert(0, self._hook)

    def stop(self) -> None:
        for watched in self._modules.values():
            unpin_from_linecache(watched.path)
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
        changes = []
        for name in self._to_look_at(everything):
            if not wanted(name):
                continue
            watched = self._modules.get(name)
            if watched is None:
                continue
            if name not in sys.modules:
                self._forget(name)
                continue
            version = self._read_if_changed(watched)
            if version is _GONE:
                if not watched.missing:
                    watched.missing = True
                    changes.append(Change(watched, None))
                continue
            came_back, watched.missing = watched.missing, False
            if not watched.trusted:
                version = version or watched.last_read
            elif version is None or version.digest == watched.running.digest:
                continue
            if version.digest == watched.failed_digest and not retry_failed and not came_back:
                continue  # (a file deleted and saved again is tried again: what it imports may have changed)
            changes.append(Change(watched, version))
        changes.sort(key=lambda change: change.watched.order)
        return changes

    def _to_look_at(self, everything: bool) -> list[str]:
        """The modules whose files may have changed since the last check."""
        if self._events is None:
            return list(self._modules)
        touched, lost = self._events.drain()
        if lost or everything:  # events were dropped, or asked to: look at everything
            self._unconfirmed.clear()
            return list(self._modules)
        look = {n for path in touched for n in self._by_path.get(path, ())}
        if self._polled or self._unconfirmed:
            look |= self._polled | self._unconfirmed
            self._unconfirmed.clear()
        return list(look)

    def _forget(self, name: str) -> None:
        watched = self._modules.pop(name, None)
        self.generation += 1
        if watched is not None:
            self._by_path.get(watched.path, set()).discard(name)
        self._polled.discard(name)
        self._unconfirmed.discard(name)

    def _read_if_changed(self, watched: Watched) -> SourceVersion | None:
        """The file's version if it may have changed, ``None`` if not, ``_GONE`` if deleted."""
        for attempt in range(2):
            try:
                signature = stat_signature(os.stat(watched.path))
                if signature == watched.last_read.signature and not watched.last_read.is_racy():
                    return None
                watched.last_read = read_version(watched.path)
                return watched.last_read
            except FileNotFoundError:
                if attempt == 0:
                    time.sleep(_SAVE_GAP)  # an editor's atomic save may be mid-way
            except OSError:
                return None  # unreadable for now: look again at the next check
        return _GONE


def _saved_since_start(version: SourceVersion) -> bool:
    """Could the file have been saved after this process imported it?

    A file last changed before the process started holds the text it
    imported; only the others are compared with what runs (a compile each).
    """
    started = _process_start_ns()
    return started is None or max(version.signature[0], version.signature[1]) >= started


@functools.lru_cache(maxsize=1)
def _process_start_ns() -> int | None:
    """When this process started (Linux: /proc), with a second's margin; None elsewhere."""
    try:
        with open("/proc/self/stat", "rb") as stat:
            fields = stat.read().rpartition(b")")[2].split()
        with open("/proc/stat", "rb") as system:
            boot = next(int(line.split()[1]) for line in system if line.startswith(b"btime"))
        ticks = os.sysconf("SC_CLK_TCK")
        started = boot + int(fields[19]) / ticks  # field 22, starttime, counted after the ")"
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return int((started - 1) * 1e9)


_LOOK: Any = object()  # runs_this_text: read __pycache__ itself


def runs_this_text(module: ModuleType, version: SourceVersion, imported: Any = _LOOK) -> bool:
    """Does the module run the code of this text? (Its functions' bytecode, and the values of
    its top-level ``NAME = literal`` assignments, compared.)

    For a module imported before hotswap was loaded: a file saved in between
    would otherwise be taken for the code that runs. ``imported``: the module's
    code from ``__pycache__`` (``_code_it_was_imported_from``), if the caller has it.
    """
    try:
        code = version.compile()
        tree = ast.parse(version.text)
    except (SyntaxError, ValueError):
        return False
    if imported is _LOOK:
        imported = _code_it_was_imported_from(module)
    if imported is not None:  # exact: the bytecode the import ran, from __pycache__
        return bool(imported == code)
    namespace = vars(module)
    if any(name not in namespace for name in _defined_and_kept(tree)):
        return False  # a function or class added since the import
    if not _classes_hold_only_their_text(namespace, module.__name__, tree):
        return False
    for owner, attribute, literal in _attributes_set(tree):
        if owner in namespace:
            value = getattr(namespace[owner], attribute, UNKNOWN)
            if value is UNKNOWN or (literal is not UNKNOWN and not _same_value(value, literal)):
                return False  # `Point.tag = 5` added or changed since the import
    bound = _bound_anywhere(tree)
    stars = any(isinstance(n, ast.ImportFrom) and any(a.name == "*" for a in n.names) for n in ast.walk(tree))
    for name, value in namespace.items() if not stars else ():
        if name not in bound and not is_dunder(name) and not isinstance(value, ModuleType):
            return False  # a name the text no longer binds (a submodule is bound by importing it)
    for name, value in _literal_assignments(tree).items():
        if name in namespace and not _same_value(namespace[name], value):
            return False
    compiled = {c.co_name: c for c in code.co_consts if isinstance(c, CodeType)}
    for name, value in namespace.items():
        body = compiled.get(name)
        if body is None or getattr(value, "__module__", None) != module.__name__:
            continue
        if isinstance(value, type):
            if value.__qualname__ == name and not _class_runs(value, body):
                return False
        elif isinstance(getattr(value, "__code__", None), CodeType):
            if value.__code__.co_name == name and not _same_code(value.__code__, body):
                return False
    return True


def _code_it_was_imported_from(module: ModuleType) -> CodeType | None:
    """The module's code as its import compiled it, from its ``__pycache__`` file, when that
    file is known to hold it: its functions' code is that of the module (compared), or, with no
    function to compare, the file was written since this process started (by its import)."""
    cached = getattr(getattr(module, "__spec__", None), "cached", None)
    if not isinstance(cached, str):
        return None
    try:
        with open(cached, "rb") as file:
            written = os.fstat(file.fileno()).st_mtime_ns
            data = file.read()
        code = marshal.loads(memoryview(data)[16:])
    except (OSError, ValueError, EOFError, TypeError):
        return None
    if not isinstance(code, CodeType):
        return None
    compiled = {c.co_name: c for c in code.co_consts if isinstance(c, CodeType)}
    compared = 0
    for name, value in vars(module).items():
        function_code = getattr(value, "__code__", None)
        if isinstance(function_code, CodeType) and function_code.co_name == name and name in compiled:
            if getattr(value, "__module__", None) != module.__name__:
                continue
            if function_code != compiled[name]:
                return None  # another text than the one imported (or another function)
            compared += 1
    if compared:
        return code
    started = _process_start_ns()
    return code if started is not None and written >= started else None


def _class_runs(cls: type, body: CodeType) -> bool:
    """Do the class's own functions run the code its body in this text defines?"""
    compiled = {c.co_name: c for c in body.co_consts if isinstance(c, CodeType)}
    for name, attribute in vars(cls).items():
        for function in _functions_of(attribute):
            code = function.__code__
            if code.co_name == name and name in compiled and not _same_code(code, compiled[name]):
                return False
    return True


def _functions_of(attribute: object) -> list[Any]:
    if isinstance(attribute, (staticmethod, classmethod)):
        attribute = attribute.__func__
    if isinstance(attribute, property):
        return [f for f in (attribute.fget, attribute.fset, attribute.fdel) if hasattr(f, "__code__")]
    return [attribute] if isinstance(getattr(attribute, "__code__", None), CodeType) else []


def _bound_anywhere(tree: ast.Module) -> set[str]:
    """Every name the text may bind (more than the module level: never fewer)."""
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bound.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).partition(".")[0] for a in node.names)
    return bound


def _defined_and_kept(tree: ast.Module) -> set[str]:
    """Names a fresh import of the text surely leaves in the module: bound by statements that
    run at import (not in functions, classes, ``if`` branches or ``except`` handlers)."""
    defined: set[str] = set()
    deleted: set[str] = set()
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            defined.update((a.asname or a.name).partition(".")[0] for a in node.names if a.name != "*")
            continue
        if isinstance(node, ast.Delete):
            deleted.update(n.id for t in node.targets for n in ast.walk(t) if isinstance(n, ast.Name))
            continue
        if isinstance(node, (ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try)):
            pending += node.body  # (a loop that runs no time makes this say "changed": safe side)
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and getattr(node, "value", None) is not None:
            targets = [node.target]
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            targets = [item.optional_vars for item in node.items if item.optional_vars is not None]
        for target in targets:
            defined.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return defined - deleted


def _classes_hold_only_their_text(namespace: dict[str, Any], owner: str, tree: ast.Module) -> bool:
    """Each top-level class of the text has no plain attribute that neither its body nor a
    top-level ``Class.attr = ...`` sets (one that a removed statement had set)."""
    set_after = {(o, a) for o, a, _ in _attributes_set(tree)}
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        cls = namespace.get(node.name)
        if not isinstance(cls, type) or cls.__module__ != owner or cls.__qualname__ != node.name:
            continue
        body = {n for statement in node.body for n in _names_bound_by(statement)}
        for name in vars(cls):
            if not (name.startswith("_") and name.endswith("_")) and name not in body and (node.name, name) not in set_after:
                return False
    return True


def _names_bound_by(statement: ast.stmt) -> set[str]:
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {statement.name}
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).partition(".")[0] for a in statement.names}
    return {n.id for n in ast.walk(statement) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}


def _attributes_set(tree: ast.Module) -> list[tuple[str, str, object]]:
    """``(Point, tag, 5)`` for each top-level ``Point.tag = 5`` (``UNKNOWN`` for a value that is
    not an immutable literal)."""
    found = []
    for node in tree.body:
        single = isinstance(node, ast.Assign) and len(node.targets) == 1
        if single or isinstance(node, ast.AnnAssign) and node.value is not None:
            where = attribute_of_name(assignment_targets(node)[0])
            if where is not None:
                assert isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None
                found.append((*where, _literal(node.value)))
    return found


def _literal(node: ast.expr) -> object:
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return UNKNOWN
    return value if _immutable(value) else UNKNOWN


def _literal_assignments(tree: ast.Module) -> dict[str, object]:
    """``NAME = <literal>`` at the top level of a text: the values a fresh import starts with."""
    values: dict[str, object] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            value = _literal(node.value)
            if value is not UNKNOWN:  # a list or dict the module fills as it runs proves nothing
                values[node.targets[0].id] = value
            else:
                values.pop(node.targets[0].id, None)
    return values


def _immutable(value: object) -> bool:
    if isinstance(value, (tuple, frozenset)):
        return all(_immutable(item) for item in value)
    return value is None or isinstance(value, (bool, int, float, complex, str, bytes))


def _same_value(running: object, literal: object) -> bool:
    try:
        return type(running) is type(literal) and bool(running == literal)
    except Exception:  # noqa: BLE001 - an odd __eq__: say different, to be safe
        return False


def _same_code(a: CodeType, b: CodeType) -> bool:
    """Same instructions, names, constants and lines (tracebacks must show the line that runs)."""
    if (
        a.co_code != b.co_code
        or a.co_names != b.co_names
        or a.co_firstlineno != b.co_firstlineno
        or a.co_linetable != b.co_linetable
        or len(a.co_consts) != len(b.co_consts)
    ):
        return False
    for x, y in zip(a.co_consts, b.co_consts):
        if isinstance(x, CodeType) and isinstance(y, CodeType):
            if not _same_code(x, y):
                return False
        elif type(x) is not type(y) or x != y:
            return False
    return True


class _RecordingLoader(SourceFileLoader):
    """Hands importlib the bytes it records as the module's source, and never bytecode.

    Only ``get_data`` is overridden, so importlib compiles and runs the module
    itself and tracebacks of a failing import look exactly as without hotswap.
    """

    def __init__(self, original: SourceFileLoader, watchlist: Watchlist) -> None:
        super().__init__(original.name, original.path)
        self.original = original
        self.watchlist = watchlist
        self._bytecode = cache_from_source(original.path)

    def get_data(self, path: str) -> bytes:
        if path == self._bytecode:
            # __pycache__ is trusted on size and whole-second mtime: never use it
            raise OSError("hotswap compiles user modules from their source")
        if path != self.path:
            return super().get_data(path)
        override = self.watchlist.overrides() if self.watchlist.overrides else {}
        if path in override:
            data = override[path]
            version = SourceVersion(path, data, digest_of(data), (0, 0, 0, 0), time.time_ns())
        else:
            version = read_version(path)
        self.watchlist.record(self.name, version)
        module = sys.modules.get(self.name)
        if module is not None and getattr(module, "__loader__", None) is self:
            # Leave no trace: the module looks exactly as a plain import makes it.
            module.__loader__ = self.original
            if module.__spec__ is not None:
                module.__spec__.loader = self.original
        return version.data


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
        spec: ModuleSpec | None = None
        for finder in sys.meta_path[sys.meta_path.index(self) + 1 :]:
            find = getattr(finder, "find_spec", None)
            if find is None:
                return None  # a legacy finder: let the import system take over
            spec = find(fullname, path, target)
            if spec is not None:
                break
        if spec is None or not isinstance(spec.origin, str):
            return spec
        then = watchlist.after_import.get(fullname)
        if then is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _ThenLoader(spec.loader, then)  # type: ignore[assignment]
        elif type(spec.loader) is SourceFileLoader and watchlist.is_user(spec.origin):
            spec.loader = _RecordingLoader(spec.loader, watchlist)
        elif isinstance(spec.loader, ExtensionFileLoader) and is_user_extension(spec.origin):
            watchlist.record_extension(fullname, spec.origin)
        return spec

    def invalidate_caches(self) -> None:
        pass
