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
    assert plan("x = 1\n", "from __future__ import annotations\nx = 1\n").full_reason
    assert plan("x = 1\n", "x = 2\n").full_reason is None


OVERLOADS = "@overload\ndef f(x: int): ...\n@overload\ndef f(x: str): ...\ndef f(x):\n    return x\n"


def test_definitions_of_one_name_pair_by_position() -> None:
    moved = plan(OVERLOADS, "# a comment\n" + OVERLOADS)
    assert moved.full_reason is None and [s.kind for s in moved.steps] == [Kind.UNCHANGED] * 3
    assert moved.moved_lines[1] == 2
    implementation = plan(OVERLOADS, OVERLOADS.replace("return x", "return x * 2"))
    assert [s.kind for s in implementation.steps] == [Kind.UNCHANGED, Kind.UNCHANGED, Kind.BODY]


def test_a_definition_defined_again_later_runs_again_rather_than_upgrading_the_name_s_object() -> None:
    stub = plan(OVERLOADS, OVERLOADS.replace("x: int", "x: float"))
    assert [s.kind for s in stub.steps] == [Kind.RUN, Kind.UNCHANGED, Kind.UNCHANGED]
    assert stub.steps[0].bound_later == {"f"}


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


# Whole statements a module is made of, and lines a user types and deletes in it, some of which
# leave something open (a bracket, a string, a block, a continued line) or shift a line into
# the block above.
_SNIPPETS = [
    "X = 1\n", "Y = X * 2\n", "\n", "# a comment\n", "@decorate\ndef f():\n    return X\n",
    "def g(a,\n      b):\n    pass\n", "class C:\n    a = 1\n\n    def m(self):\n        return 2\n",
    "if X:\n    Y = 1\nelse:\n    Y = 2\n", "Z = (1,\n     2)\n", "S = '''\ntext\n'''\n",
    "T = 1 + \\\n    2\n", "W = 3; V = 4\n", "import os\n", "try:\n    pass\nexcept E:\n    pass\n",
]
_LINES = [
    "X = 2\n", "Y = X * 3\n", "\n", "# another\n", "@decorate\n", "def f():\n", "    return Y\n",
    "    pass\n", "class C:\n", "    b = 2\n", "if X:\n", "else:\n", "Z = (1,\n", "     3)\n",
    "S = '''\n", "T = 1 + \\\n", "W = 5; V = 6\n", "    # inside\n", "L = [\n", "]\n", "@other\n",
]


@settings(max_examples=1000, deadline=None)
@given(
    st.lists(st.sampled_from(_SNIPPETS), max_size=10),
    st.lists(
        st.tuples(st.sampled_from(["replace", "insert", "delete"]), st.integers(0, 40), st.sampled_from(_LINES)),
        min_size=1,
        max_size=3,
    ),
    st.booleans(),
)
def test_a_text_parsed_from_the_one_it_follows_is_the_text_parsed_whole(
    snippets: list[str], edits: list[tuple[str, int, str]], final_newline: bool
) -> None:
    """Reparsing only the statements an edit touches gives the very tree a whole parse gives
    (lines and columns included), or a whole parse is done (and raises where it does)."""
    from hotswap._parse import ParsedText as _Text

    old_text = "".join(snippets)
    near = _Text(old_text, "m.py")
    lines = old_text.splitlines(keepends=True)
    for kind, at, line in edits:
        at = min(at, len(lines))
        if kind == "insert" or not lines:
            lines.insert(at, line)
        elif kind == "replace":
            lines[min(at, len(lines) - 1)] = line
        else:
            del lines[min(at, len(lines) - 1)]
    new_text = "".join(lines)
    if not final_newline:
        new_text = new_text.rstrip("\n")
    try:
        whole = ast.dump(ast.parse(new_text, "m.py"), include_attributes=True)
    except SyntaxError:
        whole = None
    try:
        incremental = ast.dump(_Text(new_text, "m.py", near).tree, include_attributes=True)
    except SyntaxError:
        incremental = None
    assert incremental == whole


def test_a_text_parsed_from_the_one_it_follows_shares_the_statements_it_did_not_touch() -> None:
    from hotswap._parse import ParsedText as _Text

    old = "import os\n\nX = 1\n\ndef f():\n    return X\n\nclass C:\n    pass\n"
    near = _Text(old, "m.py")
    new = _Text(old.replace("X = 1", "X = 2"), "m.py", near)
    kept = [a is b for a, b in zip(near.tree.body, new.tree.body)]
    assert kept == [True, False, True, True]
    shifted_text = old.replace("X = 1", "X = 1\nY = 2")
    shifted = _Text(shifted_text, "m.py", near)  # the lines after it moved: parsed again
    assert [a is b for a, b in zip(near.tree.body, shifted.tree.body)] == [True, True, False, False]
    assert ast.dump(shifted.tree, include_attributes=True) == ast.dump(ast.parse(shifted_text), include_attributes=True)
