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
* a statement that must run, or was removed, imports ``*`` or reaches the
  namespace dynamically (``globals()``, ``locals()``, ``vars()``, ``exec``,
  ``eval``): the names it binds cannot be known (for one that must run, decided
  while applying, as it may also have to run because it reads a changed name);
* a statement that must run reads a name that it or a later statement binds
  (``COUNT += T``), or may change in place an object an earlier statement made
  (``REG.append(T)``): in a fresh import it would see an earlier value than the
  one the namespace holds (decided while applying, from ``Step.late``).

The texts come parsed from ``_parse`` (kept, and re-parsed incrementally), and
what each statement reads and binds from ``_scan``.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import difflib
import enum
import functools
import weakref
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import CodeType

from ._bounded import MIB, SizedCache
from ._parse import (
    DEFINITIONS,
    ParsedText,
    first_line,
    known_text,
    parsed_text,
)
from ._vocab import assignment_targets, attribute_of_name

__all__ = [
    "KEEP",
    "Kind",
    "Plan",
    "Step",
    "attributes_written",
    "method_class",
    "plan",
    "statement_code",
    "unchanged_plan",
    "without_decorators",
]

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
        """``line 12 (X = 2)`` for reports."""
        return self._label

    @functools.cached_property
    def _label(self) -> str:  # (asked at each re-run of a dependent: kept)
        text = self.first_text
        if isinstance(self.node, DEFINITIONS):
            text = f"{'class' if isinstance(self.node, ast.ClassDef) else 'def'} {self.node.name}"
        return f"line {self.line} ({text[:40]})"


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


def plan(old_text: str, new_text: str, *, path: str = "<module>") -> Plan:
    """What must run to bring a module from ``old_text`` to ``new_text``.

    Raises ``SyntaxError`` when ``new_text`` does not parse.

    >>> p = plan("X = 1\\nY = X * 2\\ndef f():\\n    return 1\\n",
    ...          "X = 2\\nY = X * 2\\ndef f():\\n    return 2\\n")
    >>> [step.kind.value for step in p.steps]
    ['run', 'unchanged', 'body']
    """
    old, new = _parsed_pair(old_text, new_text, path)
    flags = new.future_flags
    reason = "the running text does not parse" if old is None else _why_whole_module(old, new)
    if reason is not None or old is None:
        return Plan((), frozenset(), flags, reason)
    pairs = _pair(old, new)
    kept = {id(n) for n in pairs.values()}
    if any(id(node) not in kept and old.names(node).dynamic for node in old.tree.body):
        return Plan((), frozenset(), flags, "a removed statement bound names that cannot be known (import *)")
    moved: dict[int, int] = {}
    steps = [_step(i, node, pairs.get(i), old, new, moved) for i, node in enumerate(new.tree.body)]
    steps = _run_redefined(steps)
    removed = old.bound - new.bound
    attributes = old.attributes_set - new.attributes_set
    return Plan(_mark_late(steps), frozenset(removed), flags, moved_lines=moved, removed_attributes=attributes)


def _parsed_pair(old_text: str, new_text: str, path: str) -> tuple[ParsedText | None, ParsedText]:
    """Both texts parsed, each from the other (the old one None when it does not parse)."""
    old = known_text(old_text, path)
    if old is not None:
        return old, parsed_text(new_text, path, near=old)
    # (the first reload of a module nobody prepared: the new text is parsed whole)
    new = parsed_text(new_text, path)
    try:
        return parsed_text(old_text, path, near=new), new
    except SyntaxError:
        return None, new


def _why_whole_module(old: ParsedText, new: ParsedText) -> str | None:
    """Why the statements of the two texts cannot be paired, if they cannot."""
    return "its __future__ imports changed" if new.future_flags != old.future_flags else None


_UNCHANGED: SizedCache[tuple[str, str], Plan] = SizedCache(16 * MIB, 4096)  # a plan holds its parsed text


def unchanged_plan(text: str, path: str, digest: str, *, keep: bool = True) -> Plan:
    """The plan from a text to itself: only its reads matter (a module whose imports changed).

    Kept per text (``keep``): a module that follows another one's edits pays the parse once.
    Not kept when what is derived from it is kept instead (a plan holds the whole parsed text).
    """
    if not keep:  # nor the parse (the cache of parsed texts is for texts that run)
        return _plan_of_unchanged(ParsedText(text, path))
    key = (path, digest)
    cached = _UNCHANGED.get(key)
    if cached is None:
        cached = _UNCHANGED.put(key, _plan_of_unchanged(parsed_text(text, path)), len(text))
    return cached


def _plan_of_unchanged(new: ParsedText) -> Plan:
    """``plan(text, text)`` without pairing a text with itself: every step is unchanged."""
    flags = new.future_flags
    steps = []
    for node in new.tree.body:
        names = new.names(node)
        steps.append(
            Step(
                node, Kind.UNCHANGED, names.reads, names.binds, names.dynamic,
                mutates=names.mutates, first_text=new.first_text(node),
            )
        )
    return Plan(_mark_late(steps), frozenset(), flags)


def _pair(old: ParsedText, new: ParsedText) -> dict[int, ast.stmt]:
    """new index -> the old statement it continues (same text, same definition name, same meaning)."""
    old_body, new_body = old.tree.body, new.tree.body
    # statements the new text shares with the old one (see ``ParsedText``) pair with themselves;
    # the others are matched by what they say
    head, tail = _shared_ends(old_body, new_body)
    pairs = {i: old_body[i] for i in range(head)}
    pairs.update({len(new_body) - 1 - k: old_body[len(old_body) - 1 - k] for k in range(tail)})
    pairs.update(_paired_in_order(old, new, head, tail))
    pairs.update(_paired_out_of_order(old, new, pairs))
    return pairs


def _shared_ends(old_body: list[ast.stmt], new_body: list[ast.stmt]) -> tuple[int, int]:
    """How many first statements, then how many last ones, are the very same nodes in both."""
    shortest = min(len(old_body), len(new_body))
    head = 0
    while head < shortest and old_body[head] is new_body[head]:
        head += 1
    tail = 0
    while tail < shortest - head and old_body[-1 - tail] is new_body[-1 - tail]:
        tail += 1
    return head, tail


def _paired_in_order(old: ParsedText, new: ParsedText, head: int, tail: int) -> dict[int, ast.stmt]:
    """Between the shared ends: the longest run of statements written the same, in order
    (a definition by its name)."""
    old_middle = old.tree.body[head : len(old.tree.body) - tail]
    new_middle = new.tree.body[head : len(new.tree.body) - tail]
    matcher = difflib.SequenceMatcher(
        None, [_pairing_key(old, n) for n in old_middle], [_pairing_key(new, n) for n in new_middle], autojunk=False
    )
    blocks = matcher.get_matching_blocks()
    return {head + block.b + k: old_middle[block.a + k] for block in blocks for k in range(block.size)}


def _pairing_key(text: ParsedText, node: ast.stmt) -> str:
    if isinstance(node, DEFINITIONS):
        name, occurrence = text.definition_keys[id(node)]
        return f"definition {name} {occurrence}"
    return text.segment(node)


def _paired_out_of_order(old: ParsedText, new: ParsedText, pairs: dict[int, ast.stmt]) -> dict[int, ast.stmt]:
    """The statements left: a definition that moved is still itself (the first ``def f`` of one
    text with the first of the other, and so on: ``@overload`` stubs and their implementation),
    and a statement whose comments or layout alone changed still says the same."""
    old_body = old.tree.body
    old_defs = {old.definition_keys[id(n)]: n for n in old_body if isinstance(n, DEFINITIONS)}
    by_meaning = _unpaired_by_meaning(old_body, pairs)
    found: dict[int, ast.stmt] = {}
    for index, node in enumerate(new.tree.body):
        if index in pairs:
            continue
        if isinstance(node, DEFINITIONS):
            definition = old_defs.get(new.definition_keys[id(node)])
            if definition is not None:
                found[index] = definition
        elif by_meaning:
            same = by_meaning.get(ast.dump(node))
            if same:
                found[index] = same.pop(0)
    return found


def _unpaired_by_meaning(old_body: list[ast.stmt], pairs: dict[int, ast.stmt]) -> dict[str, list[ast.stmt]]:
    """The old statements not paired yet (definitions aside), by what they say."""
    paired = {id(n) for n in pairs.values()}
    by_meaning: dict[str, list[ast.stmt]] = {}
    for node in old_body:
        if id(node) not in paired and not isinstance(node, DEFINITIONS):
            by_meaning.setdefault(ast.dump(node), []).append(node)
    return by_meaning


def _step(
    index: int, node: ast.stmt, old: ast.stmt | None, old_text: ParsedText, new_text: ParsedText, moved: dict[int, int]
) -> Step:
    names = new_text.names(node)
    kind, methods = _kind(index, node, old, old_text, new_text)
    lines_moved = False
    if old is not None:
        if kind is Kind.UNCHANGED and old_text.segment(old) == new_text.segment(node):
            lines_moved = _map_lines(old, node, moved)
        elif kind is Kind.METHODS:
            assert isinstance(old, ast.ClassDef) and isinstance(node, ast.ClassDef)
            lines_moved = _map_unchanged_members(old, node, methods, old_text, new_text, moved)
    return Step(
        node, kind, names.reads, names.binds, names.dynamic,
        mutates=names.mutates, methods=methods, moved=lines_moved, first_text=new_text.first_text(node),
    )


def _map_unchanged_members(
    old: ast.ClassDef,
    new: ast.ClassDef,
    methods: tuple[int, ...],
    old_text: ParsedText,
    new_text: ParsedText,
    moved: dict[int, int],
) -> bool:
    """The lines of a class's members written the same (its changed methods aside) follow them."""
    lines_moved = False
    for position, (a, b) in enumerate(zip(old.body, new.body)):
        if position not in methods and old_text.segment(a) == new_text.segment(b):
            lines_moved |= _map_lines(a, b, moved)
    return lines_moved


def _map_lines(old: ast.stmt, new: ast.stmt, moved: dict[int, int]) -> bool:
    delta = first_line(new) - first_line(old)
    if delta:
        for line in range(first_line(old), (old.end_lineno or old.lineno) + 1):
            moved[line] = line + delta
    return delta != 0


def _kind(
    index: int, node: ast.stmt, old: ast.stmt | None, old_text: ParsedText, new_text: ParsedText
) -> tuple[Kind, tuple[int, ...]]:
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and index > 0:
        return Kind.UNCHANGED, ()  # a bare string or constant does nothing when it runs
    if old is None or type(old) is not type(node):
        return Kind.RUN, ()
    if old is node or old_text.segment(old) == new_text.segment(node):
        return Kind.UNCHANGED, ()
    return _kind_of_rewritten(node, old, old_text, new_text)


def _kind_of_rewritten(
    node: ast.stmt, old: ast.stmt, old_text: ParsedText, new_text: ParsedText
) -> tuple[Kind, tuple[int, ...]]:
    """A statement written otherwise than its old one, of the same type."""
    if isinstance(node, _DEFS):
        # same meaning but other lines still recompiles: the code must report its lines
        return (Kind.BODY, ()) if _same_decorators(old, node) else (Kind.RUN, ())
    if isinstance(node, ast.ClassDef):
        assert isinstance(old, ast.ClassDef)
        methods = _changed_methods(old, node, old_text, new_text)
        return (Kind.RUN, ()) if methods is None else (Kind.METHODS, methods)
    return (Kind.UNCHANGED, ()) if ast.dump(old) == ast.dump(node) else (Kind.RUN, ())


def _same_decorators(old: ast.stmt, new: ast.stmt) -> bool:
    return _dump_all(getattr(old, "decorator_list", [])) == _dump_all(getattr(new, "decorator_list", []))


def _dump_all(nodes: Iterable[ast.AST]) -> list[str]:
    return [ast.dump(n) for n in nodes]


def _changed_methods(
    old: ast.ClassDef, new: ast.ClassDef, old_text: ParsedText, new_text: ParsedText
) -> tuple[int, ...] | None:
    """Positions of the methods whose text changed, when nothing else in the class did."""
    if not _same_class_header(old, new) or len(old.body) != len(new.body):
        return None
    changed = []
    for position, (a, b) in enumerate(zip(old.body, new.body)):
        if old_text.segment(a) == new_text.segment(b):
            continue
        if isinstance(a, _DEFS) and type(a) is type(b):
            if not _same_def_header(a, b):
                return None
            changed.append(position)
        elif ast.dump(a) != ast.dump(b):
            return None
    return tuple(changed)


def _same_class_header(old: ast.ClassDef, new: ast.ClassDef) -> bool:
    """The same bases, keywords and decorators."""
    header = ("bases", "keywords", "decorator_list")
    return all(_dump_all(getattr(old, f)) == _dump_all(getattr(new, f)) for f in header)


def _same_def_header(old: ast.FunctionDef | ast.AsyncFunctionDef, new: ast.stmt) -> bool:
    """The same name and decorators: only the body (or signature) of the function changed."""
    return isinstance(new, _DEFS) and old.name == new.name and _same_decorators(old, new)


def attributes_written(body: list[ast.stmt]) -> frozenset[tuple[str, str]]:
    """``(Point, tag)`` for each ``Point.tag = / += / del`` among these top-level statements."""
    written = (target for node in body for target in assignment_targets(node, unpack=True, deletes=True))
    return frozenset(filter(None, map(attribute_of_name, written)))


# a statement's code, kept while its node lives (as long as a parsed text or a plan holds it:
# those caches are bounded), by file and ``__future__`` flags
_COMPILED: weakref.WeakKeyDictionary[ast.stmt, dict[tuple[str, int], CodeType]] = weakref.WeakKeyDictionary()


def statement_code(nodes: list[ast.stmt], path: str, flags: int) -> CodeType:
    """Compile statements as written: their own file, lines and ``__future__`` flags.

    A single statement's code is kept with its node (a module that follows
    another one's edits re-runs the same statement again and again).
    """
    if len(nodes) == 1:
        codes = _COMPILED.get(nodes[0])
        if codes is not None and (path, flags) in codes:
            return codes[path, flags]
    module = ast.Module(body=nodes, type_ignores=[])
    code: CodeType = compile(module, path, "exec", flags=flags, dont_inherit=True)
    if len(nodes) == 1:
        _COMPILED.setdefault(nodes[0], {})[path, flags] = code
    return code


KEEP = "__hotswap_keep__"  # stands for each decorator of a bare definition: returns what it is given


_BARE: weakref.WeakKeyDictionary[ast.stmt, ast.stmt] = weakref.WeakKeyDictionary()  # as _COMPILED


def without_decorators(node: ast.stmt) -> ast.stmt:
    """The definition alone: running it makes the raw function, registering nothing.

    Each decorator is replaced, in place, by the name ``KEEP`` (bound by the
    caller to a function that returns its argument), so the code starts at the
    first decorator's line, as the real definition's does.
    """
    cached = _BARE.get(node)
    if cached is not None:
        return cached
    bare = copy.copy(node)
    bare.decorator_list = [  # type: ignore[attr-defined]
        ast.copy_location(ast.Name(id=KEEP, ctx=ast.Load()), decorator)
        for decorator in getattr(node, "decorator_list", ())
    ]
    _BARE[node] = bare
    return bare


def method_class(node: ast.ClassDef, positions: tuple[int, ...]) -> ast.ClassDef:
    """A bare class holding just the changed methods, so ``super()`` cells are made as in the real one."""
    bare = copy.copy(node)
    bare.bases, bare.keywords, bare.decorator_list = [], [], []
    bare.body = [without_decorators(node.body[i]) for i in positions]
    return bare


def _run_redefined(steps: list[Step]) -> list[Step]:
    """A definition whose name a later one defines again (an ``@overload`` stub before its
    implementation) is not what the name holds: changed, it runs again rather than upgrading that
    object in place (the later definitions then run too, and the last keeps its object)."""
    last = {step.node.name: i for i, step in enumerate(steps) if isinstance(step.node, DEFINITIONS)}
    return [
        dataclasses.replace(step, kind=Kind.RUN, methods=())
        if step.kind in (Kind.BODY, Kind.METHODS) and isinstance(step.node, DEFINITIONS) and last[step.node.name] != i
        else step
        for i, step in enumerate(steps)
    ]


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
        marked.append(_marked(step, bound_later, made))
        if not isinstance(step.node, (ast.Import, ast.ImportFrom)):
            made |= step.binds
    return tuple(marked)


def _marked(step: Step, bound_later: Counter[str], made: set[str]) -> Step:
    """The step, with its late names (``bound_later``: how many times later statements bind
    each name; ``made``: the names earlier statements bound)."""
    late = frozenset(n for n in step.reads if bound_later[n] > 0 or n in step.binds) | (step.mutates & made)
    again = frozenset(n for n in step.binds if bound_later[n] > 0)
    return dataclasses.replace(step, late=late, bound_later=again) if late or again else step


