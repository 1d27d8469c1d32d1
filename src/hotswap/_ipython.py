"""The IPython extension: the ``%autoreload`` and ``%aimport`` magics and the cell hooks.

Thin glue over ``Reloader``. Errors are swallowed here and only here: a cell
never fails because hotswap failed; it is told once, in one clear message.
"""

from __future__ import annotations

import ast
import logging
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

from IPython.core import magic_arguments
from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class

from ._apply import Failure, Reloaded
from ._reloader import Mode, Outcome, Reloader
from ._report import describe_failure, describe_reload, describe_stayed_old

__all__ = ["Session", "load", "unload", "session_of"]

logger = logging.getLogger("hotswap")

_MAGIC_NAMES = ("autoreload", "aimport")
USER_NAMESPACE = "user namespace"
_sessions: dict[int, Session] = {}


def session_of(shell: Any) -> Session | None:
    """The hotswap session loaded in ``shell``, if any."""
    return _sessions.get(id(shell))


class Session:
    """hotswap in one IPython shell: a reloader, reporting flags and import tracking."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.reloader = Reloader()
        self.reloader.namespaces[USER_NAMESPACE] = lambda: shell.user_ns
        self.print_activity = False
        self.log_activity = False
        self.hide_errors = False
        self.star_imports: set[str] = set()  # modules the user did ``from m import *`` on
        self.from_imports: dict[str, dict[str, set[str]]] = {}  # module -> name -> aliases
        self.internal_errors: list[BaseException] = []
        self._previous_magics: dict[str, Any] = {}
        self._retired_hooks: list[tuple[str, Any]] = []  # IPython's autoreload, given back on unload

    # -- hooks -------------------------------------------------------------

    def pre_run_cell(self, info: Any = None) -> None:
        if self.reloader.mode is not Mode.OFF:
            self.guarded(self.reload)

    def post_run_cell(self, result: Any = None) -> None:
        if result is not None:
            self.guarded(self.track_imports, result)

    def guarded(self, action: Callable[..., object], *args: Any) -> None:
        """Run ``action``; an error inside hotswap becomes one message, never a failed cell."""
        try:
            action(*args)
        except Exception as error:  # noqa: BLE001 - the IPython boundary
            self.internal_errors.append(error)
            if os.environ.get("HOTSWAP_DEBUG"):
                traceback.print_exc()
            print(
                f"hotswap: internal error ({type(error).__name__}: {error}); your code runs "
                "with the modules as they were. Please report it (HOTSWAP_DEBUG=1 shows "
                "the traceback).",
                file=sys.stderr,
            )

    # -- the pipeline's last steps: push names, report ------------------------

    def reload(self, everything: bool = False) -> list[Outcome]:
        outcomes = self.reloader.check(everything=everything)
        for outcome in outcomes:
            self.report(outcome)
            if isinstance(outcome, Reloaded) and self.reloader.mode is Mode.COMPLETE:
                self.push_new_names(outcome)
        return outcomes

    def report(self, outcome: Outcome) -> None:
        if isinstance(outcome, Failure):
            message = describe_failure(outcome)
            logger.warning(message)
            if not self.hide_errors:
                print(message, file=sys.stderr)
            return
        activity = describe_reload(outcome)
        if self.print_activity:
            print(activity)
        if self.log_activity:
            logger.info(activity)
        warning = describe_stayed_old(outcome)
        if warning:
            logger.warning(warning)
            if not self.hide_errors:
                print(warning, file=sys.stderr)

    def push_new_names(self, outcome: Reloaded) -> None:
        """Mode 3: names new in a module reach the user's star- and from-imports of it."""
        module = sys.modules.get(outcome.module)
        if module is None:
            return
        tracked = self.from_imports.get(outcome.module, {})
        star = outcome.module in self.star_imports
        exported = getattr(module, "__all__", None)
        pushed = {}
        for name in outcome.added:
            targets = set(tracked.get(name, ()))
            if star and (name in exported if exported is not None else not name.startswith("_")):
                targets.add(name)
            for target in targets:
                pushed[target] = getattr(module, name)
        if pushed:
            self.shell.push(pushed, interactive=False)
            if self.print_activity:
                print(f"hotswap: new in your namespace from {outcome.module}: {', '.join(pushed)}")

    def track_imports(self, result: Any) -> None:
        """Remember ``from m import a as b`` of cells that ran: re-binding, and mode 3."""
        if result.error_before_exec is not None or result.error_in_exec is not None:
            return
        raw = getattr(result.info, "raw_cell", None)
        if not raw or "import" not in raw:
            return
        try:
            tree = ast.parse(self.shell.transform_cell(raw))
        except (SyntaxError, ValueError):
            return
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                for alias in node.names:
                    self._track(node.module, alias.name, alias.asname or alias.name)

    def _track(self, module: str, name: str, bound_as: str) -> None:
        self.reloader.track_import(USER_NAMESPACE, module, name, bound_as)
        if name == "*":
            self.star_imports.add(module)
            return
        names = self.from_imports.setdefault(module, {})
        for aliases in names.values():  # the latest import of a bound name wins
            aliases.discard(bound_as)
        names.setdefault(name, set()).add(bound_as)


@magics_class
class HotswapMagics(Magics):
    """``%autoreload`` and ``%aimport``, as IPython documents them, backed by hotswap."""

    def __init__(self, shell: Any, session: Session) -> None:
        super().__init__(shell)
        self.session = session

    @line_magic
    @magic_arguments.magic_arguments()
    @magic_arguments.argument(
        "mode",
        type=str,
        default="now",
        nargs="?",
        help="""blank or 'now': reload every changed module now (except those excluded
        with %%aimport -name), whatever the mode, retrying versions that failed before.
        '0' or 'off': no automatic reloading (the default after %%load_ext hotswap).
        '1' or 'explicit': before each cell, reload only modules marked with %%aimport.
        '2' or 'all': before each cell, reload every changed module of yours (not the
        standard library, not installed packages), except those excluded.
        '3' or 'complete': as 'all', and names that are new in a module also appear in
        your namespace where you did `from module import *` or imported them by name.
        A '-' suffix ('2-') is accepted, like --full.""",
    )
    @magic_arguments.argument(
        "-p", "--print", action="store_true", default=False,
        help="Print what each reload did (what was upgraded, added, removed).",
    )
    @magic_arguments.argument(
        "-l", "--log", action="store_true", default=False,
        help="Log what each reload did, at INFO level, to the logger named 'hotswap'.",
    )
    @magic_arguments.argument(
        "--hide-errors", action="store_true", default=False,
        help="Do not print reload errors (they still go to the 'hotswap' logger).",
    )
    @magic_arguments.argument(
        "--full", action="store_true", default=False,
        help="Re-run whole modules rather than only their changed statements.",
    )
    def autoreload(self, line: str = "") -> None:
        """Reload changed modules before each cell, upgrading code in place.

        A drop-in replacement for IPython's %autoreload, with the same modes and
        flags. Functions and classes keep their identity and get the new code, so
        `from m import f`, bound methods and existing instances all run what is on
        disk. A module whose new version fails (syntax error, exception) is left
        exactly as it was, the error is shown once, and the cell still runs.

        The -p, -l and --hide-errors flags apply until the next %autoreload line,
        which sets them again.

        Examples::

            %autoreload 2        reload everything of yours before each cell
            %autoreload 1        only modules marked with %aimport
            %autoreload -p all   and print what each reload did
            %autoreload          reload now, once
            %autoreload off      stop
        """
        args = magic_arguments.parse_argstring(self.autoreload, line)
        word = args.mode.strip().lower()
        full = args.full or word.endswith("-")
        word = word.rstrip("-")
        session, reloader = self.session, self.session.reloader
        session.print_activity = args.print
        session.log_activity = args.log
        session.hide_errors = args.hide_errors
        reloader.full = full
        if word in ("", "now"):
            session.reload(everything=True)
            return
        try:
            reloader.mode = Mode.parse(word)
        except ValueError:
            raise UsageError(
                f"Unrecognized autoreload mode {args.mode!r}: use now, 0/off, 1/explicit, "
                "2/all or 3/complete."
            ) from None

    @line_magic
    def aimport(self, parameter_s: str = "") -> None:
        """Mark modules for reloading, or exclude them.

        %aimport
            List the modules marked for reloading and those excluded.
        %aimport foo
            Import foo and reload it with %autoreload 1 (explicit).
        %aimport foo, bar
            The same for several modules.
        %aimport foo as f
            Import foo as f and mark it.
        %aimport -foo
            Never reload foo, in any mode.
        """
        reloader = self.session.reloader
        if not parameter_s.strip():
            marked = "all-except-skipped" if reloader.mode >= Mode.ALL else " ".join(reloader.explicit)
            print(f"Modules to reload:\n{marked}\n\nModules to skip:\n{' '.join(reloader.excluded)}")
            return
        for item in (part.strip() for part in parameter_s.split(",")):
            if not item:
                continue
            if item.startswith("-"):
                reloader.exclude(item[1:].strip())
                continue
            name, _, alias = (part.strip() for part in item.partition(" as "))
            try:
                module = reloader.include(name)
            except ImportError as error:
                raise UsageError(f"%aimport: cannot import {name!r}: {error}") from None
            if alias:
                self.session.shell.push({alias: module}, interactive=False)
            else:  # like `import a.b`: binds the top-level package
                top = name.partition(".")[0]
                self.session.shell.push({top: sys.modules[top]}, interactive=False)


def _retire_ipython_autoreload(shell: Any) -> list[tuple[str, Any]]:
    """IPython's own autoreload, if loaded, would reload the same modules again: unhook it."""
    removed = []
    for event in ("pre_run_cell", "post_execute", "post_run_cell"):
        for callback in list(shell.events.callbacks.get(event, ())):
            owner = getattr(callback, "__self__", None)
            if type(owner).__module__ == "IPython.extensions.autoreload":
                shell.events.unregister(event, callback)
                removed.append((event, callback))
    return removed


def load(shell: Any) -> Session:
    """Install hotswap in ``shell``; loading twice is harmless."""
    existing = session_of(shell)
    if existing is not None:
        return existing
    session = Session(shell)
    session._retired_hooks = _retire_ipython_autoreload(shell)
    if session._retired_hooks:
        print("hotswap: IPython's autoreload was loaded; hotswap takes over from it.", file=sys.stderr)
    session.reloader.start()
    line_magics = shell.magics_manager.magics["line"]
    session._previous_magics = {name: line_magics.get(name) for name in _MAGIC_NAMES}
    shell.register_magics(HotswapMagics(shell, session))
    shell.events.register("pre_run_cell", session.pre_run_cell)
    shell.events.register("post_run_cell", session.post_run_cell)
    _sessions[id(shell)] = session
    return session


def unload(shell: Any) -> None:
    """Remove every hook hotswap added to ``shell``; unloading twice is harmless."""
    session = _sessions.pop(id(shell), None)
    if session is None:
        return
    shell.events.unregister("pre_run_cell", session.pre_run_cell)
    shell.events.unregister("post_run_cell", session.post_run_cell)
    line_magics = shell.magics_manager.magics["line"]
    for name, previous in session._previous_magics.items():
        if previous is None:
            line_magics.pop(name, None)
        else:
            line_magics[name] = previous
    shell.magics_manager.registry.pop(HotswapMagics.__name__, None)
    for event, callback in session._retired_hooks:
        shell.events.register(event, callback)
    session.reloader.stop()
