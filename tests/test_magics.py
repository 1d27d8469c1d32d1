"""``%autoreload`` and ``%aimport``: every documented form, as a user types it."""

from __future__ import annotations

import logging
import sys

import pytest
from IPython.core.error import UsageError

import hotswap._ipython as hotswap_ipython

V1 = "def f():\n    return 1\n"
V2 = "def f():\n    return 2\n"


def test_loading_alone_reloads_nothing_until_asked(shell, modules, cell):
    modules.write(modules.name, V1)
    cell(f"import {modules.name} as m")
    modules.write(modules.name, V2)

    assert cell("m.f()") == 1  # the mode is off after %load_ext
    cell("%autoreload now")
    assert cell("m.f()") == 2  # the edit was seen all along


@pytest.mark.parametrize("line", ["%autoreload", "%autoreload now"])
def test_bare_autoreload_and_now_reload_once_with_the_mode_off(shell, modules, cell, line):
    modules.write(modules.name, V1)
    cell(f"from {modules.name} import f")
    modules.write(modules.name, V2)

    cell(line)
    assert cell("f()") == 2

    modules.write(modules.name, "def f():\n    return 3\n")
    assert cell("f()") == 2  # once: the mode is still off
    cell(line)
    assert cell("f()") == 3


@pytest.mark.parametrize("mode", ["0", "off"])
def test_mode_off_stops_reloading(shell, modules, cell, mode):
    modules.write(modules.name, V1)
    cell(f"import {modules.name} as m")
    cell("%autoreload 2")
    modules.write(modules.name, V2)
    assert cell("m.f()") == 2

    cell(f"%autoreload {mode}")
    modules.write(modules.name, "def f():\n    return 3\n")
    assert cell("m.f()") == 2
    assert hotswap_ipython.session_of(shell).reloader.mode == 0


@pytest.mark.parametrize("mode", ["1", "explicit"])
def test_explicit_mode_reloads_only_aimported_modules(shell, modules, cell, mode):
    marked, other = modules.named("marked"), modules.named("other")
    modules.write(marked, V1)
    modules.write(other, V1)
    cell(f"%autoreload {mode}")
    cell(f"%aimport {marked}")
    cell(f"import {other}")
    modules.write(marked, V2)
    modules.write(other, V2)

    assert cell(f"{marked}.f()") == 2
    assert cell(f"{other}.f()") == 1


@pytest.mark.parametrize("mode", ["2", "all"])
def test_all_mode_reloads_every_user_module(shell, modules, cell, mode):
    a, b = modules.named("a"), modules.named("b")
    modules.write(a, V1)
    modules.write(b, V1)
    cell(f"%autoreload {mode}")
    cell(f"import {a}, {b}")
    modules.write(a, V2)
    modules.write(b, V2)

    assert cell(f"{a}.f(), {b}.f()") == (2, 2)


@pytest.mark.parametrize("mode", ["3", "complete"])
def test_complete_mode_brings_new_names_to_a_star_import(shell, modules, cell, mode):
    modules.write(modules.name, V1)
    cell(f"%autoreload {mode}")
    cell(f"from {modules.name} import *")
    modules.write(modules.name, V2 + "\ndef g():\n    return 'new'\n")

    assert cell("f(), g()") == (2, "new")


def test_complete_mode_brings_no_names_to_a_plain_import(shell, modules, cell):
    modules.write(modules.name, V1)
    cell("%autoreload 3")
    cell(f"import {modules.name} as m")
    modules.write(modules.name, V1 + "\ndef g():\n    return 'new'\n")

    assert cell("m.g()") == "new"
    assert "g" not in shell.user_ns


def test_complete_mode_does_not_push_names_the_user_did_not_import(shell, modules, cell):
    modules.write(modules.name, V1)
    cell("%autoreload 3")
    cell(f"from {modules.name} import f")
    modules.write(modules.name, V2 + "\ndef g():\n    return 'new'\n")

    assert cell("f()") == 2
    assert cell(f"import {modules.name} as m; m.g()") == "new"
    assert "g" not in shell.user_ns


@pytest.mark.parametrize("flag", ["-p", "--print"])
def test_print_flag_names_the_reloaded_module(shell, modules, cell, capsys, flag):
    modules.write(modules.name, V1)
    cell(f"%autoreload {flag} 2")
    cell(f"import {modules.name} as m")
    capsys.readouterr()
    modules.write(modules.name, V2)

    assert cell("m.f()") == 2
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if modules.name in line]
    assert lines and "reloaded" in lines[0], out


def test_without_print_flag_a_reload_is_silent(shell, modules, cell, capsys):
    modules.write(modules.name, V1)
    cell("%autoreload 2")
    cell(f"import {modules.name} as m")
    capsys.readouterr()
    modules.write(modules.name, V2)

    assert cell("m.f()") == 2
    captured = capsys.readouterr()
    assert modules.name not in captured.out + captured.err


@pytest.mark.parametrize("flag", ["-l", "--log"])
def test_log_flag_logs_to_the_hotswap_logger_at_info(shell, modules, cell, caplog, flag):
    caplog.set_level(logging.INFO, logger="hotswap")
    modules.write(modules.name, V1)
    cell(f"%autoreload {flag} 2")
    cell(f"import {modules.name} as m")
    modules.write(modules.name, V2)

    assert cell("m.f()") == 2
    records = [
        r for r in caplog.records
        if r.name.split(".")[0] == "hotswap" and r.levelno == logging.INFO and modules.name in r.getMessage()
    ]
    assert len(records) == 1, caplog.records


def test_hide_errors_hides_a_broken_edit_but_keeps_the_old_version(shell, modules, cell, capsys, caplog):
    modules.write(modules.name, V1)
    cell("%autoreload --hide-errors 2")
    cell(f"from {modules.name} import f")
    capsys.readouterr()
    modules.write(modules.name, "def f(:\n    return 2\n")

    assert cell("f()") == 1
    captured = capsys.readouterr()
    assert modules.name not in captured.out + captured.err
    assert any(modules.name in r.getMessage() for r in caplog.records if r.name == "hotswap")

    modules.write(modules.name, V2)
    assert cell("f()") == 2  # the next good save is picked up


COUNTED = """
    import {log}
    {log}.RUNS.append("top level ran")

    def f():
        return {value}
"""


@pytest.mark.parametrize("line", ["%autoreload --full 2", "%autoreload 2-"])
def test_full_and_dash_suffix_rerun_the_whole_module(shell, modules, cell, line):
    log = modules.named("log")
    modules.write(log, "RUNS = []\n")
    modules.write(modules.name, COUNTED.format(log=log, value=1))
    cell(line)
    cell(f"import {modules.name} as m, {log} as log")
    assert cell("len(log.RUNS)") == 1
    modules.write(modules.name, COUNTED.format(log=log, value=2))

    assert cell("m.f()") == 2
    assert cell("len(log.RUNS)") == 2  # the untouched top-level statement ran again


def test_default_reload_does_not_rerun_untouched_statements(shell, modules, cell):
    log = modules.named("log")
    modules.write(log, "RUNS = []\n")
    modules.write(modules.name, COUNTED.format(log=log, value=1))
    cell("%autoreload 2")
    cell(f"import {modules.name} as m, {log} as log")
    modules.write(modules.name, COUNTED.format(log=log, value=2))

    assert cell("m.f()") == 2
    assert cell("len(log.RUNS)") == 1


def test_unknown_mode_is_a_usage_error_not_a_crash(shell, modules, cell):
    modules.write(modules.name, V1)
    cell("%autoreload 2")
    cell(f"from {modules.name} import f")

    result = shell.run_cell("%autoreload sometimes")
    assert not result.success
    assert isinstance(result.error_in_exec, UsageError)
    message = str(result.error_in_exec)
    assert "sometimes" in message and "mode" in message
    for word in ("off", "explicit", "all", "complete"):
        assert word in message

    modules.write(modules.name, V2)
    assert cell("f()") == 2  # the mode set before still holds


def test_aimport_alone_lists_modules_to_reload_and_to_skip(shell, modules, cell, capsys):
    marked, skipped = modules.named("marked"), modules.named("skipped")
    modules.write(marked, V1)
    modules.write(skipped, V1)
    cell("%autoreload 1")
    cell(f"%aimport {marked}")
    cell(f"%aimport -{skipped}")
    capsys.readouterr()

    cell("%aimport")
    out = capsys.readouterr().out
    assert "Modules to reload" in out and "Modules to skip" in out
    to_reload, _, to_skip = out.partition("Modules to skip")
    assert marked in to_reload and skipped not in to_reload
    assert skipped in to_skip and marked not in to_skip


def test_aimport_several_modules_at_once(shell, modules, cell):
    a, b, c = modules.named("a"), modules.named("b"), modules.named("c")
    for name in (a, b, c):
        modules.write(name, V1)
    cell("%autoreload 1")
    cell(f"%aimport {a}, {b}")
    cell(f"import {c}")
    for name in (a, b, c):
        modules.write(name, V2)

    assert cell(f"{a}.f(), {b}.f(), {c}.f()") == (2, 2, 1)


def test_aimport_minus_excludes_a_module_from_mode_all(shell, modules, cell):
    kept, skipped = modules.named("kept"), modules.named("skipped")
    modules.write(kept, V1)
    modules.write(skipped, V1)
    cell("%autoreload 2")
    cell(f"import {kept}, {skipped}")
    cell(f"%aimport -{skipped}")
    modules.write(kept, V2)
    modules.write(skipped, V2)

    assert cell(f"{kept}.f(), {skipped}.f()") == (2, 1)


def test_aimport_as_binds_the_alias_and_marks_the_module(shell, modules, cell):
    modules.write(modules.name, V1)
    cell("%autoreload 1")
    cell(f"%aimport {modules.name} as short")

    assert shell.user_ns["short"] is sys.modules[modules.name]
    assert modules.name not in shell.user_ns
    modules.write(modules.name, V2)
    assert cell("short.f()") == 2


def test_aimport_of_a_submodule_binds_the_package(shell, modules, cell):
    pkg = modules.named("pkg")
    modules.write(pkg, "", package=True)
    modules.write(f"{pkg}.sub", V1)
    cell("%autoreload 1")
    cell(f"%aimport {pkg}.sub")

    assert shell.user_ns[pkg] is sys.modules[pkg]
    modules.write(f"{pkg}.sub", V2)
    assert cell(f"{pkg}.sub.f()") == 2


def test_aimport_of_a_missing_module_is_a_usage_error(shell, modules, cell):
    result = shell.run_cell(f"%aimport {modules.named('missing')}")
    assert not result.success
    assert isinstance(result.error_in_exec, UsageError)
    assert modules.named("missing") in str(result.error_in_exec)


def test_autoreload_help_mentions_every_mode_and_flag(shell):
    doc = shell.find_line_magic("autoreload").__doc__
    for word in (
        "now", "0", "off", "1", "explicit", "2", "all", "3", "complete",
        "-p", "--print", "-l", "--log", "--hide-errors", "--full",
    ):
        assert word in doc, word
    aimport_doc = shell.find_line_magic("aimport").__doc__
    for form in ("%aimport foo", "foo, bar", "foo as f", "-foo"):
        assert form in aimport_doc, form


def test_flags_hold_until_the_next_autoreload_line(shell, modules, cell, capsys):
    modules.write(modules.name, V1)
    cell("%autoreload -p 2")
    cell(f"import {modules.name} as m")
    modules.write(modules.name, V2)
    assert cell("m.f()") == 2
    assert modules.name in capsys.readouterr().out

    cell("%autoreload 2")  # without -p: printing stops
    modules.write(modules.name, "def f():\n    return 3\n")
    assert cell("m.f()") == 3
    assert modules.name not in capsys.readouterr().out


def test_autoreload_now_skips_excluded_modules(shell, modules, cell):
    kept, skipped = modules.named("kept"), modules.named("skipped")
    modules.write(kept, V1)
    modules.write(skipped, V1)
    cell(f"import {kept}, {skipped}")
    cell(f"%aimport -{skipped}")
    modules.write(kept, V2)
    modules.write(skipped, V2)

    cell("%autoreload now")
    assert cell(f"{kept}.f(), {skipped}.f()") == (2, 1)


def test_aimport_after_an_exclusion_marks_the_module_again(shell, modules, cell):
    modules.write(modules.name, V1)
    cell("%autoreload 1")
    cell(f"%aimport -{modules.name}")
    cell(f"%aimport {modules.name}")
    modules.write(modules.name, V2)

    assert cell(f"{modules.name}.f()") == 2


def test_complete_mode_star_import_follows_dunder_all_and_skips_private_names(shell, modules, cell):
    modules.write(modules.name, "__all__ = ['f']\n\n" + V1)
    cell("%autoreload 3")
    cell(f"from {modules.name} import *")
    modules.write(
        modules.name,
        "__all__ = ['f', 'exported']\n\n" + V2
        + "\ndef exported():\n    return 'yes'\n\ndef unlisted():\n    return 'no'\n\ndef _private():\n    return 'no'\n",
    )

    assert cell("f(), exported()") == (2, "yes")
    assert "unlisted" not in shell.user_ns and "_private" not in shell.user_ns


def test_complete_mode_star_import_without_dunder_all_skips_private_names(shell, modules, cell):
    modules.write(modules.name, V1)
    cell("%autoreload 3")
    cell(f"from {modules.name} import *")
    modules.write(modules.name, V1 + "\ndef public():\n    return 'yes'\n\ndef _private():\n    return 'no'\n")

    assert cell("public()") == "yes"
    assert "_private" not in shell.user_ns


def test_print_flag_with_autoreload_now(shell, modules, cell, capsys):
    modules.write(modules.name, V1)
    cell(f"import {modules.name} as m")
    modules.write(modules.name, V2)
    capsys.readouterr()

    cell("%autoreload -p now")
    assert modules.name in capsys.readouterr().out
    assert cell("m.f()") == 2
