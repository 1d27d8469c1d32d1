"""A pytest plugin: IPython's own autoreload tests, run against hotswap in a real shell.

IPython's tests drive its ``AutoreloadMagics`` through a small ``FakeShell``
(``run_code``, ``magic_autoreload``, ``magic_aimport``, ``push``, ``ns``). This
plugin puts ``HotswapShell`` in its place: the same methods, over a new real
``InteractiveShell`` per test with ``%load_ext hotswap`` run in it, so each test
runs its cells and magics through hotswap exactly as a user's session would.

Loaded with ``-p hotswap_as_autoreload`` by ``tests/test_ipython_suite.py``; the
IPython test module must define ``FakeShell`` (IPython 8 and 9 do).
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any, TextIO

import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from hotswap._ipython import session_of
from hotswap._reloader import Mode, Reloader


class HotswapShell:
    """``FakeShell``'s methods, run by a real shell with hotswap loaded."""

    def __init__(self) -> None:
        InteractiveShell.clear_instance()  # a new shell per test, as IPython's runners make them
        config = Config()
        config.HistoryManager.enabled = False
        self.shell = InteractiveShell.instance(config=config)
        self.shell.run_line_magic("load_ext", "hotswap")
        session = session_of(self.shell)
        assert session is not None, "hotswap did not load"
        self.ns = self.user_ns = self.shell.user_ns
        self.auto_magics = _Magics(session.reloader)

    def run_code(self, code: str) -> None:
        """A cell; its exception reaches the test, as ``exec`` gives it to FakeShell's callers."""
        result = self.shell.run_cell(code, store_history=False)
        error = result.error_before_exec or result.error_in_exec
        if error is not None:
            raise error

    def push(self, items: dict[str, Any]) -> None:
        self.shell.push(items)

    def magic_autoreload(self, parameter: str) -> None:
        self.shell.run_line_magic("autoreload", parameter)

    def magic_aimport(self, parameter: str, stream: TextIO | None = None) -> None:
        with contextlib.redirect_stdout(stream or sys.stdout):
            self.shell.run_line_magic("aimport", parameter)


class _Magics:
    """``FakeShell.auto_magics``: the tests read its ``_reloader`` only."""

    def __init__(self, reloader: Reloader) -> None:
        self._reloader = _ModeInIPythonsWords(reloader)


class _ModeInIPythonsWords:
    """hotswap's mode and marks under the names IPython's ``ModuleReloader`` gives them."""

    def __init__(self, reloader: Reloader) -> None:
        self._reloader = reloader

    @property
    def enabled(self) -> bool:
        return self._reloader.mode is not Mode.OFF

    @property
    def check_all(self) -> bool:
        return self._reloader.mode >= Mode.ALL

    @property
    def autoload_obj(self) -> bool:
        return self._reloader.mode is Mode.COMPLETE

    @property
    def modules(self) -> dict[str, bool]:
        return dict.fromkeys(self._reloader.explicit, True)

    @property
    def skip_modules(self) -> dict[str, bool]:
        return dict.fromkeys(self._reloader.excluded, True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = getattr(item, "module", None)
        if module is not None and hasattr(module, "FakeShell"):
            module.FakeShell = HotswapShell
