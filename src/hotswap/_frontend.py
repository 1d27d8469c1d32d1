"""Where the user types code: one namespace, kept in step by a ``Reloader``.

Shared by the IPython extension and the plain REPL, so both report the same
way, re-bind the user's ``from m import x`` names, and (mode 3) bring new
names to the user's star imports.
"""

from __future__ import annotations

import ast
import logging
import sys
import types
from collections.abc import Callable
from typing import Any

from ._graph import STAR
from ._outcomes import Failure, Reloaded, collector_paused
from ._reloader import Mode, Outcome, Reloader
from ._report import describe_failure, describe_reload, describe_stayed_old, describe_whole_rerun
from ._vocab import exported

__all__ = ["Frontend"]

logger = logging.getLogger("hotswap")
# A library never configures logging; this only stops Python's last-resort
# handler from printing our warnings a second time.
logger.addHandler(logging.NullHandler())


class Frontend:
    """A user's namespace, the reloader that serves it, and how to tell the user."""

    def __init__(self, reloader: Reloader, namespace: Callable[[], dict[str, Any]], label: str) -> None:
        self.reloader = reloader
        self.namespace = namespace
        self.label = label
        self.print_activity = False
        self.log_activity = False
        self.hide_errors = False
        reloader.namespaces[label] = namespace

    def reload(self, *, everything: bool = False) -> None:
        """Bring every changed module up to date, then report (call before running code)."""
        quiet = self._quiet()
        with collector_paused():  # until the outcomes are said and dropped: see ``collector_paused``
            self._say(self.reloader.check(everything=everything, followers=not quiet), quiet)
        for message in self.reloader.worker_failures():
            logger.warning(message)
            if not self.hide_errors:
                print(message, file=sys.stderr)

    def _quiet(self) -> bool:
        """Is a module that simply reloaded said nowhere (no ``-p``, no ``-l``, not mode 3)?"""
        return not (self.print_activity or self.log_activity or self.reloader.mode is Mode.COMPLETE)

    def _say(self, outcomes: list[Outcome], quiet: bool) -> None:
        for outcome in outcomes:
            if quiet and type(outcome) is Reloaded and not (outcome.stayed_old or describe_whole_rerun(outcome)):
                continue  # nothing to say (200 dependents that followed, mostly)
            self.report(outcome)
            if isinstance(outcome, Reloaded) and self.reloader.mode is Mode.COMPLETE:
                self.push_new_names(outcome)

    def report(self, outcome: Outcome) -> None:
        """Errors to stderr (unless hidden) and the log; activity to stdout under ``-p``."""
        if isinstance(outcome, Failure):
            self._report_failure(outcome)
            return
        if self.print_activity or self.log_activity:  # 200 dependents: 200 texts nobody asked for
            self._report_activity(outcome)
        warning = describe_stayed_old(outcome)
        if warning:
            self._warn(warning)
        reset = describe_whole_rerun(outcome) if not self.print_activity else None  # (-p says it)
        if reset:
            self._warn(reset)

    def _report_failure(self, outcome: Failure) -> None:
        message = describe_failure(outcome)
        logger.warning(message)
        if self.log_activity and outcome.details:
            logger.info("%s: the full traceback:\n%s", outcome.module, outcome.details)
        if not self.hide_errors:
            print(message, file=sys.stderr)

    def _report_activity(self, outcome: Reloaded) -> None:
        """What a reload did: printed under ``-p``, logged under ``-l``."""
        activity = describe_reload(outcome)
        if self.print_activity:
            print(activity)
        if self.log_activity:
            logger.info(activity)

    def _warn(self, message: str) -> None:
        """To the log, and to stderr unless errors are hidden."""
        logger.warning(message)
        if not self.hide_errors:
            print(message, file=sys.stderr)

    def push_new_names(self, outcome: Reloaded) -> None:
        """Mode 3: names new in a module reach the user's star- and from-imports of it."""
        module = sys.modules.get(outcome.module)
        if module is None or not outcome.added:
            return
        pushed = self._new_names_imported(outcome, module)
        if pushed:
            self.namespace().update(pushed)
            if self.print_activity:
                print(f"hotswap: new in your namespace from {outcome.module}: {', '.join(pushed)}")

    def _new_names_imported(self, outcome: Reloaded, module: types.ModuleType) -> dict[str, object]:
        """The names added to ``module`` that this namespace imports (by star or by name), by alias."""
        pushed: dict[str, object] = {}
        for edge in self.reloader.graph.edges_of(self.label):
            if edge.source != outcome.module:
                continue
            if edge.name == STAR:
                names = vars(module)
                pushed.update((name, names[name]) for name in outcome.added if exported(names, name))
            elif edge.name in outcome.added:
                pushed[edge.alias] = getattr(module, edge.name)
        return pushed

    def track_imports(self, source: str) -> None:
        """Remember the ``from m import a as b`` of code that ran here."""
        if "import" not in source:
            return
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError):
            return
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                for alias in node.names:
                    self.reloader.track_import(self.label, node.module, alias.name, alias.asname or alias.name)
