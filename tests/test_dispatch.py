"""The upgrade dispatch and its undo log, driven directly (no shell, no files).

Each story builds an "old" and a "new" version of some code in one module
namespace, as a re-run of the module would, upgrades, then commits or rolls back
and looks at the real values.
"""

from __future__ import annotations

import enum
import types
from typing import Any

import pytest

from hotswap._undo import Transaction
from hotswap._upgrade import UpgradeError, try_upgrade, upgrade, upgrade_class

OWNER = "dispatch_story"


def versions(old_source: str, new_source: str, name: str) -> tuple[Any, Any, dict[str, Any]]:
    """``name`` as the old source defines it, and as the new one does, in one module namespace."""
    namespace: dict[str, Any] = {"__name__": OWNER}
    exec(compile(old_source, "<old>", "exec"), namespace)
    old = namespace[name]
    exec(compile(new_source, "<new>", "exec"), namespace)
    return old, namespace[name], namespace


OLD_F = '''
def f(a, b=1, *, c=2):
    """old"""
    return ("old", a, b, c)
'''
NEW_F = '''
def f(a, b=10, *, c=20):
    """new"""
    return ("new", a, b, c)
'''


def test_a_function_keeps_its_identity_and_runs_the_new_code():
    old, new, _ = versions(OLD_F, NEW_F, "f")
    txn = Transaction(OWNER)
    assert upgrade(old, new, txn) is old
    txn.commit()
    assert old(0) == ("new", 0, 10, 20)
    assert old.__doc__ == "new"
    assert old.__code__ is new.__code__


def test_rollback_restores_a_functions_code_defaults_and_docstring():
    old, new, _ = versions(OLD_F, NEW_F, "f")
    code, defaults, kwdefaults = old.__code__, old.__defaults__, old.__kwdefaults__
    txn = Transaction(OWNER)
    upgrade(old, new, txn)
    assert old(0) == ("new", 0, 10, 20)
    txn.rollback()
    assert old.__code__ is code
    assert old.__defaults__ is defaults
    assert old.__kwdefaults__ == {"c": 2}
    assert old.__kwdefaults__ is kwdefaults
    assert old.__doc__ == "old"
    assert old(0) == ("old", 0, 1, 2)
    assert txn.upgraded == {}


OLD_CLASS = '''
class Model:
    size = 1
    gone = "here"
    def area(self):
        return ("old", self.size)
'''
NEW_CLASS = '''
class Model:
    size = 2
    added = "new"
    def area(self):
        return ("new", self.size)
'''


def test_a_class_takes_the_new_namespace_and_old_instances_follow():
    old, new, _ = versions(OLD_CLASS, NEW_CLASS, "Model")
    instance = old()
    txn = Transaction(OWNER)
    assert upgrade(old, new, txn) is old
    txn.commit()
    assert instance.area() == ("new", 2)
    assert old.added == "new"
    assert not hasattr(old, "gone")
    assert isinstance(instance, old)


def test_rollback_restores_a_class_attribute_and_its_methods_code():
    old, new, _ = versions(OLD_CLASS, NEW_CLASS, "Model")
    method_code = old.__dict__["area"].__code__
    instance = old()
    txn = Transaction(OWNER)
    upgrade_class(old, new, txn)
    assert old.size == 2
    txn.rollback()
    assert old.size == 1
    assert old.gone == "here"
    assert "added" not in vars(old)
    assert old.__dict__["area"].__code__ is method_code
    assert instance.area() == ("old", 1)


def test_a_savepoint_undoes_only_the_writes_made_after_it():
    old, new, _ = versions(OLD_F, NEW_F, "f")
    holder = types.SimpleNamespace(tag="before")
    txn = Transaction(OWNER)
    txn.set(holder, "tag", "kept")
    savepoint = txn.savepoint()
    upgrade(old, new, txn)
    txn.rollback_to(savepoint)
    assert old(0) == ("old", 0, 1, 2)
    assert holder.tag == "kept"
    txn.rollback()
    assert holder.tag == "before"


OLD_PROPERTY = '''
class Box:
    @property
    def value(self):
        return "old"
'''
NEW_PROPERTY = '''
class Box:
    @property
    def value(self):
        return "new"
    @value.setter
    def value(self, v):
        pass
'''


def test_try_upgrade_leaves_no_partial_write_and_says_why():
    old_cls, new_cls, _ = versions(OLD_PROPERTY, NEW_PROPERTY, "Box")
    old, new = old_cls.__dict__["value"], new_cls.__dict__["value"]
    getter_code = old.fget.__code__
    txn = Transaction(OWNER)
    assert try_upgrade(old, new, txn) is new
    assert old.fget.__code__ is getter_code  # not half upgraded: the getter came first
    assert txn.notes == [("property Box.value", "its setter was added or removed")]  # on every Python


def test_a_change_of_kind_is_refused_with_its_reason():
    old, new, _ = versions("def thing():\n    return 1\n", "class thing:\n    pass\n", "thing")
    with pytest.raises(UpgradeError, match=r"it changed kind \(function -> type\)"):
        upgrade(old, new, Transaction(OWNER))


def test_a_function_of_another_module_is_not_upgraded():
    old, new, _ = versions(OLD_F, NEW_F, "f")
    with pytest.raises(UpgradeError, match="it belongs to module 'dispatch_story'"):
        upgrade(old, new, Transaction("elsewhere"))


def test_changed_free_variables_are_refused_by_name():
    old_source = "def make():\n    a = 1\n    def inner():\n        return a\n    return inner\ninner = make()\n"
    new_source = "def make():\n    b = 1\n    def inner():\n        return b\n    return inner\ninner = make()\n"
    old, new, _ = versions(old_source, new_source, "inner")
    with pytest.raises(UpgradeError, match=r"its free variables changed \(a -> b\)"):
        upgrade(old, new, Transaction(OWNER))


OLD_METHODS = '''
class Tools:
    @staticmethod
    def pick():
        return "old static"
    @classmethod
    def make(cls):
        return ("old class", cls.__name__)
'''
NEW_METHODS = OLD_METHODS.replace("old", "new")


def test_staticmethod_and_classmethod_objects_stay_and_run_the_new_code():
    old, new, _ = versions(OLD_METHODS, NEW_METHODS, "Tools")
    pick, make = old.__dict__["pick"], old.__dict__["make"]
    txn = Transaction(OWNER)
    upgrade(old, new, txn)
    txn.commit()
    assert old.__dict__["pick"] is pick
    assert old.__dict__["make"] is make
    assert old.pick() == "new static"
    assert old.make() == ("new class", "Tools")


OLD_CACHED = "import functools\n@functools.lru_cache\ndef square(x):\n    return ('old', x * x)\n"
NEW_CACHED = OLD_CACHED.replace("'old'", "'new'")


def test_a_cache_is_cleared_on_commit_only():
    old, new, _ = versions(OLD_CACHED, NEW_CACHED, "square")
    assert old(3) == ("old", 9)
    txn = Transaction(OWNER)
    assert upgrade(old, new, txn) is old
    txn.rollback()
    assert old.cache_info().currsize == 1  # rolled back: the cached results are still right
    assert old(3) == ("old", 9)

    txn = Transaction(OWNER)
    upgrade(old, new, txn)
    assert old.cache_info().currsize == 1  # cleared only once the reload is certain
    txn.commit()
    assert old.cache_info().currsize == 0
    assert old(3) == ("new", 9)


def test_a_partial_keeps_its_identity_and_rollback_puts_its_arguments_back():
    old, new, _ = versions(
        OLD_F + "import functools\nbound = functools.partial(f, 1, c=3)\n",
        NEW_F + "import functools\nbound = functools.partial(f, 2, c=4)\n",
        "bound",
    )
    txn = Transaction(OWNER)
    assert upgrade(old, new, txn) is old
    assert (old.args, old.keywords) == ((2,), {"c": 4})
    assert old() == ("new", 2, 10, 4)
    txn.rollback()
    assert (old.args, old.keywords) == ((1,), {"c": 3})
    assert old() == ("old", 1, 1, 3)


def test_an_enum_member_stays_the_same_object():
    namespace: dict[str, Any] = {"__name__": OWNER, "enum": enum}
    exec("class Color(enum.Enum):\n    RED = 1\n    def hi(self):\n        return 'old'\n", namespace)
    old = namespace["Color"]
    red = old.RED
    exec("class Color(enum.Enum):\n    RED = 1\n    BLUE = 2\n    def hi(self):\n        return 'new'\n", namespace)
    txn = Transaction(OWNER)
    assert upgrade(old, namespace["Color"], txn) is old
    txn.commit()
    assert old.RED is red
    assert old(1) is red
    assert red.hi() == "new"
    assert old.BLUE.value == 2 and isinstance(old.BLUE, old)


def test_rollback_restores_cells_and_containers():
    def make() -> Any:
        x = "old"

        def inner() -> str:
            return x

        return inner

    inner = make()
    assert inner.__closure__ is not None
    registry = ["a", "b"]
    table = {"k": 1}
    txn = Transaction(OWNER)
    txn.set_cell(inner.__closure__[0], "new")
    txn.keep_contents(registry)
    txn.keep_contents(table)
    registry[:] = ["c"]
    table["k"] = 2
    table["other"] = 3
    assert inner() == "new"
    txn.rollback()
    assert inner() == "old"
    assert registry == ["a", "b"]
    assert table == {"k": 1}


def test_one_failed_undo_does_not_stop_the_others():
    holder = types.SimpleNamespace(a=1, b=2)
    txn = Transaction(OWNER)
    txn.set(holder, "a", 10)
    txn.call_with_undo(lambda arg: None if arg == "go" else 1 / 0, "go", undo_args=("fail",))
    txn.set(holder, "b", 20)
    with pytest.raises(RuntimeError, match=r"1 write\(s\) could not be undone: ZeroDivisionError"):
        txn.rollback()
    assert (holder.a, holder.b) == (1, 2)


def test_a_wrapper_made_with_functools_wraps_follows_its_function():
    source = (
        "import functools\n"
        "def deco(fn):\n"
        "    @functools.wraps(fn)\n"
        "    def wrapper(*args):\n"
        "        return fn(*args)\n"
        "    return wrapper\n"
        "@deco\n"
        "def g(x):\n"
        "    return ('{}', x)\n"
    )
    old, new, _ = versions(source.format("old"), source.format("new"), "g")
    inner = old.__wrapped__
    txn = Transaction(OWNER)
    assert upgrade(old, new, txn) is old
    txn.commit()
    assert old(1) == ("new", 1)
    assert old.__wrapped__ is inner
    assert inner(2) == ("new", 2)
