"""Issue 19: the life events of a working tree leave nothing stale.

A save in a wrong encoding, a module excluded and included again, an error
inside hotswap itself: each is one module's reported failure (or nothing at
all), and everything else in the same check, and in the checks after it,
stays in step with the files.
"""

from __future__ import annotations

import logging
import sys
import textwrap

import pytest


def _expect_internal_error_logged(*words: str) -> None:
    """The test provoked an internal error on purpose: take its report out of what the
    ``plain_shell`` fixture checks at teardown (any other one still fails the test)."""
    for handler in logging.getLogger("hotswap").handlers:
        messages = getattr(handler, "messages", None)
        if isinstance(messages, list):
            expected = [m for m in messages if "internal error in hotswap" in m and all(w in m for w in words)]
            assert expected, messages
            messages[:] = [m for m in messages if m not in expected]


# -- a save whose bytes are not UTF-8 -------------------------------------------------------


def test_a_save_that_is_not_utf8_is_that_modules_syntax_error_and_the_rest_applies(
    shell, modules, cell, capsys
):
    core, user, bad = modules.named("core"), modules.named("user"), modules.named("bad")
    modules.write(core, "K = 1\n")
    modules.write(user, f"from {core} import K\nDOUBLE = K * 2\n")
    modules.write(bad, "def f():\n    return 'good'\n")
    cell("%autoreload 2")
    cell(f"import {bad}, {core}, {user}")  # bad first: it is looked at first

    modules.write(core, "K = 2\n")  # saved at the same time as the bad bytes
    path = modules.path(bad)
    path.write_bytes(b"def f():\n    return 'caf\xe9'\n")  # Latin-1, no coding line
    capsys.readouterr()

    assert cell(f"({core}.K, {user}.K, {user}.DOUBLE, {bad}.f())") == (2, 2, 4, "good")
    err = capsys.readouterr().err
    assert f"hotswap: [autoreload of {bad} failed: SyntaxError: the file is not valid UTF-8" in err, err
    assert f"{path}:2" in err and "byte 0xe9" in err and "coding line" in err
    assert "internal error" not in err and "as they were" not in err
    assert f"{bad} keeps running its previous version" in err

    assert cell(f"{bad}.f()") == "good"
    assert "not valid UTF-8" not in capsys.readouterr().err  # said once

    cell("%autoreload now")  # asked again: the same failure, nothing else stops
    assert "internal error" not in capsys.readouterr().err
    modules.write(core, "K = 3\n")
    assert cell(f"({user}.K, {user}.DOUBLE)") == (3, 6)

    modules.write(bad, "def f():\n    return 'café'\n")  # the next good save
    assert cell(f"{bad}.f()") == "café"


def test_a_file_that_breaks_its_coding_line_is_a_syntax_error_at_the_line(shell, modules, cell, capsys):
    cell("%autoreload 2")
    modules.write(modules.name, "# -*- coding: ascii -*-\nX = 'plain'\n")
    cell(f"import {modules.name} as m")

    path = modules.path(modules.name)
    path.write_bytes(b"# -*- coding: ascii -*-\nX = 'caf\xc3\xa9'\n")
    capsys.readouterr()

    assert cell("m.X") == "plain"
    err = capsys.readouterr().err
    assert "SyntaxError: the file is not valid ascii" in err and f"{path}:2" in err, err
    assert "internal error" not in err


def test_bad_bytes_in_one_of_two_saves_reloader_without_ipython(modules):
    """The engine alone (no IPython): the failure is a value, the other module is applied."""
    import importlib

    import hotswap

    reloader = hotswap.Reloader()
    reloader.start()
    try:
        reloader.mode = hotswap.Mode.ALL
        good, bad = modules.named("good"), modules.named("bad")
        modules.write(good, "X = 1\n")
        modules.write(bad, "Y = 1\n")
        good_module, bad_module = importlib.import_module(good), importlib.import_module(bad)
        modules.write(good, "X = 2\n")
        modules.path(bad).write_bytes(textwrap.dedent("Y = 2\nZ = '\xff'\n").encode("latin-1"))

        outcomes = {o.module: o for o in reloader.check()}
        assert isinstance(outcomes[good], hotswap.Reloaded) and good_module.X == 2
        failure = outcomes[bad]
        assert isinstance(failure, hotswap.Failure) and not failure.internal
        assert (failure.line, failure.column) == (2, 6) and failure.error.startswith("SyntaxError: ")
        assert bad_module.Y == 1
    finally:
        reloader.stop()


# -- excluded, saved, included again --------------------------------------------------------


def test_a_module_saved_while_excluded_is_compared_with_its_file_when_included_again(
    shell, modules, cell
):
    modules.write(modules.name, "def f():\n    return 1\n")
    cell("%autoreload 2")
    cell(f"import {modules.name} as m")
    cell(f"%aimport -{modules.name}")

    modules.write(modules.name, "def f():\n    return 2\n")
    assert cell("m.f()") == 1  # excluded: not reloaded

    cell(f"%aimport {modules.name}")
    assert cell("m.f()") == 2


def test_a_module_saved_before_it_is_marked_is_compared_with_its_file_when_marked(shell, modules, cell):
    modules.write(modules.name, "def f():\n    return 1\n")
    cell("%autoreload 1")  # only the modules marked with %aimport
    cell(f"import {modules.name} as m")

    modules.write(modules.name, "def f():\n    return 2\n")
    assert cell("m.f()") == 1  # not marked: not reloaded

    cell(f"%aimport {modules.name}")
    assert cell("m.f()") == 2


# -- an error inside hotswap ----------------------------------------------------------------

# A lazy proxy, as web frameworks have for "the current app": every attribute it lacks
# raises RuntimeError until it is set up (not AttributeError). hotswap looks into the
# values a module holds for caches to clear, and a proxy without ``__dict__`` answers
# that look with the error: an error inside hotswap, not in the user's code.
PROXY = textwrap.dedent("""
    READY = []

    class Lazy:
        __slots__ = ("_name",)

        def __init__(self, name):
            self._name = name

        def __getattr__(self, attribute):
            if not READY:
                raise RuntimeError(f"{self._name} is not set up yet")
            raise AttributeError(attribute)

        def __call__(self):
            return self._name
""")


@pytest.fixture
def lazy_breaks_hotswap(monkeypatch: pytest.MonkeyPatch) -> None:
    """An internal error on demand: hotswap's look for code among a module's values fails on a
    ``Lazy`` whose module is not ``READY``. (Such an object once made hotswap fail for real; it
    reads nothing of it now, so the fault is put where that read was.)"""
    import hotswap._aftercare as aftercare

    looked_for = aftercare._code_in

    def fragile(values, owner, homes=frozenset()):
        values = list(values)
        for value in values:
            if type(value).__name__ == "Lazy" and not sys.modules[type(value).__module__].READY:
                raise RuntimeError("app is not set up yet")
        return looked_for(values, owner, homes)

    monkeypatch.setattr(aftercare, "_code_in", fragile)


@pytest.mark.usefixtures("lazy_breaks_hotswap")
def test_an_error_inside_hotswap_is_said_as_hotswaps_not_the_users(shell, modules, cell, capsys):
    modules.write(modules.name, PROXY + "\napp = Lazy('app')\n\ndef f():\n    return 1\n")
    cell("%autoreload 2")
    cell(f"import {modules.name} as m")

    modules.write(modules.name, PROXY + "\napp = Lazy('main app')\n\ndef f():\n    return 2\n")
    capsys.readouterr()

    assert cell("m.f()") == 1
    err = capsys.readouterr().err
    assert f"hotswap: internal error in hotswap while reloading {modules.name}" in err, err
    assert "RuntimeError: app is not set up yet" in err and "please report it" in err
    assert "save a fixed file" not in err and "[autoreload of" not in err
    assert f"{modules.name} keeps running its previous version; run %autoreload now to try again" in err
    assert cell("m.app()") == "app"  # left exactly as it was
    _expect_internal_error_logged(modules.name)

    cell("m.READY.append(1)")
    cell("%autoreload now")  # nothing changed on disk: asking again tries again
    assert cell("(m.f(), m.app())") == (2, "main app")
    assert "internal error" not in capsys.readouterr().err


@pytest.mark.usefixtures("lazy_breaks_hotswap")
def test_a_dependent_hotswap_failed_on_follows_at_the_next_save(shell, modules, cell, capsys):
    core, mid, top = modules.named("core"), modules.named("mid"), modules.named("top")
    modules.write(core, "K = 1\n")
    modules.write(mid, PROXY + f"\nfrom {core} import K\nT = K * 10\napp = Lazy('app')\n")
    modules.write(top, f"from {mid} import T\n\ndef get():\n    return T\n")
    cell("%autoreload 2")
    cell(f"import {core}, {mid}, {top}")

    modules.write(core, "K = 2\n")
    capsys.readouterr()
    cell("pass")
    err = capsys.readouterr().err
    assert f"hotswap: internal error in hotswap while {mid} followed {core}" in err, err
    assert "please report it" in err and "save a fixed file" not in err
    assert f"{mid} keeps its previous values; it follows {core} at their next change" in err
    # consistent: mid as it was, and top with it
    assert cell(f"({core}.K, {mid}.K, {mid}.T, {top}.T, {top}.get())") == (2, 1, 10, 10, 10)
    _expect_internal_error_logged(mid)

    cell(f"{mid}.READY.append(1)")
    modules.write(core, "K = 3\n")  # the next save: the dependent follows, and what depends on it
    assert cell(f"({mid}.K, {mid}.T, {top}.T, {top}.get())") == (3, 30, 30, 30)
    assert "internal error" not in capsys.readouterr().err


@pytest.mark.usefixtures("lazy_breaks_hotswap")
def test_modules_left_behind_when_passing_a_change_on_failed_follow_at_the_next_save(
    shell, modules, cell, capsys
):
    core, first, second = modules.named("core"), modules.named("first"), modules.named("second")
    modules.write(core, "K = 1\n")
    for name in (first, second):  # two leaves of core: hotswap fails on whichever it takes first
        modules.write(name, PROXY + f"\nfrom {core} import K\nT = K * 10\napp = Lazy('app')\n")
    cell("%autoreload 2")
    cell(f"import {core}, {first}, {second}")
    cell(f"from {core} import K")

    modules.write(core, "K = 2\n")
    capsys.readouterr()
    cell("pass")
    err = capsys.readouterr().err
    assert f"hotswap: internal error in hotswap after reloading {core}, while what imports from it followed" in err
    assert f"{core} runs its new version; what imports from it follows at its next change" in err, err
    assert cell(f"({core}.K, K)") == (2, 2)
    _expect_internal_error_logged(core)

    cell(f"{first}.READY.append(1); {second}.READY.append(1)")
    modules.write(core, "K = 3\n")
    values = f"({core}.K, K, {first}.K, {first}.T, {second}.K, {second}.T)"
    assert cell(values) == (3, 3, 3, 30, 3, 30)
    assert "internal error" not in capsys.readouterr().err
