"""Issue 19: the life events of a working tree leave nothing stale.

A save in a wrong encoding, a module excluded and included again, an error
inside hotswap itself: each is one module's reported failure (or nothing at
all), and everything else in the same check, and in the checks after it,
stays in step with the files.
"""

from __future__ import annotations

import logging
import textwrap


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
    assert f"hotswap: {bad} was not reloaded: SyntaxError: the file is not valid UTF-8" in err, err
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
