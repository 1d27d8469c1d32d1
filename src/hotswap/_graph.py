"""Graph: which watched module took which name from which, and the order to reload in.

Built from the import statements of each module's text, resolved with the
package context, when the module is imported (its import lines only, found by
pattern: a small cost next to compiling it) and again when it is reloaded:
idle cells never pay for it, and a reload never scans other modules.

Namespaces that are not modules (the user's) take part through
``add_namespace_import``, fed by whoever knows what ran there.
"""

from __future__ import annotations

import ast
import dis
import functools
import importlib.util
import re
from collections.abc import Callable, Iterable, Iterator
from itertools import chain, repeat
from types import CodeType
from typing import Any, NamedTuple

__all__ = ["STAR", "Edge", "ImportGraph", "resolve_from"]

STAR = "*"


class Edge(NamedTuple):
    """``importer`` did ``from source import name as alias`` (``name`` may be ``*``). (A named
    tuple, as every record made at load: a dataclass costs ten times as much to define.)"""

    importer: str  # a module name, or a namespace label such as "user namespace"
    source: str
    name: str
    alias: str


class _ImportLines(NamedTuple):
    lines: tuple[str, ...]  # as written
    package: str | None  # where relative imports resolve


class ImportGraph:
    """Who imports what, among watched modules and the user's namespaces."""

    def __init__(self) -> None:
        self._edges: dict[str, tuple[Edge, ...]] = {}  # importer -> its from-imports
        self._depends: dict[str, frozenset[str]] = {}  # module -> modules it imports
        self._importers: dict[str, set[Edge]] = {}  # source -> edges that take from it
        # (source, name or *) -> those edges, in the order they were recorded (reports read it)
        self._by_name: dict[tuple[str, str], dict[Edge, None]] = {}
        self._dependents: dict[str, set[str]] = {}  # module -> who imports it
        self._read: dict[str, _ImportLines] = {}  # module -> the import lines its graph was read from
        self.version = 0  # bumped at every change: what is derived from the graph can be kept until then
        # module -> the version at which its own imports, the imports from it, or the imports
        # from a module it imports from last changed: what is derived from those alone (who
        # imports it, and whether those modules are imported from) can be kept while it is the
        # same (absent: 0)
        self.touched: dict[str, int] = {}

    def __contains__(self, module: str) -> bool:
        return module in self._depends

    def update(self, module: str, tree: ast.Module, package: str | None) -> None:
        """(Re)read one module's imports from its parsed running text."""
        self.forget(module)
        edges: list[Edge] = []
        depends: set[str] = set()
        for node in _module_level(tree.body):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    parts = alias.name.split(".")
                    depends.update(".".join(parts[: i + 1]) for i in range(len(parts)))
            elif isinstance(node, ast.ImportFrom):
                source = resolve_from(node, package)
                if source is None:
                    continue
                depends.add(source)
                for alias in node.names:
                    edges.append(Edge(module, source, alias.name, alias.asname or alias.name))
                    if alias.name != STAR:
                        depends.add(f"{source}.{alias.name}")  # it may be a submodule
        self._set(module, edges, depends)

    def update_from_code(self, module: str, code: CodeType, package: str | None) -> None:
        """(Re)read one module's imports from the code it ran (its text is not known)."""
        self.update(module, ast.Module(body=imports_in_code(code), type_ignores=[]), package)

    def update_from_text(self, module: str, text: str, package: str | None) -> None:
        """(Re)read one module's imports from its text, without parsing the whole module.

        Import lines are found by pattern and parsed alone: cheap for many
        modules. Imports inside functions are counted too, which only adds
        dependencies: re-binding is always checked by identity.
        """
        lines = _ImportLines(tuple(_import_lines(text)), package)
        if self._read.get(module) == lines:
            return  # a reload that changed no import line (most of them)
        statements = [node for line in lines.lines for node in _parsed_import(line)]
        self.update(module, ast.Module(body=statements, type_ignores=[]), package)
        self._read[module] = lines

    @staticmethod
    def sources_in_text(text: str, package: str | None) -> frozenset[str]:
        """The modules a text imports from, without recording it (a version that failed)."""
        sources: set[str] = set()
        for node in (node for line in _import_lines(text) for node in _parsed_import(line)):
            if isinstance(node, ast.Import):
                sources.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                source = resolve_from(node, package)
                if source is not None:
                    sources.add(source)
        return frozenset(sources)

    def add_namespace_import(self, label: str, source: str, name: str, alias: str) -> None:
        """A namespace did ``from source import name as alias``; the latest binding of ``alias`` wins."""
        edges = self._edges.get(label, ())
        edge = Edge(label, source, name, alias)
        if edge in edges and (name == STAR or sum(e.alias == alias for e in edges) == 1):
            return  # a cell that ran again: nothing changes, and what is derived from the graph stays
        kept = [e for e in edges if e.alias != alias or name == STAR]
        if edge not in kept:
            kept.append(edge)
        self._set(label, kept, self._depends.get(label, frozenset()) | {source})

    def edges_of(self, importer: str) -> tuple[Edge, ...]:
        """What ``importer`` took with ``from ... import``."""
        return self._edges.get(importer, ())

    def forget(self, importer: str) -> None:
        self.version += 1
        self.touched[importer] = self.version
        self._read.pop(importer, None)
        for edge in self._edges.pop(importer, ()):
            self._importers.get(edge.source, set()).discard(edge)
            self._by_name.get((edge.source, edge.name), {}).pop(edge, None)
            self._importers_changed(edge.source)
        for source in self._depends.pop(importer, ()):
            self._dependents.get(source, set()).discard(importer)
            self.touched[source] = self.version

    def dependents_of(self, module: str) -> set[str]:
        """Modules and namespaces that import ``module`` or take names from it."""
        return self._dependents.get(module, set())

    def has_importers(self, source: str) -> bool:
        """Does anything take names from ``source`` with ``from source import``?"""
        return bool(self._importers.get(source))

    def importers_of(self, source: str, name: str) -> Iterator[Edge]:
        """Edges that bound ``source.name`` somewhere (by name, or with ``*``)."""
        yield from self._by_name.get((source, name), ())
        if name != STAR and not name.startswith("_"):
            yield from self._by_name.get((source, STAR), ())

    def only_user_source(self, module: str, source: str, is_user: Callable[[str], bool]) -> bool:
        """Of the modules ``module`` imports, is ``source`` the only one ``is_user`` says yes to?"""
        return all(d == source or not is_user(d) for d in self._depends.get(module, ()))

    def has_star_importers(self, source: str) -> bool:
        return bool(self._by_name.get((source, STAR)))

    def star_importers(self, source: str) -> tuple[Edge, ...]:
        """Who did ``from source import *``."""
        return tuple(self._by_name.get((source, STAR), ()))

    def order(self, modules: Iterable[str]) -> list[str]:
        """Dependencies first; a cycle's members together, in the order given."""
        wanted = list(dict.fromkeys(modules))
        position = {name: i for i, name in enumerate(wanted)}
        depends = self._depends
        if position.keys().isdisjoint(chain.from_iterable(map(depends.get, wanted, repeat(())))):
            return wanted  # none of them imports another (dependents of one module, mostly)
        ordered: list[str] = []
        for component in _components(wanted, lambda m: [d for d in self._depends.get(m, ()) if d in position]):
            ordered.extend(sorted(component, key=position.__getitem__))
        return ordered

    def _set(self, importer: str, edges: list[Edge], depends: Iterable[str]) -> None:
        self.forget(importer)
        self._edges[importer] = tuple(edges)
        self._depends[importer] = frozenset(depends)
        for source in self._depends[importer]:
            self._dependents.setdefault(source, set()).add(importer)
            self.touched[source] = self.version
        for edge in edges:
            self._importers.setdefault(edge.source, set()).add(edge)
            self._by_name.setdefault((edge.source, edge.name), {})[edge] = None
            self._importers_changed(edge.source)

    def _importers_changed(self, source: str) -> None:
        """``source`` gained or lost a ``from`` import of it: for it, and for each module it
        imports from (whose leaves it may have been, see ``Reloader._leaf_table``)."""
        self.touched[source] = self.version
        for module in self._depends.get(source, ()):
            self.touched[module] = self.version


_IMPORT_LINE = re.compile(r"^[ \t]*(?:from[ \t]+[\w.]+[ \t]+import\b|import[ \t]+\w)", re.MULTILINE)


def _import_lines(text: str) -> Iterator[str]:
    """The import statements of a text, as written: found line by line (parenthesised and
    continued lines too), without parsing the whole text."""
    for match in _IMPORT_LINE.finditer(text):
        start = match.start()
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        if "(" in text[start:end] and ")" not in text[start:end]:
            close = text.find(")", end)
            end = len(text) if close < 0 else close + 1
        while text[start:end].rstrip().endswith("\\"):
            following = text.find("\n", end + 1)
            end = len(text) if following < 0 else following
        yield text[start:end].strip()


@functools.lru_cache(maxsize=4096)
def _parsed_import(line: str) -> tuple[ast.stmt, ...]:
    """One import line parsed (the same lines recur across modules: parsed once; read-only)."""
    try:
        return tuple(ast.parse(line).body)
    except SyntaxError:  # in a string, or not an import after all
        return ()


def imports_in_code(code: CodeType) -> list[ast.stmt]:
    """The import statements a module's code runs, rebuilt from its bytecode (module level)."""
    reader = _ImportsRead()
    for instruction in dis.get_instructions(code):
        reader.read(instruction.opname, instruction.argval)
    return [s for s in reader.statements if not isinstance(s, ast.ImportFrom) or s.names]


class _ImportsRead:
    """Import statements rebuilt one instruction at a time: ``IMPORT_NAME`` (its level and
    names taken are the two constants loaded before it), then, for a ``from`` import, an
    ``IMPORT_FROM`` and a store for each name it takes."""

    def __init__(self) -> None:
        self.statements: list[ast.stmt] = []
        self._constants: list[object] = [None, None]  # the last two loaded
        self._current: ast.ImportFrom | None = None  # the ``from`` import whose names come
        self._taken: str | None = None  # the name it takes, stored next

    def read(self, opname: str, value: Any) -> None:  # (an instruction's argval)
        if opname == "LOAD_CONST":
            self._constants = [self._constants[-1], value]
        elif opname == "IMPORT_NAME" and isinstance(self._constants[0], int):
            self._import(value, self._constants[0], self._constants[1])
        elif opname == "IMPORT_FROM" and self._current is not None:
            self._taken = value
        elif opname in ("STORE_NAME", "STORE_GLOBAL") and self._current is not None and self._taken is not None:
            taken = self._taken
            self._current.names.append(ast.alias(name=taken, asname=value if value != taken else None))
            self._taken = None

    def _import(self, module: str, level: int, fromlist: object) -> None:
        if fromlist is None:
            self.statements.append(ast.Import(names=[ast.alias(name=module)]))
            self._current = None
            return
        star = fromlist == ("*",)
        self._current = ast.ImportFrom(module=module or None, names=[ast.alias(name="*")] if star else [], level=level)
        self.statements.append(self._current)


def _module_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements that run at import time, in blocks too, but not in functions or classes."""
    for node in body:
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for field in ("body", "orelse", "finalbody"):
            yield from _module_level(getattr(node, field, []))
        for handler in getattr(node, "handlers", []):
            yield from _module_level(handler.body)


def resolve_from(node: ast.ImportFrom, package: str | None) -> str | None:
    """The module a ``from ... import`` takes from, relative imports resolved in ``package``."""
    if not node.level:
        return node.module
    try:
        return importlib.util.resolve_name("." * node.level + (node.module or ""), package)
    except (ImportError, ValueError):
        return None


def _components(nodes: list[str], successors: Callable[[str], list[str]]) -> list[list[str]]:
    """Strongly connected components, each after those it depends on (Tarjan, iterative)."""
    search = _Tarjan(successors)
    for root in nodes:
        if root not in search.index:
            search.visit(root)
    return search.components


class _Tarjan:
    """One depth-first search of Tarjan's algorithm, without recursion (import chains are deep)."""

    def __init__(self, successors: Callable[[str], list[str]]) -> None:
        self.successors = successors
        self.index: dict[str, int] = {}  # node -> when the search reached it
        self.low: dict[str, int] = {}  # node -> the earliest node on the stack it reaches
        self.on_stack: set[str] = set()
        self.stack: list[str] = []
        self.components: list[list[str]] = []

    def visit(self, root: str) -> None:
        work = [(root, self._enter(root))]
        while work:
            node, children = work[-1]
            child = self._next_new(node, children)
            if child is not None:
                work.append((child, self._enter(child)))
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                self.low[parent] = min(self.low[parent], self.low[node])
            if self.low[node] == self.index[node]:
                self.components.append(self._pop_component(node))

    def _enter(self, node: str) -> Iterator[str]:
        self.index[node] = self.low[node] = len(self.index)
        self.stack.append(node)
        self.on_stack.add(node)
        return iter(self.successors(node))

    def _next_new(self, node: str, children: Iterator[str]) -> str | None:
        """The next child not reached yet (those on the stack lower ``node``'s low link)."""
        for child in children:
            if child not in self.index:
                return child
            if child in self.on_stack:
                self.low[node] = min(self.low[node], self.index[child])
        return None

    def _pop_component(self, node: str) -> list[str]:
        component = []
        while True:
            member = self.stack.pop()
            self.on_stack.discard(member)
            component.append(member)
            if member == node:
                return component
