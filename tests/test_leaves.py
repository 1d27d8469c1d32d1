"""Leaf dependents (modules that take names only from ``core`` and give none) follow its edits
from a kept table: always to the same result as the general way."""

from __future__ import annotations

import sys

import pytest

import hotswap._ipython as hotswap_ipython

CORE = "THRESHOLD = 100\n"
CORE_NEW = "THRESHOLD = 101\n"


@pytest.fixture
def leaves(shell, modules, cell, prepared):
    """``leaves(texts)``: ``core`` and one dependent per text (``{core}`` filled in), mode 2,
    all imported (``deps`` in the user namespace); returns ``(core, names)``."""

    def make(texts, *, core_text=CORE, mode="2"):
        core = modules.named("core")
        modules.write(core, core_text)
        names = [modules.named(f"dep_{i}") for i in range(len(texts))]
        for name, text in zip(names, texts):
            modules.write(name, text.format(core=core))
        cell(f"%autoreload {mode}")
        cell(f"import importlib\ndeps = [importlib.import_module(n) for n in {names!r}]")
        prepared()  # the tables are made at a cell after the one that imported them
        return core, names

    return make


def dep(name):
    return sys.modules[name]


LIMIT_TWICE = "from {core} import THRESHOLD\nLIMIT = THRESHOLD * 2\n"


def test_the_leaves_of_core_are_followed_from_a_kept_table(leaves, shell, modules, cell):
    core, names = leaves([LIMIT_TWICE] * 4)
    reloader = hotswap_ipython.session_of(shell).reloader
    table = reloader.step.dependents._tables.get((core, ("THRESHOLD",)))

    assert table is not None
    assert sorted(leaf.name for group in table.groups.values() for leaf in group) == names
    modules.write(core, CORE_NEW)
    assert cell("[d.LIMIT for d in deps]") == [202] * 4


def test_same_statement_with_different_other_inputs_gets_each_module_s_own_result(leaves, modules, cell):
    text = "from {core} import THRESHOLD\nFACTOR = %d\nLIMIT = THRESHOLD * FACTOR\n"
    core, _ = leaves([text % 2, text % 3, text % 2, text % 5, text % 3])
    modules.write(core, CORE_NEW)

    assert cell("[d.LIMIT for d in deps]") == [202, 303, 202, 505, 303]
    assert cell("[d.FACTOR for d in deps]") == [2, 3, 2, 5, 3]


def test_int_and_float_constants_in_the_same_statement_give_the_right_types(leaves, modules, cell):
    int_text = "from {core} import THRESHOLD\nLIMIT = THRESHOLD * 2\n"
    float_text = "from {core} import THRESHOLD\nLIMIT = THRESHOLD * 2.0\n"
    core, _ = leaves([int_text, float_text, int_text, float_text])
    modules.write(core, CORE_NEW)

    limits = cell("[d.LIMIT for d in deps]")
    assert limits == [202, 202.0, 202, 202.0]
    assert [type(x) for x in limits] == [int, float, int, float]


def test_an_alias_of_another_name_follows_the_name_it_was_taken_from(leaves, modules, cell):
    aliased = "from {core} import SCALE as THRESHOLD\nLIMIT = THRESHOLD * 2\n"
    plain = "from {core} import THRESHOLD\nLIMIT = THRESHOLD * 2\n"
    core, _ = leaves([aliased, plain, aliased, plain], core_text="THRESHOLD = 100\nSCALE = 7\n")
    assert cell("[d.LIMIT for d in deps]") == [14, 200, 14, 200]
    modules.write(core, "THRESHOLD = 101\nSCALE = 8\n")

    assert cell("[(d.THRESHOLD, d.LIMIT) for d in deps]") == [(8, 16), (101, 202), (8, 16), (101, 202)]


def test_a_statement_failing_with_the_new_value_is_said_once_and_leaves_the_module_as_it_was(
    leaves, modules, cell, capsys
):
    failing = "from {core} import THRESHOLD\nLIMIT = 1 / THRESHOLD\n"
    fine = "from {core} import THRESHOLD\nLIMIT = THRESHOLD * 2\n"
    core, names = leaves([failing, fine, failing, fine])
    capsys.readouterr()
    modules.write(core, "THRESHOLD = 0\n")

    assert cell("[(d.THRESHOLD, d.LIMIT) for d in deps]") == [(100, 0.01), (0, 0), (100, 0.01), (0, 0)]
    err = capsys.readouterr().err
    for name, says in zip(names, (1, 0, 1, 0)):
        assert err.count(f"hotswap: {name} was not updated after {core} changed") == says, err
    assert "ZeroDivisionError" in err

    modules.write(core, "THRESHOLD = 5\n")
    assert cell("[(d.THRESHOLD, d.LIMIT) for d in deps]") == [(5, 0.2), (5, 10), (5, 0.2), (5, 10)]


def test_a_leaf_imported_afresh_follows_as_the_new_module(leaves, modules, cell):
    core, names = leaves([LIMIT_TWICE] * 3)
    cell(f"import sys\nold = sys.modules.pop({names[1]!r})\nfresh = importlib.import_module({names[1]!r})")
    assert cell("fresh is not old and fresh.LIMIT") == 200
    modules.write(core, CORE_NEW)

    assert cell("(fresh.THRESHOLD, fresh.LIMIT)") == (101, 202)
    assert cell(f"[sys.modules[n].LIMIT for n in {names!r}]") == [202, 202, 202]


def test_a_leaf_saved_with_core_runs_its_new_text_with_core_s_new_value(leaves, modules, cell, capsys):
    core, names = leaves([LIMIT_TWICE] * 4, mode="2 -p")
    capsys.readouterr()
    modules.write(names[2], f"from {core} import THRESHOLD\nLIMIT = THRESHOLD * 3\n")
    modules.write(core, CORE_NEW)

    assert cell("[d.LIMIT for d in deps]") == [202, 202, 303, 202]
    out = capsys.readouterr().out
    assert out.count(f"hotswap: reloaded {names[2]} ") == 1, out
    assert f"updated {names[2]} " not in out, out  # it ran its own new text, not the old statement


def test_a_leaf_saved_earlier_follows_later_edits_with_its_new_statement(leaves, modules, cell):
    core, names = leaves([LIMIT_TWICE] * 4)
    modules.write(names[1], f"from {core} import THRESHOLD\nLIMIT = THRESHOLD + 1\n")
    assert cell("[d.LIMIT for d in deps]") == [200, 101, 200, 200]
    modules.write(core, CORE_NEW)

    assert cell("[d.LIMIT for d in deps]") == [202, 102, 202, 202]
    modules.write(core, "THRESHOLD = 102\n")
    assert cell("[d.LIMIT for d in deps]") == [204, 103, 204, 204]


def test_a_name_the_user_re_assigned_in_a_leaf_is_left_alone(leaves, modules, cell):
    core, _ = leaves([LIMIT_TWICE] * 4)
    cell("deps[2].THRESHOLD = 'mine'")
    modules.write(core, CORE_NEW)

    assert cell("[(d.THRESHOLD, d.LIMIT) for d in deps]") == [(101, 202), (101, 202), ("mine", 200), (101, 202)]


def test_a_cached_function_in_a_leaf_returns_the_new_value(leaves, modules, cell):
    cached = (
        "import functools\nfrom {core} import THRESHOLD\n"
        "@functools.lru_cache\ndef current():\n    return THRESHOLD\n"
    )
    with_limit = cached + "LIMIT = THRESHOLD * 2\n"
    core, _ = leaves([cached, with_limit, cached, with_limit])
    assert cell("[d.current() for d in deps]") == [100] * 4
    modules.write(core, CORE_NEW)

    assert cell("[d.current() for d in deps]") == [101] * 4
    assert cell("[deps[1].LIMIT, deps[3].LIMIT]") == [202, 202]


def test_values_that_are_not_plain_still_follow_in_every_leaf(leaves, modules, cell):
    core, _ = leaves([LIMIT_TWICE] * 4)
    modules.write(core, "THRESHOLD = [1, 2]\n")
    assert cell("[d.LIMIT for d in deps]") == [[1, 2, 1, 2]] * 4
    assert cell("len({id(d.THRESHOLD) for d in deps})") == 1
    assert cell("len({id(d.LIMIT) for d in deps})") == 4  # each module computed its own list

    modules.write(
        core,
        "class Num:\n"
        "    def __init__(self, v):\n        self.v = v\n"
        "    def __mul__(self, k):\n        return Num(self.v * k)\n"
        "THRESHOLD = Num(7)\n",
    )
    assert cell("[(type(d.LIMIT).__name__, d.LIMIT.v) for d in deps]") == [("Num", 14)] * 4
    assert cell("len({id(d.LIMIT) for d in deps})") == 4


def test_with_p_each_leaf_that_re_ran_a_statement_is_said(leaves, modules, cell, capsys):
    rebinding_only = "from {core} import THRESHOLD\ndef current():\n    return THRESHOLD\n"
    core, names = leaves([LIMIT_TWICE, LIMIT_TWICE, rebinding_only], mode="2 -p")
    capsys.readouterr()
    modules.write(core, CORE_NEW)

    assert cell("[d.THRESHOLD for d in deps]") == [101] * 3
    out = capsys.readouterr().out
    assert out.count(f"hotswap: reloaded {core}") == 1
    for name in names[:2]:
        assert out.count(f"updated {name} after {core} changed") == 1, out
    assert f"updated {names[2]} " not in out


def test_without_p_nothing_is_said_and_values_still_follow(leaves, modules, cell, capsys):
    core, _ = leaves([LIMIT_TWICE] * 4)
    capsys.readouterr()
    modules.write(core, CORE_NEW)

    cell("x = 1")
    captured = capsys.readouterr()
    assert "hotswap" not in captured.out and "hotswap" not in captured.err
    assert cell("[d.LIMIT for d in deps]") == [202] * 4


def test_check_without_followers_gives_only_the_source_s_outcome(leaves, shell, modules):
    core, names = leaves([LIMIT_TWICE] * 4)
    reloader = hotswap_ipython.session_of(shell).reloader
    modules.write(core, CORE_NEW)

    outcomes = reloader.check(followers=False)
    assert [o.module for o in outcomes] == [core]
    assert [dep(n).LIMIT for n in names] == [202] * 4

    modules.write(core, "THRESHOLD = 102\n")
    outcomes = {o.module: o for o in reloader.check(followers=True)}
    assert sorted(outcomes) == sorted([core, *names])
    for name in names:
        assert outcomes[name].after == (core,)
        assert outcomes[name].reran
        assert dep(name).LIMIT == 204


def test_a_leaf_that_a_new_module_takes_names_from_is_no_longer_followed_as_a_leaf(leaves, modules, cell):
    core, names = leaves([LIMIT_TWICE] * 4)
    mid = modules.named("mid")
    modules.write(mid, f"from {names[0]} import LIMIT\nDOUBLE = LIMIT * 2\n")
    cell(f"mid = importlib.import_module({mid!r})")
    modules.write(core, CORE_NEW)

    assert cell("(mid.LIMIT, mid.DOUBLE)") == (202, 404)
    assert cell("[d.LIMIT for d in deps]") == [202] * 4


def test_a_module_imported_outside_a_cell_that_takes_from_a_leaf_follows_too(leaves, modules, cell):
    core, names = leaves([LIMIT_TWICE] * 4)
    mid = modules.named("mid")
    modules.write(mid, f"from {names[0]} import LIMIT\nDOUBLE = LIMIT * 2\n")
    imported = __import__(mid)  # no cell after it: no idle() before the edit
    modules.write(core, CORE_NEW)

    cell("None")
    assert (imported.LIMIT, imported.DOUBLE) == (202, 404)


def test_a_watched_module_saved_to_take_from_a_leaf_follows_it(leaves, modules, cell):
    core, names = leaves([LIMIT_TWICE] * 4)
    mid = modules.named("mid")
    modules.write(mid, "DOUBLE = 0\n")
    cell(f"mid = importlib.import_module({mid!r})")
    modules.write(mid, f"from {names[0]} import LIMIT\nDOUBLE = LIMIT * 2\n")
    assert cell("mid.DOUBLE") == 400
    modules.write(core, CORE_NEW)

    assert cell("(mid.LIMIT, mid.DOUBLE)") == (202, 404)
