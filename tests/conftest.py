"""Fixtures: one real IPython shell for the session, real module files in ``tmp_path``.

``shell``   the shell with ``%load_ext hotswap`` done (mode off, as a user finds it);
            at teardown it unloads hotswap and fails the test if hotswap had an
            internal error (an exception caught at the IPython boundary, or a
            reload that failed inside hotswap rather than in the user's code).
``plain_shell``
            the same shell without hotswap: for control scenarios, and for tests
            that load the extension themselves.
``modules`` writes modules and packages under a unique name prefix to ``tmp_path``,
            which is on ``sys.path`` for the test only; afterwards the modules
            are gone from ``sys.modules``.
``cell``    ``cell("f()")`` runs one cell, asserts it succeeded, returns its value.
``status_until``
            ``%hotswap`` as text once it says what a test waits for (workers answer late).
``prepared``
            ``prepared()``: cells until the imports' preparation in the background is done.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import re
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

import hotswap._ipython as hotswap_ipython

# -- the shell ---------------------------------------------------------------


@pytest.fixture(scope="session")
def ipython() -> InteractiveShell:
    """The one real shell of the test session (its history is kept off disk)."""
    config = Config()
    config.HistoryManager.enabled = False
    return InteractiveShell.instance(config=config)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


_RESET_NAMES: set[str] = set()  # the names a reset leaves in the namespace


def _clean(ipython: InteractiveShell) -> None:
    """Reset the shell unless it is as a reset leaves it (each test's teardown resets it): a reset
    runs a full garbage collection, about 100 ms with Ray, Dask and pydantic imported."""
    if _RESET_NAMES and set(ipython.user_ns) == _RESET_NAMES and not ipython.user_ns_hidden.keys() - _RESET_NAMES:
        return
    ipython.reset(new_session=False)
    _RESET_NAMES.clear()
    _RESET_NAMES.update(ipython.user_ns)


@pytest.fixture
def plain_shell(ipython: InteractiveShell) -> Iterator[InteractiveShell]:
    """The shell, with an empty namespace and hotswap not loaded.

    Every hotswap session the test loads (seen after each cell, and at the end)
    is unloaded afterwards and checked: an internal error inside hotswap fails
    the test, even though the user's cell went on.
    """
    assert hotswap_ipython.session_of(ipython) is None, "a previous test left hotswap loaded"
    sessions: list[Any] = []

    def remember_session(result: Any = None) -> None:
        session = hotswap_ipython.session_of(ipython)
        if session is not None and all(session is not s for s in sessions):
            sessions.append(session)

    records = _Records()
    logger = logging.getLogger("hotswap")
    logger.addHandler(records)
    _clean(ipython)
    ipython.events.register("post_run_cell", remember_session)
    try:
        yield ipython
    finally:
        remember_session()
        ipython.events.unregister("post_run_cell", remember_session)
        logger.removeHandler(records)
        if hotswap_ipython.session_of(ipython) is not None:
            ipython.run_line_magic("unload_ext", "hotswap")
        ipython.extension_manager.loaded.discard("hotswap")
        ipython.reset(new_session=False)
        _RESET_NAMES.clear()
        _RESET_NAMES.update(ipython.user_ns)
    internal = [error for session in sessions for error in session.internal_errors]
    assert not internal, f"hotswap had internal errors: {internal!r}"
    inside = [m for m in records.messages if "inside hotswap" in m or "internal error" in m]
    assert not inside, f"hotswap failed inside itself: {inside}"


@pytest.fixture
def shell(plain_shell: InteractiveShell) -> InteractiveShell:
    """The shell right after ``%load_ext hotswap`` (reloading is off until ``%autoreload``)."""
    result = plain_shell.run_cell("%load_ext hotswap")
    assert result.success, result.error_in_exec
    assert hotswap_ipython.session_of(plain_shell) is not None
    return plain_shell


def run(shell: InteractiveShell, source: str) -> Any:
    """Run one cell as a user would; it must succeed; return its value."""
    result = shell.run_cell(textwrap.dedent(source))
    error = result.error_before_exec or result.error_in_exec
    assert result.success, f"cell failed: {source!r}: {type(error).__name__}: {error}"
    return result.result


@pytest.fixture
def cell(ipython: InteractiveShell) -> Callable[[str], Any]:
    """``cell("f()")``: run a cell in the test's shell, assert success, return the value."""
    return lambda source: run(ipython, source)


@pytest.fixture
def status_until(cell: Callable[[str], Any]) -> Callable[..., str]:
    """``status_until(pattern, tasks="1")``: ``%hotswap`` as text once a line matches the regular
    expression ``pattern``, or after 30 s. Workers answer, and catch up, in their own time: the
    cell ``tasks`` runs between two looks (e.g. tasks for a pool's workers)."""

    def look(pattern: str, tasks: str = "1") -> str:
        deadline = time.monotonic() + 30
        while True:
            text = str(cell("%hotswap"))
            if re.search(pattern, text) or time.monotonic() > deadline:
                return text
            cell(tasks)
            time.sleep(0.05)

    return look


@pytest.fixture
def prepared(ipython: InteractiveShell, cell: Callable[[str], Any]) -> Callable[[], None]:
    """``prepared()``: empty cells until what the last imports left to prepare is done (the
    thread that settles them may still be at it when the next cell ends, on a busy machine;
    cells go on meanwhile, and a later cell makes what needs the settled imports)."""

    def wait() -> None:
        reloader = hotswap_ipython.session_of(ipython).reloader
        deadline = time.monotonic() + 30
        while True:
            settled = not reloader.watchlist.unsettled  # then this cell's end prepares them
            cell("None")
            while reloader.warm_up.busy:
                assert time.monotonic() < deadline, "the warm-up did not finish"
                time.sleep(0.01)
            if settled:
                return

    return wait


# -- modules on disk ----------------------------------------------------------


@pytest.fixture
def story(shell: InteractiveShell, modules: Modules, cell: Callable[[str], Any]) -> Callable[[str], Callable[..., None]]:
    """Mode 2 on, ``m`` imported from the first version; returns ``edit(new_text)``."""

    def start(first: str) -> Callable[..., None]:
        modules.write(modules.name, first)
        cell("%autoreload 2")
        cell(f"import {modules.name} as m")

        def edit(text: str, name: str = modules.name) -> None:
            modules.write(name, text)

        return edit

    return start



class Modules:
    """Module files of one test, all named ``<prefix>...`` so they never clash.

    For example::

        name = modules.name                              # "m_1a2b3c4d5e"
        modules.write(name, "X = 1")                     # tmp_path/m_1a2b3c4d5e.py
        pkg = modules.named("pkg")                       # "m_1a2b3c4d5e_pkg"
        modules.write(pkg, "", package=True)             # .../m_1a2b3c4d5e_pkg/__init__.py
        modules.write(f"{pkg}.sub", "def f(): return 1")
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.name = f"m_{uuid.uuid4().hex[:10]}"

    @property
    def prefix(self) -> str:
        return self.name

    def named(self, label: str) -> str:
        """Another module name of this test: ``<prefix>_<label>``."""
        return f"{self.name}_{label}"

    def path(self, name: str, *, package: bool = False) -> Path:
        assert name.startswith(self.name), f"{name!r} does not start with {self.name!r}"
        parts = name.split(".")
        if package:
            return self.root.joinpath(*parts, "__init__.py")
        existing = self.root.joinpath(*parts, "__init__.py")
        if existing.exists():
            return existing
        return self.root.joinpath(*parts[:-1], parts[-1] + ".py")

    def write(self, name: str, text: str, *, package: bool = False) -> Path:
        """Save a module (``package=True``: ``name/__init__.py``), the way a plain editor does."""
        path = self.path(name, package=package)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        importlib.invalidate_caches()
        return path

    def core_and_dependents(self, count: int) -> tuple[str, list[str]]:
        """``core`` (``K = 1``) and ``count`` modules doing ``from core import K; LIMIT = K * 2``
        with ``limit()`` returning ``LIMIT``: the names of core and of the dependents."""
        core, dependents = self.named("core"), [self.named(f"dep{i}") for i in range(count)]
        self.write(core, "K = 1\n")
        for dependent in dependents:
            self.write(dependent, f"from {core} import K\n\nLIMIT = K * 2\n\ndef limit():\n    return LIMIT\n")
        return core, dependents

    def save_atomically(self, name: str, text: str) -> Path:
        """Save like many editors: write a temporary file, rename it over the module."""
        path = self.path(name)
        temporary = path.with_name(path.name + ".swp")
        temporary.write_text(textwrap.dedent(text))
        os.replace(temporary, path)
        return path

    def save_keeping_stat(self, name: str, text: str) -> Path:
        """Save new text of the same size and put the old mtime back: size and mtime tell nothing."""
        path = self.path(name)
        before = path.stat()
        data = textwrap.dedent(text).encode()
        assert len(data) == before.st_size, "the new text must keep the file's size"
        path.write_bytes(data)
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        after = path.stat()
        assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
        return path


@pytest.fixture
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Modules]:
    """Module files of this test; bytecode is written as on a default install.

    This machine sets ``PYTHONDONTWRITEBYTECODE=1``, which would hide stale
    ``__pycache__`` files from every freshness test: it is unset here.
    """
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    with modules_in(tmp_path) as factory:
        yield factory


@contextlib.contextmanager
def modules_in(folder: Path) -> Iterator[Modules]:
    """Module files in ``folder`` (on ``sys.path`` meanwhile); afterwards gone from ``sys.modules``."""
    factory = Modules(folder)
    root = str(folder)
    sys.path.insert(0, root)
    importlib.invalidate_caches()
    try:
        yield factory
    finally:
        while root in sys.path:
            sys.path.remove(root)
        sys.path_importer_cache.pop(root, None)
        for name in [n for n in sys.modules if n.startswith(factory.prefix)]:
            del sys.modules[name]
        importlib.invalidate_caches()
