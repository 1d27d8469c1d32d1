"""Parse: source texts as trees, kept and re-parsed incrementally.

A reload parses the new text of a module, and the running text is the new text
of the reload before: parsed texts are kept by text (a few dozen, the most
recent), and a text parsed from the one it follows re-parses only the
top-level statements its changed lines touch (``ParsedText``). What the steps
ask of a whole text (its ``__future__`` flags, the names it binds, its class
bodies, its ``import *``) is worked out once and kept with it.

Trees handed out are shared: they are never mutated.
"""

from __future__ import annotations
import __future__

import ast
import functools
from collections import Counter
from collections.abc import Mapping
from typing import NamedTuple

from ._bounded import MIB, SizedCache
from ._scan import Names, bound_by, names_of
from ._vocab import assignment_targets, attribute_of_name

__all__ = [
    "DEFINITIONS",
    "ParsedText",
    "StarImport",
    "attributes_set",
    "class_body_names",
    "first_line",
    "future_flags",
    "known_text",
    "parse",
    "parsed_text",
    "prepare",
    "star_imports",
]

DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)  # statements paired by name


class StarImport(NamedTuple):
    """A ``from m import *`` at module level, with the names the text binds itself around it."""

    node: ast.ImportFrom
    before: frozenset[str]  # bound before it only: m's value wins while m gives the name
    after: frozenset[str]  # bound after it: the module's own value wins


def first_line(node: ast.stmt) -> int:
    """Where a statement starts, decorators included."""
    decorators = getattr(node, "decorator_list", ())
    return min([node.lineno, *(int(d.lineno) for d in decorators)])


def future_flags(tree: ast.Module) -> int:
    flags = 0
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            for alias in node.names:
                feature = getattr(__future__, alias.name, None)
                flags |= int(getattr(feature, "compiler_flag", 0))
    return flags


class ParsedText:
    """A parsed source text, and the exact text of each of its statements.

    Made from a ``near`` text (the version it follows), only the top-level
    statements its changed lines touch are parsed: the others are the near
    text's own nodes, shared (parsed trees are never mutated).
    """

    def __init__(self, text: str, path: str, near: ParsedText | None = None) -> None:
        self.lines = text.splitlines(keepends=True)
        tree = _reparsed(near, self.lines, text, path) if near is not None else None
        self.tree = tree if tree is not None else ast.parse(text, path)
        self._segments: dict[int, str] = {}
        if tree is not None and near is not None:  # a shared statement is written the same in both
            known = near._segments
            for node in tree.body:
                segment = known.get(id(node))
                if segment is not None:
                    self._segments[id(node)] = segment

    def segment(self, node: ast.stmt) -> str:
        """The statement as written (comments included), wherever it sits."""
        segment = self._segments.get(id(node))
        if segment is None:
            end = node.end_lineno or node.lineno
            lines = "".join(self.lines[first_line(node) - 1 : end])
            segment = self._segments[id(node)] = f"{node.col_offset}:{node.end_col_offset}:{lines}"
        return segment

    def names(self, node: ast.stmt) -> Names:
        """What one of its top-level statements reads and binds."""
        return names_of(node, self.segment(node))

    def first_text(self, node: ast.stmt) -> str:
        """A statement's first line as written, for reports."""
        return self.lines[node.lineno - 1].strip() if node.lineno <= len(self.lines) else ""

    # what the steps ask of a whole text, kept (the new text of one plan is the old of the next)

    @functools.cached_property
    def future_flags(self) -> int:
        return future_flags(self.tree)

    @functools.cached_property
    def definition_keys(self) -> Mapping[int, tuple[str, int]]:
        """id of each top-level definition -> (its name, how many definitions of that name come
        before it): how definitions pair across texts (``@overload`` defines a name many times)."""
        seen: Counter[str] = Counter()
        keys = {}
        for node in self.tree.body:
            if isinstance(node, DEFINITIONS):
                keys[id(node)] = (node.name, seen[node.name])
                seen[node.name] += 1
        return keys

    @functools.cached_property
    def bound(self) -> frozenset[str]:
        """The names its top-level statements bind."""
        return frozenset().union(*(self.names(node).binds for node in self.tree.body))

    @functools.cached_property
    def attributes_set(self) -> frozenset[tuple[str, str]]:
        """``(Point, tag)`` for each top-level ``Point.tag = ...`` (or ``: T = ...``)."""
        body = self.tree.body
        assigned = (target for node in body if not isinstance(node, ast.AugAssign) for target in assignment_targets(node))
        return frozenset(filter(None, map(attribute_of_name, assigned)))

    @functools.cached_property
    def class_names(self) -> Mapping[str, frozenset[str]]:
        """Class qualname -> the names its body binds (nested classes too)."""
        known: dict[str, frozenset[str]] = {}
        pending = [(node, node.name) for node in self.tree.body if isinstance(node, ast.ClassDef)]
        while pending:
            node, qualname = pending.pop()
            names: set[str] = set()
            for statement in node.body:
                names |= bound_by(statement)
                if isinstance(statement, ast.ClassDef):
                    pending.append((statement, f"{qualname}.{statement.name}"))
                elif isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
                    names.add(statement.target.id)
            known[qualname] = frozenset(names)
        return known

    @functools.cached_property
    def stars(self) -> tuple[StarImport, ...]:
        """Each ``from m import *`` at module level, with the names bound around it."""
        body = self.tree.body
        binds = [self.names(node).binds for node in body]
        found = []
        for i, node in enumerate(body):
            if not self.names(node).dynamic:
                continue
            for inner in ast.walk(node):
                if isinstance(inner, ast.ImportFrom) and any(a.name == "*" for a in inner.names):
                    after = frozenset().union(*binds[i + 1 :])
                    found.append(StarImport(inner, frozenset().union(*binds[:i]) - after, after))
        return tuple(found)


def parse(text: str, path: str) -> ast.Module:
    """The parsed text, shared with the planner's cache (treat it as read-only)."""
    return parsed_text(text, path).tree


def prepare(text: str, path: str) -> None:
    """Work out now what a plan from this text will ask of it (parsed, each statement's names):
    the first reload of a module then only parses and reads what its edit changed."""
    parsed_text(text, path).bound


def class_body_names(text: str, path: str) -> Mapping[str, frozenset[str]]:
    """Class qualname -> the names its body binds, for the classes of a text (nested ones too)."""
    return parsed_text(text, path).class_names


def star_imports(text: str, path: str) -> tuple[StarImport, ...]:
    """Each ``from m import *`` of a text at module level, with the names the text binds itself
    before it and after it: after it, the module's own value wins over m's; before it, m's
    value wins while m gives the name."""
    return parsed_text(text, path).stars


def attributes_set(text: str, path: str) -> frozenset[tuple[str, str]]:
    """``(Point, tag)`` for each top-level ``Point.tag = ...`` of a text."""
    return parsed_text(text, path).attributes_set


# (text, path) -> parsed: 64 texts, 16 MiB of what they hold: a parsed text holds its text, its lines
# and its tree (whose constants and names copy the text again): about three times the text
_TEXTS: SizedCache[tuple[str, str], ParsedText] = SizedCache(16 * MIB, 64)
_HELD_PER_CHARACTER = 3


def parsed_text(text: str, path: str, near: ParsedText | None = None) -> ParsedText:
    """Parsed texts are reused (never mutated): the new text of one reload is the old of the next."""
    known = known_text(text, path)
    if known is not None:
        return known
    return _TEXTS.put((text, path), ParsedText(text, path, near), _HELD_PER_CHARACTER * len(text))


def known_text(text: str, path: str) -> ParsedText | None:
    """The text, if it was parsed lately (then the most recent)."""
    return _TEXTS.get((text, path))


def _reparsed(near: ParsedText, lines: list[str], text: str, path: str) -> ast.Module | None:
    """The tree of ``text`` (split in ``lines``), parsing again only the top-level statements of
    ``near`` that a changed line touches, and the changed lines between them; the statements
    before them, and after them when no line came or went, are ``near``'s own nodes.

    Sound because the parts kept begin and end where ``near``'s top-level statements do, and
    the part parsed again parses alone: nothing can be left open across its edges (a bracket,
    a string, a block, a continued line), or it would not. None when it does not parse alone
    (the whole text is parsed, and a syntax error is said where it is), or when lines are not
    plain ``\n`` lines (``splitlines`` would not count them as the parser does).
    """
    if not _plain_lines(lines, text):
        return None
    old, body = near.lines, near.tree.body
    start, same_after = _unchanged_ends(old, lines)
    keep_before = _statements_before(body, start)
    keep_after = len(body)  # from this statement on, wholly after the last changed line
    if len(old) == len(lines):  # (else they moved: parsed again, with their new lines)
        keep_after = _statements_from(body, keep_before, len(old) - same_after)
    first = start + 1 if keep_before == len(body) else min(start + 1, first_line(body[keep_before]))
    last = first_line(body[keep_after]) - 1 if keep_after < len(body) else len(lines)
    try:  # (the blank lines before it give its nodes their lines, at the cost of a newline each)
        part = ast.parse("\n" * (first - 1) + "".join(lines[first - 1 : last]), path)
    except (SyntaxError, ValueError):
        return None
    return ast.Module(body=[*body[:keep_before], *part.body, *body[keep_after:]], type_ignores=[])


def _plain_lines(lines: list[str], text: str) -> bool:
    """Are ``lines`` the lines the parser counts (``\n`` ends only), in a text of no odd grammar?"""
    if "\r" in text or len(lines) != text.count("\n") + (not text.endswith("\n")):
        return False
    return "barry_as_FLUFL" not in text


def _unchanged_ends(old: list[str], new: list[str]) -> tuple[int, int]:
    """How many first lines, and then how many last lines, are the same in both."""
    limit = min(len(old), len(new))
    start = 0
    while start < limit and old[start] == new[start]:
        start += 1
    same_after = 0
    while same_after < limit - start and old[-1 - same_after] == new[-1 - same_after]:
        same_after += 1
    return start, same_after


def _statements_before(body: list[ast.stmt], line: int) -> int:
    """How many first statements end by ``line``."""
    count = 0
    while count < len(body) and (body[count].end_lineno or body[count].lineno) <= line:
        count += 1
    return count


def _statements_from(body: list[ast.stmt], lowest: int, line: int) -> int:
    """Where the last statements that start after ``line`` begin (not before ``lowest``)."""
    index = len(body)
    while index > lowest and first_line(body[index - 1]) > line:
        index -= 1
    return index
