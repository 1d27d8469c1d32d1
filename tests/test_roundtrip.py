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
from collections.abc import Callable
from typing import Any

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


def each_applied_at_a_cell(edit: Callable[[str], None], cell: Callable[[str], Any], *texts: str) -> None:
    """Each text saved, then a cell run (which applies it): saves that come one per cell, as a
    checkout and back, or a stash and pop, come between cells."""
    for text in texts:
        edit(text)
        cell("pass")


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


def core_and_user(modules: Any, cell: Callable[[str], Any], core_text: str, user_text: str) -> str:
    """Modules ``core`` and ``user`` (``user_text`` formatted with ``core``'s name), imported in
    mode 2 as ``core`` and ``user``; returns ``core``'s name."""
    core, user = modules.named("core"), modules.named("user")
    modules.write(core, core_text)
    modules.write(user, user_text.format(core=core))
    cell("%autoreload 2")
    cell(f"import {core} as core, {user} as user")
    return core


def test_dependent_that_took_a_function_before_its_removal_holds_it_again(shell, modules, cell):
    core = core_and_user(modules, cell, F_OLD, "from {core} import f\n\ndef call():\n    return f()\n")
    modules.write(core, F_GONE)
    cell("pass")
    modules.write(core, F_NEW)

    assert cell("user.f is core.f and user.call()") == "new"


def test_name_restored_as_another_kind_is_the_new_object_everywhere(shell, modules, cell):
    core = core_and_user(modules, cell, F_OLD, "from {core} import f\n")
    cell("f_before = core.f")
    modules.write(core, F_GONE)
    cell("pass")
    modules.write(core, "class f:\n    pass\n\ndef other():\n    return 0\n")

    assert cell("isinstance(core.f, type) and core.f is not f_before") is True
    assert cell("user.f is core.f") is True  # as a fresh import of user gives
    assert cell("f_before()") == "old"  # the old function is left as it was


def test_constant_a_dependent_held_follows_when_it_comes_back(shell, modules, cell):
    core = core_and_user(modules, cell, "LIMITS = [1, 2]\n", "from {core} import LIMITS\nTOTAL = sum(LIMITS)\n")
    modules.write(core, "OTHER = 0\n")
    cell("pass")
    modules.write(core, "LIMITS = [1, 2, 3]\n")

    assert cell("user.LIMITS is core.LIMITS and user.TOTAL") == 6


def test_a_failed_save_that_restores_a_name_leaves_its_tombstone_for_the_next(story, modules, cell, capsys):
    edit = story(F_OLD)
    cell("f_before = m.f")
    each_applied_at_a_cell(edit, cell, F_GONE, F_NEW + "1 / 0\n")
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


# -- methods: removed from a class kept in place, then defined again --------------------------

POINT = """\
import functools


class Point:
    def __init__(self):
        self.on_click = self.area  # a callback an instance registers at its birth

    def area(self):
        return 'AREA'

    @staticmethod
    def make():
        return 'MAKE'

    @classmethod
    def build(cls):
        return ('BUILD', cls.__name__)

    @property
    def size(self):
        return 'SIZE'

    @size.setter
    def size(self, value):
        self.given = ('SET', value)

    def other(self):
        return 0
"""

POINT_GONE = """\
import functools


class Point:
    def __init__(self):
        self.on_click = None

    def other(self):
        return 0
"""

TAKE_POINT = """\
p = m.Point(); Point_before = m.Point
area_before = m.Point.area; bound_before = p.area; partial_before = functools.partial(m.Point.area, p)
make_before = m.Point.make; build_before = m.Point.build
size_before = vars(m.Point)['size']; make_wrapper = vars(m.Point)['make']; build_wrapper = vars(m.Point)['build']
"""


def _point(text: str, word: str = "new") -> str:
    """``POINT`` with each method's answer in another word: an edit of its body alone."""
    for answer in ("AREA", "MAKE", "BUILD", "SIZE", "SET"):
        text = text.replace(f"'{answer}'", f"'{answer.lower()}-{word}'")
    return text


@pytest.mark.parametrize("full", [False, True], ids=["partial", "whole module"])
def test_methods_removed_and_restored_are_the_functions_taken_before(story, cell, full):
    edit = story(POINT)
    if full:
        cell("%autoreload --full 2")
    cell("import functools")
    cell(TAKE_POINT)
    edit(POINT_GONE)
    cell("pass")
    assert cell("[hasattr(m.Point, n) for n in ('area', 'make', 'build', 'size')]") == [False] * 4
    each_applied_at_a_cell(
        edit,
        cell,
        POINT,  # restored as it was
        _point(POINT),  # then its bodies edited
    )

    assert cell("m.Point is Point_before and m.Point.area is area_before and p.area.__func__ is area_before") is True
    assert cell("area_before(p), bound_before(), partial_before(), p.on_click()") == ("area-new",) * 4
    assert cell("m.Point.make is make_before and vars(m.Point)['make'] is make_wrapper") is True
    assert cell("build_before.__func__ is m.Point.build.__func__ and vars(m.Point)['build'] is build_wrapper") is True
    assert cell("make_before(), build_before()") == ("make-new", ("build-new", "Point"))


def test_property_removed_and_restored_is_the_property_taken_before(story, cell):
    # (not with ``--full``: a class body that runs again makes new properties, removed or not)
    edit = story(POINT)
    cell("import functools")
    cell(TAKE_POINT)
    each_applied_at_a_cell(edit, cell, POINT_GONE, POINT, _point(POINT))

    assert cell("vars(m.Point)['size'] is size_before and (p.size, size_before.fget(p))") == ("size-new",) * 2
    cell("p.size = 3")
    assert cell("p.given") == ("set-new", 3)


def test_cached_property_removed_and_restored_is_the_descriptor_taken_before(story, cell):
    old = "import functools\n\n\nclass Point:\n    @functools.cached_property\n    def norm(self):\n        return 'old'\n\n    def other(self):\n        return 0\n"
    edit = story(old)
    cell("norm_before = vars(m.Point)['norm']")
    each_applied_at_a_cell(
        edit,
        cell,
        "class Point:\n    def other(self):\n        return 0\n",
        old.replace("'old'", "'new'"),
    )

    assert cell("vars(m.Point)['norm'] is norm_before and m.Point().norm") == "new"


def test_method_restored_with_a_new_body_runs_it_everywhere_at_once(story, cell):
    edit = story(POINT)
    cell("import functools")
    cell(TAKE_POINT)
    each_applied_at_a_cell(
        edit,
        cell,
        POINT_GONE,
        _point(POINT),  # brought back edited, in one save
    )

    assert cell("m.Point.area is area_before and bound_before() == p.on_click() == 'area-new'") is True
    assert cell("make_before(), build_before()") == ("make-new", ("build-new", "Point"))


def test_instance_made_before_calls_the_restored_method_through_its_callbacks(story, cell):
    base = "class Base:\n    def area(self):\n        return 'base'\n\n\n"
    old = base + "class Square(Base):\n    def __init__(self):\n        self.hooks = {'area': self.area}\n\n    def area(self):\n        return ('old', super().area())\n"
    gone = base + "class Square(Base):\n    def __init__(self):\n        self.hooks = {'area': self.area}\n"
    edit = story(old)
    cell("square = m.Square(); inherited = m.Square().area")
    edit(gone)
    cell("pass")
    assert cell("m.Square().area()") == "base"
    each_applied_at_a_cell(edit, cell, old, old.replace("'old'", "'new'"))

    assert cell("square.hooks['area'](), square.area(), m.Square().area()") == (("new", "base"),) * 3
    assert cell("inherited.__func__ is m.Square.area and inherited()") == ("new", "base")


def test_method_of_a_nested_class_removed_and_restored(story, cell):
    old = "class Outer:\n    class Inner:\n        def hello(self):\n            return 'old'\n\n        def other(self):\n            return 0\n"
    edit = story(old)
    cell("hello_before = m.Outer.Inner.hello; inner = m.Outer.Inner()")
    each_applied_at_a_cell(
        edit,
        cell,
        "class Outer:\n    class Inner:\n        def other(self):\n            return 0\n",
        old,
        old.replace("'old'", "'new'"),
    )

    assert cell("m.Outer.Inner.hello is hello_before and hello_before(inner)") == "new"


@pytest.mark.parametrize("failure", ["1 / 0\n", "def broken(:\n"], ids=["exception", "syntax error"])
def test_a_failed_save_that_restores_a_method_leaves_its_tombstone_for_the_next(story, cell, capsys, failure):
    edit = story(POINT)
    cell("import functools")
    cell(TAKE_POINT)
    each_applied_at_a_cell(edit, cell, POINT_GONE, _point(POINT, "broken") + failure)
    assert "Error" in capsys.readouterr().err
    assert cell("hasattr(m.Point, 'area') or hasattr(m.Point, 'make')") is False  # the class as it was
    assert cell("area_before(p)") == "AREA"  # the kept function was not left half-upgraded
    edit(_point(POINT))
    cell("pass")

    assert cell("m.Point.area is area_before and bound_before()") == "area-new"
    assert cell("m.Point.make is make_before and make_before()") == "make-new"


ANOTHER_KIND = {
    "property": "    @property\n    def area(self):\n        return 'prop'\n",
    "constant": "    area = 'const'\n",
    "staticmethod": "    @staticmethod\n    def area():\n        return 'static'\n",
}


@pytest.mark.parametrize("kind", list(ANOTHER_KIND))
def test_method_restored_as_another_kind_is_the_new_object(story, cell, kind):
    # ``keep`` comes back as it was, in the same save: it is the function kept; ``area`` is not
    old = "class Point:\n    def area(self):\n        return 'old'\n\n    def keep(self):\n        return 'old'\n"
    edit = story(old)
    cell("p = m.Point(); area_before = m.Point.area; keep_before = m.Point.keep")
    each_applied_at_a_cell(
        edit,
        cell,
        "class Point:\n    pass\n",
        "class Point:\n" + ANOTHER_KIND[kind] + "\n    def keep(self):\n        return 'new'\n",
    )

    assert cell("m.Point.keep is keep_before and keep_before(p)") == "new"
    assert cell("vars(m.Point)['area'] is not area_before and area_before(p)") == "old"  # left as it was
    assert cell("p.area if isinstance(p.area, str) else p.area()") in ("prop", "const", "static")


def test_method_of_a_class_removed_then_restored_with_its_class(story, cell):
    old = "class Point:\n    def area(self):\n        return 'old'\n\n    def other(self):\n        return 0\n\n\nX = 1\n"
    edit = story(old)
    cell("p = m.Point(); Point_before = m.Point; area_before = m.Point.area; bound_before = p.area")
    each_applied_at_a_cell(
        edit,
        cell,
        "class Point:\n    def other(self):\n        return 0\n\n\nX = 1\n",  # the method goes first
        "X = 1\n",  # then its class
        old.replace("'old'", "'new'"),  # both come back
    )

    assert cell("m.Point is Point_before and m.Point.area is area_before and bound_before()") == "new"


def test_only_what_a_class_body_defined_is_kept_not_what_its_decorator_generates(story, cell):
    old = "import dataclasses\n\n\n@dataclasses.dataclass\nclass Point:\n    x: int = 0\n\n    def area(self):\n        return 0\n"
    edit = story(old)
    cell("area_before = m.Point.area")
    edit(old.replace("    def area(self):\n        return 0\n", "    y: int = 1\n"))  # the body runs again
    cell("pass")

    graves = graves_of(cell("m"))
    assert cell("m.Point(2) == m.Point(2, 1)") is True
    assert graves.method(cell("m.Point"), "area") is cell("area_before")
    assert [name for _, name in graves.methods] == ["area"]  # not the ``__init__`` ``@dataclass`` made


def test_method_tombstones_are_bounded_and_rolled_back_with_the_reload():
    module = types.ModuleType("roundtrip_methods_bounded")
    owner = type("Point", (), {"__module__": module.__name__})
    graves = graves_of(module, create=True)
    txn = Transaction(module.__name__)
    for number in range(_KEPT_PER_MODULE + 10):
        graves.bury_method(owner, f"name{number}", object(), txn)
    txn.commit()
    assert len(graves.methods) == _KEPT_PER_MODULE
    assert graves.method(owner, "name0") is None and graves.method(owner, "name10") is not None

    txn = Transaction(module.__name__)
    graves.unbury_method(owner, "name10", txn)
    graves.bury_method(owner, "late", object(), txn)
    txn.rollback()  # a failed reload leaves the tombstones as they were
    assert graves.method(owner, "name10") is not None and graves.method(owner, "late") is None
    other = type("Point", (), {"__module__": module.__name__})  # the same qualname, another class
    assert graves.method(other, "name10") is None
