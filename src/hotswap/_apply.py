"""Apply: run a module's new version, then commit it or roll it back exactly.

The new code runs in the module's own namespace (so every function it makes
has the right globals) after a snapshot of that namespace. While it runs,
``class`` statements of the module are intercepted: a class that existed
before is upgraded in place and the *old* class object is bound, so that
subclasses, instances made at import time and decorators all see the class
the user already holds. When the run finished, functions are upgraded in place
and the old objects re-bound; if anything failed, the snapshot and the undo log
put the module back exactly as it was.
"""

from __future__ import annotations

import builtins
import threading
import traceback
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ._source import SourceVersion
from ._upgrade import Transaction, is_code, try_upgrade

__all__ = ["Failure", "Reloaded", "reload_module"]

# Set by the import system, not by the module's code: kept across a re-run.
_IMPORT_STATE = (
    "__name__",
    "__file__",
    "__package__",
    "__spec__",
    "__loader__",
    "__path__",
    "__cached__",
    "__builtins__",
)

_build_class_lock = threading.Lock()


@dataclass(frozen=True)
class Reloaded:
    """A module now runs its new version."""

    module: str
    path: str
    upgraded: tuple[str, ...] = ()  # existing functions and classes, same objects, new code
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    rebound: tuple[str, ...] = ()  # other values whose object changed
    stayed_old: tuple[tuple[str, str], ...] = ()  # (object, why it could not be upgraded)


@dataclass(frozen=True)
class Failure:
    """The new version could not be applied; the module runs its previous one."""

    module: str
    path: str
    line: int | None
    error: str  # "ZeroDivisionError: division by zero"
    source_line: str | None = None
    interrupted: bool = False
    internal: bool = False  # a hotswap bug, not the user's code


@dataclass
class _Run:
    """What one re-run of a module saw; filled by the class interceptor."""

    module: types.ModuleType
    snapshot: dict[str, Any]
    txn: Transaction
    claimed: set[int] = field(default_factory=set)
    classes: list[str] = field(default_factory=list)


def reload_module(module: types.ModuleType, version: SourceVersion) -> Reloaded | Failure:
    """Re-run ``module`` from ``version``; on any failure leave it exactly as it was."""
    try:
        code = version.compile()
    except SyntaxError as error:
        return _syntax_failure(module.__name__, version.path, error)
    namespace = module.__dict__
    run = _Run(module, dict(namespace), Transaction(module.__name__))
    try:
        _reset_namespace(namespace, run.snapshot)
        with _intercept_classes(run):
            exec(code, namespace)
    except BaseException as error:  # noqa: BLE001 - every failure is rolled back
        _restore(run)
        return _run_failure(module.__name__, version, error)
    try:
        outcome = _commit_globals(run, version.path)
    except Exception as error:
        _restore(run)
        return Failure(
            module.__name__, version.path, None, f"{type(error).__name__}: {error}", internal=True
        )
    run.txn.commit()
    return outcome


def _reset_namespace(namespace: dict[str, Any], snapshot: dict[str, Any]) -> None:
    """Start from what a fresh import starts from, so the result is what it would give."""
    namespace.clear()
    namespace.update({k: snapshot[k] for k in _IMPORT_STATE if k in snapshot})
    namespace["__doc__"] = None


def _restore(run: _Run) -> None:
    namespace = run.module.__dict__
    namespace.clear()
    namespace.update(run.snapshot)
    run.txn.rollback()


def _find_old_class(snapshot: dict[str, Any], qualname: str) -> type | None:
    if "<locals>" in qualname:
        return None
    first, *rest = qualname.split(".")
    found = snapshot.get(first)
    for part in rest:
        found = getattr(found, "__dict__", {}).get(part)
    return found if isinstance(found, type) else None


@contextmanager
def _intercept_classes(run: _Run) -> Iterator[None]:
    """While the module runs, its class statements yield the classes the user already holds."""
    original: Callable[..., Any] = builtins.__build_class__
    namespace = run.module.__dict__

    def build_class(func: Any, name: str, *bases: Any, **kwds: Any) -> Any:
        new = original(func, name, *bases, **kwds)
        if getattr(func, "__globals__", None) is not namespace or not isinstance(new, type):
            return new
        old = _find_old_class(run.snapshot, func.__qualname__)
        if old is None or id(old) in run.claimed or old.__module__ != new.__module__:
            return new
        run.claimed.add(id(old))
        kept = try_upgrade(old, new, run.txn)
        if kept is old:
            run.classes.append(func.__qualname__)
        return kept

    with _build_class_lock:
        builtins.__build_class__ = build_class  # type: ignore[assignment]
        try:
            yield
        finally:
            builtins.__build_class__ = original


def _commit_globals(run: _Run, path: str) -> Reloaded:
    """Bind the old functions (upgraded) where the new run made new ones."""
    namespace, snapshot, txn = run.module.__dict__, run.snapshot, run.txn
    upgraded: list[str] = []
    rebound: list[str] = []
    for name, new in list(namespace.items()):
        old = snapshot.get(name, _ABSENT)
        if old is _ABSENT or old is new or name in _IMPORT_STATE:
            continue
        if is_code(old) and is_code(new) and getattr(old, "__module__", None) == run.module.__name__:
            kept = try_upgrade(old, new, txn)
            if kept is old:
                namespace[name] = old
                upgraded.append(name)
                continue
        rebound.append(name)
    _keep_submodules(run)
    added = [n for n in namespace if n not in snapshot and not _is_dunder(n)]
    removed = [n for n in snapshot if n not in namespace and not _is_dunder(n)]
    upgraded += [c for c in run.classes if c in namespace and c not in upgraded]
    return Reloaded(
        module=run.module.__name__,
        path=path,
        upgraded=tuple(upgraded),
        added=tuple(added),
        removed=tuple(removed),
        rebound=tuple(rebound),
        stayed_old=tuple(dict.fromkeys(txn.notes)),
    )


_ABSENT: Any = object()


def _keep_submodules(run: _Run) -> None:
    """A package's submodules are attributes the import system set: a re-run keeps them."""
    prefix = run.module.__name__ + "."
    namespace = run.module.__dict__
    for name, value in run.snapshot.items():
        if (
            name not in namespace
            and isinstance(value, types.ModuleType)
            and value.__name__ == prefix + name
        ):
            namespace[name] = value


def _is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


def _syntax_failure(module: str, path: str, error: SyntaxError) -> Failure:
    text = (error.text or "").strip() or None
    return Failure(module, path, error.lineno, f"{type(error).__name__}: {error.msg}", text)


def _run_failure(module: str, version: SourceVersion, error: BaseException) -> Failure:
    if isinstance(error, SyntaxError) and error.filename == version.path:
        return _syntax_failure(module, version.path, error)
    line = None
    for frame, lineno in traceback.walk_tb(error.__traceback__):
        if frame.f_code.co_filename == version.path:
            line = lineno  # the innermost frame in the module's own file
    lines = version.text.splitlines()
    source_line = lines[line - 1].strip() or None if line and line <= len(lines) else None
    message = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return Failure(
        module,
        version.path,
        line,
        message,
        source_line,
        interrupted=isinstance(error, KeyboardInterrupt),
    )
