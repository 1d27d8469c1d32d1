"""Workers: the session's reload step in a worker process, once an edit reaches it.

``_join`` is what a worker imports to follow the session; this module (and the
reload step, ``_engine``) is imported when a version must first be applied to a
module the worker imported. The ``Follower`` then watches the worker's modules:
those it imported from the journal's texts run them; the others are adopted
(their file's text, asked of their code when the file changed since the worker
started). A module of the journal the worker imported before its version came
(or before joining) runs the session's *base* text of it (the text it ran
before its first reload), else its file's, else an unknown text: it is then re-run
whole. Dask's workers (``_dask``) use ``apply_versions`` too.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

from ._adopt import runs_this_text
from ._engine import ReloadStep
from ._join import INLINE, Joined, JournalTexts
from ._outcomes import Failure
from ._report import describe_failure
from ._source import SourceVersion, digest_of
from ._userfiles import real_path
from ._watch import Watchlist, source_path

__all__ = ["Follower", "adopt_imported_before", "apply_versions"]


class Follower:
    """A worker's reload step, made when an edit first reaches a module it imported.

    A forked worker has the session's (its modules ran the session's versions
    at the fork; the session's import hook, inherited, watches what it imports
    later). A spawned worker makes its own, with an import graph of its own.
    """

    def __init__(self, joined: Joined, session_step: ReloadStep | None) -> None:
        self.joined = joined
        self.adopted = session_step is not None  # the modules it imported before are watched
        self.step = session_step or ReloadStep(Watchlist(events=False))
        if session_step is not None:  # (forked: no warm-up thread here, and no cell to wait for)
            self.step.watchlist.settle_at_once()

    def catch_up(self, modules: dict[str, dict[str, str]]) -> list[tuple[str, str]]:
        """Bring every module this worker imported to the journal's versions, and their dependents
        along. Returns (key, message) for each failure, the key naming the version that failed."""
        self.watch_imports(modules)
        failures = apply_versions(modules, self.step, self.joined.texts)
        return [(f"{failure.module}-{key}", describe_failure(failure)) for failure, key in failures]

    def watch_imports(self, modules: dict[str, dict[str, str]]) -> None:
        """Watch what the worker imported since the last look: the journal's texts it runs, and
        the user's modules it loaded from their files (all of them, the first time). (Taken one
        by one: the worker may be importing meanwhile, see ``Joined._warm_up``.)"""
        watchlist = self.step.watchlist
        from_journal, imported = self.joined.from_journal, self.joined.imported
        while from_journal:
            name, (path, digest, data) = from_journal.popitem()
            watched = watchlist.get(name)
            if watched is None or watched.running.digest != digest:
                watchlist.record(name, SourceVersion(path, data, (0, 0, 0, 0), 0))
        if not self.adopted:
            adopt_imported_before(watchlist, modules)
            self.adopted = True
        later = []
        while imported:
            name = imported.pop()
            module = sys.modules.get(name)
            if module is None:
                later.append(name)  # being imported now: looked at next time
            elif isinstance(module, ModuleType) and name not in modules:
                watchlist.adopt(module)
        imported.extend(later)


def apply_versions(
    modules: dict[str, dict[str, str]], step: ReloadStep, texts: JournalTexts = INLINE
) -> list[tuple[Failure, str]]:
    """In a worker: bring each imported module to its entry's text (path, digest, text), and
    make its dependents follow, with the same reload step as the session: in place, state kept,
    transactional, dependencies first. Returns the failures (a version refused is one), each
    with a key naming the version that failed (the digest of its text, for a module of the journal)."""
    versions, refused = {}, []
    for name, entry in modules.items():
        try:
            version = _version_to_apply(name, entry, step.watchlist, texts)
        except _Refused as refusal:
            refused.append((refusal.failure, entry["digest"][:12]))
            continue
        if version is not None:
            versions[name] = version
    if not versions:
        return refused
    outcomes = step.run(versions, followers=False).outcomes
    failed = [(o, _failed_version(name, modules, step.watchlist)) for name, o in outcomes.items() if isinstance(o, Failure)]
    return refused + failed


def _failed_version(name: str, modules: dict[str, dict[str, str]], watchlist: Watchlist) -> str:
    """A key for the version that failed: the journal's digest of its text, or (a dependent
    whose own text did not change) the digest of the text it runs."""
    if name in modules:
        return modules[name]["digest"][:12]
    watched = watchlist.get(name)
    return watched.running.digest[:12] if watched is not None else "unknown"


class _Refused(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.error)
        self.failure = failure


def refusal(name: str, entry: dict[str, str], watchlist: Watchlist, running_at: str | None) -> str | None:
    """Why a worker must not apply this entry, if it must not: it names a module the session does
    not watch (not the user's code, and not marked with ``%aimport``), or one this worker runs
    from another file."""
    path = entry["path"]
    if not (entry.get("aimport") or watchlist.is_user(path)):
        return f"{name} is not one of the session's modules ({path} is not the user's code)"
    if running_at is not None and running_at != path and real_path(running_at) != real_path(path):
        return f"{name} runs {running_at} in this worker, the session's version is of {path}"
    return None


def _version_to_apply(
    name: str, entry: dict[str, str], watchlist: Watchlist, texts: JournalTexts
) -> SourceVersion | None:
    """The journal's text of an imported module, if it does not run it yet; the module is watched
    from here on, with the text it runs (unknown: it runs the new text whole). Raises ``_Refused``
    for an entry the session cannot have meant (see ``refusal``) or a text that is not its digest's."""
    module = sys.modules.get(name)
    if module is None:
        return None
    watched = watchlist.get(name)
    problem = refusal(name, entry, watchlist, watched.path if watched is not None else source_path(module))
    if problem is not None:
        raise _Refused(Failure(name, entry["path"], None, f"not applied: {problem}"))
    if watched is None:
        running = _running_text(module, entry, texts)
        if running is not None:
            watchlist.record(name, running)
            watched = watchlist.get(name)
    if watched is not None and watched.running.digest == entry["digest"]:
        return None
    version = _journal_version(name, entry, texts)
    if watched is None:  # what it runs is unknown: re-run whole from the new text
        watchlist.record(name, version)
        unknown = watchlist.get(name)
        assert unknown is not None
        unknown.trusted = False
    return version


def _journal_version(name: str, entry: dict[str, str], texts: JournalTexts) -> SourceVersion:
    """The entry's text, whole (its digest's); else ``_Refused``."""
    data = texts.text(entry)
    if data is None or digest_of(data) != entry["digest"]:
        why = "its text is missing" if data is None else "its text does not match its digest"
        raise _Refused(Failure(name, entry["path"], None, f"not applied: the journal's version of {name}: {why}"))
    return SourceVersion(entry["path"], data, (0, 0, 0, 0), 0)


def adopt_imported_before(watchlist: Watchlist, modules: dict[str, dict[str, str]]) -> None:
    """A worker that joined late: the user's modules it imported before are watched (with the
    text of their file) so that they follow what they import; those of the journal are brought
    to its text by ``apply_versions``."""
    for module in list(sys.modules.values()):
        if isinstance(module, ModuleType) and module.__name__ not in modules:
            watchlist.adopt(module)


def _running_text(module: Any, entry: dict[str, str], texts: JournalTexts) -> SourceVersion | None:
    """The text a module imported before this worker joined runs: the session's base text of it, or
    its file (asked of its code), else unknown (it is re-run whole from the new version)."""
    base = texts.base(entry)
    if base is not None:
        version = SourceVersion(entry["path"], base, (0, 0, 0, 0), 0)
        if runs_this_text(module, version):
            return version
    return _text_of(module)


def _text_of(module: Any) -> SourceVersion | None:
    """The text a module imported before hotswap joined this worker runs: its file, if its code
    matches it (else unknown, and the module is re-run whole from the new version)."""
    path = getattr(module, "__file__", None)
    if not isinstance(path, str) or not path.endswith(".py"):
        return None
    try:
        with open(path, "rb") as source:
            data = source.read()
    except OSError:
        return None
    version = SourceVersion(path, data, (0, 0, 0, 0), 0)
    return version if runs_this_text(module, version) else None
