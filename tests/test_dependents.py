"""Dependents follow: names taken with ``from m import`` are re-bound when ``m`` changes them."""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def project(shell, modules, cell):
    """``core`` (THRESHOLD), ``analysis`` (takes it by name and alias), mode 2 with ``-p``."""
    core, analysis = modules.named("core"), modules.named("analysis")
    modules.write(core, "THRESHOLD = 0.5\nTABLE = {'a': 1}\n")
    modules.write(
        analysis,
        f"""
        from {core} import THRESHOLD
        from {core} import THRESHOLD as T
        from {core} import TABLE
        LIMIT = THRESHOLD * 2

        def current():
            return THRESHOLD
        """,
    )
    cell("%autoreload 2 -p")
    cell(f"import {analysis} as analysis\nfrom {core} import THRESHOLD, TABLE\nfrom {core} import THRESHOLD as th")
    return core, analysis


def test_constant_is_re_bound_in_dependent_modules_and_the_user_namespace(project, modules, cell, capsys):
    core, analysis = project
    capsys.readouterr()
    modules.write(core, "THRESHOLD = 0.7\nTABLE = {'a': 1}\n")

    assert cell("(THRESHOLD, th, analysis.THRESHOLD, analysis.T, analysis.current())") == (0.7,) * 5
    assert cell("analysis.LIMIT") == 1.4  # the statement reading it ran again
    out = capsys.readouterr().out
    assert f"{analysis}.THRESHOLD" in out and "user namespace THRESHOLD" in out
    assert f"updated {analysis} after {core} changed" in out


def test_names_re_assigned_since_are_left_alone(project, modules, cell):
    core, _ = project
    cell("THRESHOLD = 'mine'\nanalysis.T = 'theirs'")
    modules.write(core, "THRESHOLD = 0.9\nTABLE = {'a': 1}\n")

    assert cell("(THRESHOLD, th, analysis.T, analysis.THRESHOLD)") == ("mine", 0.9, "theirs", 0.9)


def test_unchanged_values_keep_their_identity_everywhere(project, modules, cell):
    core, _ = project
    cell("table_before = TABLE; TABLE['b'] = 2")
    modules.write(core, "THRESHOLD = 0.6\nTABLE = {'a': 1}\n")

    assert cell("TABLE is table_before and analysis.TABLE is table_before and TABLE") == {"a": 1, "b": 2}


def test_package_re_exports_and_relative_imports_follow(shell, modules, cell):
    pkg = modules.named("pkg")
    modules.write(pkg, "from .sub import VALUE, f\nfrom . import sub\n", package=True)
    modules.write(f"{pkg}.sub", "from .consts import BASE\nVALUE = BASE + 1\ndef f():\n    return VALUE\n")
    modules.write(f"{pkg}.consts", "BASE = 10\n")
    cell("%autoreload 2")
    cell(f"import {pkg} as pkg\nfrom {pkg} import VALUE")
    modules.write(f"{pkg}.consts", "BASE = 20\n")

    assert cell("(pkg.sub.BASE, pkg.sub.VALUE, pkg.VALUE, VALUE, pkg.f())") == (20, 21, 21, 21, 21)
    assert cell("pkg.sub is __import__('sys').modules[pkg.__name__ + '.sub']") is True


def test_subclass_in_another_module_picks_up_its_base_s_new_method(shell, modules, cell):
    base, child = modules.named("base"), modules.named("child")
    modules.write(base, "class Base:\n    def hello(self):\n        return 'old'\n")
    modules.write(child, f"from {base} import Base\nclass Child(Base):\n    pass\n")
    cell("%autoreload 2")
    cell(f"from {child} import Child\nobj = Child()")
    modules.write(base, "class Base:\n    def hello(self):\n        return 'new'\n    def extra(self):\n        return 1\n")

    assert cell("(obj.hello(), obj.extra(), Child.__mro__[1] is __import__(Child.__module__).Base)") == (
        "new",
        1,
        True,
    )


def test_three_modules_edited_at_once_reload_dependencies_first(shell, modules, cell):
    log, core, mid, top = (modules.named(n) for n in ("log", "core", "mid", "top"))
    modules.write(log, "EVENTS = []\n")
    modules.write(core, f"import {log} as log\nlog.EVENTS.append('core 1')\nK = 1\n")
    modules.write(mid, f"import {log} as log\nfrom {core} import K\nlog.EVENTS.append('mid 1')\n")
    modules.write(top, f"import {log} as log\nfrom {mid} import K\nlog.EVENTS.append('top 1')\n")
    cell("%autoreload 2")
    cell(f"import {top}, {log} as log\nlog.EVENTS.clear()")
    # saved top first, core last: the order of saves must not matter
    modules.write(top, f"import {log} as log\nfrom {mid} import K\nlog.EVENTS.append('top 2')\n")
    modules.write(mid, f"import {log} as log\nfrom {core} import K\nlog.EVENTS.append('mid 2')\n")
    modules.write(core, f"import {log} as log\nlog.EVENTS.append('core 2')\nK = 2\n")

    assert cell("log.EVENTS") == ["core 2", "mid 2", "top 2"]
    assert cell(f"__import__('sys').modules[{top!r}].K") == 2


def test_import_cycle_is_reloaded_once_per_module(shell, modules, cell):
    a, b, log = modules.named("a"), modules.named("b"), modules.named("log")
    modules.write(log, "EVENTS = []\n")
    modules.write(a, f"import {log} as log\nX = 1\nfrom {b} import Y\nlog.EVENTS.append('a')\n")
    modules.write(b, f"import {log} as log\nY = 10\nfrom {a} import X\nlog.EVENTS.append('b')\n")
    cell("%autoreload 2")
    cell(f"import {a} as a, {b} as b, {log} as log\nlog.EVENTS.clear()")
    modules.write(a, f"import {log} as log\nX = 2\nfrom {b} import Y\nlog.EVENTS.append('a2')\n")
    modules.write(b, f"import {log} as log\nY = 20\nfrom {a} import X\nlog.EVENTS.append('b2')\n")

    assert cell("(a.X, a.Y, b.X, b.Y)") == (2, 20, 2, 20)
    assert sorted(cell("log.EVENTS")) == ["a2", "b2"]


def test_a_module_created_and_imported_after_load_is_watched(shell, modules, cell):
    cell("%autoreload 2")
    late = modules.named("late")
    modules.write(late, "def f():\n    return 1\n")
    cell(f"from {late} import f")
    modules.write(late, "def f():\n    return 2\n")

    assert cell("f()") == 2


def test_a_deleted_module_file_is_reported_once_and_the_module_keeps_working(shell, modules, cell, capfd):
    gone = modules.named("gone")
    path = modules.write(gone, "def f():\n    return 1\n")
    cell("%autoreload 2")
    cell(f"from {gone} import f")
    capfd.readouterr()
    os.remove(path)

    assert cell("f()") == 1
    first = capfd.readouterr().err
    assert "was deleted" in first and str(path) in first and "keeps running its last version" in first
    assert cell("f()") == 1
    assert "deleted" not in capfd.readouterr().err

    modules.write(gone, "def f():\n    return 3\n")
    assert cell("f()") == 3


def test_mode_3_new_names_reach_a_star_import(shell, modules, cell):
    name = modules.named("star")
    modules.write(name, "A = 1\n")
    cell("%autoreload 3")
    cell(f"from {name} import *")
    modules.write(name, "A = 2\nB = 3\n_private = 4\n")

    assert cell("(A, B, '_private' in dir())") == (2, 3, False)


# A dependent whose own text did not change takes a short way when only plain values follow
# (re-bind, re-run `LIMIT = THRESHOLD * 2`); these pin that it gives what the general way gives.


def _dependent_of(modules, cell, core_text: str, dependent_body: str) -> tuple[str, str]:
    core, dep = modules.named("core"), modules.named("dep")
    modules.write(core, core_text)
    modules.write(dep, f"from {core} import K\n" + dependent_body)
    cell("%autoreload 2")
    cell(f"import {dep} as dep, {core} as core")
    return core, dep


def test_a_dependent_statement_that_fails_leaves_the_dependent_as_it_was(shell, modules, cell, capsys):
    core, dep = _dependent_of(modules, cell, "K = 2\n", "INVERSE = 1 / (K - 1)\nOTHER = 'kept'\n")
    capsys.readouterr()
    modules.write(core, "K = 1\n")

    assert cell("(core.K, dep.K, dep.INVERSE, dep.OTHER)") == (1, 2, 1.0, "kept")
    err = capsys.readouterr().err
    assert dep in err and "ZeroDivisionError" in err, err
    modules.write(core, "K = 3\n")
    assert cell("(dep.K, dep.INVERSE)") == (3, 0.5)


def test_a_dependent_statement_that_makes_a_function_keeps_its_identity(shell, modules, cell):
    core, dep = _dependent_of(
        modules, cell, "K = 1\n",
        "def make(k):\n    def handler():\n        return k\n    return handler\n\nHANDLER = make(K)\n",
    )
    cell("held = dep.HANDLER")
    modules.write(core, "K = 5\n")

    assert cell("(dep.HANDLER(), held(), held is dep.HANDLER)") == (5, 5, True)


def test_a_cached_function_forgets_results_that_read_a_followed_name(shell, modules, cell):
    core, dep = _dependent_of(
        modules, cell, "K = 1\n",
        "import functools\n\n@functools.lru_cache(maxsize=None)\ndef scaled(x):\n    return x * K\n",
    )
    assert cell("dep.scaled(10)") == 10
    modules.write(core, "K = 3\n")

    assert cell("dep.scaled(10)") == 30


def test_names_a_dependent_statement_binds_follow_further(shell, modules, cell):
    core, dep = _dependent_of(modules, cell, "K = 1\n", "LIMIT = K * 2\nDOUBLE_LIMIT = LIMIT * 2\n")
    user = modules.named("user")
    modules.write(user, f"from {dep} import LIMIT\n\ndef limit():\n    return LIMIT\n")
    cell(f"import {user} as user\nfrom {dep} import DOUBLE_LIMIT")
    modules.write(core, "K = 10\n")

    assert cell("(dep.LIMIT, dep.DOUBLE_LIMIT, user.limit(), DOUBLE_LIMIT)") == (20, 40, 20, 40)


def test_status_after_an_edit_with_many_dependents_shows_the_edited_module(shell, modules, cell):
    core = modules.named("core")
    modules.write(core, "K = 1\n")
    dependents = [modules.named(f"dep{i}") for i in range(12)]
    for dep in dependents:
        modules.write(dep, f"from {core} import K\nDOUBLE = K * 2\n")
    cell("%autoreload 2")
    cell("import " + ", ".join(dependents))
    modules.write(core, "K = 2\n")
    cell("pass")

    text = str(cell("%hotswap"))
    assert f"reloaded {core}" in text and f"{dependents[0]}.K" in text, text
    assert f"updated {dependents[-1]}" not in text, text
    assert cell(f"__import__('{dependents[-1]}').DOUBLE") == 4


def test_a_statement_that_reads_its_own_name_gives_what_a_fresh_import_gives(shell, modules, cell):
    """``COUNT += K`` or ``REG.append(K)`` run again alone would add to their own last result: the
    whole module runs again instead, in a dependent and in the edited module itself."""
    core, dep = _dependent_of(
        modules, cell, "K = 1\n", "COUNT = 10\nCOUNT += K\nTOTAL = COUNT\nREG = []\nREG.append(K)\n"
    )
    cell("held = dep.REG")
    modules.write(core, "K = 5\nOWN = 1\nOWN = OWN + K\n")
    assert cell("(dep.COUNT, dep.TOTAL, dep.REG, core.OWN)") == (15, 15, [5], 6)

    modules.write(core, "K = 7\nOWN = 1\nOWN = OWN + K\n")
    assert cell("(dep.COUNT, dep.TOTAL, dep.REG, core.OWN, held)") == (17, 17, [7], 8, [1])


def test_a_dependent_of_two_changed_modules_follows_both_once(shell, modules, cell):
    """A dependent reading names of two modules edited together, and one star-importing the edited
    module too, see both new values, each statement run once."""
    a, b, dep, star = (modules.named(n) for n in ("a", "b", "dep", "star"))
    modules.write(a, "A = 1\nRUNS = []\n")
    modules.write(b, "B = 10\n")
    modules.write(dep, f"from {a} import A, RUNS\nfrom {b} import B\nRUNS.append(A + B)\nSUM = A + B\n")
    modules.write(star, f"from {a} import *\nfrom {a} import A as first\nDOUBLE = first * 2\n")
    cell("%autoreload 2")
    cell(f"import {dep} as dep, {star} as star, {a} as a\na.RUNS.clear()")
    modules.write(a, "A = 2\nRUNS = []\n")
    modules.write(b, "B = 20\n")

    assert cell("(dep.SUM, dep.RUNS, star.A, star.first, star.DOUBLE)") == (22, [22], 2, 2, 4)


def test_arithmetic_that_fails_halfway_puts_back_what_ran_before(shell, modules, cell, capsys):
    """Statements of plain arithmetic run together: a failure in the second leaves the first's
    name, and the followed name, as they were."""
    core, dep = _dependent_of(modules, cell, "K = 2\n", "DOUBLE = K * 2\nINVERSE = 1 / (K - 1)\nAFTER = DOUBLE + 1\n")
    modules.write(core, "K = 1\n")

    assert cell("(core.K, dep.K, dep.DOUBLE, dep.INVERSE, dep.AFTER)") == (1, 2, 4, 1.0, 5)
    assert "ZeroDivisionError" in capsys.readouterr().err
    modules.write(core, "K = 5\n")
    assert cell("(dep.K, dep.DOUBLE, dep.INVERSE, dep.AFTER)") == (5, 10, 0.25, 11)


def test_arithmetic_on_a_value_that_is_not_plain_runs_as_a_fresh_import_would(shell, modules, cell):
    """``LIMIT = K * 2`` re-runs the same when ``K`` becomes a list or an object whose ``*`` is
    user code, and a later statement binding the same name still has the last word."""
    core, dep = _dependent_of(
        modules, cell, "K = 1\n", "LIMIT = K * 2\nLAST = K * 3\nLAST = 'fixed'\n"
    )
    modules.write(core, "K = [1]\n")
    assert cell("(dep.LIMIT, dep.LAST)") == ([1, 1], "fixed")

    modules.write(core, "class Twice:\n    def __mul__(self, n):\n        return ('times', n)\n\nK = Twice()\n")
    assert cell("(dep.LIMIT, dep.LAST)") == (("times", 2), "fixed")

    modules.write(core, "K = 4\n")
    assert cell("(dep.LIMIT, dep.LAST)") == (8, "fixed")


def test_a_failing_dependent_statement_runs_once(shell, modules, cell, capsys):
    """A statement that raises while following is said once, and ran once: its side effects too."""
    record = "CALLS = []\n\ndef record(k):\n    CALLS.append(k)\n    return 10 // k\n\n"
    core, dep = modules.named("core"), modules.named("dep")
    modules.write(core, record + "K = 2\n")
    modules.write(dep, f"from {core} import K, record\nX = record(K)\n")
    cell("%autoreload 2")
    cell(f"import {dep} as dep, {core} as core")
    capsys.readouterr()
    modules.write(core, record + "K = 0\n")

    assert cell("(dep.K, dep.X, core.CALLS)") == (2, 5, [2, 0])
    assert capsys.readouterr().err.count("ZeroDivisionError") == 1


def test_an_import_cell_run_again_keeps_the_graph_as_it_was(shell, modules, cell):
    """What is derived from the import graph (which dependents are leaves) is kept until it changes:
    running ``from core import K`` again changes nothing; ``from core import K as other`` does."""
    import hotswap._ipython as hotswap_ipython

    core, dep = _dependent_of(modules, cell, "K = 1\n", "DOUBLE = K * 2\n")
    cell(f"from {core} import K")
    graph = hotswap_ipython.session_of(shell).reloader.graph
    version = graph.version
    cell(f"from {core} import K")
    assert graph.version == version
    cell(f"from {core} import K as other")
    assert graph.version != version
    modules.write(core, "K = 4\n")
    assert cell("(K, other, dep.DOUBLE)") == (4, 4, 8)


def test_a_dependent_that_gains_an_importer_passes_its_changes_on(shell, modules, cell):
    """A dependent nothing took names from is followed the short way; once your namespace or a
    module takes a name from it, what it re-computes reaches them too."""
    core, dep = _dependent_of(modules, cell, "K = 1\n", "DOUBLE = K * 2\n")
    modules.write(core, "K = 2\n")
    assert cell("dep.DOUBLE") == 4
    cell(f"from {dep} import DOUBLE")
    modules.write(core, "K = 3\n")
    assert cell("(dep.DOUBLE, DOUBLE)") == (6, 6)
    user = modules.named("user")
    modules.write(user, f"from {dep} import DOUBLE\n\ndef double():\n    return DOUBLE\n")
    cell(f"import {user} as user")
    modules.write(core, "K = 5\n")

    assert cell("(dep.DOUBLE, user.double(), DOUBLE)") == (10, 10, 10)


@pytest.mark.parametrize("after", ["X = K\nX += 1\n", "X = K\nY = X\nX = 5\n", "X = K\nX = X + 1\n"])
def test_a_dependent_name_bound_again_later_follows_even_when_a_re_run_gives_its_old_object(shell, modules, cell, after):
    """The same as a module's own save, when the value comes from the module it imports."""
    core, dep = modules.named("core"), modules.named("dep")
    modules.write(core, "K = 1\n")
    modules.write(dep, f"from {core} import K\n" + after)
    cell("%autoreload 2")
    cell(f"import {dep} as dep")
    modules.write(core, "K = 2\n")

    fresh: dict[str, object] = {}
    exec("K = 2\n" + after, fresh)
    assert cell("(dep.K, dep.X, getattr(dep, 'Y', None))") == (2, fresh["X"], fresh.get("Y"))
