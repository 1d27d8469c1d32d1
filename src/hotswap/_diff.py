"""Diff: old source against new source, per top-level statement and per class body.

``plan(old_text, new_text)`` touches no module: it returns a ``Plan``, a value
that says, for each statement of the new text, whether it is unchanged, a
function whose body alone changed, a class whose methods alone changed, or a
statement that must run again. What also re-runs because it reads a name whose
value changed is decided while applying (``_apply``), from the values
themselves: an upgraded function or class keeps its identity, so nothing that
reads it runs again.

When a partial update cannot be shown to give what a fresh import gives, the
plan says so (``full_reason``) and the whole module re-runs instead. The rules:

* the ``from __future__`` flags changed (they apply to the whole file);
* a top-level function or class name is defined twice (old or new text): the
  statements cannot be paired by name;
* a statement that must run, or was removed, imports ``*`` or reaches the
  namespace dynamically (``globals()``, ``locals()``, ``vars()``, ``exec``,
  ``eval``): the names it binds cannot be known (for one that must run, decided
  while applying, as it may also have to run because it reads a changed name);
* a statement that must run reads a name that it or a later statement binds
  (``COUNT += T``), or may change in place an object an earlier statement made
  (``REG.append(T)``): in a fresh import it would see an earlier value than the
  one the namespace holds (decided while applying, from ``Step.late``).
"""

from __future__ import annotations
import __future__

import ast
import copy
import dataclasses
import difflib
import enum
import functools
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import CodeType

from ._vocab import assignment_targets, attribute_of_name

__all__ = [
    "NAMESPACE",
    "Kind",
    "Plan",
    "Step",
    "attributes_set",
    "class_body_names",
    "future_flags",
    "parse",
    "plan",
    "statement_code",
    "unchanged_plan",
]

_DYNAMIC_CALLS = frozenset({"globals", "locals", "vars", "exec", "eval"})
_NAMESPACE_CALLS = frozenset({"globals", "locals", "vars", "dir"})  # without arguments: the module's names
# Read by a statement that looks at the module's names as a whole (``globals()``, ``dir()``):
# it runs again when any name of the module changed before it.
NAMESPACE = "<the module's names>"
_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef)


class Kind(enum.Enum):
    UNCHANGED = "unchanged"  # runs again only if it reads or binds a name that changed
    BODY = "body"  # a function whose decorators did not change: upgrade its code in place
    METHODS = "methods"  # a class whose method bodies alone changed: upgrade them in place
    RUN = "run"  # new or changed: runs again


@dataclass(frozen=True, eq=False)
class Step:
    """One statement of the new text, and what must happen to it."""

    node: ast.stmt
    kind: Kind
    reads: frozenset[str]  # names read while the statement runs (not in function bodies)
    binds: frozenset[str]  # module-level names it binds
    dynamic: bool  # binds names that cannot be seen statically
    late: frozenset[str] = frozenset()  # names it reads that a later statement binds
    # names it binds that a later statement binds again: their value after it is not their final
    # one (run again, it may give the object they held, and what comes after must still run)
    bound_later: frozenset[str] = frozenset()
    mutates: frozenset[str] = frozenset()  # names whose object it may change in place (``REG.append(x)``)
    methods: tuple[int, ...] = ()  # METHODS: positions of the changed defs in the class body
    moved: bool = False  # some of its unchanged lines now sit elsewhere
    first_text: str = ""  # its first line as written, for reports

    @property
    def line(self) -> int:
        return first_line(self.node)

    def label(self) -> str:
        """``line 12 (X = 2)`` for reports (asked at each re-run of a dependent: kept)."""
        known: str | None = self.__dict__.get("_label")
        if known is None:
            text = self.first_text
            if isinstance(self.node, (*_DEFS, ast.ClassDef)):
                text = f"{'class' if isinstance(self.node, ast.ClassDef) else 'def'} {self.node.name}"
            known = self.__dict__["_label"] = f"line {self.line} ({text[:40]})"
        return known


@dataclass(frozen=True, eq=False)
class Plan:
    steps: tuple[Step, ...]
    removed: frozenset[str]  # bound by the old text only: to delete from the module
    future_flags: int
    full_reason: str | None = None  # set: re-run the whole module, and say why
    # unchanged lines that moved, old -> new: code kept across the reload follows them
    moved_lines: Mapping[int, int] = dataclasses.field(default_factory=dict)
    # (name, attribute) of `Point.tag = ...` statements the old text had and the new one lacks
    removed_attributes: frozenset[tuple[str, str]] = frozenset()


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


_COMPILED: dict[tuple[int, str, int], tuple[ast.stmt, CodeType]] = {}


def statement_code(nodes: list[ast.stmt], path: str, flags: int) -> CodeType:
    """Compile statements as written: their own file, lines and ``__future__`` flags.

    A single statement's code is kept with its node (a module that follows
    another one's edits re-runs the same statement again and again).
    """
    key = (id(nodes[0]), path, flags)
    if len(nodes) == 1:
        cached = _COMPILED.get(key)
        if cached is not None and cached[0] is nodes[0]:
            return cached[1]
    module = ast.Module(body=nodes, type_ignores=[])
    code: CodeType = compile(module, path, "exec", flags=flags, dont_inherit=True)
    if len(nodes) == 1:
        if len(_COMPILED) > 4096:
            _COMPILED.clear()
        _COMPILED[key] = (nodes[0], code)
    return code


def plan(old_text: str, new_text: str, *, path: str = "<module>") -> Plan:
    """What must run to bring a module from ``old_text`` to ``new_text``.

    Raises ``SyntaxError`` when ``new_text`` does not parse.

    >>> p = plan("X = 1\\nY = X * 2\\ndef f():\\n    return 1\\n",
    ...          "X = 2\\nY = X * 2\\ndef f():\\n    return 2\\n")
    >>> [step.kind.value for step in p.steps]
    ['run', 'unchanged', 'body']
    """
    old = _known_text(old_text, path)
    if old is not None:
        new = _text(new_text, path, near=old)
    else:  # (the first reload of a module nobody prepared: each side is parsed from the other)
        new = _text(new_text, path)
        try:
            old = _text(old_text, path, near=new)
        except SyntaxError:
            return Plan((), frozenset(), new.future_flags, "the running text does not parse")
    flags = new.future_flags
    if flags != old.future_flags:
        return Plan((), frozenset(), flags, "its __future__ imports changed")
    for text in (old, new):
        twice = text.defined_twice
        if twice:
            return Plan((), frozenset(), flags, f"{twice!r} is defined more than once")
    pairs = _pair(old, new)
    kept = {id(n) for n in pairs.values()}
    for node in old.tree.body:
        if id(node) not in kept and _scan(old, node).dynamic:
            return Plan((), frozenset(), flags, "a removed statement bound names that cannot be known (import *)")
    moved: dict[int, int] = {}
    steps = [_step(i, node, pairs.get(i), old, new, moved) for i, node in enumerate(new.tree.body)]
    removed = old.bound - new.bound
    attributes = old.attributes_set - new.attributes_set
    return Plan(_mark_late(steps), frozenset(removed), flags, moved_lines=moved, removed_attributes=attributes)


def _attributes_set_by(body: list[ast.stmt]) -> frozenset[tuple[str, str]]:
    """``(Point, tag)`` for each top-level ``Point.tag = ...`` (or ``: T = ...``)."""
    assigned = (target for node in body if not isinstance(node, ast.AugAssign) for target in assignment_targets(node))
    return frozenset(filter(None, map(attribute_of_name, assigned)))


def attributes_written(body: list[ast.stmt]) -> frozenset[tuple[str, str]]:
    """``(Point, tag)`` for each ``Point.tag = / += / del`` among these top-level statements."""
    written = (target for node in body for target in assignment_targets(node, unpack=True, deletes=True))
    return frozenset(filter(None, map(attribute_of_name, written)))


class _Text:
    """A parsed source text, and the exact text of each of its statements.

    Made from a ``near`` text (the version it follows), only the top-level
    statements its changed lines touch are parsed: the others are the near
    text's own nodes, shared (parsed trees are never mutated).
    """

    def __init__(self, text: str, path: str, near: _Text | None = None) -> None:
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

    # what each plan asks of both its texts, kept (the new text of one plan is the old of the next)

    @functools.cached_property
    def future_flags(self) -> int:
        return future_flags(self.tree)

    @functools.cached_property
    def defined_twice(self) -> str | None:
        return _defined_twice(self.tree.body)

    @functools.cached_property
    def bound(self) -> frozenset[str]:
        """The names its top-level statements bind."""
        return frozenset().union(*(_scan(self, node).binds for node in self.tree.body))

    @functools.cached_property
    def attributes_set(self) -> frozenset[tuple[str, str]]:
        return _attributes_set_by(self.tree.body)

    def segment(self, node: ast.stmt) -> str:
        """The statement as written (comments included), wherever it sits."""
        segment = self._segments.get(id(node))
        if segment is None:
            end = node.end_lineno or node.lineno
            lines = "".join(self.lines[first_line(node) - 1 : end])
            segment = self._segments[id(node)] = f"{node.col_offset}:{node.end_col_offset}:{lines}"
        return segment


_UNCHANGED: dict[tuple[str, str], Plan] = {}


def unchanged_plan(text: str, path: str, digest: str, *, keep: bool = True) -> Plan:
    """The plan from a text to itself: only its reads matter (a module whose imports changed).

    Kept per text (``keep``): a module that follows another one's edits pays the parse once.
    Not kept when what is derived from it is kept instead (a plan holds the whole parsed text).
    """
    if not keep:  # nor the parse (the cache of parsed texts is for texts that run)
        return _plan_of_unchanged(_Text(text, path))
    key = (path, digest)
    cached = _UNCHANGED.get(key)
    if cached is None:
        if len(_UNCHANGED) > 4096:
            _UNCHANGED.clear()
        cached = _UNCHANGED[key] = _plan_of_unchanged(_text(text, path))
    return cached


def _plan_of_unchanged(new: _Text) -> Plan:
    """``plan(text, text)`` without pairing a text with itself: every step is unchanged."""
    flags = new.future_flags
    twice = new.defined_twice
    if twice:
        return Plan((), frozenset(), flags, f"{twice!r} is defined more than once")
    steps = []
    for node in new.tree.body:
        scan = _scan(new, node)
        first_text = new.lines[node.lineno - 1].strip() if node.lineno <= len(new.lines) else ""
        steps.append(
            Step(node, Kind.UNCHANGED, scan.reads, scan.binds, scan.dynamic, mutates=scan.mutates, first_text=first_text)
        )
    return Plan(_mark_late(steps), frozenset(), flags)


def class_body_names(text: str, path: str) -> Mapping[str, frozenset[str]]:
    """Class qualname -> the names its body binds, for the classes of a text (nested ones too)."""
    parsed = _text(text, path)
    known: dict[str, frozenset[str]] | None = parsed.__dict__.get("class_names")
    if known is None:
        known = parsed.__dict__["class_names"] = {}
        pending = [(node, node.name) for node in parsed.tree.body if isinstance(node, ast.ClassDef)]
        while pending:
            node, qualname = pending.pop()
            names: set[str] = set()
            for statement in node.body:
                scan = _Scan.of(statement)
                names |= scan.binds
                if isinstance(statement, ast.ClassDef):
                    pending.append((statement, f"{qualname}.{statement.name}"))
                elif isinstance(statement, (ast.AnnAssign)) and isinstance(statement.target, ast.Name):
                    names.add(statement.target.id)
            known[qualname] = frozenset(names)
    return known


def star_imports(text: str, path: str) -> tuple[tuple[ast.ImportFrom, frozenset[str], frozenset[str]], ...]:
    """Each ``from m import *`` of a text at module level, with the names the text binds itself
    before it and after it: after it, the module's own value wins over m's; before it, m's
    value wins while m gives the name."""
    parsed = _text(text, path)
    known: tuple[tuple[ast.ImportFrom, frozenset[str], frozenset[str]], ...] | None = parsed.__dict__.get("stars")
    if known is None:
        body = parsed.tree.body
        binds = [_scan(parsed, node).binds for node in body]
        found = []
        for i, node in enumerate(body):
            if not _scan(parsed, node).dynamic:
                continue
            for inner in ast.walk(node):
                if isinstance(inner, ast.ImportFrom) and any(a.name == "*" for a in inner.names):
                    before = frozenset().union(*binds[:i])
                    after = frozenset().union(*binds[i + 1 :])
                    found.append((inner, before - after, after))
        known = parsed.__dict__["stars"] = tuple(found)
    return known


def attributes_set(text: str, path: str) -> frozenset[tuple[str, str]]:
    """``(Point, tag)`` for each top-level ``Point.tag = ...`` of a text."""
    return _text(text, path).attributes_set


def parse(text: str, path: str) -> ast.Module:
    """The parsed text, shared with the planner's cache (treat it as read-only)."""
    return _text(text, path).tree


def prepare(text: str, path: str) -> None:
    """Work out now what a plan from this text will ask of it (parsed, each statement's names):
    the first reload of a module then only parses and reads what its edit changed."""
    _text(text, path).bound


def _text(text: str, path: str, near: _Text | None = None) -> _Text:
    """Parsed texts are reused (never mutated): the new text of one reload is the old of the next."""
    known = _known_text(text, path)
    if known is not None:
        return known
    parsed = _Text(text, path, near)
    key = (text, path)
    with _TEXTS_LOCK:
        _TEXTS[key] = parsed
        while len(_TEXTS) > 64:
            del _TEXTS[next(iter(_TEXTS))]
    return parsed


def _known_text(text: str, path: str) -> _Text | None:
    with _TEXTS_LOCK:  # (the warm-up thread parses too)
        known = _TEXTS.pop((text, path), None)
        if known is not None:
            _TEXTS[(text, path)] = known  # the most recent last
    return known


_TEXTS: dict[tuple[str, str], _Text] = {}  # (text, path) -> parsed, the least recent first
_TEXTS_LOCK = threading.Lock()


def _reparsed(near: _Text, lines: list[str], text: str, path: str) -> ast.Module | None:
    """The tree of ``text`` (split in ``lines``), parsing again only the top-level statements of
    ``near`` that a changed line touches, and the changed lines between them; the statements
    before them, and after them when no line came or went, are ``near``'s own nodes.

    Sound because the parts kept begin and end where ``near``'s top-level statements do, and
    the part parsed again parses alone: nothing can be left open across its edges (a bracket,
    a string, a block, a continued line), or it would not. None when it does not parse alone
    (the whole text is parsed, and a syntax error is said where it is), or when lines are not
    plain ``\n`` lines (``splitlines`` would not count them as the parser does).
    """
    old = near.lines
    if "\r" in text or len(lines) != text.count("\n") + (not text.endswith("\n")) or "barry_as_FLUFL" in text:
        return None
    limit = min(len(old), len(lines))
    start = 0  # lines before it are the same
    while start < limit and old[start] == lines[start]:
        start += 1
    same_after = 0  # this many last lines are the same
    while same_after < limit - start and old[-1 - same_after] == lines[-1 - same_after]:
        same_after += 1
    body = near.tree.body
    keep_before = 0  # statements wholly before the first changed line
    while keep_before < len(body) and _last_line(body[keep_before]) <= start:
        keep_before += 1
    keep_after = len(body)  # from this statement on, wholly after the last changed line
    if len(old) == len(lines):  # (else they moved: parsed again, with their new lines)
        while keep_after > keep_before and first_line(body[keep_after - 1]) > len(old) - same_after:
            keep_after -= 1
    first = start + 1 if keep_before == len(body) else min(start + 1, first_line(body[keep_before]))
    last = first_line(body[keep_after]) - 1 if keep_after < len(body) else len(lines)
    try:  # (the blank lines before it give its nodes their lines, at the cost of a newline each)
        part = ast.parse("\n" * (first - 1) + "".join(lines[first - 1 : last]), path)
    except (SyntaxError, ValueError):
        return None
    return ast.Module(body=[*body[:keep_before], *part.body, *body[keep_after:]], type_ignores=[])


def _last_line(node: ast.stmt) -> int:
    return node.end_lineno or node.lineno


def _defined_twice(body: list[ast.stmt]) -> str | None:
    names = Counter(n.name for n in body if isinstance(n, (*_DEFS, ast.ClassDef)))
    return next((name for name, count in names.items() if count > 1), None)


def _pair(old: _Text, new: _Text) -> dict[int, ast.stmt]:
    """new index -> the old statement it continues (same text, same definition name, same meaning)."""

    def key(text: _Text, node: ast.stmt) -> str:
        if isinstance(node, (*_DEFS, ast.ClassDef)):
            return f"definition {node.name}"
        return text.segment(node)

    old_body, new_body = old.tree.body, new.tree.body
    # statements the new text shares with the old one (see ``_Text``) pair with themselves; the
    # others are matched by what they say
    head = 0
    while head < min(len(old_body), len(new_body)) and old_body[head] is new_body[head]:
        head += 1
    tail = 0
    while tail < min(len(old_body), len(new_body)) - head and old_body[-1 - tail] is new_body[-1 - tail]:
        tail += 1
    pairs = {i: old_body[i] for i in range(head)}
    pairs.update({len(new_body) - 1 - k: old_body[len(old_body) - 1 - k] for k in range(tail)})
    old_middle, new_middle = old_body[head : len(old_body) - tail], new_body[head : len(new_body) - tail]
    matcher = difflib.SequenceMatcher(
        None, [key(old, n) for n in old_middle], [key(new, n) for n in new_middle], autojunk=False
    )
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            pairs[head + block.b + k] = old_middle[block.a + k]
    paired = {id(n) for n in pairs.values()}
    old_defs = {n.name: n for n in old_body if isinstance(n, (*_DEFS, ast.ClassDef))}
    by_meaning: dict[str, list[ast.stmt]] = {}
    for node in old_body:
        if id(node) not in paired and not isinstance(node, (*_DEFS, ast.ClassDef)):
            by_meaning.setdefault(ast.dump(node), []).append(node)
    for index, node in enumerate(new_body):
        if index in pairs:
            continue
        if isinstance(node, (*_DEFS, ast.ClassDef)):  # a definition that moved is still itself
            if node.name in old_defs:
                pairs[index] = old_defs[node.name]
        elif by_meaning:  # only comments or layout changed
            same = by_meaning.get(ast.dump(node))
            if same:
                pairs[index] = same.pop(0)
    return pairs


def _step(
    index: int, node: ast.stmt, old: ast.stmt | None, old_text: _Text, new_text: _Text, moved: dict[int, int]
) -> Step:
    scan = _scan(new_text, node)
    kind, methods = _kind(index, node, old, old_text, new_text)
    lines_moved = False
    if old is not None:
        if kind is Kind.UNCHANGED and old_text.segment(old) == new_text.segment(node):
            lines_moved = _map_lines(old, node, moved)
        elif kind is Kind.METHODS:
            assert isinstance(old, ast.ClassDef) and isinstance(node, ast.ClassDef)
            for position, (a, b) in enumerate(zip(old.body, node.body)):
                if position not in methods and old_text.segment(a) == new_text.segment(b):
                    lines_moved |= _map_lines(a, b, moved)
    first_text = new_text.lines[node.lineno - 1].strip() if node.lineno <= len(new_text.lines) else ""
    return Step(
        node, kind, scan.reads, scan.binds, scan.dynamic,
        mutates=scan.mutates, methods=methods, moved=lines_moved, first_text=first_text,
    )


def _map_lines(old: ast.stmt, new: ast.stmt, moved: dict[int, int]) -> bool:
    delta = first_line(new) - first_line(old)
    if delta:
        for line in range(first_line(old), (old.end_lineno or old.lineno) + 1):
            moved[line] = line + delta
    return delta != 0


def _kind(
    index: int, node: ast.stmt, old: ast.stmt | None, old_text: _Text, new_text: _Text
) -> tuple[Kind, tuple[int, ...]]:
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and index > 0:
        return Kind.UNCHANGED, ()  # a bare string or constant does nothing when it runs
    if old is None or type(old) is not type(node):
        return Kind.RUN, ()
    if old is node or old_text.segment(old) == new_text.segment(node):
        return Kind.UNCHANGED, ()
    if isinstance(node, _DEFS):
        # same meaning but other lines still recompiles: the code must report its lines
        return (Kind.BODY, ()) if _same_decorators(old, node) else (Kind.RUN, ())
    if isinstance(node, ast.ClassDef):
        assert isinstance(old, ast.ClassDef)
        methods = _changed_methods(old, node, old_text, new_text)
        return (Kind.RUN, ()) if methods is None else (Kind.METHODS, methods)
    if ast.dump(old) == ast.dump(node):
        return Kind.UNCHANGED, ()
    return Kind.RUN, ()


def _same_decorators(old: ast.stmt, new: ast.stmt) -> bool:
    return _dump_all(getattr(old, "decorator_list", [])) == _dump_all(getattr(new, "decorator_list", []))


def _dump_all(nodes: Iterable[ast.AST]) -> list[str]:
    return [ast.dump(n) for n in nodes]


def _changed_methods(
    old: ast.ClassDef, new: ast.ClassDef, old_text: _Text, new_text: _Text
) -> tuple[int, ...] | None:
    """Positions of the methods whose text changed, when nothing else in the class did."""
    header = ("bases", "keywords", "decorator_list")
    if any(_dump_all(getattr(old, f)) != _dump_all(getattr(new, f)) for f in header):
        return None
    if len(old.body) != len(new.body):
        return None
    changed = []
    for position, (a, b) in enumerate(zip(old.body, new.body)):
        if old_text.segment(a) == new_text.segment(b):
            continue
        if isinstance(a, _DEFS) and type(a) is type(b):
            assert isinstance(b, _DEFS)
            if a.name != b.name or not _same_decorators(a, b):
                return None
            changed.append(position)
        elif ast.dump(a) != ast.dump(b):
            return None
    return tuple(changed)


KEEP = "__hotswap_keep__"  # stands for each decorator of a bare definition: returns what it is given
_BARE: dict[int, tuple[ast.stmt, ast.stmt]] = {}


def without_decorators(node: ast.stmt) -> ast.stmt:
    """The definition alone: running it makes the raw function, registering nothing.

    Each decorator is replaced, in place, by the name ``KEEP`` (bound by the
    caller to a function that returns its argument), so the code starts at the
    first decorator's line, as the real definition's does.
    """
    cached = _BARE.get(id(node))
    if cached is not None and cached[0] is node:
        return cached[1]
    bare = copy.copy(node)
    bare.decorator_list = [  # type: ignore[attr-defined]
        ast.copy_location(ast.Name(id=KEEP, ctx=ast.Load()), decorator)
        for decorator in getattr(node, "decorator_list", ())
    ]
    if len(_BARE) > 4096:
        _BARE.clear()
    _BARE[id(node)] = (node, bare)
    return bare


def method_class(node: ast.ClassDef, positions: tuple[int, ...]) -> ast.ClassDef:
    """A bare class holding just the changed methods, so ``super()`` cells are made as in the real one."""
    bare = copy.copy(node)
    bare.bases, bare.keywords, bare.decorator_list = [], [], []
    bare.body = [without_decorators(node.body[i]) for i in positions]
    return bare


@dataclass(frozen=True)
class _Names:
    reads: frozenset[str]
    binds: frozenset[str]
    dynamic: bool
    mutates: frozenset[str]


_SCANS: dict[str, _Names] = {}


def _scan(text: _Text, node: ast.stmt) -> _Names:
    """What a statement reads and binds, cached by its exact text: unchanged text is free."""
    segment = text.segment(node)
    names = _SCANS.get(segment)
    if names is None:
        if len(_SCANS) > 20_000:
            _SCANS.clear()
        scan = _Scan.of(node)
        names = _SCANS[segment] = _Names(frozenset(scan.reads), frozenset(scan.binds), scan.dynamic, frozenset(scan.mutates))
    return names


def _mark_late(steps: list[Step]) -> tuple[Step, ...]:
    """Note, per statement, the names whose value at that point it depends on, which a run of
    it alone would not see: those it reads that it or a later statement (re)binds (it would read
    their final value: ``COUNT += T`` its own last result), and the objects an earlier statement
    of the module made that it may change in place (``REG.append(T)`` would append again)."""
    bound_later: Counter[str] = Counter()
    for step in steps:
        bound_later.update(step.binds)
    made: set[str] = set()  # bound by earlier statements other than imports (a module is shared)
    marked = []
    for step in steps:
        bound_later.subtract(step.binds)
        late = frozenset(n for n in step.reads if bound_later[n] > 0 or n in step.binds) | (step.mutates & made)
        again = frozenset(n for n in step.binds if bound_later[n] > 0)
        if not isinstance(step.node, (ast.Import, ast.ImportFrom)):
            made |= step.binds
        marked.append(dataclasses.replace(step, late=late, bound_later=again) if late or again else step)
    return tuple(marked)


class _Scan(ast.NodeVisitor):
    """The names a top-level statement reads and binds when it runs.

    Function bodies run later, when called: only their decorators, defaults
    and annotations are read now. Class bodies run now, but bind class
    attributes, not module names.
    """

    def __init__(self) -> None:
        self.reads: set[str] = set()
        self.binds: set[str] = set()
        self.mutates: set[str] = set()  # ``REG.append(x)``, ``TABLE[k] = v``, ``TABLE[k] += v``
        self.dynamic = False
        self._class_depth = 0

    @classmethod
    def of(cls, node: ast.stmt) -> _Scan:
        scan = cls()
        scan.visit(node)
        return scan

    def _bind(self, name: str) -> None:
        if self._class_depth == 0:
            self.binds.add(name)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.reads.add(node.id)
        else:
            self._bind(node.id)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.target, ast.Name):
            self.reads.add(node.target.id)
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if not isinstance(node.ctx, ast.Load) and isinstance(node.value, ast.Name):
            self.mutates.add(node.value.id)
        self.generic_visit(node)

    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        for decorator in getattr(node, "decorator_list", ()):
            self.visit(decorator)
        args = node.args
        for default in [*args.defaults, *args.kw_defaults]:
            if default is not None:
                self.visit(default)
        for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
            if arg is not None and arg.annotation is not None:
                self.visit(arg.annotation)
        returns = getattr(node, "returns", None)
        if returns is not None:
            self.visit(returns)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._visit_function(node)
        self._bind(node.name)

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._visit_function(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for child in [*node.decorator_list, *node.bases, *node.keywords]:
            self.visit(child)
        self._class_depth += 1
        for statement in node.body:
            self.visit(statement)
        self._class_depth -= 1
        self._bind(node.name)

    def _visit_comprehension(self, node: ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp) -> None:
        inner = _Scan()
        inner._class_depth = self._class_depth
        inner.generic_visit(node)
        local = {
            n.id for g in node.generators for n in ast.walk(g.target) if isinstance(n, ast.Name)
        }
        self.reads |= inner.reads - local
        self.mutates |= inner.mutates - local
        walrus = {
            n.target.id
            for n in ast.walk(node)
            if isinstance(n, ast.NamedExpr) and isinstance(n.target, ast.Name)
        }
        for name in walrus:
            self._bind(name)
        self.dynamic |= inner.dynamic

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _visit_comprehension

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._bind(alias.asname or alias.name.partition(".")[0])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name == "*":
                self.dynamic = True
            else:
                self._bind(alias.asname or alias.name)

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name):
            self.mutates.add(node.func.value.id)  # a method may change its object
        if isinstance(node.func, ast.Name) and node.func.id in _DYNAMIC_CALLS:
            self.dynamic = True
        if isinstance(node.func, ast.Name) and node.func.id in _NAMESPACE_CALLS and not node.args:
            self.reads.add(NAMESPACE)
        self.generic_visit(node)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self._bind(node.name)
        self.generic_visit(node)

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        if node.name:
            self._bind(node.name)
        self.generic_visit(node)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        if node.name:
            self._bind(node.name)

    def visit_MatchMapping(self, node: ast.MatchMapping) -> None:
        if node.rest:
            self._bind(node.rest)
        self.generic_visit(node)
