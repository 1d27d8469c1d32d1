"""The plain Python REPL with hotswap: ``python -m hotswap`` or ``hotswap.enable()``.

The standard interpreter has no hook before a statement runs, so hotswap runs
its own console (``code.InteractiveConsole``) in the same ``__main__``
namespace: changes are applied after a statement is typed and before it runs,
never while the user's code is running.
"""

from __future__ import annotations

import code
import sys
from types import CodeType
from typing import Any

from ._frontend import Frontend
from ._reloader import Mode, Reloader
from ._status import Errors, Status

__all__ = ["ReloadingConsole", "enable", "errors", "main", "status"]

_current: ReloadingConsole | None = None


class ReloadingConsole(code.InteractiveConsole):
    """An interactive console that brings changed modules up to date before each statement."""

    def __init__(self, namespace: dict[str, Any], mode: Mode = Mode.ALL) -> None:
        super().__init__(namespace)
        self.frontend = Frontend(Reloader(), lambda: namespace, "your namespace")
        self.frontend.reloader.mode = mode

    def runsource(self, source: str, filename: str = "<input>", symbol: str = "single") -> bool:
        try:
            compiled = self.compile(source, filename, symbol)
        except (OverflowError, SyntaxError, ValueError):
            self.showsyntaxerror(filename)
            return False
        if compiled is None:
            return True  # more input needed
        self.run_with_reload(compiled, source)
        return False

    def run_with_reload(self, compiled: CodeType, source: str) -> None:
        try:
            self.frontend.reload()
        except Exception as error:  # noqa: BLE001 - the user's statement still runs
            print(f"hotswap: internal error ({type(error).__name__}: {error}); please report it", file=sys.stderr)
        before = sys.exc_info()
        self.runcode(compiled)
        if sys.exc_info() == before:
            self.frontend.track_imports(source)
        self.frontend.reloader.idle()


def _console() -> ReloadingConsole:
    global _current
    if _current is None:
        import __main__

        _current = ReloadingConsole(vars(__main__))
        _current.frontend.reloader.start()
    return _current


def enable(mode: str = "all") -> None:
    """Turn reloading on in a plain Python REPL (this prompt is replaced by hotswap's).

    From then on, before each statement runs, every edited module of yours is
    brought up to date. End the session as usual (Ctrl-D, ``exit()``).
    """
    console = _console()
    console.frontend.reloader.mode = Mode.parse(mode)
    for line in _typed_so_far():  # `from m import x` typed before: x follows m too
        console.frontend.track_imports(line)
    if not sys.flags.interactive and not hasattr(sys, "ps1"):
        return  # a script, not a REPL: the caller drives `check()` itself
    print("hotswap: reloading is on; edits are applied before each statement.")
    console.interact(banner="", exitmsg="")
    raise SystemExit(0)


def _typed_so_far() -> list[str]:
    """The lines typed at this REPL so far (its readline history), where there is one."""
    try:
        import readline
    except ImportError:
        return []
    return [readline.get_history_item(i) or "" for i in range(1, readline.get_current_history_length() + 1)]


def status() -> Status:
    """What hotswap watches in this REPL, the last reloads, and what is broken."""
    return Status.of(_console().frontend.reloader)


def errors() -> Errors:
    """Modules whose latest save could not be applied: the error, ``file:line``, since when."""
    return Errors(_console().frontend.reloader.broken.values())


def main() -> int:
    """``python -m hotswap``: the interactive interpreter, with reloading on."""
    sys.path.insert(0, "")
    try:
        import readline  # noqa: F401 - line editing and history, where available
    except ImportError:
        pass
    console = _console()
    banner = (
        f"Python {sys.version.split()[0]} with hotswap: edits to your modules are applied "
        "before each statement.\nhotswap.status() shows what is watched; Ctrl-D leaves."
    )
    console.interact(banner=banner, exitmsg="")
    return 0
