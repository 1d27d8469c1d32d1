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
