"""Outcomes: what one module's reload did, as values the report and status steps read."""

from __future__ import annotations

import gc
import os
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from ._source import SourceVersion, UndecodableSource

__all__ = ["Failure", "Reloaded", "collector_paused", "internal_failure", "run_failure", "syntax_failure"]


@dataclass(slots=True)
class Reloaded:
    """A module now runs its new version.

    A value: never changed once made (``dataclasses.replace`` makes another).
    Not ``frozen`` only because an edit of ``core`` makes one per dependent,
    and a frozen dataclass takes three times as long to build; with slots, no
    dict per outcome to build and for the garbage collector to walk.
    """

    module: str
    path: str
    upgraded: tuple[str, ...] = ()  # existing functions and classes, same objects, new code
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    rebound: tuple[str, ...] = ()  # other values whose object changed
    # functions upgraded in place whose products cannot take the new code (a decorator whose
    # wrapper captures other variables now): what dependents made with them is made again
    remade: tuple[str, ...] = ()
    stayed_old: tuple[tuple[str, str], ...] = ()  # (object, why it could not be upgraded)
    reran: tuple[str, ...] = ()  # statements that ran again ("line 3 (X = 2)")
    whole_module: str | None = None  # why the whole module re-ran, when it did
    followed: tuple[str, ...] = ()  # names re-bound because the module they came from changed
    after: tuple[str, ...] = ()  # the file did not change: these modules it imports from did
    rebound_elsewhere: tuple[str, ...] = ()  # "analysis.K", "user namespace K": dependents re-bound
    # name -> (old object, new object), for every name whose object changed (dependents follow)
    changes: Mapping[str, tuple[object, object]] = field(default_factory=dict, repr=False, compare=False)
    # name -> the object a removed name held (who imported it still holds it)
    gone: Mapping[str, object] = field(default_factory=dict, repr=False, compare=False)
    # (old, new) ``__all__`` when it changed (``UNBOUND`` for none): ``from m import *`` follows
    all_changed: tuple[object, object] | None = field(default=None, repr=False, compare=False)


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
    ran: bool = False  # (internal) the new text ran: the error came after, while others followed it
    after: tuple[str, ...] = ()  # the file did not change: these modules it imports from did
    deleted: bool = False  # the module's file is gone
    compiled: bool = False  # a C extension was rebuilt: only a restart can load it
    column: int | None = None  # 1-based, in ``source_line``
    # the traceback, without hotswap's frames (with them for an internal error: to report)
    details: str = field(default="", repr=False, compare=False)


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector waits meanwhile (nested: the outermost pause decides).

    A reload allocates in a burst (parsed texts, snapshots, one outcome per
    dependent), and each collection it would trigger walks what is alive then.
    A caller that also reports the outcomes pauses it around both: once they
    are dropped, most of that burst is gone and no collection is due.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def syntax_failure(module: str, path: str, error: SyntaxError) -> Failure:
    text, column = _stripped(error.text or "", error.offset)
    kind = "SyntaxError" if isinstance(error, UndecodableSource) else type(error).__name__  # as Python says it
    return Failure(module, path, error.lineno, f"{kind}: {error.msg}", text, column=column)


def _stripped(line: str, column: int | None) -> tuple[str | None, int | None]:
    """A source line without its indentation, and a 1-based column moved to match."""
    text = line.rstrip("\n").rstrip()
    indent = len(text) - len(text.lstrip())
    if column is not None:
        column = max(1, column - indent)
    return text.strip() or None, column


def run_failure(module: str, version: SourceVersion, error: BaseException) -> Failure:
    """What running the module's statements raised; an error from hotswap's own code is said as such."""
    if isinstance(error, SyntaxError) and error.filename == version.path:
        return syntax_failure(module, version.path, error)
    if not isinstance(error, KeyboardInterrupt) and not _raised_by_statements(error, version.path):
        return internal_failure(module, version.path, error)
    entries = [e for e in traceback.extract_tb(error.__traceback__) if not e.filename.startswith(_OWN_DIR)]
    line, column = _innermost_in(entries, version.path)
    source_line, column = _source_at(version.text, line, column)
    return Failure(
        module,
        version.path,
        line,
        _error_message(error),
        source_line,
        interrupted=isinstance(error, KeyboardInterrupt),
        column=column,
        details="".join(
            ["Traceback (most recent call last):\n", *traceback.format_list(entries)]
            + traceback.format_exception_only(type(error), error)
        ),
    )


def internal_failure(module: str, path: str, error: BaseException, *, ran: bool = False) -> Failure:
    """An error inside hotswap (``ran``: after the module's new text ran), with its whole traceback."""
    return Failure(
        module,
        path,
        None,
        _error_message(error),
        internal=True,
        ran=ran,
        details="".join(traceback.format_exception(type(error), error, error.__traceback__)),
    )


def _raised_by_statements(error: BaseException, path: str) -> bool:
    """Did the error come from running the module's own statements (the user's code)?

    The first frame that is not hotswap's tells: the module's statements (its
    ``<module>`` code) are the user's code running; anything else (a user's
    ``__eq__`` hotswap called while comparing, the standard library) was
    called by hotswap itself, so the error is hotswap's to report.
    """
    for entry in traceback.extract_tb(error.__traceback__):
        if not entry.filename.startswith(_OWN_DIR):
            return entry.filename == path and entry.name == "<module>"
    return False


def _innermost_in(entries: list[traceback.FrameSummary], path: str) -> tuple[int | None, int | None]:
    """The line and (0-based) column of the innermost frame in the module's own file."""
    line = column = None
    for entry in entries:
        if entry.filename == path:
            line, column = entry.lineno, getattr(entry, "colno", None)
    return line, column


def _source_at(text: str, line: int | None, column: int | None) -> tuple[str | None, int | None]:
    """The stripped text of ``line`` and the 1-based column in it (``None`` where unknown)."""
    lines = text.splitlines()
    if not line or line > len(lines):
        return None, column
    return _stripped(lines[line - 1], None if column is None else column + 1)


def _error_message(error: BaseException) -> str:
    """``ZeroDivisionError: division by zero``, or the bare type when the error says nothing."""
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


_OWN_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
