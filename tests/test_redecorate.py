"""Definitions whose objects cannot follow an edit in place are made again, as a fresh import makes them.

A decorator's wrapper whose captured variables changed cannot take its new code: the decorated
definition runs again, and the new object is bound wherever hotswap re-binds. A name bound to a
class attribute that was replaced (not upgraded in place) is bound again from the class.
"""

from __future__ import annotations

import pytest

_TAGGED = """
import functools

def tag(label{params}):
    def decorate(fn):
{before}
        @functools.wraps(fn)
        def wrapper(*args):
            return {result}
        return wrapper
    return decorate

@tag("a")
def g():
    return {value}
"""


def _tagged(value: int, params: str = "", before: str = "", result: str = "(label, fn(*args))") -> str:
    return _TAGGED.format(value=value, params=params, before=before or "        pass", result=result)


# wrapper's captured variables: (fn, label) -> (fn, label, suffix) / (fn, label, n) / (fn,)
_NEW_CAPTURES = {
    "gains a parameter": (_tagged(2, ', suffix="!"', result="(label + suffix, fn(*args))"), ("a!", 2)),
    "gains a local": (_tagged(2, before="        n = len(label)", result="(label, n, fn(*args))"), ("a", 1, 2)),
    "loses one": (_tagged(2, result='("fixed", fn(*args))'), ("fixed", 2)),
}


@pytest.mark.parametrize("case", sorted(_NEW_CAPTURES))
def test_a_wrapper_whose_captures_changed_is_made_again_with_its_new_body(story, modules, cell, case):
    new_text, expected = _NEW_CAPTURES[case]
    edit = story(_tagged(1))
    dependent = modules.named("dependent")
    modules.write(dependent, f"from {modules.name} import g\n\ndef call():\n    return g()\n")
    cell(f"import {dependent} as d")
    cell(f"from {modules.name} import g")
    assert cell("g()") == ("a", 1)
    edit(new_text)

    assert cell("m.g()") == expected
    assert cell("g()") == expected
    assert cell("d.g(), d.call()") == (expected, expected)
    assert cell("g is m.g is d.g") is True


def test_a_wrapper_whose_captures_changed_is_made_again_though_its_function_did_not_change(story, modules, cell):
    edit = story(_tagged(1))
    cell(f"from {modules.name} import g")
    edit(_tagged(1, ', suffix="!"', result="(label + suffix, fn(*args))"))

    assert cell("m.g(), g()") == (("a!", 1), ("a!", 1))


def test_an_alias_of_a_classmethod_that_became_a_plain_method_is_bound_again(story, modules, cell):
    edit = story(
        """
        class Foo:
            @classmethod
            def foo(cls):
                return "cm"

        foo = Foo.foo
        """
    )
    dependent = modules.named("dependent")
    modules.write(dependent, f"from {modules.name} import foo\n")
    cell(f"import {dependent} as d")
    cell(f"from {modules.name} import foo")
    assert cell("m.foo()") == "cm"
    edit(
        """
        class Foo:
            def foo(self):
                return "plain"

        foo = Foo.foo
        """
    )

    assert cell("m.foo(m.Foo())") == "plain"
    assert cell("foo(m.Foo()), d.foo(m.Foo())") == ("plain", "plain")
    assert cell("m.foo is m.Foo.foo is foo is d.foo") is True


def test_an_alias_of_a_class_constant_that_changed_is_bound_again(story, cell):
    edit = story("class Limits:\n    TOP = (1, 2)\n\nTOP = Limits.TOP\n")
    edit("class Limits:\n    TOP = (3, 4)\n\nTOP = Limits.TOP\n")

    assert cell("m.TOP, m.Limits.TOP") == ((3, 4), (3, 4))


# -- the decorator in another module -------------------------------------------------------

_TRACED = """
def traced(fn):
{before}
    def wrapper(*args):
        return {result}
    return wrapper
"""
_USER = """
from {deco} import traced

@traced
def f():
    return {value}

alias = f

class Model:
    @traced
    def predict(self):
        return "p"
"""


def _traced(before: str = "    pass", result: str = '("traced", fn(*args))') -> str:
    return _TRACED.format(before=before, result=result)


@pytest.fixture
def decorated(shell, modules, cell):
    """``deco.traced`` decorates ``user.f`` and ``user.Model.predict``; ``f`` and a model are taken."""
    deco, user = modules.named("deco"), modules.named("user")
    modules.write(deco, _traced())
    modules.write(user, _USER.format(deco=deco, value=1))
    cell("%autoreload 2")
    cell(f"import {user} as user; from {user} import f; model = user.Model()")
    assert cell("f(), user.alias(), model.predict()") == (("traced", 1), ("traced", 1), ("traced", "p"))
    return deco, user


@pytest.mark.parametrize(
    "new_text, expected",
    [
        (_traced("    label = 'TRACED'", "(label, fn(*args))"), "TRACED"),  # gains a local
        (_traced(result='("fixed", fn(*args))'), "fixed"),
        (_traced("    n = 2", '("traced" * n, fn(*args))'), "tracedtraced"),
    ],
    ids=["gains a local", "same captures", "gains a local it computes"],
)
def test_what_another_modules_decorator_made_follows_its_wrapper(decorated, modules, cell, new_text, expected):
    deco, _ = decorated
    modules.write(deco, new_text)

    assert cell("user.f(), f(), user.alias()") == ((expected, 1),) * 3
    assert cell("model.predict(), user.Model().predict()") == ((expected, "p"),) * 2
    assert cell("f is user.f is user.alias") is True


def test_a_remade_definition_then_edited_keeps_the_new_wrapper(decorated, modules, cell):
    deco, user = decorated
    modules.write(deco, _traced("    label = 'TRACED'", "(label, fn(*args))"))
    assert cell("f()") == ("TRACED", 1)
    modules.write(user, _USER.format(deco=deco, value=2))

    assert cell("f(), user.f(), user.alias()") == (("TRACED", 2),) * 3


def test_a_remade_definition_that_fails_leaves_the_dependent_as_it_was(decorated, modules, cell, capsys):
    deco, user = decorated
    capsys.readouterr()
    modules.write(deco, _traced("    assert fn.__name__ != 'f', 'no f'\n    label = 'T'", "(label, fn(*args))"))

    assert cell("f(), user.alias()") == (("traced", 1), ("traced", 1))  # as it was: its remake failed
    err = capsys.readouterr().err
    assert f"{user} was not updated after {deco} changed" in err and "no f" in err, err
