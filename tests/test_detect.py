"""Never stale: the code a cell runs is the code saved on disk when the cell started."""

from __future__ import annotations

import importlib.util
import itertools
import json  # noqa: F401 - a standard-library module that is loaded before hotswap
import os
import py_compile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hotswap._ipython as hotswap_ipython


def version(value: str) -> str:
    """A module whose text has the same size for every ``value`` of the same length."""
    return f"def f():\n    return {value!r}\n"


def watchlist(shell):
    return hotswap_ipython.session_of(shell).reloader.watchlist


def test_edit_saved_in_the_cell_that_imported_the_module(shell, modules, cell):
    path = modules.write(modules.name, version("v1"))
    cell("%autoreload 2")
    shell.push({"path": str(path), "new_text": version("v2")})
    cell(f"import {modules.name} as m\nwith open(path, 'w') as file:\n    file.write(new_text)")

    assert cell("m.f()") == "v2"


def test_edit_saved_right_after_the_import(shell, modules, cell):
    modules.write(modules.name, version("v1"))
    cell("%autoreload 2")
    cell(f"from {modules.name} import f")
    modules.write(modules.name, version("v2"))

    assert cell("f()") == "v2"


def test_edit_that_keeps_size_and_mtime(shell, modules, cell):
    modules.write(modules.name, version("v1"))
    cell("%autoreload 2")
    cell(f"from {modules.name} import f")
    modules.save_keeping_stat(modules.name, version("v2"))

    assert cell("f()") == "v2"


def test_edit_that_keeps_size_and_an_old_mtime(shell, modules, cell):
    path = modules.write(modules.name, version("v1"))
    os.utime(path, ns=(10**18, 10**18))  # an mtime far from now: never "too recent to trust"
    cell("%autoreload 2")
    cell(f"from {modules.name} import f")
    modules.save_keeping_stat(modules.name, version("v2"))

    assert cell("f()") == "v2"


def test_atomic_save_by_rename(shell, modules, cell):
    modules.write(modules.name, version("v1"))
    cell("%autoreload 2")
    cell(f"from {modules.name} import f")
    modules.save_atomically(modules.name, version("v2"))

    assert cell("f()") == "v2"


def test_file_missing_for_a_moment_then_back(shell, modules, cell):
    path = modules.write(modules.name, version("v1"))
    cell("%autoreload 2")
    cell(f"from {modules.name} import f")
    path.unlink()

    assert cell("f()") == "v1"  # nothing to reload, nothing fails
    modules.write(modules.name, version("v2"))
    assert cell("f()") == "v2"


def test_two_saves_in_quick_succession_the_last_one_runs(shell, modules, cell):
    modules.write(modules.name, version("v1"))
    cell("%autoreload 2")
    cell(f"from {modules.name} import f")
    modules.write(modules.name, version("v2"))
    modules.save_keeping_stat(modules.name, version("v3"))

    assert cell("f()") == "v3"


def test_saves_between_quick_cells_are_each_seen(shell, modules, cell):
    modules.write(modules.name, version("v1"))
    cell("%autoreload 2")
    cell(f"from {modules.name} import f")
    for value in ("v2", "v3", "v4"):
        modules.save_keeping_stat(modules.name, version(value))
        assert cell("f()") == value


def test_stale_pycache_does_not_win(shell, modules, cell):
    path = modules.write(modules.name, version("A"))
    before = path.stat()
    py_compile.compile(
        str(path),
        cfile=importlib.util.cache_from_source(str(path)),
        doraise=True,
        invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP,
    )
    path.write_text(version("B"))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size

    # The import system itself trusts that stale bytecode:
    spec = importlib.util.spec_from_file_location(modules.named("control"), path)
    control = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(control)
    assert control.f() == "A"

    cell("%autoreload 2")
    cell(f"from {modules.name} import f")
    assert cell("f()") == "B"
    modules.write(modules.name, version("C"))
    assert cell("f()") == "C"


def test_only_the_users_modules_are_watched(shell, modules, cell):
    modules.write(modules.name, version("v1"))
    cell(f"import {modules.name}")
    cell("import colorsys, IPython.lib.demo")  # the standard library, an installed package
    watched = watchlist(shell)

    assert modules.name in watched
    for library in ("json", "os", "colorsys", "IPython", "IPython.lib.demo", "pytest", "hotswap"):
        assert library not in watched, library


def test_a_module_imported_before_loading_hotswap_is_adopted(plain_shell, modules, cell):
    modules.write(modules.name, version("v1"))
    cell(f"from {modules.name} import f")
    cell("%load_ext hotswap")
    cell("%autoreload 2")
    assert modules.name in watchlist(plain_shell)
    modules.write(modules.name, version("v2"))

    assert cell("f()") == "v2"


_names = itertools.count()
SAVES = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=999),
        st.sampled_from(["write", "atomic", "keep_stat"]),
        st.booleans(),  # run a cell after this save?
    ),
    min_size=1,
    max_size=5,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(saves=SAVES)
def test_any_sequence_of_saves_the_next_cell_runs_the_last_one(shell, modules, cell, saves):
    name = modules.named(f"p{next(_names)}")
    modules.write(name, version("000"))
    cell("%autoreload 2")
    cell(f"import {name} as m")
    save = {"write": modules.write, "atomic": modules.save_atomically, "keep_stat": modules.save_keeping_stat}
    for value, how, check in saves:
        save[how](name, version(f"{value:03d}"))
        if check:
            assert cell("m.f()") == f"{value:03d}"
    assert cell("m.f()") == f"{saves[-1][0]:03d}"


def test_an_edit_saved_before_loading_hotswap_is_applied(plain_shell, modules, cell):
    modules.write(modules.name, version("v1"))
    cell(f"from {modules.name} import f")
    modules.write(modules.name, version("v2"))  # saved while nothing watched
    cell("%load_ext hotswap")
    cell("%autoreload 2")

    assert cell("f()") == "v2"


def test_a_module_whose_first_import_failed_is_watched_once_fixed(shell, modules, cell):
    modules.write(modules.name, "def f():\n    return 'v1'\n\nraise ImportError('not yet')\n")
    cell("%autoreload 2")
    assert not shell.run_cell(f"import {modules.name}").success
    modules.write(modules.name, version("v2"))
    cell(f"from {modules.name} import f")
    assert cell("f()") == "v2"

    modules.write(modules.name, version("v3"))
    assert cell("f()") == "v3"


def test_a_module_imported_again_after_leaving_sys_modules(shell, modules, cell):
    modules.write(modules.name, version("v1"))
    cell("%autoreload 2")
    cell(f"import sys, {modules.name}")
    cell(f"del sys.modules[{modules.name!r}]")
    modules.write(modules.name, version("v2"))
    cell(f"import {modules.name} as m")
    assert cell("m.f()") == "v2"

    modules.write(modules.name, version("v3"))
    assert cell("m.f()") == "v3"
