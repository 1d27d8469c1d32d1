"""Reversible integration: load installs every hook, unload removes exactly those."""

from __future__ import annotations

import sys

import pytest

import hotswap
import hotswap._ipython as hotswap_ipython

V1 = "def f():\n    return 1\n"
V2 = "def f():\n    return 2\n"
V3 = "def f():\n    return 3\n"


def callbacks(shell) -> dict[str, list[object]]:
    return {event: list(found) for event, found in shell.events.callbacks.items()}


def hotswap_callbacks(shell) -> list[object]:
    return [
        callback
        for found in shell.events.callbacks.values()
        for callback in found
        if type(getattr(callback, "__self__", None)).__module__.startswith("hotswap")
    ]


def hotswap_finders() -> list[object]:
    return [finder for finder in sys.meta_path if type(finder).__module__.startswith("hotswap")]


def test_unload_removes_the_callbacks_and_the_import_hook_it_added(plain_shell, cell):
    events_before, meta_path_before = callbacks(plain_shell), list(sys.meta_path)
    cell("%load_ext hotswap")
    assert len(hotswap_callbacks(plain_shell)) == 2
    assert len(hotswap_finders()) == 1

    cell("%unload_ext hotswap")
    assert callbacks(plain_shell) == events_before
    assert sys.meta_path == meta_path_before
    assert hotswap_ipython.session_of(plain_shell) is None
    assert plain_shell.find_line_magic("autoreload") is None
    assert plain_shell.find_line_magic("aimport") is None


def test_after_unload_edits_are_no_longer_applied(plain_shell, modules, cell):
    modules.write(modules.name, V1)
    cell("%load_ext hotswap")
    cell("%autoreload 2")
    cell(f"from {modules.name} import f")
    modules.write(modules.name, V2)
    assert cell("f()") == 2

    cell("%unload_ext hotswap")
    modules.write(modules.name, V3)
    assert cell("f()") == 2


def test_load_unload_load_works(plain_shell, modules, cell):
    modules.write(modules.name, V1)
    cell("%load_ext hotswap")
    cell("%unload_ext hotswap")
    cell("%load_ext hotswap")
    cell("%autoreload 2")
    cell(f"from {modules.name} import f")
    modules.write(modules.name, V2)

    assert cell("f()") == 2
    assert len(hotswap_callbacks(plain_shell)) == 2
    assert len(hotswap_finders()) == 1


def test_reload_ext_leaves_one_set_of_hooks(plain_shell, modules, cell):
    modules.write(modules.name, V1)
    cell("%load_ext hotswap")
    cell("%reload_ext hotswap")
    cell("%autoreload 2")
    cell(f"from {modules.name} import f")
    modules.write(modules.name, V2)

    assert cell("f()") == 2
    assert len(hotswap_callbacks(plain_shell)) == 2
    assert len(hotswap_finders()) == 1


def test_loading_twice_is_harmless(shell, modules, cell):
    log = modules.named("log")
    modules.write(log, "RUNS = []\n")
    text = f"import {log}\n{log}.RUNS.append(1)\n\ndef f():\n    return {{}}\n"
    modules.write(modules.name, text.format(1))
    session = hotswap_ipython.session_of(shell)
    cell("%load_ext hotswap")
    hotswap.load_ipython_extension(shell)  # and once more, directly

    assert hotswap_ipython.session_of(shell) is session
    assert len(hotswap_callbacks(shell)) == 2
    assert len(hotswap_finders()) == 1
    cell("%autoreload --full 2")
    cell(f"import {modules.name} as m, {log} as log")
    modules.write(modules.name, text.format(2))
    assert cell("m.f()") == 2
    assert cell("len(log.RUNS)") == 2  # imported once, re-run once: not once per load


def test_unloading_twice_is_harmless(plain_shell, cell):
    meta_path_before = list(sys.meta_path)
    cell("%load_ext hotswap")
    assert len(hotswap_callbacks(plain_shell)) == 2 and len(hotswap_finders()) == 1
    hotswap.unload_ipython_extension(plain_shell)
    hotswap.unload_ipython_extension(plain_shell)
    assert sys.meta_path == meta_path_before
    assert hotswap_callbacks(plain_shell) == []
    plain_shell.extension_manager.loaded.discard("hotswap")


# -- IPython's own autoreload --------------------------------------------------


def _is_ipython_autoreload(callback: object) -> bool:
    # Older IPython 8 releases (8.12 here) register an adapter around callbacks that take fewer
    # arguments than the event passes (``backcall``); the method is its ``__wrapped__``.
    method = getattr(callback, "__wrapped__", callback)
    return type(getattr(method, "__self__", None)).__module__ == "IPython.extensions.autoreload"


@pytest.fixture
def ipython_autoreload(plain_shell):
    """IPython's ``autoreload`` loaded in the shell (it has no unload: undone by hand)."""
    result = plain_shell.run_cell("%load_ext autoreload")
    assert result.success
    magics = plain_shell.magics_manager.registry["AutoreloadMagics"]
    yield magics
    if hotswap_ipython.session_of(plain_shell) is not None:
        plain_shell.run_line_magic("unload_ext", "hotswap")
    for found in plain_shell.events.callbacks.values():
        for callback in [c for c in found if _is_ipython_autoreload(c)]:
            found.remove(callback)
    line_magics = plain_shell.magics_manager.magics["line"]
    for name in ("autoreload", "aimport"):
        if _is_ipython_autoreload(line_magics.get(name)):
            del line_magics[name]
    plain_shell.magics_manager.registry.pop("AutoreloadMagics", None)
    for name in ("autoreload", "IPython.extensions.autoreload"):
        plain_shell.extension_manager.loaded.discard(name)


def test_hotswap_takes_over_from_ipython_autoreload(plain_shell, ipython_autoreload, modules, cell, capsys):
    cell("%autoreload 2")  # IPython's own, enabled
    assert any(_is_ipython_autoreload(c) for found in plain_shell.events.callbacks.values() for c in found)
    early = modules.named("early")
    modules.write(early, V1)
    cell(f"import {early}")
    cell("1")
    assert early in ipython_autoreload._reloader.modules_mtimes  # IPython's check sees user modules
    modules.write(modules.name, V1)

    cell("%load_ext hotswap")
    assert "takes over" in capsys.readouterr().err
    assert not any(_is_ipython_autoreload(c) for found in plain_shell.events.callbacks.values() for c in found)
    assert len(hotswap_callbacks(plain_shell)) == 2

    cell("%autoreload 2")  # hotswap's now
    cell(f"from {modules.name} import f")
    modules.write(modules.name, V2)
    assert cell("f()") == 2
    assert cell("f()") == 2
    assert modules.name not in ipython_autoreload._reloader.modules_mtimes  # IPython's check never ran


def test_unload_gives_back_the_magics_that_were_there_before(plain_shell, ipython_autoreload, cell):
    ipythons = plain_shell.find_line_magic("autoreload")
    cell("%load_ext hotswap")
    assert plain_shell.find_line_magic("autoreload") != ipythons

    cell("%unload_ext hotswap")
    assert plain_shell.find_line_magic("autoreload") == ipythons


# -- the core, without IPython ----------------------------------------------------


@pytest.fixture
def reloader():
    engine = hotswap.Reloader()
    engine.start()
    yield engine
    engine.stop()


def test_reloader_without_ipython(reloader, modules):
    import importlib

    modules.write(modules.name, V1)
    reloader.mode = hotswap.Mode.ALL
    module = importlib.import_module(modules.name)
    f = module.f
    assert reloader.check() == []

    path = modules.write(modules.name, V2)
    outcomes = reloader.check()
    assert len(outcomes) == 1 and isinstance(outcomes[0], hotswap.Reloaded)
    assert outcomes[0].module == modules.name and outcomes[0].path == str(path)
    assert "f" in outcomes[0].upgraded
    assert f() == 2 and module.f is f
    assert reloader.check() == []  # idle


def test_reloader_reports_a_failure_as_a_value(reloader, modules):
    import importlib

    modules.write(modules.name, V1)
    reloader.mode = hotswap.Mode.ALL
    module = importlib.import_module(modules.name)
    path = modules.write(modules.name, "def f(:\n    return 2\n")

    (outcome,) = reloader.check()
    assert isinstance(outcome, hotswap.Failure)
    assert (outcome.module, outcome.path, outcome.line) == (modules.name, str(path), 1)
    assert "SyntaxError" in outcome.error and not outcome.internal
    assert module.f() == 1
    assert reloader.check() == []  # reported once


def test_reloader_is_off_until_a_mode_is_set(reloader, modules):
    import importlib

    modules.write(modules.name, V1)
    module = importlib.import_module(modules.name)
    modules.write(modules.name, V2)

    assert reloader.check() == [] and module.f() == 1
    assert [type(o) for o in reloader.check(everything=True)] == [hotswap.Reloaded]
    assert module.f() == 2


def test_stopped_reloader_no_longer_watches_new_imports(modules):
    import importlib

    before, after = modules.named("before"), modules.named("after")
    modules.write(before, V1)
    modules.write(after, V1)
    engine = hotswap.Reloader()
    engine.start()
    importlib.import_module(before)
    assert before in engine.watchlist
    engine.stop()
    importlib.import_module(after)
    assert after not in engine.watchlist
    assert not hotswap_finders()


@pytest.mark.parametrize(
    ("word", "mode"),
    [
        ("0", hotswap.Mode.OFF), ("off", hotswap.Mode.OFF),
        ("1", hotswap.Mode.EXPLICIT), ("explicit", hotswap.Mode.EXPLICIT),
        ("2", hotswap.Mode.ALL), ("all", hotswap.Mode.ALL), ("ALL", hotswap.Mode.ALL),
        ("3", hotswap.Mode.COMPLETE), ("complete", hotswap.Mode.COMPLETE),
    ],
)
def test_mode_parse(word, mode):
    assert hotswap.Mode.parse(word) is mode


def test_mode_parse_rejects_unknown_words():
    with pytest.raises(ValueError, match="sometimes"):
        hotswap.Mode.parse("sometimes")


def test_modules_imported_under_hotswap_keep_a_plain_loader_and_reload_after_unload(plain_shell, modules, cell):
    from importlib.machinery import SourceFileLoader

    modules.write(modules.name, V1)
    cell("%load_ext hotswap")
    cell("%autoreload 2")
    cell(f"import importlib, {modules.name} as m")
    assert modules.name in hotswap_ipython.session_of(plain_shell).reloader.watchlist
    assert cell("type(m.__loader__), type(m.__spec__.loader)") == (SourceFileLoader, SourceFileLoader)

    cell("%unload_ext hotswap")
    modules.write(modules.name, "def f():\n    return 2  # a new size: plain importlib trusts size and mtime\n")
    assert cell("m.f()") == 1
    assert cell("importlib.reload(m).f()") == 2
