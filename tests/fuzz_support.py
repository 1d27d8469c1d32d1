"""The reload fuzzer: edit sequences of small modules, run in a real IPython shell under
hotswap, checked after every cell against fresh imports in another interpreter.

Shared by ``tests/test_fuzz.py`` (a quick Hypothesis run in CI) and ``bench/fuzz.py``
(a long seeded run). The fingerprint itself lives in ``fuzz_oracle`` (one definition,
run both here and in the oracle worker process).

Pieces:

* **Grammar.** A module *version* is a complete text built from a random set of
  components (``CATALOGUE``): constants, functions, a decorator and what it
  decorates, an ``lru_cache`` function, a closure factory and a closure made at
  import, classes with methods / properties / classmethods / staticmethods /
  class attributes, a subclass using zero-argument ``super()``, a dataclass, an
  enum, statements with side effects, a loop, a ``globals()`` reader,
  ``from __future__ import annotations``, layout-only noise and shuffled
  definitions. Two or three modules: ``a`` does ``from b import K, helper``;
  ``c`` does ``from a import f, Point`` and ``from b import K``.
* **Edits.** A *sequence* is the first version of each module, then steps; a
  step saves new versions of some modules (a small mutation of the last good
  version, a fresh random one, the last good one again, or a broken one: a
  syntax error, or an exception at import after some definitions), in place,
  atomically (rename over), keeping size and mtime, or deletes a file (restored
  at the next step). Generation goes through a ``Chooser``: Hypothesis draws in
  the quick run (so failures shrink), a seeded ``random.Random`` in the long run.
* **Session.** ``Runner.run(sequence)``: ``%load_ext hotswap``, ``%autoreload 2``
  (sometimes ``--full``, sometimes stat checks instead of inotify), import the
  modules and take every public name with ``from m import x as alias``; after
  each step's cell keep instances, bound methods, closures and enum members made
  at that step in the user namespace.
* **Oracle.** After each cell, the worker (``fuzz_oracle``) imports the files
  freshly (each module at its current text, or its last good text if the
  current one fails or is deleted) and returns fingerprints; the session's
  modules must give the same fingerprint; every old object must behave as the
  new one (``check_held``); ``linecache`` must hold the text that runs.

Exclusions (documented limits, README "Known limits" and "What is upgraded"), by
design of the grammar or of the checks:

* ``VALUE = compute()`` keeps its value when ``compute``'s body changes: the
  grammar makes no top-level call of a function whose body can change, except
  a closure factory whose outer body never changes (``ADD3 = make_adder(3)``:
  only the inner function's code varies, which hotswap upgrades in closures) and
  decorators applied at ``def`` time (only their inner ``wrapper`` varies).
* A closure whose captured variables changed keeps its old code (reported):
  once the fresh import shows that a ``<locals>`` function's free variables
  changed, closures of that qualified name taken earlier (held by the user) are
  not compared any more, and neither is a module-level closure of that name for
  the rest of the sequence (``flagged``).
* Side effects of deleted statements are not undone: side effects go to private
  names (``_events``, ``_registry``), which fingerprints leave out.
* Old instances keep their own state: every ``__init__`` variant gives the same
  state, dataclass field defaults are fixed by field name (a field added later
  is then read from its class-level default), and methods read only fields the
  version defines.
* A name removed from a module is removed; a later version that defines it
  again makes a new object (in mode 2 nothing re-binds names taken before; mode 3
  is for that): a user's object taken from a name stops being compared once the
  fresh import shows the name gone (or a class member changing kind or defining
  class), see ``Held``.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import importlib
import io
import json
import linecache
import os
import random
import select
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fuzz_oracle

ORACLE_PATH = str(Path(fuzz_oracle.__file__).resolve())

# -- choices: Hypothesis or a seeded random ------------------------------------------


class Chooser:
    """Where the generator's choices come from. Every choice shrinks towards 0 / False."""

    def integer(self, lo: int, hi: int) -> int:
        raise NotImplementedError

    def flag(self, percent: int) -> bool:
        """True about ``percent`` % of the time."""
        return self.integer(0, 99) >= 100 - percent

    def pick(self, items: Any) -> Any:
        return items[self.integer(0, len(items) - 1)]


class RandomChooser(Chooser):
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def integer(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)


class DrawChooser(Chooser):
    """Choices drawn by Hypothesis (inside ``st.composite``), so failures shrink."""

    def __init__(self, draw: Callable[[Any], Any]) -> None:
        from hypothesis import strategies as st

        self.draw = draw
        self.st = st

    def integer(self, lo: int, hi: int) -> int:
        return int(self.draw(self.st.integers(lo, hi)))


# -- the grammar ----------------------------------------------------------------------


@dataclass(frozen=True)
class Component:
    """One piece of a module version; ``choices`` gives the range of each sub-choice."""

    name: str
    rank: int  # rendering order: 0 docstring, 1 __future__, 2 imports, 3 constants, 4 definitions (may be shuffled), 5+ after
    render: Callable[[tuple[int, ...], dict[str, str]], str]
    choices: tuple[int, ...] = (1,)
    percent: int | None = 50  # None: always present
    requires: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()  # stdlib modules it uses ("functools", ...)


def _fn(head: str, *body: str) -> str:
    return head + "\n" + "\n".join("    " + line for line in body)


def _doc(c: tuple[int, ...], n: dict[str, str]) -> str:
    return f'"""Fuzz module, docstring variant {c[0]}."""'


def _future(c: tuple[int, ...], n: dict[str, str]) -> str:
    return "from __future__ import annotations"


HELPER_BODIES = (
    ("return x + K",),
    ("return x * K",),
    ("return (x, K)",),
    ("if x > 2:", "    raise ValueError(x)", "return x - K"),
)


def _color(c: tuple[int, ...], n: dict[str, str]) -> str:
    mask, scheme, method = c
    values = ((1, 2, 3), ("'r'", "'g'", "'b'"), (10, 20, 30))[scheme]
    lines = ["class Color(enum.Enum):"]
    for bit, name in enumerate(("RED", "GREEN", "BLUE")):
        if (mask + 1) & (1 << bit):
            lines.append(f"    {name} = {values[bit]}")
    if method == 1:
        lines += ["", "    def label(self):", "        return self.name.lower()"]
    elif method == 2:
        lines += ["", "    def label(self):", "        return self.name + str(K)"]
    return "\n".join(lines)


def _point(c: tuple[int, ...], n: dict[str, str]) -> str:
    init, area, size, unit, scale, describe = c
    lines = ["class Point:"]
    lines += (
        ["    def __init__(self):", "        self.v = 2"],
        ["    def __init__(self):", "        self.v = 1 + 1"],
        ["    def __init__(self, v=2):", "        self.v = v"],
        ["    v = 2"],  # no __init__: instances read the class attribute, old ones their own (same value)
    )[init]
    if area:
        lines += ["", "    def area(self):", ("        return self.v * K", "        return self.v + K + 1")[area - 1]]
    if size == 1:
        lines += ["", "    def size(self):", "        return 4"]
    elif size == 2:
        lines += ["", "    @property", "    def size(self):", "        return self.v * 2"]
    elif size == 3:
        lines += ["", "    size = 4"]
    elif size == 4:
        lines += ["", "    @classmethod", "    def size(cls):", "        return cls.__name__"]
    if unit:
        lines += ["", "    @staticmethod", "    def unit():", f"        return {unit}"]
    if scale:
        lines += ["", f"    SCALE = {scale}"]
    if describe == 1:
        lines += ["", "    def describe(self):", '        return f"{type(self).__name__}:{self.area()}"']
    elif describe == 2:
        lines += ["", "    def describe(self):", "        return [self.v, K]"]
    if len(lines) == 1:
        lines.append("    pass")
    return "\n".join(lines)


def _point3(c: tuple[int, ...], n: dict[str, str]) -> str:
    area, kind = c
    lines = ["class Point3(Point):"]
    if area:
        lines += ["    def area(self):", f"        return super().area() + {area}"]
    if kind:
        lines += ["", f"    kind = {'3d' if kind == 1 else 'solid'!r}"]
    if len(lines) == 1:
        lines.append("    pass")
    return "\n".join(lines)


REC_FIELDS = (("x", "int", "1"), ("y", "int", "2"), ("z", "str", "'z'"))  # defaults fixed by name


def _rec(c: tuple[int, ...], n: dict[str, str]) -> str:
    deco, mask, reverse, total = c
    fields = [f for bit, f in enumerate(REC_FIELDS) if (mask + 1) & (1 << bit)]
    if reverse:
        fields.reverse()
    head = ("@dataclasses.dataclass", "@dataclasses.dataclass(order=True)", "@dataclasses.dataclass(frozen=True)")[deco]
    lines = [head, "class Rec:"] + [f"    {name}: {kind} = {default}" for name, kind, default in fields]
    if total == 1:
        lines += ["", "    def total(self):", f"        return ({', '.join('self.' + f[0] for f in fields)},)"]
    elif total == 2:
        lines += ["", "    def total(self):", "        return len(dataclasses.fields(self))"]
    return "\n".join(lines)


def _registry(c: tuple[int, ...], n: dict[str, str]) -> str:
    return "\n".join(
        [
            "_registry = []",
            "",
            "",
            "def register(fn):",
            "    _registry.append(fn.__name__)",
            "    return fn",
            "",
            "",
            "@register",
            "def r(x):",
            f"    return x + {c[0] + 1}",
        ]
    )


def _child(c: tuple[int, ...], n: dict[str, str]) -> str:
    area, extra = c
    lines = ["class Child(Point):"]
    if area:
        lines += ["    def area(self):", ("        return super().area() * 2", "        return [super().area()]")[area - 1]]
    if extra:
        lines += ["", "    def extra(self):", ("        return self.v + K", "        return f(self.v)")[extra - 1]]
    if len(lines) == 1:
        lines.append("    pass")
    return "\n".join(lines)


def _make_adder(c: tuple[int, ...], n: dict[str, str]) -> str:
    inner = ("return x + n", "return x * n", "return x + n + k", "return (x, n, K)")[c[0]]
    return _fn("def make_adder(n, k=1):", "def add(x):", "    " + inner, "return add")


def _tagged(c: tuple[int, ...], n: dict[str, str]) -> str:
    inner = ('return ["t", fn(*args)]', 'return ("t2", fn(*args))')[c[0]]
    return _fn("def tagged(fn):", "@functools.wraps(fn)", "def wrapper(*args):", "    " + inner, "return wrapper")


COMMON = [
    Component("doc", 0, _doc, (3,), 30),
    Component("future", 1, _future, (1,), 8),
]

CATALOGUE: dict[str, list[Component]] = {
    "b": COMMON
    + [
        Component("K", 3, lambda c, n: f"K = {c[0] + 1}", (3,), None),
        Component("K2", 3, lambda c, n: ("K2 = K * 2", "K2 = K + 10")[c[0]], (2,), 40, ("K",)),
        Component("helper", 4, lambda c, n: _fn("def helper(x):", *HELPER_BODIES[c[0]]), (4,), None),
        Component(
            "twice", 4, lambda c, n: _fn("def twice(x):", ("return helper(x) * 2", "return [helper(x), helper(x + 1)]")[c[0]]), (2,)
        ),
        Component(  # renamed between versions: util_a <-> util_b
            "util", 4, lambda c, n: _fn(f"def util_{'ab'[c[0]]}(x):", ("return x - 1", "return -x")[c[1]]), (2, 2), 40
        ),
        Component("Color", 4, _color, (7, 3, 3), 40, needs=("enum",)),
        Component("TABLE", 5, lambda c, n: f"TABLE = {{i: i * K for i in range({c[0] + 2})}}", (2,), 30),
        Component("LOOP", 5, lambda c, n: _fn(f"for _i in range({c[0] + 2}):", "LAST = _i * K"), (2,), 25),
        Component("events", 5, lambda c, n: f"_events = []\n_events.append('loaded {c[0]}')", (2,), 25),
        Component("NAMES", 9, lambda c, n: "NAMES = sorted(n for n in globals() if n.isupper())", (1,), 15),
    ],
    "a": COMMON
    + [
        Component(
            "import_b", 2, lambda c, n: (f"from {n['b']} import K, helper", f"from {n['b']} import helper, K")[c[0]], (2,), None
        ),
        Component("import_bmod", 2, lambda c, n: f"import {n['b']} as bmod", (1,), 30),
        Component("LIMIT", 3, lambda c, n: ("LIMIT = K * 2", "LIMIT = K + 100")[c[0]], (2,), 50),
        Component(
            "f",
            4,
            lambda c, n: (
                _fn("def f(x):", "return helper(x) + 1"),
                _fn("def f(x):", "return [helper(x), K]"),
                _fn("def f(x):", "return helper(x) * 2"),
                _fn("def f(x, y=1):", "return (helper(x), y)"),
            )[c[0]],
            (4,),
            None,
        ),
        Component(
            "g",
            4,
            lambda c, n: (
                _fn("def g(x, y=2):", "return x * y + K"),
                _fn("def g(x, y=3):", "return x * y + K"),
                _fn("def g(x, *, y=2):", "return x - y"),
            )[c[0]],
            (3,),
        ),
        Component("live_k", 4, lambda c, n: _fn("def live_k():", ("return bmod.K", "return [bmod.K]")[c[0]]), (2,), 50, ("import_bmod",)),
        Component("tagged", 4, _tagged, (2,), 40, needs=("functools",)),
        Component(
            "h",
            5,
            lambda c, n: "@tagged\n" + _fn("def h(x):", ("return x + K", "return helper(x)", "return -x")[c[0]]),
            (3,),
            70,
            ("tagged",),
        ),
        Component(
            "cached",
            4,
            lambda c, n: "@functools.lru_cache(maxsize=None)\n" + _fn("def cached(x):", ("return x * 3 + K", "return x * 4")[c[0]]),
            (2,),
            30,
            needs=("functools",),
        ),
        Component("make_adder", 4, _make_adder, (4,), 40),
        Component("ADD3", 5, lambda c, n: "ADD3 = make_adder(3)", (1,), 60, ("make_adder",)),
        Component("Point", 4, _point, (4, 3, 5, 3, 3, 3), None),
        Component("Point3", 5, _point3, (3, 3), 40, ("Point",)),
        Component("tag", 6, lambda c, n: ("Point.tag = 5", "Point.tag = K")[c[0]], (2,), 20, ("Point",)),
        Component("Rec", 4, _rec, (3, 7, 2, 3), 40, needs=("dataclasses",)),
        Component("registry", 4, _registry, (2,), 20),
    ],
    "c": COMMON
    + [
        Component("import_a", 2, lambda c, n: f"from {n['a']} import f, Point", (1,), None),
        Component("import_b", 2, lambda c, n: f"from {n['b']} import K", (1,), None),
        Component("import_amod", 2, lambda c, n: f"import {n['a']} as amod", (1,), 40),
        Component("use", 4, lambda c, n: _fn("def use(x):", ("return f(x)", "return [f(x), K]", "return f(x + K)")[c[0]]), (3,), None),
        Component("live", 4, lambda c, n: _fn("def live():", ("return amod.f(2)", "return amod.Point().v")[c[0]]), (2,), 60, ("import_amod",)),
        Component("Child", 4, _child, (3, 3), 60),
        Component("Y", 3, lambda c, n: ("Y = K + 1", "Y = K * K")[c[0]], (2,), 50),
    ],
}
ROLES = ("b", "a", "c")  # dependency order: a imports b; c imports a and b

# Broken versions: a syntax error, or an exception at import (placed after some definitions).
BREAKS: dict[str, tuple[str, ...]] = {
    "syntax": ("def broken(:\n    pass", "X = (1,", "class Broken\n    pass", "return 5"),
    "raise": ('raise RuntimeError("boom")', "_boom = 1 / 0", "BAD = undefined_name", "Point.nothing.x = 1", "IMPORTED"),
}


@dataclass(frozen=True)
class Version:
    """One complete text of one module: which components, in which order and layout, broken or not."""

    role: str
    parts: tuple[tuple[str, tuple[int, ...]], ...]
    order: int = 0  # 0: catalogue order; else the seed that shuffles the definitions
    layout: int = 0  # comments and blank lines only
    broken: tuple[str, int, int] | None = None  # (kind, which, position)

    def render(self, names: dict[str, str]) -> str:
        present = dict(self.parts)
        comps = [c for c in CATALOGUE[self.role] if c.name in present]
        chunks: list[tuple[int, str]] = [(c.rank, c.render(present[c.name], names)) for c in comps]
        needs = sorted({need for c in comps for need in c.needs})
        if needs:
            chunks.append((2, "\n".join(f"import {need}" for need in needs)))
        chunks.sort(key=lambda chunk: chunk[0])
        if self.order:
            movable = [text for rank, text in chunks if rank == 4]
            random.Random(self.order).shuffle(movable)
            shuffled = iter(movable)
            chunks = [(rank, next(shuffled) if rank == 4 else text) for rank, text in chunks]
        texts = [text for _, text in chunks]
        if self.broken is not None:
            kind, which, position = self.broken
            first = sum(1 for rank, _ in chunks if rank <= 1)  # docstring and __future__ stay first
            where = first + position % (len(texts) - first + 1)
            bad = BREAKS[kind][which % len(BREAKS[kind])]
            if bad == "IMPORTED":
                bad = f"from {names['b']} import NOT_THERE" if self.role != "b" else "import nowhere_to_be_found_xyz"
            texts.insert(where, bad)
        separator = ("\n\n\n", "\n\n\n# -- section --\n", "\n\n\n\n\n", "\n\n\n# -- section --\n\n\n")[self.layout]
        return separator.join(texts) + "\n"

    def describe(self) -> str:
        parts = " ".join(f"{name}{''.join(map(str, c))}" for name, c in self.parts)
        extra = f" order={self.order}" if self.order else ""
        extra += f" layout={self.layout}" if self.layout else ""
        extra += f" BROKEN={self.broken}" if self.broken else ""
        return f"{self.role}[{parts}{extra}]"


def _normalized(role: str, parts: dict[str, tuple[int, ...]]) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """Catalogue order, and no component without the components it requires."""
    out: list[tuple[str, tuple[int, ...]]] = []
    for comp in CATALOGUE[role]:
        if comp.name in parts and all(r in parts for r in comp.requires):
            out.append((comp.name, parts[comp.name]))
        elif comp.name in parts:
            del parts[comp.name]
    return tuple(out)


def random_version(ch: Chooser, role: str) -> Version:
    parts: dict[str, tuple[int, ...]] = {}
    for comp in CATALOGUE[role]:
        if comp.percent is not None and not ch.flag(comp.percent):
            continue
        if all(r in parts for r in comp.requires):
            parts[comp.name] = tuple(ch.integer(0, n - 1) for n in comp.choices)
    order = ch.integer(1, 10_000) if ch.flag(25) else 0
    layout = ch.integer(1, 3) if ch.flag(15) else 0
    return Version(role, _normalized(role, parts), order, layout)


def mutate(ch: Chooser, version: Version) -> Version:
    """One or two small edits: a component added, removed, or one of its choices changed."""
    role = version.role
    parts = dict(version.parts)
    order, layout = version.order, version.layout
    for _ in range(1 + ch.flag(30)):
        what = ch.integer(0, 9)
        if what == 9:  # layout or order only
            if ch.flag(50):
                layout = ch.integer(0, 3)
            else:
                order = ch.integer(0, 10_000)
            continue
        comp = ch.pick(CATALOGUE[role])
        if comp.name in parts:
            if comp.percent is not None and ch.flag(30):
                del parts[comp.name]
            else:
                index = ch.integer(0, len(comp.choices) - 1)
                choice = list(parts[comp.name])
                choice[index] = ch.integer(0, comp.choices[index] - 1)
                parts[comp.name] = tuple(choice)
        elif all(r in parts for r in comp.requires):
            parts[comp.name] = tuple(ch.integer(0, n - 1) for n in comp.choices)
    return Version(role, _normalized(role, parts), order, layout)


def next_version(ch: Chooser, good: Version) -> Version:
    """The next save of a module whose last good version is ``good``."""
    how = ch.integer(0, 99)
    if how < 68:
        return mutate(ch, good)
    if how < 78:
        return random_version(ch, good.role)
    if how < 86:
        return good  # saved again unchanged (or back to the last good text after a broken one)
    base = mutate(ch, good) if ch.flag(50) else good
    kind = "syntax" if ch.flag(40) else "raise"
    return dataclasses.replace(base, broken=(kind, ch.integer(0, 9), ch.integer(0, 30)))


SAVE_MODES = ("write", "atomic", "keep_stat")


@dataclass(frozen=True)
class Action:
    role: str
    kind: str  # "write" or "delete"
    version: Version | None = None
    mode: str = "write"  # write (in place), atomic (rename over), keep_stat (same size and mtime)


@dataclass(frozen=True)
class Step:
    actions: tuple[Action, ...]
    imports: bool  # the step's cell takes every public name with `from m import x as alias`


@dataclass(frozen=True)
class Sequence:
    roles: tuple[str, ...]
    initial: tuple[Version, ...]
    steps: tuple[Step, ...]
    events: bool = True  # False: hotswap finds changes with stat checks (c.Hotswap.events = False)
    full: bool = False  # %autoreload 2 --full
    fixed_size: bool = False  # every text of a module padded to one size, so keep_stat saves can be used

    def __repr__(self) -> str:
        lines = [f"Sequence(roles={self.roles}, events={self.events}, full={self.full}, fixed_size={self.fixed_size})"]
        lines += [f"  initial {v.describe()}" for v in self.initial]
        for i, step in enumerate(self.steps, 1):
            actions = ", ".join(
                f"{a.role} deleted" if a.kind == "delete" else f"{a.version.describe()} ({a.mode})"  # type: ignore[union-attr]
                for a in step.actions
            )
            lines.append(f"  step {i}: {actions or 'no save'}{' + from-imports' if step.imports else ''}")
        return "\n".join(lines)


def generate_sequence(ch: Chooser, max_steps: int = 6) -> Sequence:
    roles = ("b", "a", "c") if ch.flag(35) else ("b", "a")
    events = not ch.flag(20)
    full = ch.flag(10)
    fixed_size = ch.flag(30)
    initial = tuple(random_version(ch, role) for role in roles)
    good = dict(zip(roles, initial))
    deleted: set[str] = set()
    steps = []
    for _ in range(ch.integer(1, max_steps)):
        actions: list[Action] = []
        for role in roles:
            if role in deleted:  # delete, then restore at the next step
                deleted.discard(role)
                version = next_version(ch, good[role])
                actions.append(Action(role, "write", version, "write"))
            elif ch.flag(45):
                if ch.flag(6):
                    deleted.add(role)
                    actions.append(Action(role, "delete"))
                    continue
                version = next_version(ch, good[role])
                mode = ch.pick(SAVE_MODES if fixed_size else SAVE_MODES[:2])
                actions.append(Action(role, "write", version, mode))
            else:
                continue
            if actions[-1].version is not None and actions[-1].version.broken is None:
                good[role] = actions[-1].version
        if not actions and not ch.flag(10):
            role = ch.pick(roles)
            version = next_version(ch, good[role])
            actions.append(Action(role, "write", version, "write"))
            if version.broken is None:
                good[role] = version
        steps.append(Step(tuple(actions), imports=ch.flag(20)))
    return Sequence(roles, initial, tuple(steps), events, full, fixed_size)


def sequences(max_steps: int = 6) -> Any:
    """The Hypothesis strategy of edit sequences."""
    from hypothesis import strategies as st

    @st.composite
    def strategy(draw: Any) -> Sequence:
        return generate_sequence(DrawChooser(draw), max_steps)

    return strategy()


def texts_of(sequence: Sequence, names: dict[str, str]) -> dict[Version, str]:
    """Every version's text; with ``fixed_size``, each module's texts padded to one length."""
    versions: dict[str, list[Version]] = {role: [] for role in sequence.roles}
    for version in sequence.initial:
        versions[version.role].append(version)
    for step in sequence.steps:
        for action in step.actions:
            if action.version is not None:
                versions[action.role].append(action.version)
    texts: dict[Version, str] = {}
    for role, vs in versions.items():
        rendered = {v: v.render(names) for v in vs}
        if sequence.fixed_size:
            size = max(len(t.encode()) for t in rendered.values()) + 4
            rendered = {v: t + "#" + "~" * (size - len(t.encode()) - 2) + "\n" for v, t in rendered.items()}
        texts.update(rendered)
    return texts


# -- the oracle worker ------------------------------------------------------------


class OracleError(Exception):
    pass


class Oracle:
    """A persistent ``python fuzz_oracle.py`` process: module texts in, fingerprints out."""

    def __init__(self, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self.process: subprocess.Popen[str] | None = None

    def _start(self) -> subprocess.Popen[str]:
        if self.process is None or self.process.poll() is not None:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-u", ORACLE_PATH],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                bufsize=1,
            )
        return self.process

    def ask(self, modules: list[tuple[str, str]], effective: dict[str, str | None], current: dict[str, str | None]) -> dict[str, Any]:
        process = self._start()
        assert process.stdin is not None and process.stdout is not None
        request = {"modules": modules, "effective": effective, "current": current}
        process.stdin.write(json.dumps(request) + "\n")
        process.stdin.flush()
        ready, _, _ = select.select([process.stdout], [], [], self.timeout)
        if not ready:
            self.close()
            raise OracleError(f"the oracle worker did not answer in {self.timeout} s")
        line = process.stdout.readline()
        if not line:
            self.close()
            raise OracleError("the oracle worker died")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise OracleError(answer["error"])
        return answer

    def close(self) -> None:
        if self.process is not None:
            with contextlib.suppress(Exception):
                self.process.kill()
                self.process.wait(5)
            for stream in (self.process.stdin, self.process.stdout):
                with contextlib.suppress(Exception):
                    stream.close()  # type: ignore[union-attr]
            self.process = None

    def __enter__(self) -> Oracle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- comparing fingerprints -----------------------------------------------------------


def normal(value: Any) -> Any:
    """What the worker's answer looks like after its JSON trip."""
    return json.loads(json.dumps(value))


def differences(expected: Any, got: Any, path: str = "", limit: int = 6) -> list[str]:
    out: list[str] = []

    def walk(e: Any, g: Any, p: str) -> None:
        if len(out) >= limit or e == g:
            return
        if isinstance(e, dict) and isinstance(g, dict):
            for key in list(dict.fromkeys([*e, *g])):
                if key not in g:
                    out.append(f"{p}.{key}: fresh import has {short(e[key])}, hotswap has nothing")
                elif key not in e:
                    out.append(f"{p}.{key}: fresh import has nothing, hotswap has {short(g[key])}")
                else:
                    walk(e[key], g[key], f"{p}.{key}")
            return
        if isinstance(e, list) and isinstance(g, list) and len(e) == len(g) and e[:1] == g[:1]:
            for i, (x, y) in enumerate(zip(e, g)):
                walk(x, y, f"{p}[{i}]")
            return
        out.append(f"{p}: fresh import {short(e)} != hotswap {short(g)}")

    walk(expected, got, path)
    return out


def short(value: Any, size: int = 160) -> str:
    text = json.dumps(value)
    return text if len(text) <= size else text[: size - 3] + "..."


def closure_qualnames(value: Any, found: dict[str, Any]) -> None:
    """Free variables of every ``<locals>`` function in a fingerprint, by qualified name."""
    if isinstance(value, list):
        if len(value) == 5 and value[0] == "fn" and isinstance(value[1], str) and "<locals>" in value[1]:
            found.setdefault(value[1], value[2])
        for item in value:
            closure_qualnames(item, found)
    elif isinstance(value, dict):
        for item in value.values():
            closure_qualnames(item, found)


def is_closure_print(value: Any) -> str | None:
    if isinstance(value, list) and len(value) == 5 and value[0] == "fn" and "<locals>" in str(value[1]):
        return str(value[1])
    return None


# -- what the user holds -----------------------------------------------------------------


@dataclass
class Held:
    """An object the user took at some step; compared with its fresh counterpart while ``valid``."""

    kind: str  # instance, method, closure, import, member
    role: str
    name: str  # module-level name (class, function, enum, value)
    member: str | None  # method or enum member name
    alias: str  # where it sits in the user namespace
    step: int
    origin: Any = None  # kind and defining class of a method; free variables of a closure
    valid: bool = True
    why: str = ""


# -- the runner -------------------------------------------------------------------------------


@dataclass
class Divergence:
    step: int
    problems: list[str]
    said: str  # what hotswap printed in that step's cell

    def __str__(self) -> str:
        text = f"step {self.step}: " + "\n  ".join(self.problems)
        if self.said.strip():
            text += "\n  hotswap said:\n    " + self.said.strip().replace("\n", "\n    ")
        return text


@dataclass
class RunResult:
    sequence: Sequence
    steps: int = 0
    divergences: list[Divergence] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)
    texts: dict[str, list[str]] = field(default_factory=dict)  # module -> texts saved, in order
    excluded: dict[str, int] = field(default_factory=dict)  # why -> how many held objects stopped being compared

    @property
    def ok(self) -> bool:
        return not self.divergences and not self.crashes

    def report(self) -> str:
        lines = [repr(self.sequence)]
        lines += [f"CRASH: {c}" for c in self.crashes]
        lines += [f"DIVERGENCE at {d}" for d in self.divergences]
        return "\n".join(lines)


class Runner:
    """Runs sequences in a real IPython shell with hotswap, one after another.

    ``root`` must be on ``sys.path``; module names start with ``prefix``.
    """

    def __init__(self, shell: Any, root: Path, oracle: Oracle, prefix: str | None = None) -> None:
        self.shell = shell
        self.root = Path(root)
        self.oracle = oracle
        self.prefix = prefix or f"fz_{uuid.uuid4().hex[:8]}"
        self.count = 0

    # -- one sequence --

    def run(self, sequence: Sequence) -> RunResult:
        self.count += 1
        base = f"{self.prefix}_{self.count}"
        names = {role: f"{base}_{role}" for role in sequence.roles}
        paths = {role: self.root / f"{names[role]}.py" for role in sequence.roles}
        modules = [(names[r], str(paths[r])) for r in sequence.roles]
        texts = texts_of(sequence, names)
        result = RunResult(sequence, texts={names[r]: [] for r in sequence.roles})
        state = _State(names, paths, modules)
        for version in sequence.initial:
            self._save(state, version.role, texts[version], "write", result)
        importlib.invalidate_caches()
        config = self.shell.config
        had_events = "Hotswap" in config and "events" in config.Hotswap
        previous_events = config.Hotswap.events if had_events else None
        config.Hotswap.events = sequence.events
        self.shell.reset(new_session=False)
        try:
            self._cell(state, "%load_ext hotswap", result)
            state.session = _hotswap_session(self.shell)
            self._cell(state, "%autoreload 2" + (" --full" if sequence.full else ""), result)
            imports = "\n".join(f"import {names[r]} as mod_{r}" for r in sequence.roles)
            said = self._cell(state, imports, result)
            if result.crashes:
                return result
            if not self._check(state, 0, said, result):
                return result
            self._import_names(state, 0, result)
            self._hold(state, 0)
            for number, step in enumerate(sequence.steps, 1):
                for action in step.actions:
                    if action.kind == "delete":
                        paths[action.role].unlink()
                        state.current[names[action.role]] = None
                    else:
                        assert action.version is not None
                        self._save(state, action.role, texts[action.version], action.mode, result)
                said = self._cell(state, "pass", result)
                result.steps = number
                if result.crashes or not self._check(state, number, said, result):
                    return result
                if step.imports:
                    self._import_names(state, number, result)
                self._hold(state, number)
                if result.crashes:
                    return result
            return result
        finally:
            for held in state.held:
                if not held.valid:
                    result.excluded[held.why] = result.excluded.get(held.why, 0) + 1
            self._teardown(state, result)
            if had_events:
                config.Hotswap.events = previous_events
            else:
                del config.Hotswap["events"]

    def _teardown(self, state: _State, result: RunResult) -> None:
        from hotswap import _ipython

        session = _ipython.session_of(self.shell)
        if session is not None:
            with _quiet():
                self.shell.run_line_magic("unload_ext", "hotswap")
        self.shell.extension_manager.loaded.discard("hotswap")
        self.shell.reset(new_session=False)
        for name, _ in state.modules:
            sys.modules.pop(name, None)
        for path in state.paths.values():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            with contextlib.suppress(FileNotFoundError):
                path.with_name(path.name + ".swp").unlink()
            linecache.cache.pop(str(path), None)
        importlib.invalidate_caches()

    # -- files --

    def _save(self, state: _State, role: str, text: str, mode: str, result: RunResult) -> None:
        path = state.paths[role]
        data = text.encode()
        if mode == "keep_stat" and path.exists() and path.stat().st_size == len(data):
            before = path.stat()
            path.write_bytes(data)
            os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        elif mode == "atomic":
            temporary = path.with_name(path.name + ".swp")
            temporary.write_bytes(data)
            os.replace(temporary, path)
        else:
            path.write_bytes(data)
        state.current[state.names[role]] = text
        result.texts[state.names[role]].append(text)

    # -- cells --

    def _cell(self, state: _State, source: str, result: RunResult) -> str:
        """Run one cell; hotswap's messages are returned; a failed cell or an internal error is a crash."""
        errors_before = len(state.session.internal_errors) if state.session else 0
        with _quiet() as said:
            outcome = self.shell.run_cell(source, store_history=False, silent=False)
        text = said.getvalue()
        error = outcome.error_before_exec or outcome.error_in_exec
        if error is not None:
            result.crashes.append(f"the cell {source!r} failed: {type(error).__name__}: {error}\n{text}")
        if state.session is not None and len(state.session.internal_errors) > errors_before:
            errors = state.session.internal_errors[errors_before:]
            result.crashes.append(f"hotswap internal error in cell {source!r}: {errors!r}\n{text}")
        elif "inside hotswap" in text or "internal error" in text or "an error inside hotswap" in text:
            result.crashes.append(f"hotswap failed inside itself in cell {source!r}:\n{text}")
        if builtins.__build_class__ is not _BUILD_CLASS:
            result.crashes.append("builtins.__build_class__ was left patched")
            builtins.__build_class__ = _BUILD_CLASS
        return text

    def _import_names(self, state: _State, step: int, result: RunResult) -> None:
        """``from m import x as i<step>_<role>_x`` for every public name of every module."""
        lines = []
        for role, name in state.names.items():
            module = sys.modules.get(name)
            expected = state.prints.get(name) or {}
            taken = [n for n, p in expected.items() if p[0] not in ("module", "foreign class") and hasattr(module, n)]
            if not taken:
                continue
            aliases = []
            for n in taken:
                alias = f"i{step}_{role}_{n}"
                aliases.append(f"{n} as {alias}")
                origin = is_closure_print(expected[n])
                held = Held("import", role, n, None, alias, step, origin and (origin, expected[n][2]))
                state.held.append(held)
            lines.append(f"from {name} import {', '.join(aliases)}")
        if lines:
            self._cell(state, "\n".join(lines), result)

    def _hold(self, state: _State, step: int) -> None:
        """Keep, in the user namespace, instances, bound methods, closures and enum members made now."""
        ns = self.shell.user_ns
        for role, name in state.names.items():
            module = sys.modules.get(name)
            expected = state.prints.get(name) or {}
            for n, value in expected.items():
                if module is None or not hasattr(module, n):
                    continue
                obj = getattr(module, n)
                if value[0] == "class":
                    info = value[2]
                    if "enum" in info:
                        for member, *_ in info["enum"]:
                            if hasattr(obj, member):
                                alias = f"h{step}_{role}_{n}_{member}"
                                ns[alias] = getattr(obj, member)
                                state.held.append(Held("member", role, n, member, alias, step))
                        continue
                    if not isinstance(info.get("instance"), dict):
                        continue
                    try:
                        instance = obj()
                    except Exception:  # noqa: BLE001 - the comparison says it already
                        continue
                    alias = f"h{step}_{role}_{n}"
                    ns[alias] = instance
                    state.held.append(Held("instance", role, n, None, alias, step))
                    for member, (kind, owner, *_) in info["members"].items():
                        if kind == "function":
                            try:
                                ns[f"{alias}_{member}"] = getattr(instance, member)
                            except Exception:  # noqa: BLE001
                                continue
                            state.held.append(Held("method", role, n, member, f"{alias}_{member}", step, (kind, owner)))
                elif value[0] == "fn" and n.startswith("make_") and value[4]:
                    result = value[4].get(fuzz_oracle.SAMPLE_KEYS[1][0])
                    qualname = is_closure_print(result)
                    if qualname is None:
                        continue
                    alias = f"h{step}_{role}_{n}_1"
                    try:
                        ns[alias] = obj(*fuzz_oracle.SAMPLES[1][0])
                    except Exception:  # noqa: BLE001
                        continue
                    state.held.append(Held("closure", role, n, None, alias, step, (qualname, result[2])))

    # -- the oracle --

    def _check(self, state: _State, step: int, said: str, result: RunResult) -> bool:
        try:
            answer = self.oracle.ask(state.modules, state.effective, state.current)
        except OracleError as error:
            result.crashes.append(f"step {step}: oracle: {error}")
            return False
        state.effective = answer["effective"]
        state.prints = answer["prints"]
        for name, fingerprint in state.prints.items():
            if fingerprint is not None:
                closure_qualnames(fingerprint, state.freevars_now)
        for qualname, freevars in state.freevars_now.items():
            if state.freevars_first.setdefault(qualname, freevars) != freevars:
                state.flagged.add(qualname)
        state.freevars_now = {}
        problems: list[str] = []
        for name, _ in state.modules:
            expected = state.prints[name]
            module = sys.modules.get(name)
            if expected is None:
                # The fresh import fails even with the last good text of this module: its
                # dependencies no longer give what it imports. (Not generated by the grammar.)
                problems.append(f"{name}: a fresh import fails ({answer['status'][name]}); hotswap kept it")
                continue
            if module is None:
                problems.append(f"{name}: missing from sys.modules")
                continue
            got = normal(fuzz_oracle.module_print(module, state.owned))
            for n in list(expected):
                qualname = is_closure_print(expected[n])
                if qualname in state.flagged:  # documented: captured variables changed
                    expected[n] = got[n] = ["excluded", "captured variables changed"]
            problems += differences(expected, got, name)
            problems += self._check_linecache(state, name)
        problems += self._check_held(state, step)
        if problems:
            result.divergences.append(Divergence(step, problems, said))
            return False
        return True

    def _check_linecache(self, state: _State, name: str) -> list[str]:
        text = state.effective.get(name)
        path = dict(state.modules)[name]
        if text is None:
            return []
        expected = text if text.endswith("\n") else text + "\n"
        got = "".join(linecache.getlines(path))
        if got != expected:
            return [f"{name}: linecache does not hold the text that runs"]
        return []

    def _check_held(self, state: _State, step: int) -> list[str]:
        ns = self.shell.user_ns
        problems: list[str] = []
        for held in state.held:
            if not held.valid:
                continue
            name = state.names[held.role]
            expected_module = state.prints.get(name) or {}
            module = sys.modules.get(name)
            expected = expected_module.get(held.name)
            why = _still_comparable(held, expected, state.flagged)
            if why:
                held.valid, held.why = False, why
                continue
            assert expected is not None
            obj = ns.get(held.alias, _ABSENT)
            where = f"{held.alias} (taken at step {held.step})"
            if obj is _ABSENT:
                problems.append(f"{where}: gone from the user namespace")
                continue
            current = getattr(module, held.name, _ABSENT)
            if held.kind == "import":
                got = normal(fuzz_oracle.value_print(obj, state.owned))
                problems += differences(expected, got, where)
                if (callable(obj) or isinstance(obj, type)) and obj is not current:
                    problems.append(f"{where}: is not {name}.{held.name} any more")
            elif held.kind == "instance":
                info = expected[2]
                if type(obj) is not current:
                    problems.append(f"{where}: its class is not {name}.{held.name} any more")
                fresh = info["instance"]
                if isinstance(fresh, dict):
                    got = normal(fuzz_oracle.instance_print(obj, [k for k in fresh if k != "<repr>"], state.owned))
                    problems += differences(fresh, got, where)
                    if "<repr>" in fresh:
                        try:
                            equal = obj == current()
                        except Exception as error:  # noqa: BLE001
                            equal = f"{type(error).__name__}"
                        if equal is not True:
                            problems.append(f"{where}: == a fresh instance gives {equal!r}")
            elif held.kind == "method":
                fresh = expected[2]["instance"]
                if isinstance(fresh, dict) and held.member in fresh:
                    got = normal(fuzz_oracle.function_print(obj, state.owned))
                    problems += differences(fresh[held.member], got, where)
            elif held.kind == "closure":
                fresh = expected[4].get(fuzz_oracle.SAMPLE_KEYS[1][0]) if expected[4] else None
                got = normal(fuzz_oracle.canon(obj, state.owned, 1))
                problems += differences(fresh, got, where)
            elif held.kind == "member":
                entry = next(e for e in expected[2]["enum"] if e[0] == held.member)
                kept = getattr(current, held.member, _ABSENT)
                if obj is not kept:
                    problems.append(f"{where}: is not {name}.{held.name}.{held.member} any more")
                got = normal([held.member, fuzz_oracle.canon(obj.value, state.owned), fuzz_oracle.instance_print(obj, list(entry[2]), state.owned)])
                problems += differences(entry, got, where)
        return problems


_ABSENT = object()
_BUILD_CLASS = builtins.__build_class__


def _still_comparable(held: Held, expected: Any, flagged: set[str]) -> str | None:
    """Why a held object can no longer be compared (a documented limit), or None."""
    if expected is None:
        return "its name was removed from the module"
    if held.kind == "import":
        if held.origin and held.origin[0] in flagged:
            return "closure: captured variables changed"
        return None
    if held.kind in ("instance", "method", "member"):
        if expected[0] != "class":
            return "its class was removed from the module"
        info = expected[2]
        if held.kind == "member":
            if "enum" not in info or held.member not in [e[0] for e in info["enum"]]:
                return "the enum member was removed"
            return None
        if "enum" in info:
            return "its class became an enum"
        if held.kind == "method":
            entry = info["members"].get(held.member)
            if entry is None:
                return "the method was removed"
            if tuple(entry[:2]) != tuple(held.origin):
                return "the method changed kind or defining class"
        return None
    if held.kind == "closure":
        if expected[0] != "fn":
            return "its factory was removed"
        if held.origin[0] in flagged:
            return "closure: captured variables changed"
        return None
    return None


@dataclass
class _State:
    names: dict[str, str]  # role -> module name
    paths: dict[str, Path]
    modules: list[tuple[str, str]]  # (name, path) in dependency order
    current: dict[str, str | None] = field(default_factory=dict)  # text on disk (None: deleted)
    effective: dict[str, str | None] = field(default_factory=dict)  # last good text (the oracle's)
    prints: dict[str, Any] = field(default_factory=dict)  # the oracle's fingerprints of this step
    held: list[Held] = field(default_factory=list)
    freevars_first: dict[str, Any] = field(default_factory=dict)
    freevars_now: dict[str, Any] = field(default_factory=dict)
    flagged: set[str] = field(default_factory=set)  # <locals> functions whose captured variables changed
    session: Any = None

    @property
    def owned(self) -> set[str]:
        return set(self.names.values())


def _hotswap_session(shell: Any) -> Any:
    from hotswap import _ipython

    return _ipython.session_of(shell)


@contextlib.contextmanager
def _quiet() -> Any:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        yield buffer


def make_shell() -> Any:
    """A real InteractiveShell for a standalone run (history off disk)."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.enabled = False
    return InteractiveShell.instance(config=config)


# -- threads -----------------------------------------------------------------------------------

THREAD_FUNCTIONS = 10


def thread_version_a(b: str, number: int, whole: bool) -> str:
    """Version ``number`` of the module the thread calls: every value it returns says ``number``.

    ``f()`` calls ``p0() ... p9()``, ``C().m()`` and reads ``TAG`` in file order, the order in
    which a reload applies them; ``whole`` adds ``from __future__ import annotations``, whose
    toggling makes hotswap re-run the whole module.
    """
    lines = ['"""Called from a thread while it is edited."""']
    if whole:
        lines.append("from __future__ import annotations")
    lines += [f"from {b} import K", "", "", "class Oops(Exception):", "    pass", ""]
    for i in range(THREAD_FUNCTIONS):
        lines += ["", f"def p{i}():", f"    return {number}", ""]
    lines += ["", "class C:", "    def m(self):", f"        return {number}", ""]
    calls = ", ".join(f"p{i}()" for i in range(THREAD_FUNCTIONS))
    body = f"raise Oops({number})" if number % 10 == 5 else f"return ({calls}, C().m(), TAG, K)"
    lines += ["", "def f():", f"    {body}", "", f"TAG = {number}", ""]
    return "\n".join(lines)


def thread_version_b(number: int) -> str:
    return f"K = {number}\n"


@dataclass
class ThreadWatch:
    """Calls ``call()`` in a loop in a thread; records what it saw with the edits settled around it."""

    call: Callable[[], Any]
    own_errors: tuple[type[BaseException], ...]
    settled: int = 0  # edits whose cell has finished
    calls: int = 0
    bad: list[str] = field(default_factory=list)
    observations: list[tuple[int, int, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            start = self.settled
            try:
                value = self.call()
            except self.own_errors as error:
                value = ("raised", type(error).__name__, error.args)
            except BaseException as error:  # noqa: BLE001 - what the check is about
                value = ("CRASH", f"{type(error).__name__}: {error}")
            self.calls += 1
            if len(self.observations) < 200_000:
                self.observations.append((start, self.settled, value))

    def __enter__(self) -> ThreadWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def check_thread_observations(
    observations: Iterable[tuple[int, int, Any]], valid: Callable[[Any, int, int], str | None]
) -> list[str]:
    """Problems: each observation must be a whole value of a version between those settled around it."""
    problems: list[str] = []
    for start, end, value in observations:
        why = valid(value, start, end)
        if why and len(problems) < 10:
            problems.append(f"between edits {start} and {end + 1}: {why}")
    return problems


def thread_value_problem(value: Any, start: int, end: int, k_of: Callable[[int], int]) -> str | None:
    """Is ``value`` what ``f()`` of one version in ``start .. end + 1`` returns (K from b's version then)?"""
    allowed = range(start, end + 2)
    if isinstance(value, tuple) and value[:1] == ("CRASH",):
        return f"f() raised {value[1]}"
    if isinstance(value, tuple) and value[:1] == ("raised",):
        number = value[2][0] if value[2] else None
        return None if number in allowed and number % 10 == 5 else f"Oops({number}) from no version in {list(allowed)}"
    *versions, k = value  # p0() ... p9(), C().m(), TAG, in the order f() reads them
    if any(not isinstance(v, int) or v not in allowed for v in versions):
        return f"f() = {value}: a value from no version in {list(allowed)}"
    if any(later < earlier for earlier, later in zip(versions, versions[1:])):
        # An atomic reload between two reads gives old values then new ones, never new then old.
        return f"f() = {value}: read a newer version, then an older one (a half-applied module)"
    if k not in {k_of(n) for n in allowed}:
        return f"K = {k} belongs to no version in {list(allowed)}"
    return None
