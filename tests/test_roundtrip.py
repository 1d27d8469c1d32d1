"""Round trips: what one save removes and a later save brings back is the object it was.

A branch switched away and back, a stash and pop, an undo in the editor: each
story removes a definition with one save and restores it with another, and
checks that everything taken before it was removed behaves as a fresh import
gives (``_tombstones``).
"""

from __future__ import annotations

import gc
import types
import weakref

import pytest

from hotswap._tombstones import _KEPT_PER_MODULE, graves_of
from hotswap._undo import Transaction

F_OLD = "def f():\n    return 'old'\n\ndef other():\n    return 0\n"
F_GONE = "def other():\n    return 0\n"
F_NEW = "def f():\n    return 'new'\n\ndef other():\n    return 0\n"


@pytest.mark.parametrize("full", [False, True], ids=["partial", "whole module"])
def test_function_removed_and_restored_is_the_object_taken_before(story, modules, cell, full):
    edit = story(F_OLD)
    if full:
        cell("%autoreload --full 2")
    cell(f"from {modules.name} import f")
    cell("callbacks = [m.f]; f_before = m.f")
    edit(F_GONE)
    assert cell("hasattr(m, 'f')") is False
    edit(F_NEW)

    assert cell("m.f is f is f_before is callbacks[0]") is True
    assert cell("f(), callbacks[0]()") == ("new", "new")


def test_class_removed_and_restored_keeps_old_instances_its_own(story, cell):
    edit = story("class Point:\n    def hello(self):\n        return 'old'\n\nX = 1\n")
    cell("p = m.Point(); Point_before = m.Point")
    edit("X = 1\n")
    assert cell("hasattr(m, 'Point')") is False
    edit("class Point:\n    def hello(self):\n        return 'new'\n    def extra(self):\n        return 2\n\nX = 1\n")

    assert cell("m.Point is Point_before and isinstance(p, m.Point)") is True
    assert cell("p.hello(), p.extra()") == ("new", 2)


def test_enum_member_removed_and_restored_is_the_member_again(story, cell):
    edit = story("import enum\n\nclass Color(enum.Enum):\n    RED = 1\n    GREEN = 2\n")
    cell("green = m.Color.GREEN; table = {green: 'grass'}; Color_before = m.Color")
    edit("import enum\n\nclass Color(enum.Enum):\n    RED = 1\n")
    assert cell("list(m.Color.__members__)") == ["RED"]
    edit("import enum\n\nclass Color(enum.Enum):\n    RED = 1\n    GREEN = 2\n")

    assert cell("m.Color.GREEN is green and m.Color(2) is green and m.Color['GREEN'] is green") is True
    assert cell("m.Color.GREEN == green and hash(m.Color.GREEN) == hash(green)") is True
    assert cell("table[m.Color.GREEN]") == "grass"
    assert cell("m.Color is Color_before and list(m.Color) == [m.Color.RED, green]") is True


def test_dependent_that_took_a_function_before_its_removal_holds_it_again(shell, modules, cell):
    core, user = modules.named("core"), modules.named("user")
    modules.write(core, F_OLD)
    modules.write(user, f"from {core} import f\n\ndef call():\n    return f()\n")
    cell("%autoreload 2")
    cell(f"import {core} as core, {user} as user")
    modules.write(core, F_GONE)
    cell("pass")
    modules.write(core, F_NEW)

    assert cell("user.f is core.f and user.call()") == "new"


def test_name_restored_as_another_kind_is_the_new_object_everywhere(shell, modules, cell):
    core, user = modules.named("core"), modules.named("user")
    modules.write(core, F_OLD)
    modules.write(user, f"from {core} import f\n")
    cell("%autoreload 2")
    cell(f"import {core} as core, {user} as user")
    cell("f_before = core.f")
    modules.write(core, F_GONE)
    cell("pass")
    modules.write(core, "class f:\n    pass\n\ndef other():\n    return 0\n")

    assert cell("isinstance(core.f, type) and core.f is not f_before") is True
    assert cell("user.f is core.f") is True  # as a fresh import of user gives
    assert cell("f_before()") == "old"  # the old function is left as it was


def test_constant_a_dependent_held_follows_when_it_comes_back(shell, modules, cell):
    core, user = modules.named("core"), modules.named("user")
    modules.write(core, "LIMITS = [1, 2]\n")
    modules.write(user, f"from {core} import LIMITS\nTOTAL = sum(LIMITS)\n")
    cell("%autoreload 2")
    cell(f"import {core} as core, {user} as user")
    modules.write(core, "OTHER = 0\n")
    cell("pass")
    modules.write(core, "LIMITS = [1, 2, 3]\n")

    assert cell("user.LIMITS is core.LIMITS and user.TOTAL") == 6


def test_a_failed_save_that_restores_a_name_leaves_its_tombstone_for_the_next(story, modules, cell, capsys):
    edit = story(F_OLD)
    cell("f_before = m.f")
    edit(F_GONE)
    cell("pass")
    edit(F_NEW + "1 / 0\n")
    cell("pass")
    assert "ZeroDivisionError" in capsys.readouterr().err
    assert cell("hasattr(m, 'f')") is False  # the module as it was
    edit(F_NEW)

    assert cell("m.f is f_before and f_before()") == "new"


def test_tombstones_are_bounded_per_module_and_go_with_the_module():
    module = types.ModuleType("roundtrip_bounded")
    graves = graves_of(module, create=True)
    txn = Transaction(module.__name__)
    for number in range(_KEPT_PER_MODULE + 10):
        graves.bury(f"name{number}", object(), txn)
    txn.commit()
    assert len(graves.names) == _KEPT_PER_MODULE
    assert "name0" not in graves.names and "name9" not in graves.names  # the oldest went first
    assert f"name{_KEPT_PER_MODULE + 9}" in graves.names

    txn = Transaction(module.__name__)
    graves.bury("late", object(), txn)
    txn.rollback()  # a failed reload keeps no tombstone
    assert "late" not in graves.names and len(graves.names) == _KEPT_PER_MODULE

    kept = weakref.ref(graves)
    del graves, module
    gc.collect()
    assert kept() is None
