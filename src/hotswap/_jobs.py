"""One check's work: the modules to bring up to date (``Job``) and what the check found (``Pass``);
and what following leaves behind (``Held``, ``Failed``) or does at once (``LeafFollow``).

Records only: the reload step (``_engine``) makes and runs them, the dependents (``_dependents``)
add the jobs of modules that must follow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from ._outcomes import Failure, Reloaded
from ._source import SourceVersion
from ._watch import Watched

if TYPE_CHECKING:
    from ._leaves import Followed

__all__ = ["Failed", "Held", "Job", "LeafFollow", "Outcome", "Pass", "every_module"]

Outcome = Reloaded | Failure


@dataclass(slots=True)
class Job:
    """One module to bring up to date in this check."""

    watched: Watched
    version: SourceVersion | None  # None: same text, only modules it imports from changed
    retry: bool = False  # a version that failed, tried again because a module it imports changed
    rebind: dict[str, tuple[object, object]] = field(default_factory=dict)  # alias -> (old, new)
    sources: dict[str, str] = field(default_factory=dict)  # alias -> the module it is from
    names: dict[str, str] = field(default_factory=dict)  # alias -> its name in that module
    followed: Reloaded | None = None  # its version failed, but it followed what it imports

    def follow(self, alias: str, old: object, new: object, source: str, name: str) -> None:
        """Re-bind ``alias`` (``source.name``) from ``old`` to ``new`` in this job."""
        self.rebind[alias] = (old, new)
        self.sources[alias] = source
        self.names[alias] = name

    def retry_with(self, version: SourceVersion) -> None:
        """Try this failed version again (a dependent already following a name: its version too)."""
        if self.version is None:
            self.version, self.retry = version, True

    def after(self) -> tuple[str, ...]:
        """The modules it follows, for reports (one, mostly)."""
        sources = set(self.sources.values())
        return tuple(sources) if len(sources) < 2 else tuple(sorted(sources))


def every_module(name: str) -> bool:
    """What a worker's step may reload: each module the session sends."""
    return True


@dataclass(slots=True)
class Pass:
    """One check's work in progress: the jobs left, the modules done, what it found and where."""

    jobs: dict[str, Job]
    done: set[str] = field(default_factory=set)
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    elsewhere: dict[str, list[str]] = field(default_factory=dict)  # source -> "where.name" re-bound
    seconds: dict[str, float] = field(default_factory=dict)  # module -> time its reload took
    # per source, the leaves that followed from its table (None: no outcome is made for them)
    followers: list[tuple[str, list[Followed]]] | None = None
    retried: set[str] = field(default_factory=set)  # failed versions tried again (see ``Failed``)
    # the modules this check may reload: a failed version is tried again only if its module is
    # one (``%aimport -name``: never reloaded, even when what it imports changes)
    may_reload: Callable[[str], bool] = every_module
    bases: dict[str, SourceVersion] = field(default_factory=dict)  # module -> the text it ran before

    def rebound(self, source: str) -> list[str]:
        """Where names of ``source`` were re-bound, to add to."""
        return self.elsewhere.setdefault(source, [])


class Held(NamedTuple):
    """A name a failed follow left holding an earlier value of ``source.name``."""

    value: object
    source: str
    name: str


class LeafFollow(NamedTuple):
    """One name a leaf follows now: its alias there, what it holds, what it gets, its name in the source."""

    alias: str
    old: object
    new: object
    name: str


class Failed(NamedTuple):
    """A module's new version that failed, and the modules that text imports from: tried again
    when one of those changes (it may have failed for want of a name)."""

    version: SourceVersion
    sources: frozenset[str]
