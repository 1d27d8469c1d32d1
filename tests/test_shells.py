"""A new IPython shell in the same process: hotswap serves the shell that loaded it last.

IPython's own test suite and notebook test runners make a new shell per test
(``InteractiveShell.clear_instance()`` then ``instance()``) and load the
extension in each, never unloading it from the shell before; ``IPython.embed``
makes a shell inside a session. The tests here make their shells that way, one
after another in this process, and the shells of a test stay as they are after
it (the next test's new shell takes over, as in those runners; the last one is
unloaded when this file ends).

IPython's own autoreload tests run against hotswap in ``tests/test_ipython_suite.py``;
the class ``TestOneShellPerTest`` follows their pattern with stories of its own.
"""

from __future__ import annotations

import shutil
import sys
import textwrap
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

import hotswap._ipython as hotswap_ipython

V1 = "def f():\n    return 1\n"
V2 = "def f():\n    return 2\n"
V3 = "def f():\n    return 3\n"
MOVED = "this shell no longer reloads modules"

NewShell = Callable[..., InteractiveShell]


def run(shell: InteractiveShell, source: str) -> Any:
    """Run one cell in ``shell`` as a user would; it must succeed; return its value."""
    result = shell.run_cell(textwrap.dedent(source))
    error = result.error_before_exec or result.error_in_exec
    assert result.success, f"cell failed: {source!r}: {type(error).__name__}: {error}"
    return result.result


def reload_hooks(shell: InteractiveShell) -> list[object]:
    """The callbacks of a hotswap session in ``shell`` (the note ``_MovedAway`` is none)."""
    return [
        callback
        for found in shell.events.callbacks.values()
        for callback in found
        if isinstance(getattr(callback, "__self__", None), hotswap_ipython.Session)
    ]


def hotswap_finders() -> list[object]:
    return [finder for finder in sys.meta_path if type(finder).__module__.startswith("hotswap")]


def _as_the_instance(shell: InteractiveShell | None) -> None:
    """Make ``shell`` what ``InteractiveShell.instance()`` answers again, as ``IPython.embed`` does."""
    InteractiveShell.clear_instance()
    if shell is not None:
        for cls in type(shell)._walk_mro():
            cls._instance = shell


@pytest.fixture(scope="module", autouse=True)
def _last_shell_unloaded() -> Iterator[None]:
    """Shells of a test are left loaded, as test runners leave them; the last one goes here."""
    yield
    session = hotswap_ipython._session
    if session is not None:
        hotswap_ipython.unload(session.shell)


@pytest.fixture
def new_shell(modules: Any) -> Iterator[NewShell]:
    """``new_shell()``: a new shell the way test runners make one; ``load=True``: and hotswap in mode 2.

    Afterwards the shell that was the instance before the test is the instance
    again (with its ``__main__``), and an internal error of any hotswap session of
    the test fails it.
    """
    previous = InteractiveShell._instance
    main = sys.modules.get("__main__")
    assert previous is None or hotswap_ipython.session_of(previous) is None
    sessions: list[hotswap_ipython.Session] = []

    def new(*, load: bool = False) -> InteractiveShell:
        InteractiveShell.clear_instance()
        config = Config()
        config.HistoryManager.enabled = False
        shell = InteractiveShell.instance(config=config)
        if load:
            run(shell, "%load_ext hotswap")
            run(shell, "%autoreload 2")
            session = hotswap_ipython.session_of(shell)
            assert session is not None
            sessions.append(session)
        return shell

    try:
        yield new
    finally:
        _as_the_instance(previous)
        if main is not None:
            sys.modules["__main__"] = main
    internal = [error for session in sessions for error in session.internal_errors]
    assert not internal, f"hotswap had internal errors: {internal!r}"


def counted_runs(modules: Any) -> tuple[str, str]:
    """A module ``log`` and the text of ``modules.name`` (``text.format(value)``: its ``f()``
    gives ``value``), which appends to ``log.RUNS`` each time it runs; the first version saved."""
    log = modules.named("log")
    modules.write(log, "RUNS = []\n")
    text = f"import {log}\n{log}.RUNS.append(1)\n\ndef f():\n    return {{}}\n"
    modules.write(modules.name, text.format(1))
    return log, text


# -- a second shell ----------------------------------------------------------


def test_a_new_shell_reloads_the_modules_it_imports(new_shell, modules):
    new_shell(load=True)
    shell = new_shell(load=True)
    modules.write(modules.name, V1)
    run(shell, f"import {modules.name} as m")
    modules.write(modules.name, V2)

    assert run(shell, "m.f()") == 2


def taken_over(new_shell: NewShell, modules: Any) -> tuple[InteractiveShell, InteractiveShell]:
    """A shell that imported ``m`` (``V1``), then a new one that took hotswap over and imported it too."""
    old = new_shell(load=True)
    modules.write(modules.name, V1)
    run(old, f"import {modules.name} as m")
    shell = new_shell(load=True)
    run(shell, f"import {modules.name} as m")
    return old, shell


def test_a_new_shell_reloads_the_modules_the_old_one_imported(new_shell, modules):
    _, shell = taken_over(new_shell, modules)
    modules.write(modules.name, V2)

    assert run(shell, "m.f()") == 2


def test_the_old_shell_keeps_no_hooks_and_nothing_reloads_twice(new_shell, modules):
    log, text = counted_runs(modules)
    old = new_shell(load=True)
    run(old, "%autoreload --full 2")
    run(old, f"import {modules.name} as m, {log} as log")
    shell = new_shell(load=True)
    run(shell, "%autoreload --full 2")
    run(shell, f"import {modules.name} as m, {log} as log")

    assert reload_hooks(old) == []
    assert len(reload_hooks(shell)) == 2
    assert len(hotswap_finders()) == 1
    modules.write(modules.name, text.format(2))
    run(old, "1")  # the old shell's hooks would reload it here...
    assert run(shell, "m.f()") == 2  # ...and the new shell's a second time
    assert run(shell, "len(log.RUNS)") == 2  # imported once, re-run once


def test_the_old_shell_says_once_that_it_no_longer_reloads(new_shell, modules, capsys):
    old = new_shell(load=True)
    modules.write(modules.name, V1)
    run(old, f"import {modules.name} as m")
    new_shell(load=True)
    capsys.readouterr()

    run(old, "1")
    said = capsys.readouterr().err
    run(old, "1")

    assert MOVED in said and "%load_ext hotswap" in said
    assert MOVED not in capsys.readouterr().err  # once
    assert old.find_line_magic("autoreload") is None  # its magics went with its hooks


def test_load_ext_in_the_old_shell_takes_hotswap_back(new_shell, modules, capsys):
    old, shell = taken_over(new_shell, modules)
    modules.write(modules.name, V2)
    assert run(shell, "m.f()") == 2

    run(old, "%load_ext hotswap")
    run(old, "%autoreload 2")
    modules.write(modules.name, V3)
    capsys.readouterr()

    assert run(old, "m.f()") == 3
    assert MOVED not in capsys.readouterr().err  # the note left for it is gone
    assert reload_hooks(shell) == []
    run(shell, "1")
    assert MOVED in capsys.readouterr().err
    assert hotswap_ipython.session_of(old) is not None
    assert hotswap_ipython.session_of(shell) is None


def test_one_shell_after_another(new_shell, modules):
    first = modules.named("first")
    modules.write(first, V1)
    for turn in range(4):
        shell = new_shell(load=True)
        mine = modules.named(f"turn{turn}")
        modules.write(mine, V1)
        run(shell, f"import {first} as first, {mine} as mine")
        modules.write(mine, V2)
        modules.write(first, V2 if turn % 2 == 0 else V1)

        assert run(shell, "mine.f()") == 2
        assert run(shell, "first.f()") == (2 if turn % 2 == 0 else 1)


def test_a_shell_made_by_ipython_embed_takes_over_and_the_outer_shell_is_told(new_shell, modules, capsys):
    from IPython.terminal.embed import InteractiveShellEmbed  # noqa: T100 - the shell under test, not a breakpoint

    outer = new_shell(load=True)
    modules.write(modules.name, V1)
    run(outer, f"import {modules.name} as m")
    # what IPython.embed() does around its prompt loop, with cells run in place of the loop
    InteractiveShell.clear_instance()
    config = Config()
    config.HistoryManager.enabled = False
    config.TerminalInteractiveShell.simple_prompt = True
    embedded = InteractiveShellEmbed.instance(config=config)
    try:
        run(embedded, "%load_ext hotswap")
        run(embedded, "%autoreload 2")
        run(embedded, f"import {modules.name} as m")
        modules.write(modules.name, V2)
        assert run(embedded, "m.f()") == 2
    finally:
        InteractiveShellEmbed.clear_instance()
        _as_the_instance(outer)
    capsys.readouterr()

    modules.write(modules.name, V3)
    assert run(outer, "m.f()") == 2  # not reloaded here any more, and said:
    assert MOVED in capsys.readouterr().err
    run(outer, "%load_ext hotswap")
    run(outer, "%autoreload 2")
    assert run(outer, "m.f()") == 3


# -- a save that failed, then hotswap loaded again ------------------------------

# ``a``'s class moves down by three lines in the save that fails (its import of a
# name ``b`` lacks), and gains an attribute: neither may show while it fails.
BASE = "K = 1\n"
USER = "from {base} import K\n\n\nclass Point:\n    @staticmethod\n    def unit():\n        return K\n"
USER_FAILING = (
    "from {base} import K\n\n\nfrom {base} import EXTRA\n\n\n"
    "class Point:\n    @staticmethod\n    def unit():\n        return K\n\n    SCALE = K\n"
)


@pytest.mark.parametrize("bytecode", ["cached", "no __pycache__"])
@pytest.mark.parametrize("again", ["new shell", "unload and load"])
def test_a_failed_save_stays_failed_when_hotswap_is_loaded_again(new_shell, modules, again, bytecode, capsys):
    """The new session knows what the module runs (the old text), not what its file says."""
    base, user = modules.named("base"), modules.named("user")
    modules.write(base, BASE)
    modules.write(user, USER.format(base=base))
    shell = new_shell(load=True)
    run(shell, f"import {user} as user")
    modules.write(user, USER_FAILING.format(base=base))
    run(shell, "1")
    assert "EXTRA" in capsys.readouterr().err
    if bytecode == "no __pycache__":
        shutil.rmtree(modules.path(user).parent / "__pycache__")

    if again == "new shell":
        shell = new_shell(load=True)
    else:
        run(shell, "%unload_ext hotswap")
        run(shell, "%load_ext hotswap")
        run(shell, "%autoreload 2")
    run(shell, f"import {user} as user")
    modules.write(base, "K = 2\n")  # the user module follows: from the text it runs
    run(shell, "1")

    assert run(shell, "user.Point.unit()") == 2
    assert run(shell, "hasattr(user.Point, 'SCALE')") is False
    assert run(shell, "user.Point.unit.__code__.co_firstlineno") == 5  # its line in the text it runs
    assert "EXTRA" in capsys.readouterr().err  # still failing: said again in the new session
    modules.write(base, "K = 3\nEXTRA = 0\n")
    assert run(shell, "(user.Point.unit(), user.Point.SCALE, user.Point.unit.__code__.co_firstlineno)") == (3, 3, 8)


def test_loaded_again_twice_around_a_failed_save_tracebacks_show_the_text_that_runs(new_shell, modules):
    """The module runs a version hotswap reloaded (its __pycache__ holds the first import's code)."""
    reloaded = V1 + "\n\ndef g():\n    return 'g'\n"  # f as imported: __pycache__ seems to match
    modules.write(modules.name, V1)
    shell = new_shell(load=True)
    run(shell, f"import {modules.name} as m")
    modules.write(modules.name, reloaded)
    assert run(shell, "m.g()") == "g"
    for _ in range(2):
        run(shell, "%unload_ext hotswap")
        run(shell, "%load_ext hotswap")
        run(shell, "%autoreload 2")
        modules.write(modules.name, "X = (1,\n")
        run(shell, "1")

    assert run(shell, "import inspect; inspect.getsource(m)") == reloaded
    assert run(shell, "m.f(), m.g()") == (1, "g")


def test_a_save_while_unloaded_is_applied_once_loaded_again(new_shell, modules):
    """What the module ran when hotswap was unloaded is known: the save is applied as an edit."""
    log, text = counted_runs(modules)
    shell = new_shell(load=True)
    run(shell, f"import {modules.name} as m, {log} as log")
    run(shell, "%unload_ext hotswap")
    shutil.rmtree(modules.path(modules.name).parent / "__pycache__")  # no bytecode to compare with
    modules.write(modules.name, text.format(2))
    run(shell, "%load_ext hotswap")
    run(shell, "%autoreload 2")

    assert run(shell, "m.f()") == 2
    assert run(shell, "len(log.RUNS)") == 1  # an edit of f: the module's statements did not re-run


# -- the pattern of IPython's autoreload tests: a new shell per test -----------


class TestOneShellPerTest:
    """Each test: a new shell, ``%load_ext hotswap``, ``%autoreload 2``; the previous one left as it was."""

    @pytest.fixture(autouse=True)
    def _shell(self, new_shell: NewShell) -> None:
        self.shell = new_shell(load=True)

    def cell(self, source: str) -> Any:
        return run(self.shell, source)

    def test_functions_and_methods_of_existing_instances(self, modules):
        modules.write(modules.name, "def f():\n    return 1\n\nclass C:\n    def m(self):\n        return 1\n")
        self.cell(f"from {modules.name} import f, C")
        self.cell("c = C(); m = c.m")
        modules.write(modules.name, "def f():\n    return 2\n\nclass C:\n    def m(self):\n        return 2\n")

        assert self.cell("(f(), c.m(), m(), isinstance(c, C))") == (2, 2, 2, True)

    def test_an_enum_gains_a_member(self, modules):
        modules.write(modules.name, "import enum\n\nclass Color(enum.Enum):\n    RED = 1\n")
        self.cell(f"import {modules.name} as m")
        self.cell("red = m.Color.RED")
        modules.write(modules.name, "import enum\n\nclass Color(enum.Enum):\n    RED = 1\n    BLUE = 2\n")

        assert self.cell("(m.Color.BLUE.value, red is m.Color.RED, isinstance(red, m.Color))") == (2, True, True)

    def test_a_class_keeps_its_identity(self, modules):
        modules.write(modules.name, "class A:\n    x = 1\n\nclass B(A):\n    pass\n")
        self.cell(f"import {modules.name} as m")
        self.cell("a, b, A = m.A(), m.B(), m.A")
        modules.write(modules.name, "class A:\n    x = 2\n    def y(self):\n        return 3\n\nclass B(A):\n    pass\n")

        assert self.cell("(A is m.A, isinstance(b, m.A), a.x, b.y())") == (True, True, 2, 3)

    def test_mode_3_brings_new_names_to_the_namespace(self, modules):
        modules.write(modules.name, "def f():\n    return 1\n")
        self.cell("%autoreload 3")
        self.cell(f"from {modules.name} import *")
        modules.write(modules.name, "def f():\n    return 1\n\ndef g():\n    return 2\n\nNEW = 3\n")

        assert self.cell("(g(), NEW)") == (2, 3)

    def test_aimport_marks_a_module_for_mode_1(self, modules):
        marked, other = modules.named("marked"), modules.named("other")
        modules.write(marked, V1)
        modules.write(other, V1)
        self.cell("%autoreload 1")
        self.cell(f"%aimport {marked}")
        self.cell(f"import {other}")
        modules.write(marked, V2)
        modules.write(other, V2)

        assert self.cell(f"({marked}.f(), {other}.f())") == (2, 1)

    def test_a_failing_save_keeps_the_module_and_a_good_save_applies(self, modules, capsys):
        modules.write(modules.name, V1)
        self.cell(f"import {modules.name} as m")
        modules.write(modules.name, "def f(:\n")
        assert self.cell("m.f()") == 1
        assert modules.name in capsys.readouterr().err
        modules.write(modules.name, V3)

        assert self.cell("m.f()") == 3

    def test_print_says_what_reloaded(self, modules, capsys):
        modules.write(modules.name, V1)
        self.cell("%autoreload -p 2")
        self.cell(f"import {modules.name} as m")
        capsys.readouterr()
        modules.write(modules.name, V2)

        assert self.cell("m.f()") == 2
        assert modules.name in capsys.readouterr().out

    def test_unload_and_load_in_this_shell(self, modules):
        modules.write(modules.name, V1)
        self.cell(f"import {modules.name} as m")
        self.cell("%unload_ext hotswap")
        modules.write(modules.name, V2)
        assert self.cell("m.f()") == 1
        self.cell("%load_ext hotswap")
        self.cell("%autoreload 2")

        assert self.cell("m.f()") == 2
