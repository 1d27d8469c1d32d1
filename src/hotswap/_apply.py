"""Apply: run what a module's new version needs, inside one transaction.

By default only what the diff (``_diff``) says changed runs again, statement
by statement, in the module's own namespace, and a changed function body is
upgraded without running anything else, so module state survives. Where the
diff cannot vouch for a partial update, the whole module re-runs, as a fresh
import would. A dependent whose text did not change first tries the short way
(``_follow``). Either way it runs in a transaction (``run_in_transaction``):
committed if all of it succeeded, restored exactly otherwise.
"""

from __future__ import annotations

import ast
import sys
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple

from . import _diff, _parse
from ._aftercare import (
    clear_caches_of,
    closures_follow,
    follow_moved_lines,
    functions_bound_to,
    replace_stand_ins,
)
from ._closures import cannot_follow, makers_of_what_cannot_follow
from ._diff import Kind, Plan, Step
from ._follow import all_changed, came_and_went, follow_unchanged, steps_to_visit, used_beyond_import
from ._graph import resolve_from
from ._libraries import rebuild_derived
from ._outcomes import Failure, Reloaded, syntax_failure
from ._scan import NAMESPACE, attributes_read
from ._source import SourceVersion
from ._tombstones import Graves, graves_of
from ._transaction import InternalError, NeedsWholeModule, Run, run_in_transaction
from ._upgrade import UpgradeError, functions_named, is_code, owned_by, try_upgrade, upgrade_code
from ._vocab import SET_BY_IMPORT, UNBOUND, exported, is_dunder

__all__ = ["reload_module"]


def reload_module(
    module: types.ModuleType,
    version: SourceVersion,
    running: SourceVersion | None = None,
    *,
    whole: str | None = None,
    rebind: Mapping[str, tuple[object, object]] | None = None,
    roots: Callable[[], Iterable[dict[str, Any]]] | None = None,
    after: tuple[str, ...] = (),
) -> Reloaded | Failure:
    """Bring ``module`` from the ``running`` text to ``version``; on failure leave it as it was.

    ``whole`` forces a whole-module re-run and says why (e.g. ``--full``).
    ``rebind`` names values this module took from modules that changed
    (alias -> (old, new)): each alias still bound to the old object is re-bound,
    and what reads it at import time runs again. ``UNBOUND`` as old: the alias
    was not bound (``from m import *`` gains a name); as new: it goes, and
    what bound it before runs again (a default set before ``from m import *``). ``roots`` gives the other
    namespaces where closures made by this module's old code may be kept.
    ``after`` names the modules it imports from that changed, for the report.
    """
    job = _Reload(module, version, running, rebind or {}, roots, after)
    if not whole and running is not None and running.digest == version.digest:
        return _follow_imports(job)
    if whole or running is None:
        return _run_whole_module(job, whole or "no earlier text to compare with")
    try:
        plan = _changed_plan(running, version)
    except SyntaxError as error:
        return syntax_failure(module.__name__, version.path, error)
    if plan.full_reason is None:
        return _apply_or_run_whole(job, plan)
    return _run_whole_module(job, plan.full_reason)


class _Reload(NamedTuple):
    """One call of ``reload_module``: what each way of reloading needs."""

    module: types.ModuleType
    version: SourceVersion
    running: SourceVersion | None
    rebind: Mapping[str, tuple[object, object]]
    roots: Callable[[], Iterable[dict[str, Any]]] | None
    after: tuple[str, ...]

    def transact(self, body: Callable[[Run], Reloaded]) -> Reloaded | Failure:
        return run_in_transaction(self.module, self.version, body, self.roots, self.after, self.running)

    def follow_only(self) -> Reloaded | Failure:
        """Re-bind what it took from the modules that changed; run nothing."""
        return self.transact(lambda run: _follow_only(run, self.version.path, self.rebind))


def _follow_imports(job: _Reload) -> Reloaded | Failure:
    """The text did not change, only what it imports: re-bind, re-run what reads those names."""
    version, rebind = job.version, job.rebind
    unbinds = any(new is UNBOUND for _, new in rebind.values())  # what bound them before may run
    if not unbinds and not any(used_beyond_import(version.text, a) for a in rebind):
        return job.follow_only()  # nothing but the import names them
    fast = follow_unchanged(job.module, version, rebind, job.after)
    if fast is not None:
        return fast
    try:
        plan = _diff.unchanged_plan(version.text, version.path, version.digest)
    except SyntaxError:
        return job.follow_only()  # it follows what it imports, though its text cannot be read
    if plan.full_reason is not None:
        return job.follow_only()  # the text cannot be re-run in part
    return _apply_or_run_whole(job, plan)


def _changed_plan(running: SourceVersion, version: SourceVersion) -> Plan:
    plan = _diff.plan(running.text, version.text, path=version.path)
    _compile_changed(plan, version.path)
    return plan


def _apply_or_run_whole(job: _Reload, plan: Plan) -> Reloaded | Failure:
    """Apply the plan; where it cannot vouch for a partial update, re-run the whole module."""
    try:
        return job.transact(lambda run: _apply_plan(run, plan, job.version.path, job.rebind))
    except NeedsWholeModule as why:
        return _run_whole_module(job, str(why))


def _run_whole_module(job: _Reload, reason: str) -> Reloaded | Failure:
    version = job.version
    try:
        code = version.compile()
    except SyntaxError as error:
        return syntax_failure(job.module.__name__, version.path, error)
    return job.transact(lambda run: _run_whole(run, code, version.path, reason, version.text))


def _compile_changed(plan: Plan, path: str) -> None:
    """Compile every statement that will run again before any runs: an error the parser lets
    through (``return`` outside a function) fails the reload before it began. (These codes are
    kept for the run; a changed body that fails to compile is an upgrade the undo log reverts.)"""
    if plan.full_reason is None:
        for step in plan.steps:
            if step.kind is Kind.RUN:
                _diff.statement_code([step.node], path, plan.future_flags)


def _keep_attributes_written(run: Run, nodes: list[ast.stmt], namespace: Mapping[str, Any]) -> None:
    """``Point.tag = 5`` is about to run on an object the module had: undone if the reload fails."""
    for owner, attribute in _diff.attributes_written(nodes):
        obj = namespace.get(owner, UNBOUND)
        if obj is not UNBOUND and not isinstance(obj, types.ModuleType):
            run.txn.keep_attribute(obj, attribute)


def _run_whole(run: Run, code: types.CodeType, path: str, reason: str, text: str) -> Reloaded:
    run.whole = True
    try:
        _keep_attributes_written(run, _parse.parse(text, path).body, run.snapshot)
    except SyntaxError:
        pass  # it compiled: only a text that does not parse as given (a null byte) lands here
    _reset_namespace(run.namespace, run.snapshot)
    exec(code, run.namespace)
    try:
        for name, new in list(run.namespace.items()):
            old = run.snapshot.get(name, UNBOUND)
            if old is not UNBOUND and name not in SET_BY_IMPORT:
                _keep_identity(run, name, old, new)
            elif old is UNBOUND and not is_dunder(name):
                _restore_buried(run, name, new)
        _keep_submodules(run)
    except Exception as error:
        raise InternalError() from error
    return _outcome(run, path, whole_module=reason)


def _follow(run: Run, rebind: Mapping[str, tuple[object, object]]) -> set[str]:
    """Re-bind names taken from changed modules, where they still hold the old object (the same
    object: a maker whose products cannot follow in place, ``Reloaded.remade``: only re-run)."""
    namespace = run.namespace
    for alias, (old, new) in rebind.items():
        if namespace.get(alias, UNBOUND) is not old:
            continue
        if new is UNBOUND:
            del namespace[alias]
            run.unbound.append(alias)
        elif new is not old:
            namespace[alias] = new
        run.followed.append(alias)
    return set(run.followed)


def _follow_only(run: Run, path: str, rebind: Mapping[str, tuple[object, object]]) -> Reloaded:
    _follow(run, rebind)
    return _outcome(run, path)


def _apply_plan(
    run: Run, plan: Plan, path: str, rebind: Mapping[str, tuple[object, object]]
) -> Reloaded:
    """Run what changed, and what reads a name whose value changed, in file order."""
    moved = [n for s in plan.steps if s.moved for n in s.binds]
    kept_code = functions_bound_to(run.module, path, moved) if moved else {}
    followed = _follow(run, rebind)  # statements reading these re-run; imports binding them need not
    dirty = set(run.unbound) | _remove_names_gone(run, plan)  # gone: what bound them before runs again
    classes_to_rerun = _remove_attributes_no_longer_set(run, plan)
    for step in steps_to_visit(plan, followed):
        touched = _touched(step, dirty, followed, classes_to_rerun) or _derived_from_replaced(run, step)
        dirty |= _visit(run, step, path, plan, touched, dirty)
    follow_moved_lines(kept_code, plan.moved_lines, run.txn)
    if not _starts_with_docstring(plan):
        run.namespace["__doc__"] = None
    return _outcome(run, path)


def _remove_names_gone(run: Run, plan: Plan) -> set[str]:
    """The names the new text no longer binds go (submodules aside); those it removed."""
    namespace, gone = run.namespace, set()
    for name in plan.removed:
        if name in namespace and not _is_submodule(run.module, name, namespace[name]):
            star = _star_imported(run.module, plan, name)
            if star is UNBOUND:
                del namespace[name]
            else:  # the statement that shadowed it is gone: ``from m import *`` gives it again
                namespace[name] = star
            gone.add(name)
    return gone


def _touched(step: Step, dirty: set[str], followed: set[str], classes_to_rerun: set[str]) -> bool:
    """Must the step run again, whatever the diff says of its text: it reads a name whose value
    changed, binds one a statement run again changed, or gives a class back an attribute."""
    if step.reads & (dirty | followed) or step.binds & dirty:
        return True
    if isinstance(step.node, ast.ClassDef) and step.node.name in classes_to_rerun:
        return True
    return NAMESPACE in step.reads and bool(dirty or followed)


def _derived_from_replaced(run: Run, step: Step) -> bool:
    """Must the step run again because what it binds was made from objects that did not follow
    in place: it reads an attribute a kept class now holds another object for (``foo = Foo.foo``
    after ``foo`` stopped being a classmethod), or a name it binds holds a closure whose new code
    captures other variables (a decorator's wrapper): a fresh import would make it anew."""
    if run.replaced and step.reads & {owner for owner, _ in run.replaced} and attributes_read(step.node) & run.replaced:
        return True
    nested = run.txn.nested_code
    if nested and step.kind is not Kind.RUN:
        return any(cannot_follow(run.namespace.get(name), nested) for name in step.binds)
    return False


def _visit(run: Run, step: Step, path: str, plan: Plan, touched: bool, dirty: set[str]) -> set[str]:
    """Leave one step as it is, upgrade it in place, or run it again; the names whose object it changed."""
    if not touched:
        if step.kind is Kind.UNCHANGED:
            if step.dynamic and dirty:  # ``from m import *`` after a statement that re-bound a name
                _star_import_again(run, step, dirty)
            return set()
        if step.kind is Kind.BODY and _upgrade_function_body(run, step, path, plan):
            return set()
        if step.kind is Kind.METHODS and _upgrade_methods(run, step, path, plan):
            return set()
    return _rerun(run, step, path, plan)


def _starts_with_docstring(plan: Plan) -> bool:
    return any(isinstance(s.node, ast.Expr) and isinstance(s.node.value, ast.Constant) for s in plan.steps[:1])


def _star_import_again(run: Run, step: Step, names: set[str]) -> None:
    """An unchanged ``from m import *`` gives again the names of ``names`` that m exports: a
    statement before it (a default, ``twice = None``) re-ran, and the star import comes after."""
    for given in _star_sources(run.module, step.node):
        run.namespace.update({name: given[name] for name in names if exported(given, name)})


def _star_imported(module: types.ModuleType, plan: Plan, name: str) -> object:
    """What the last ``from m import *`` of the new text gives ``name``, or ``UNBOUND``."""
    value: object = UNBOUND
    for step in plan.steps:
        for given in _star_sources(module, step.node) if step.dynamic else ():
            if exported(given, name):
                value = given[name]
    return value


def _star_sources(module: types.ModuleType, node: ast.stmt) -> Iterator[dict[str, Any]]:
    """The namespaces of the modules a statement of ``module`` does ``from ... import *`` from."""
    for inner in ast.walk(node):
        if isinstance(inner, ast.ImportFrom) and any(alias.name == "*" for alias in inner.names):
            source = sys.modules.get(resolve_from(inner, module.__package__ or None) or "")
            if source is not None:
                yield vars(source)


def _remove_attributes_no_longer_set(run: Run, plan: Plan) -> set[str]:
    """``Point.tag = 5`` deleted from the text: the module's own class loses ``tag``, as on a
    fresh import. Returns the classes whose own body defines such an attribute: their class
    statement runs again (in place) to give it back its body's value."""
    if not plan.removed_attributes or run.running is None:
        return set()
    body_names = _parse.class_body_names(run.running.text, run.running.path)
    rerun = set()
    for owner, attribute in plan.removed_attributes:
        cls = run.namespace.get(owner)
        if isinstance(cls, type) and cls.__module__ == run.module.__name__ and attribute in vars(cls):
            if attribute in body_names.get(owner, ()):
                rerun.add(owner)
            else:
                run.txn.delete(cls, attribute)
    return rerun


def _rerun(run: Run, step: Step, path: str, plan: Plan) -> set[str]:
    """Run one statement again; return the names whose object it changed."""
    _check_runs_alone(step)
    namespace = run.namespace
    before = {name: namespace.get(name, UNBOUND) for name in step.binds}
    _keep_attributes_written(run, [step.node], namespace)
    exec(_diff.statement_code([step.node], path, plan.future_flags), namespace)
    run.reran.append(step.label())
    changed = set(step.bound_later)  # not their final value: what comes after runs, whatever it is
    for name, old in before.items():
        if name not in changed and _changed_by(run, name, old, namespace.get(name, UNBOUND)):
            changed.add(name)
    return changed


def _changed_by(run: Run, name: str, old: object, new: object) -> bool:
    """Does ``name`` hold another object after a statement ran (a re-created function or class
    upgraded in place is the same)?"""
    if old is UNBOUND and new is not UNBOUND and name not in run.snapshot:
        _restore_buried(run, name, new)
        return True  # a name that came back: a change for who reads it, whatever it holds
    if new is old or new is UNBOUND:
        return new is not old
    # A name an earlier statement of this reload re-bound (``@overload`` stubs run again before their
    # implementation) keeps the object it held before the reload, if it can: what comes after sees
    # what it saw then.
    before = run.snapshot.get(name, UNBOUND)
    for kept in (before, old) if before is not old else (old,):
        if kept is not UNBOUND and _keep_identity(run, name, kept, new):
            return kept is not before
    return True


def _check_runs_alone(step: Step) -> None:
    """Raise ``NeedsWholeModule`` where running this statement again alone may give another
    result than a fresh import would."""
    if step.dynamic:
        raise NeedsWholeModule(f"{step.label()} binds names that cannot be known in advance")
    if NAMESPACE in step.reads:  # re-run now, it would also see names bound after it
        raise NeedsWholeModule(f"{step.label()} reads the module's names, which changed")
    if step.late:
        late = sorted(step.late)[0]
        raise NeedsWholeModule(
            f"{step.label()} depends on {late!r} as it was at that point, which running it again alone would not see"
        )


def _keep_identity(run: Run, name: str, old: Any, new: Any) -> bool:
    """Where a name now holds a re-created function or class, upgrade the old one and re-bind it."""
    if old is new:
        return True
    if not (is_code(old) and is_code(new) and owned_by(old, run.module.__name__)):
        return False
    kept = try_upgrade(old, new, run.txn)
    if kept is not old:
        return False
    run.namespace[name] = old
    run.upgraded.append(name)
    run.stand_ins[id(new)] = (new, old)  # `HANDLERS = [f]` ran with the new f: it must hold the kept one
    return True


def _restore_buried(run: Run, name: str, new: object) -> None:
    """A name a save removed comes back: the object it held then is upgraded and bound again,
    where it is of the same kind (a function for a function, a class of the same metaclass)."""
    buried = graves_of(run.module).name(name)
    if buried is not UNBOUND and buried is not new and type(buried) is type(new) and is_code(new):
        _keep_identity(run, name, buried, new)


def _upgrade_function_body(run: Run, step: Step, path: str, plan: Plan) -> bool:
    """A function whose decorators did not change: new code into the old function, nothing re-run."""
    node = step.node
    assert isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    old_functions, caches = functions_named(run.namespace.get(node.name), node.name, run.module.__name__)
    if len(old_functions) != 1:
        return False
    scratch: dict[str, Any] = {_diff.KEEP: _keep}
    exec(_diff.statement_code([_diff.without_decorators(node)], path, plan.future_flags), run.namespace, scratch)
    if not _upgrade_exactly(run, old_functions[0], scratch[node.name]):
        return False
    for cache in caches:
        run.txn.on_commit(cache.cache_clear)
    run.upgraded.append(node.name)
    return True


def _upgrade_methods(run: Run, step: Step, path: str, plan: Plan) -> bool:
    """A class whose method bodies alone changed: upgrade those methods, run nothing else."""
    node = step.node
    assert isinstance(node, ast.ClassDef)
    cls = run.namespace.get(node.name)
    if not isinstance(cls, type) or cls.__module__ != run.module.__name__ or cls.__qualname__ != node.name:
        return False
    savepoint = run.txn.savepoint()
    for position in step.methods:
        if not _upgrade_method(run, cls, node, position, path, plan):
            run.txn.rollback_to(savepoint)
            return False
    run.upgraded.append(node.name)
    return True


def _upgrade_method(run: Run, cls: type, node: ast.ClassDef, position: int, path: str, plan: Plan) -> bool:
    """The new code of one ``def`` of the class body into the old function (its caches cleared
    on commit); False if it cannot be upgraded exactly."""
    method = node.body[position]
    assert isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef))
    old = _method_function(cls, method)
    new = _bare_method(run, node, position, path, plan)
    if old is None or not isinstance(new, types.FunctionType) or not _upgrade_exactly(run, old[0], new):
        return False
    for cache in old[1]:
        run.txn.on_commit(cache.cache_clear)
    return True


def _keep(function: object) -> object:
    return function


def _bare_method(run: Run, node: ast.ClassDef, position: int, path: str, plan: Plan) -> object:
    """The new function of one ``def`` of a class body, made in a bare class of the same name.

    One bare class per method: a property's getter and setter share a name.
    """
    scratch: dict[str, Any] = {}
    run.intercepting = False  # the bare class is a vehicle, not a new version of the class
    run.namespace[_diff.KEEP] = _keep  # class bodies look names up in the module
    try:
        code = _diff.statement_code([_diff.method_class(node, (position,))], path, plan.future_flags)
        exec(code, run.namespace, scratch)
    finally:
        run.intercepting = True
        run.namespace.pop(_diff.KEEP, None)
    method = node.body[position]
    assert isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef))
    return scratch[node.name].__dict__.get(method.name)


def _method_function(cls: type, method: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[types.FunctionType, list[Any]] | None:
    """The function object behind one ``def`` of a class body (a property has up to three)."""
    found, caches = functions_named(cls.__dict__.get(method.name), method.name, cls.__module__)
    if len(found) == 1:
        return found[0], caches
    binding = cls.__dict__.get(method.name)
    if isinstance(binding, property):
        part = "fget"
        for decorator in method.decorator_list:
            if isinstance(decorator, ast.Attribute) and decorator.attr in ("setter", "deleter"):
                part = "fset" if decorator.attr == "setter" else "fdel"
        function = getattr(binding, part)
        if isinstance(function, types.FunctionType):
            return function, caches
    return None


def _upgrade_exactly(run: Run, old: types.FunctionType, new: types.FunctionType) -> bool:
    """``upgrade_code``, or no trace at all (the caller then re-runs the statement instead)."""
    savepoint = run.txn.savepoint()
    try:
        upgrade_code(old, new, run.txn)
    except (UpgradeError, TypeError, ValueError, AttributeError):
        run.txn.rollback_to(savepoint)
        return False
    return True


def _outcome(run: Run, path: str, whole_module: str | None = None) -> Reloaded:
    """What the run did, once all of it ran: the names it upgraded, added, removed, re-bound."""
    _follow_beyond(run)
    bases_remade = rebuild_derived(run.kept_classes, run.txn, lambda: [run.namespace, *(run.roots() if run.roots else ())])
    _note_classes_not_kept(run)
    namespace, snapshot = run.namespace, run.snapshot
    changed = _changed(snapshot, namespace)
    added, removed = came_and_went(snapshot, namespace)
    changes = {n: (snapshot[n], namespace[n]) for n in changed}
    _keep_graves(run, added, removed, changes)
    upgraded = _upgraded(run, added)
    rebound = tuple(n for n in changed if n not in upgraded and n not in run.followed)
    if removed or not set(upgraded).issuperset(changed):
        clear_caches_of(run.module, run.txn)  # a global they read may have changed
    return Reloaded(
        module=run.module.__name__,
        path=path,
        upgraded=upgraded,
        added=added,
        removed=removed,
        rebound=rebound,
        remade=_remade(run, upgraded, bases_remade),
        stayed_old=tuple(dict.fromkeys(run.txn.notes)),
        reran=tuple(run.reran),
        whole_module=whole_module,
        followed=tuple(run.followed),
        after=run.after,
        changes=changes,
        gone={n: snapshot[n] for n in removed},
        all_changed=all_changed(snapshot, namespace),
    )


def _remade(run: Run, upgraded: tuple[str, ...], bases_remade: list[type]) -> tuple[str, ...]:
    """What the modules that took it must make again with it: a decorator whose wrappers cannot
    follow in place, a class whose subclasses copied its fields (``_libraries``)."""
    makers = makers_of_what_cannot_follow(run.namespace, upgraded, run.txn.nested_code)
    bases = [n for n, value in run.namespace.items() if any(value is cls for cls in bases_remade)] if bases_remade else []
    return tuple(makers + bases)


def _upgraded(run: Run, added: tuple[str, ...]) -> tuple[str, ...]:
    """The names of functions and classes upgraded in place; a name that came back is said as
    added, even where the object kept for it was upgraded and bound again."""
    upgraded = run.upgraded + [c for c in run.classes if c in run.namespace]
    return tuple(dict.fromkeys(n for n in upgraded if n not in added))


def _keep_graves(
    run: Run, added: tuple[str, ...], removed: tuple[str, ...], changes: dict[str, tuple[object, object]]
) -> None:
    """What this save removed is kept (``_tombstones``); a name it brings back as another object
    than the one kept for it: who still holds the kept one follows, as a change of that name."""
    if not (added or removed):
        return
    graves = graves_of(run.module, create=bool(removed))
    for name in added:
        buried = graves.name(name)
        if buried is not UNBOUND:
            graves.unbury(name, run.txn)
            if buried is not run.namespace[name]:
                changes[name] = (buried, run.namespace[name])
    _bury(run, graves, removed)


def _bury(run: Run, graves: Graves, removed: tuple[str, ...]) -> None:
    """Keep what the removed names held: the module's functions and classes, and the values
    another namespace holds."""
    held: set[int] | None = None  # what other namespaces hold, looked at once if needed
    for name in removed:
        value = run.snapshot[name]
        if not (is_code(value) and owned_by(value, run.module.__name__)):
            held = _held_elsewhere(run) if held is None else held
            if id(value) not in held:
                continue  # a value nobody else holds: nothing to keep it for
        graves.bury(name, value, run.txn)


def _held_elsewhere(run: Run) -> set[int]:
    """The objects held by the namespaces that may have taken names from the module (its
    dependents', the user's), by id."""
    return {id(v) for namespace in (run.roots() if run.roots else ()) for v in namespace.values()}


def _changed(snapshot: dict[str, Any], namespace: dict[str, Any]) -> list[str]:
    """The names (dunders aside) there before and now, bound to another object."""
    return [n for n, value in namespace.items() if snapshot.get(n, value) is not value and not is_dunder(n)]


def _follow_beyond(run: Run) -> None:
    """Closures and stand-ins kept outside the module follow (looked for only if there are any)."""
    if run.txn.nested_code or run.stand_ins:
        namespaces = [run.namespace, *(run.roots() if run.roots else ())]
        run.upgraded += closures_follow(run.module.__name__, namespaces, run.txn)
        if run.stand_ins:
            replace_stand_ins(run.stand_ins.values(), namespaces, run.txn)


def _note_classes_not_kept(run: Run) -> None:
    """Say why an old class stayed old, unless a class upgraded in its place is what the module
    holds now (e.g. ``@dataclass(slots=True)`` made a new class from the upgraded one)."""
    if run.class_notes:
        kept = {id(v) for v in run.namespace.values()}
        for old_class, notes in run.class_notes.items():
            if old_class not in kept:
                run.txn.notes += notes


def _reset_namespace(namespace: dict[str, Any], snapshot: dict[str, Any]) -> None:
    """Start from what a fresh import starts from, so the result is what it would give."""
    namespace.clear()
    namespace.update({k: snapshot[k] for k in SET_BY_IMPORT if k in snapshot})
    namespace["__doc__"] = None


def _keep_submodules(run: Run) -> None:
    """A package's submodules are attributes the import system set: a re-run keeps them."""
    for name, value in run.snapshot.items():
        if name not in run.namespace and _is_submodule(run.module, name, value):
            run.namespace[name] = value


def _is_submodule(package: types.ModuleType, name: str, value: object) -> bool:
    return isinstance(value, types.ModuleType) and value.__name__ == f"{package.__name__}.{name}"
