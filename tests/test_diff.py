"""The planner, on source pairs alone: no module is touched."""

from __future__ import annotations

import ast
import textwrap

from hypothesis import given, settings
from hypothesis import strategies as st

from hotswap._diff import Kind, plan


def kinds(old: str, new: str) -> list[str]:
    result = plan(textwrap.dedent(old), textwrap.dedent(new))
    assert result.full_reason is None, result.full_reason
    return [step.kind.value for step in result.steps]


def test_unchanged_module_runs_nothing() -> None:
    source = "import os\nX = 1\ndef f():\n    return X\nclass C:\n    def m(self):\n        return 1\n"
    assert set(kinds(source, source)) == {"unchanged"}


def test_comments_and_blank_lines_run_nothing_again() -> None:
    old = "X = 1\ndef f():\n    return X\n"
    new = "# a comment\n\nX = 1  # same\ndef f():\n    # why\n    return X\n"
    # f's lines inside moved, so its code is recompiled (an in-place upgrade), nothing re-runs
    assert kinds(old, new) == ["unchanged", "body"]


def test_a_definition_that_only_moved_is_unchanged_and_its_lines_follow() -> None:
    result = plan("def f():\n    return 1\n", "\n\n\ndef f():\n    return 1\n")
    assert [s.kind for s in result.steps] == [Kind.UNCHANGED]
    assert result.moved_lines == {1: 4, 2: 5}


def test_changed_function_body_is_an_in_place_upgrade() -> None:
    assert kinds("def f():\n    return 1\n", "def f():\n    return 2\n") == ["body"]


def test_changed_decorator_reruns_the_definition() -> None:
    old = "@register('a')\ndef f():\n    return 1\n"
    new = "@register('b')\ndef f():\n    return 1\n"
    assert kinds(old, new) == ["run"]


def test_changed_constant_reruns_and_its_readers_are_known() -> None:
    result = plan("X = 1\nY = X * 2\n", "X = 2\nY = X * 2\n")
    first, second = result.steps
    assert first.kind is Kind.RUN and first.binds == {"X"}
    assert second.kind is Kind.UNCHANGED and "X" in second.reads  # re-runs when X changes


def test_method_body_change_is_a_methods_upgrade() -> None:
    old = "class C:\n    A = 1\n    def m(self):\n        return 1\n    def n(self):\n        return 2\n"
    new = "class C:\n    A = 1\n    def m(self):\n        return 10\n    def n(self):\n        return 2\n"
    result = plan(old, new)
    (step,) = result.steps
    assert step.kind is Kind.METHODS and step.methods == (1,)


def test_class_attribute_change_reruns_the_class() -> None:
    assert kinds("class C:\n    A = 1\n", "class C:\n    A = 2\n") == ["run"]


def test_removed_names_are_listed() -> None:
    result = plan("X = 1\ndef gone():\n    pass\n", "X = 1\n")
    assert result.removed == {"gone"}


def test_function_bodies_are_not_reads_but_defaults_and_decorators_are() -> None:
    (step,) = plan("", "@deco(A)\ndef f(x=B, *, y: C = D) -> E:\n    return F\n").steps
    assert step.reads == {"deco", "A", "B", "C", "D", "E"}
    assert step.binds == {"f"}


def test_class_body_names_are_not_module_names() -> None:
    (step,) = plan("", "class C(Base):\n    x = y\n    def m(self):\n        return z\n").steps
    assert step.binds == {"C"}
    assert {"Base", "y"} <= step.reads and "z" not in step.reads


def test_comprehension_variables_are_local_but_walrus_binds() -> None:
    (step,) = plan("", "T = [i for i in R if (last := i)]\n").steps
    assert step.reads == {"R"}
    assert step.binds == {"T", "last"}


def test_star_import_and_globals_are_dynamic() -> None:
    assert plan("", "from os import *\n").steps[0].dynamic
    assert plan("", "globals()['x'] = 1\n").steps[0].dynamic
    assert not plan("", "x = 1\n").steps[0].dynamic


def test_reading_a_name_bound_later_is_marked() -> None:
    result = plan("X = 1\nY = X\nX = 2\n", "X = 1\nY = X + 1\nX = 2\n")
    assert result.steps[1].late == {"X"}


def test_whole_module_rules() -> None:
    assert plan("def f(): pass\ndef f(): pass\n", "def f(): pass\n").full_reason
    assert plan("x = 1\n", "from __future__ import annotations\nx = 1\n").full_reason
    assert plan("x = 1\n", "x = 2\n").full_reason is None


def test_moved_lines_are_mapped_inside_classes_whose_methods_changed() -> None:
    old = "class C:\n    def a(self):\n        return 1\n    def b(self):\n        return 2\n"
    new = "class C:\n    def a(self):\n        x = 0\n        return 1\n    def b(self):\n        return 2\n"
    result = plan(old, new)
    assert result.steps[0].kind is Kind.METHODS and result.steps[0].methods == (0,)
    assert result.moved_lines == {4: 5, 5: 6}


STATEMENTS = st.sampled_from(
    [
        "X = 1",
        "X = 2",
        "Y = X * 2",
        "def f():\n    return X",
        "def f():\n    return Y",
        "class C:\n    def m(self):\n        return 1",
        "class C:\n    def m(self):\n        return 2",
        "import os",
        "Z = [i for i in range(3)]",
    ]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(STATEMENTS, max_size=6), st.lists(STATEMENTS, max_size=6))
def test_every_new_statement_gets_one_step_and_unchanged_text_runs_nothing(
    old: list[str], new: list[str]
) -> None:
    old_text, new_text = "\n".join(old) + "\n", "\n".join(new) + "\n"
    result = plan(old_text, new_text)
    if result.full_reason is not None:
        return
    assert [ast.dump(s.node) for s in result.steps] == [ast.dump(n) for n in ast.parse(new_text).body]
    same = plan(new_text, new_text)
    assert all(step.kind is Kind.UNCHANGED for step in same.steps)
