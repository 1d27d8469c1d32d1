"""Status: what hotswap watches, how, what it did last, and what is still broken.

``Status.of(reloader)`` is a plain value; it renders as text in a terminal
(``str``, IPython's pretty printer) and as a compact table in a notebook
(``_repr_html_``).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from ._outcomes import Failure
from ._reloader import Event, Reloader
from ._report import describe_reload

__all__ = ["Errors", "Status"]


@dataclass(frozen=True, repr=False)
class Status:
    mode: str
    watched: int
    roots: tuple[str, ...]
    detection: str
    recent: tuple[Event, ...]
    broken: tuple[Event, ...]
    workers: tuple[str, ...] = ()  # one line per set of workers following the session

    @classmethod
    def of(cls, reloader: Reloader) -> Status:
        paths = [w.path for w in map(reloader.watchlist.get, reloader.watchlist.names()) if w is not None]
        return cls(
            mode=reloader.mode.name.lower(),
            watched=len(paths),
            roots=_roots(paths),
            detection=reloader.watchlist.detection,
            recent=tuple(reloader.history)[-8:],
            broken=tuple(reloader.broken.values()),
            workers=tuple(reloader.worker_versions()),
        )

    def __str__(self) -> str:
        lines = [
            f"hotswap: mode {self.mode}; {self.watched} module(s) watched"
            + (f" under {', '.join(self.roots)}" if self.roots else ""),
            f"changes found by: {self.detection}",
        ]
        if self.workers:
            lines.append("workers:")
            lines += ["  " + line for line in self.workers]
        if self.broken:
            lines.append("waiting for a good save:")
            for event in self.broken:
                lines += ["  " + line for line in _broken_lines(event)]
        if self.recent:
            lines.append("last reloads:")
            for event in reversed(self.recent):
                lines.append(f"  {_clock(event.when)}  {_summary(event)}  ({event.seconds * 1000:.1f} ms)")
        else:
            lines.append("no reload yet")
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))

    def _repr_html_(self) -> str:
        import html  # (only notebooks ask)

        e = html.escape
        rows = [
            f"<tr><th>mode</th><td>{e(self.mode)}</td></tr>",
            f"<tr><th>watched</th><td>{self.watched} module(s)"
            + (f" under <code>{e(', '.join(self.roots))}</code>" if self.roots else "")
            + "</td></tr>",
            f"<tr><th>changes found by</th><td>{e(self.detection)}</td></tr>",
        ]
        if self.workers:
            rows.append(f"<tr><th>workers</th><td>{'<br>'.join(e(line) for line in self.workers)}</td></tr>")
        for event in self.broken:
            text = "<br>".join(e(line) for line in _broken_lines(event))
            rows.append(f"<tr><th style='color:#b00'>broken</th><td><pre style='margin:0'>{text}</pre></td></tr>")
        for event in reversed(self.recent):
            rows.append(
                f"<tr><th>{_clock(event.when)}</th><td>{e(_summary(event))} "
                f"<small>({event.seconds * 1000:.1f} ms)</small></td></tr>"
            )
        return "<table class='hotswap-status' style='text-align:left'>" + "".join(rows) + "</table>"


class Errors(tuple[Event, ...]):
    """Modules whose latest save could not be applied; prints as the error, where, and since when."""

    def __repr__(self) -> str:
        if not self:
            return "hotswap: no module is waiting for a good save"
        return "\n".join(line for event in self for line in _broken_lines(event))

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


def _summary(event: Event) -> str:
    outcome = event.outcome
    if isinstance(outcome, Failure):
        where = f"{outcome.path}:{outcome.line}" if outcome.line else outcome.path
        return f"{outcome.module} not reloaded: {outcome.error} ({where})"
    return describe_reload(outcome).removeprefix("hotswap: ")


def _broken_lines(event: Event) -> list[str]:
    """The error, ``file:line``, the offending line with a caret, and since when."""
    failure = event.outcome
    assert isinstance(failure, Failure)
    where = f"{failure.path}:{failure.line}" if failure.line else failure.path
    lines = [f"{failure.module}: {failure.error}  (since {_clock(event.when)})", f"  {where}"]
    if failure.source_line:
        lines += [f"    {failure.source_line}", "    " + " " * ((failure.column or 1) - 1) + "^"]
    return lines


def _clock(when: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(when))


def _roots(paths: list[str]) -> tuple[str, ...]:
    """The few folders the watched files live under."""
    folders = sorted({os.path.dirname(p) for p in paths})
    roots: list[str] = []
    for folder in folders:
        if not any(folder == r or folder.startswith(r + os.sep) for r in roots):
            roots.append(folder)
    return tuple(roots[:5]) + (("...",) if len(roots) > 5 else ())
