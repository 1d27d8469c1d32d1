"""The transaction of one reload: snapshot, run, then commit or restore exactly.

A reload runs against a snapshot of the module's namespace and an undo log
(``_undo.Transaction``). While code runs, other threads are held off (the
switch interval), the cyclic garbage collector waits, and ``class`` statements
of the module are intercepted: a class that existed before (or that an earlier
save removed, ``_tombstones``) is upgraded in place and the *old* class object is bound, so that subclasses, instances made
at import time and decorators all see the class the user already holds. If
anything fails, the snapshot and the undo log put the module back exactly as
it was, and registries that class hooks filled name the classes as before.
"""

from __future__ import annotations

import builtins
import functools
import sys
import threading
import time
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from . import _parse
from ._aftercare import forget_registered, may_have_registered, replace_stand_ins
from ._libraries import KeptClass
from ._outcomes import Failure, Reloaded, collector_paused, run_failure
from ._source import SourceVersion
from ._tombstones import graves_of
from ._undo import Transaction, Writes
from ._upgrade import try_upgrade
from ._vocab import UNBOUND, is_dunder

__all__ = ["InternalError", "NeedsWholeModule", "Run", "reloading", "run_in_transaction"]


_build_class_lock = threading.Lock()


@dataclass
class Run:
    """One reload of one module: its namespace's way back (``writes``, guarded: a snapshot), the
    undo log of its objects (``txn``), and what happened."""

    module: types.ModuleType
    writes: Writes
    txn: Transaction
    claimed: set[int] = field(default_factory=set)  # old classes already upgraded
    classes: list[str] = field(default_factory=list)
    upgraded: list[str] = field(default_factory=list)
    reran: list[str] = field(default_factory=list)
    followed: list[str] = field(default_factory=list)
    unbound: list[str] = field(default_factory=list)  # followed names that no longer exist
    intercepting: bool = True
    roots: Callable[[], Iterable[dict[str, Any]]] | None = None
    after: tuple[str, ...] = ()  # a dependent: the modules it imports from that changed
    running: SourceVersion | None = None  # the text the module ran until now, if known
    whole: bool = False  # the whole module runs again
    class_notes: dict[int, list[tuple[str, str]]] = field(default_factory=dict)  # id(old class) -> notes
    # classes built from a new body and replaced by the kept class, that class hooks may have seen
    stand_ins: dict[int, tuple[object, object]] = field(default_factory=dict)
    # (class name, attribute): an attribute of a class kept in place that now holds another object
    replaced: set[tuple[str, str]] = field(default_factory=set)
    # classes new in this run that class hooks may have stored: forgotten if the run fails
    fresh_classes: list[type] = field(default_factory=list)
    kept_classes: list[KeptClass] = field(default_factory=list)  # upgraded in place: libraries rebuild

    @property
    def namespace(self) -> dict[str, Any]:
        return self.module.__dict__

    @property
    def snapshot(self) -> dict[str, Any]:
        """The namespace as it was before the reload."""
        snapshot = self.writes.snapshot
        assert snapshot is not None
        return snapshot


class NeedsWholeModule(Exception):
    """The partial update cannot vouch for the result: re-run the whole module."""


def run_in_transaction(
    module: types.ModuleType,
    version: SourceVersion,
    body: Callable[[Run], Reloaded],
    roots: Callable[[], Iterable[dict[str, Any]]] | None = None,
    after: tuple[str, ...] = (),
    running: SourceVersion | None = None,
) -> Reloaded | Failure:
    """Run ``body`` against a snapshot: commit on success, restore exactly on any failure.

    Other threads are kept from running meanwhile (the interpreter is told to
    switch threads far less often), so code running in the background sees the
    module before or after the reload, not half-way. Best effort: a thread
    already waiting for its turn (one busy with pure Python) can still get one
    after the usual 5 ms, and so can any thread while the module's own code
    blocks (sleeps, waits on I/O).
    """
    writes = Writes(module.__dict__)
    writes.guard()  # any code may run: the whole namespace is kept
    run = Run(module, writes, Transaction(module.__name__), roots=roots, after=after, running=running)
    try:
        with reloading(), _running(run):
            outcome = body(run)
    except NeedsWholeModule:
        _restore(run)
        raise
    except InternalError as error:
        _restore(run)
        cause = error.__cause__
        return Failure(
            module.__name__, version.path, None, f"{type(cause).__name__}: {cause}", internal=True
        )
    except BaseException as error:  # noqa: BLE001 - every failure is rolled back
        _restore(run)
        _unregister(run)
        return run_failure(module.__name__, version, error)
    run.txn.commit()
    return outcome


@contextmanager
def reloading() -> Iterator[None]:
    """One check: threads held off and class statements intercepted, once for all its modules.

    A caller that reloads many modules (the reloader, at each check) enters it
    once around all of them; ``reload_module`` enters it itself otherwise.
    The cyclic garbage collector waits meanwhile (``collector_paused``).
    """
    global _reloading
    if _reloading:
        yield
        return
    with _build_class_lock:
        interval = sys.getswitchinterval()
        sys.setswitchinterval(_held_interval())
        original: Callable[..., Any] = builtins.__build_class__
        builtins.__build_class__ = functools.partial(_build_class, original)
        _reloading = True
        started = time.perf_counter()
        try:
            with collector_paused():
                yield
        finally:
            _reloading = False
            builtins.__build_class__ = original
            sys.setswitchinterval(interval)
            _reload_took(time.perf_counter() - started)


_reloading = False
_current_run: Run | None = None  # the module being reloaded now, if any


@contextmanager
def _running(run: Run) -> Iterator[None]:
    global _current_run
    outer, _current_run = _current_run, run
    try:
        yield
    finally:
        _current_run = outer


# Threads that start waiting for the interpreter while modules are re-applied wait longer
# than usual before asking for it: about twice what a reload takes here (a running average),
# from 5 ms (Python's own) to 0.5 s. Not a fixed 0.5 s: whenever the reload waits itself (a
# lock, a system call), a busy thread that gets the interpreter keeps it that long, and a
# cell stalled for 0.5 s (bench/footprint.py, stalls).
_SHORTEST_INTERVAL, _LONGEST_INTERVAL = 0.005, 0.5
_expected_reload = 0.01  # seconds, a running average of what a check's reloads take


def _held_interval() -> float:
    return min(_LONGEST_INTERVAL, max(_SHORTEST_INTERVAL, 2 * _expected_reload))


def _reload_took(seconds: float) -> None:
    global _expected_reload
    _expected_reload = 0.7 * _expected_reload + 0.3 * seconds


class InternalError(Exception):
    """hotswap itself failed while committing (not the user's code)."""


def _restore(run: Run) -> None:
    run.writes.undo()
    run.txn.rollback()


def _unregister(run: Run) -> None:
    """A failed run's class statements ran their hooks: registries name the classes as before."""
    if not run.stand_ins and not run.fresh_classes:
        return
    namespaces = [run.namespace, *(run.roots() if run.roots else ())]
    txn = Transaction(run.module.__name__)
    replace_stand_ins(run.stand_ins.values(), namespaces, txn)  # (new class, the class kept)
    forget_registered(run.fresh_classes, namespaces, txn)
    txn.commit()


def _keep_attributes_set_outside(run: Run, cls: type, before: dict[str, Any], qualname: str) -> None:
    """Attributes the class got from outside its body (``Point.tag = 5`` after it, a user's
    ``m.Point.debug = True``) survive its body re-running, as the statements that set them
    do not run again. Known only where the text it ran is known; dunders are the class's own."""
    own = _own_attributes(run, qualname)
    if own is None:
        return
    for name, value in before.items():
        if name not in vars(cls) and name not in own and not (name.startswith("_") and name.endswith("_")):
            run.txn.set(cls, name, value)


def _note_replaced(run: Run, cls: type, before: dict[str, Any], qualname: str) -> None:
    """The attributes of a class kept in place that now hold another object (not upgraded in
    place): what the module made from them (``foo = Foo.foo``) is made again (``_apply``)."""
    after = vars(cls)
    run.replaced |= {
        (qualname, name) for name, value in before.items() if not is_dunder(name) and after.get(name, UNBOUND) is not value
    }


def _own_attributes(run: Run, qualname: str) -> set[str] | frozenset[str] | None:
    """The attributes the text the module ran sets in the class body (and, where the whole
    module runs again, after it); None where that is not known."""
    if run.running is None:
        return None
    try:
        own = _parse.class_body_names(run.running.text, run.running.path).get(qualname)
    except SyntaxError:
        return None
    if own is not None and run.whole:  # what the text set after the class runs again too, if it is still there
        owner = qualname.partition(".")[0]
        own = own | {a for o, a in _parse.attributes_set(run.running.text, run.running.path) if o == owner}
    return own


def _find_old_class(snapshot: Mapping[str, object], qualname: str) -> type | None:
    if "<locals>" in qualname:
        return None
    first, *rest = qualname.split(".")
    found = snapshot.get(first)
    for part in rest:
        found = getattr(found, "__dict__", {}).get(part)
    return found if isinstance(found, type) else None


def _old_class(run: Run, qualname: str, new: type) -> type | None:
    """The class the module held under this qualname, or else the one a save removed from it
    (``_tombstones``), of the same metaclass: claimed alike, so what was made from it before is
    of the class again."""
    if qualname.partition(".")[0] in run.snapshot:
        return _find_old_class(run.snapshot, qualname)
    old = _find_old_class(graves_of(run.module).names, qualname)
    return old if type(old) is type(new) else None


def _build_class(original: Callable[..., Any], func: Any, name: str, *bases: Any, **kwds: Any) -> Any:
    """While a module runs, its class statements yield the classes the user already holds."""
    new = original(func, name, *bases, **kwds)
    run = _current_run
    if (
        run is None
        or not run.intercepting
        or getattr(func, "__globals__", None) is not run.namespace
        or not isinstance(new, type)
    ):
        return new
    # the class's own ``__qualname__`` (its body sets it): before 3.11 the body function of a
    # nested class is named ``Inner``, not ``Point.Inner``
    qualname = new.__qualname__
    old = _old_class(run, qualname, new)
    if old is None or id(old) in run.claimed or old.__module__ != new.__module__:
        if may_have_registered(new):
            run.fresh_classes.append(new)
        return new
    run.claimed.add(id(old))
    notes = len(run.txn.notes)
    mro_before = old.__mro__
    before = run.txn.keep_class_dict(old)  # what decorators then set on it is undone on failure too
    kept = try_upgrade(old, new, run.txn)
    if kept is old:
        run.kept_classes.append(KeptClass(old, before, mro_before))
        _keep_attributes_set_outside(run, old, before, qualname)
        _note_replaced(run, old, before, qualname)
        run.classes.append(qualname)
        if may_have_registered(new):
            run.stand_ins[id(new)] = (new, old)
    else:  # said at the end, unless a decorator's class is then upgraded in its place
        run.class_notes[id(old)] = run.txn.notes[notes:]
        del run.txn.notes[notes:]
    return kept
