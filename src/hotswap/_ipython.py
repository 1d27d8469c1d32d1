"""The IPython extension: the ``%autoreload`` and ``%aimport`` magics and the cell hooks.

Thin glue over ``Reloader``. Errors are swallowed here and only here: a cell
never fails because hotswap failed; it is told once, in one clear message.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from IPython.core import magic_arguments
from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from traitlets import Bool, List, Unicode, observe, validate
from traitlets.config import Configurable

from ._frontend import Frontend
from ._reloader import Mode, Reloader
from ._userfiles import is_user_file, real_path

if TYPE_CHECKING:
    from ._status import Status

__all__ = ["Hotswap", "Session", "load", "unload", "session_of"]

_MAGIC_NAMES = ("autoreload", "aimport", "hotswap")
USER_NAMESPACE = "user namespace"
# The one shell hotswap serves: the modules are the process's, so one reloader, one set of
# hooks. A new shell that loads hotswap takes it over (test runners, IPython.embed).
_session: Session | None = None


def session_of(shell: Any) -> Session | None:
    """The hotswap session loaded in ``shell``, if any."""
    session = _session
    return session if session is not None and session.shell is shell else None


class Session(Frontend):
    """hotswap in one IPython shell: the cell hooks around a ``Frontend``."""

    def __init__(self, shell: Any, config: Hotswap) -> None:
        reloader = Reloader(config.is_user_file, events=config.events, workers=config.workers)
        super().__init__(reloader, lambda: shell.user_ns, USER_NAMESPACE)
        self.shell = shell
        self.internal_errors: list[BaseException] = []
        self._previous_magics: dict[str, Any] = {}
        self._retired_hooks: list[tuple[str, Any]] = []  # IPython's autoreload, given back on unload
        self._restore_apply: Callable[[], object] | None = None  # ipyparallel engines
        self.reloader.mode = Mode.parse(config.mode)
        self.reloader.full = config.full
        self.print_activity, self.log_activity, self.hide_errors = config.print, config.log, config.hide_errors

    def pre_run_cell(self, info: Any = None) -> None:
        if self.reloader.mode is not Mode.OFF:
            self.guarded(self.reload)

    def post_run_cell(self, result: Any = None) -> None:
        if result is not None and result.error_before_exec is None and result.error_in_exec is None:
            raw = getattr(result.info, "raw_cell", None) or ""
            if "import" in raw:
                self.guarded(lambda: self.track_imports(self.shell.transform_cell(raw)))
        self.guarded(self.reloader.idle)

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


class Hotswap(Configurable):
    """hotswap's options, for ``ipython_config.py`` (``c.Hotswap.mode = "all"``...)."""

    mode = Unicode("off", help="Reloading mode at start: off, explicit, all or complete (or 0-3).").tag(config=True)
    print = Bool(False, help="Print what each reload did, as %autoreload -p.").tag(config=True)
    log = Bool(False, help="Log what each reload did to the 'hotswap' logger, as %autoreload -l.").tag(config=True)
    hide_errors = Bool(False, help="Do not print reload errors, as %autoreload --hide-errors.").tag(config=True)
    full = Bool(False, help="Always re-run whole modules, as %autoreload --full.").tag(config=True)
    events = Bool(True, help="Use file-system events to find changes (else stat the watched files).").tag(config=True)
    workers = Bool(True, help="Carry edits to worker processes: multiprocessing, concurrent.futures, joblib (loky), Dask.").tag(config=True)
    include_paths = List(Unicode(), help="Also watch modules under these folders (e.g. a library installed non-editable).").tag(config=True)
    exclude_paths = List(Unicode(), help="Never watch modules under these folders.").tag(config=True)

    @validate("mode")
    def _valid_mode(self, proposal: Any) -> str:
        Mode.parse(proposal["value"])  # raises ValueError, which traitlets reports
        return str(proposal["value"])

    _default_rule = True  # no folder added or removed (kept as the options change: asked at every import)

    @observe("include_paths", "exclude_paths")
    def _paths_changed(self, change: Any = None) -> None:
        self._default_rule = not self.include_paths and not self.exclude_paths

    def is_user_file(self, path: str) -> bool:
        """The default rule (not stdlib, not site-packages), with these folders added or removed."""
        if self._default_rule:
            return is_user_file(path)
        real = real_path(path)
        if any(_under(real, folder) for folder in self.exclude_paths):
            return False
        if path.endswith(".py") and any(_under(real, folder) for folder in self.include_paths):
            return True
        return is_user_file(path)


def _under(path: str, folder: str) -> bool:
    root = os.path.realpath(os.path.expanduser(folder)).rstrip(os.sep) + os.sep
    return path.startswith(root)


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
            session.guarded(lambda: session.reload(everything=True))
            return
        try:
            reloader.mode = Mode.parse(word)
        except ValueError:
            raise _UnknownMode(
                f"Unrecognized autoreload mode {args.mode!r}: use now, 0/off, 1/explicit, "
                "2/all or 3/complete."
            ) from None

    @line_magic
    def hotswap(self, line: str = "") -> Status:
        """Show what hotswap watches, how it finds changes, the last reloads, and broken modules.

        In a notebook it renders as a table; in a terminal as text. A module
        whose latest save could not be applied is listed with its error until
        a good save (or %autoreload now) fixes it.
        """
        from ._status import Status  # (imported when asked: loading hotswap need not pay for it)

        return Status.of(self.session.reloader)

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
                raise _CannotImport(f"%aimport: cannot import {name!r}: {error}") from None
            if alias:
                self.session.shell.push({alias: module}, interactive=False)
            else:  # like `import a.b`: binds the top-level package
                top = name.partition(".")[0]
                self.session.shell.push({top: sys.modules[top]}, interactive=False)


class _UnknownMode(UsageError, ValueError):
    """Shown as a usage error; a ``ValueError``, as IPython's ``%autoreload`` raises."""


class _CannotImport(UsageError, ImportError):
    """Shown as a usage error; an ``ImportError``, as IPython's ``%aimport`` raises."""


def _retire_ipython_autoreload(shell: Any) -> list[tuple[str, Any]]:
    """IPython's own autoreload, if loaded, would reload the same modules again: unhook it."""
    removed = []
    for event in ("pre_run_cell", "post_execute", "post_run_cell"):
        for callback in list(shell.events.callbacks.get(event, ())):
            # IPython 8 may wrap a callback (backcall): the method is then at __wrapped__
            owner = getattr(getattr(callback, "__wrapped__", callback), "__self__", None)
            if type(owner).__module__ == "IPython.extensions.autoreload":
                shell.events.unregister(event, callback)
                removed.append((event, callback))
    return removed


def load(shell: Any) -> Session:
    """Install hotswap in ``shell``; loading twice is harmless.

    Loaded in another shell before (``InteractiveShell.clear_instance()`` then
    ``instance()``, ``IPython.embed``): that shell's session ends first, as by
    ``%unload_ext``, so one session serves the process, in the shell that loaded it last.
    """
    global _session
    existing = session_of(shell)
    if existing is not None:
        return existing
    if _session is not None:
        _hand_over(_session.shell)
    _forget_note(shell)
    session = Session(shell, Hotswap(parent=shell))
    session._retired_hooks = _retire_ipython_autoreload(shell)
    if session._retired_hooks:
        print("hotswap: IPython's autoreload was loaded; hotswap takes over from it.", file=sys.stderr)
    session.reloader.start()
    for cell in shell.user_ns.get("In", ()):  # `from m import x` run before loading: x follows m
        if "import" in cell:
            session.guarded(lambda source=cell: session.track_imports(shell.transform_cell(source)))
    line_magics = shell.magics_manager.magics["line"]
    session._previous_magics = {name: line_magics.get(name) for name in _MAGIC_NAMES}
    shell.register_magics(HotswapMagics(shell, session))
    shell.events.register("pre_run_cell", session.pre_run_cell)
    shell.events.register("post_run_cell", session.post_run_cell)
    _hook_engine_apply(shell, session)
    _session = session
    return session


def _hand_over(previous: Any) -> None:
    """End the session of the shell that loaded hotswap before, and leave it a note.

    Its hooks are gone (a dead shell's must not run, a live one's must not reload a
    second time); a cell run there later says why it no longer reloads, rather than
    running stale code in silence.
    """
    unload(previous)
    manager = getattr(previous, "extension_manager", None)
    if manager is not None:
        manager.loaded.discard("hotswap")  # so `%load_ext hotswap` there loads it again
    previous.events.register("pre_run_cell", _MovedAway(previous))


class _MovedAway:
    """The note in a shell whose session a newer shell took over: said once, at its next cell."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell

    def __call__(self, info: Any = None) -> None:
        _forget_note(self.shell)
        print(
            "hotswap: this shell no longer reloads modules: another IPython shell in this "
            "process loaded hotswap after it, and hotswap serves one shell at a time. Run "
            "`%load_ext hotswap` here to bring it back (the other shell then stops reloading).",
            file=sys.stderr,
        )


def _forget_note(shell: Any) -> None:
    """Remove the note ``_hand_over`` left in ``shell``, if any."""
    for callback in list(shell.events.callbacks.get("pre_run_cell", ())):
        if isinstance(getattr(callback, "__wrapped__", callback), _MovedAway):
            shell.events.unregister("pre_run_cell", callback)


def _hook_engine_apply(shell: Any, session: Session) -> None:
    """On an ipyparallel engine, ``view.apply``/``map`` run no cell: reload before them too.

    The engine's kernel handles them in ``do_apply``; hotswap wraps that one
    method of that one kernel object (``unload`` puts it back).
    """
    kernel: Any = getattr(shell, "kernel", None)
    original = getattr(kernel, "do_apply", None)
    if original is None:
        return

    def do_apply(*args: Any, **kwargs: Any) -> Any:
        session.pre_run_cell()
        return original(*args, **kwargs)

    def restore() -> None:
        if kernel.do_apply is do_apply:
            kernel.do_apply = original

    kernel.do_apply = do_apply
    session._restore_apply = restore


def unload(shell: Any) -> None:
    """Remove every hook hotswap added to ``shell``; unloading twice is harmless."""
    global _session
    session = session_of(shell)
    if session is None:
        return
    _session = None
    shell.events.unregister("pre_run_cell", session.pre_run_cell)
    shell.events.unregister("post_run_cell", session.post_run_cell)
    if session._restore_apply is not None:
        session._restore_apply()
    line_magics = shell.magics_manager.magics["line"]
    for name, previous in session._previous_magics.items():
        if previous is None:
            line_magics.pop(name, None)
        else:
            line_magics[name] = previous
    shell.magics_manager.registry.pop(HotswapMagics.__name__, None)
    for event, callback in session._retired_hooks:
        shell.events.register(event, getattr(callback, "__wrapped__", callback))  # unwrapped: no double adapter
    for problem in session.reloader.stop():
        session._warn(problem)
