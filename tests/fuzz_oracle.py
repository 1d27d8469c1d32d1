"""The reload fuzzer's oracle: fingerprints of modules, and a fresh-import worker.

This file is the one definition of the fingerprint. It runs in two places:

* in the hotswap session (``fuzz_support`` imports it), on the modules
  hotswap keeps up to date and on the user's old objects;
* in a separate interpreter, ``python tests/fuzz_oracle.py``, a persistent
  worker that receives module texts as JSON lines on stdin, imports them
  freshly (under the same names, after clearing them from ``sys.modules``)
  and answers with their fingerprints.

Standard library only: the worker must not import hotswap, IPython or pytest.

A fingerprint is a JSON value. Per module, for each public name (not
starting with ``_``): functions -> their results on fixed sample inputs (or
the exception type), with their free variables and first line; classes ->
public members, each member's kind, class-level values, its ``__slots__``, and
every member read or called on a fresh instance made with no arguments; enums ->
members with their values; other values -> a canonical form (``repr`` of plain
data). Third-party classes, recognised without importing their library: a
pydantic (v2) model adds its fields, its JSON schema and what validating sample
input gives, and its instances their ``model_dump()`` (``BaseModel``'s own API
is left out: it is no module's code); an attrs class adds its fields, and its
instances their ``repr`` (compared with ``==`` too, as a dataclass's).

The worker also plays "last good version": for each module, in dependency
order, it imports the current file text; if that fails it imports the text
that last succeeded instead (a broken save leaves the module as it was), and
a deleted file keeps its last text. It answers with the texts that won.

What hotswap promises for dependents, and how these fresh imports model it:

* A module whose own new save fails still follows what it imports: its last
  good text is imported against its dependencies as they are now, so
  ``from b import K`` gives b's new K (and every statement reading it re-runs).
* A version that failed is tried again at every step, and wins once it
  imports. hotswap tries it again when a module it imports from changes (or
  its file does); the two agree, because an import is a function of the texts:
  a version that failed cannot start to work unless a text it depends on changed.
* ``from b import *`` is an ordinary fresh import: names b adds appear, names
  b removes disappear, and a module that drops the statement loses them.
* Not modelled (the grammar makes none): a statement that fails with a
  dependency's new value (the dependent keeps its previous values until that
  dependency's next change; a fresh import simply fails), and a name removed
  from b that another module imports by name (DOCUMENTED_LIMITS, avoided).
"""

import dataclasses
import enum
import functools
import inspect
import json
import sys
import types

__all__ = ["SAMPLES", "canon", "class_print", "instance_print", "module_print", "pydantic_print", "serve", "settle"]

# Sample inputs by the number of required positional arguments.
SAMPLES = {0: [()], 1: [(1,), (3,)], 2: [(1, 2), (3, 0)]}
SAMPLE_KEYS = {n: [json.dumps(list(args)) for args in samples] for n, samples in SAMPLES.items()}
_MAX_DEPTH = 3  # a function returning a closure returning ...: followed this deep


def arity(fn):
    """Required positional arguments, or None when the callable cannot be sampled."""
    wrapped = getattr(fn, "__wrapped__", None)  # as inspect.signature: a wrapper takes what it wraps
    if wrapped is not None and wrapped is not fn:
        return arity(wrapped)
    inner = fn.__func__ if isinstance(fn, types.MethodType) else fn
    if isinstance(inner, types.FunctionType):  # the common case, without inspect (speed)
        code = inner.__code__
        kwonly_required = code.co_kwonlyargcount - len(inner.__kwdefaults__ or {})
        if kwonly_required > 0:
            return None
        count = code.co_argcount - len(inner.__defaults__ or ())
        if isinstance(fn, types.MethodType):
            count -= 1
        return count if count in SAMPLES else None
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    count = 0
    for parameter in signature.parameters.values():
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            if parameter.default is parameter.empty:
                count += 1
        elif parameter.kind is parameter.KEYWORD_ONLY and parameter.default is parameter.empty:
            return None
    return count if count in SAMPLES else None


def raised(error):
    return ["raise", type(error).__name__]


def call_print(fn, owned, depth):
    """{sample args as JSON: canonical result}, for a callable."""
    n = arity(fn)
    if n is None:
        return None
    results = {}
    for key, args in zip(SAMPLE_KEYS[n], SAMPLES[n]):
        try:
            results[key] = canon(fn(*args), owned, depth + 1)
        except Exception as error:  # noqa: BLE001 - the exception type is the result
            results[key] = raised(error)
    return results


def canon(value, owned=(), depth=0):
    """A JSON value that says what ``value`` is and does, without addresses."""
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return ["v", repr(value)]
    if isinstance(value, enum.Enum):
        return ["member", type(value).__qualname__, value.name, canon(value.value, owned, depth)]
    if isinstance(value, (tuple, list)):
        return [type(value).__name__, [canon(v, owned, depth) for v in value]]
    if isinstance(value, dict):
        return ["dict", [[canon(k, owned, depth), canon(v, owned, depth)] for k, v in value.items()]]
    if isinstance(value, type):
        return ["class", value.__qualname__]
    if isinstance(value, types.ModuleType):
        return ["module", value.__name__]
    if isinstance(value, BaseException):
        return ["exception", type(value).__name__]
    if dataclasses.is_dataclass(value):
        try:
            text = repr(value)
        except Exception as error:  # noqa: BLE001
            text = raised(error)
        return ["dataclass", type(value).__qualname__, text]
    if callable(value):
        return function_print(value, owned, depth)
    return ["object", type(value).__qualname__]


def function_print(fn, owned=(), depth=0):
    """``["fn", qualname, free variables, [module, first line], results]`` (lines only for code of ``owned``)."""
    inner = getattr(fn, "__func__", fn)  # a bound method: its function
    code = getattr(inner, "__code__", None)
    freevars = list(code.co_freevars) if code is not None else None
    line = None
    if code is not None and getattr(inner, "__module__", None) in owned:
        line = [inner.__module__, code.co_firstlineno]
    results = call_print(fn, owned, depth) if depth < _MAX_DEPTH else None
    return ["fn", getattr(fn, "__qualname__", type(fn).__qualname__), freevars, line, results]


def member_kind(cls, name):
    """How a class holds a member: function, property, classmethod, staticmethod, member, or a type name."""
    try:
        static = inspect.getattr_static(cls, name)
    except AttributeError:
        return "absent"
    if isinstance(cls, enum.EnumMeta) and name in cls.__members__:
        return "member"
    if isinstance(static, functools.cached_property):
        return "cached_property"
    return type(static).__name__


def instance_print(obj, names, owned=()):
    """Each public member read on ``obj`` (called on the sample inputs when callable); for a pydantic
    model, its ``model_dump()`` first (``"<dump>"``), for a dataclass or an attrs class, its ``repr``
    (``"<repr>"``: the session then also compares ``==`` with a fresh one). Names in ``<>`` are these."""
    out = {}
    if _pydantic_base(type(obj)) is not None:
        # Before any attribute is read. The oracle's choice for an object made before a field was
        # added (no fresh import has one): hotswap promises it "reads its default", so its dump holds
        # the default as a fresh object's does, whether or not the field was read before (hotswap's
        # stand-in stores the default on the object at the first read: the dump must not rely on it).
        # Sorted: the order of the keys follows the object's own ``__dict__`` (its state), not the code.
        try:
            dump = obj.model_dump()
            out["<dump>"] = canon(dict(sorted(dump.items())), owned)
        except Exception as error:  # noqa: BLE001
            out["<dump>"] = raised(error)
    for name in names:
        if name.startswith("<"):
            continue
        try:
            value = getattr(obj, name)
        except Exception as error:  # noqa: BLE001
            out[name] = raised(error)
            continue
        if callable(value) and not isinstance(value, type):
            out[name] = function_print(value, owned)
        else:
            out[name] = canon(value, owned)
    if dataclasses.is_dataclass(obj) or _is_attrs_class(type(obj)):
        try:
            out["<repr>"] = ["v", repr(obj)]
        except Exception as error:  # noqa: BLE001
            out["<repr>"] = raised(error)
    return out


def public_names(obj):
    """Public names, without those of pydantic's ``BaseModel`` (its API: the same for every model,
    some deprecated, none the module's code)."""
    names = [n for n in dir(obj) if not n.startswith("_")]
    base = _pydantic_base(obj if isinstance(obj, type) else type(obj))
    if base is not None:
        api = set(dir(base))
        names = [n for n in names if n not in api]
    return names


# -- third-party classes, recognised without importing their library ---------------------

# Validation samples for a pydantic model: every ``int`` field set to each value in turn.
PYDANTIC_SAMPLES = (5, "x")


def _pydantic_base(cls):
    """pydantic's ``BaseModel`` when ``cls`` is a model (v2), else None."""
    if not isinstance(cls, type):
        return None
    for base in cls.__mro__[1:]:
        if base.__name__ == "BaseModel" and base.__module__ == "pydantic.main":
            return base
    return None


def _is_attrs_class(cls):
    return isinstance(cls, type) and "__attrs_attrs__" in vars(cls)


def pydantic_print(cls, owned=()):
    """A model's fields (name, type, default), JSON schema, and what validating sample input gives."""
    fields = getattr(cls, "__pydantic_fields__", {})
    out = {
        "fields": [
            [name, getattr(info.annotation, "__name__", repr(info.annotation)), canon(info.default, owned)]
            for name, info in fields.items()
        ]
    }
    try:
        out["schema"] = canon(cls.model_json_schema(mode="serialization"), owned)
    except Exception as error:  # noqa: BLE001
        out["schema"] = raised(error)
    validated = []
    for value in PYDANTIC_SAMPLES:
        data = {name: value for name, info in fields.items() if info.annotation is int}
        try:
            dump = cls.model_validate(data).model_dump()
            validated.append(canon(dict(sorted(dump.items())), owned))
        except Exception as error:  # noqa: BLE001 - ValidationError, or what a validator raised
            validated.append(raised(error))
    out["validate"] = validated
    return out


def class_print(cls, owned=()):
    """MRO, each public member's kind and defining class (and value, for class-level data), and
    a fresh instance made with no arguments (or, for an enum, each member)."""
    out = {
        "mro": [c.__qualname__ for c in cls.__mro__],
        "members": {},
    }
    if "__slots__" in vars(cls):  # its layout: instances made with other slots keep their class
        slots = cls.__slots__
        out["slots"] = [slots] if isinstance(slots, str) else list(slots)
    names = public_names(cls)
    if _pydantic_base(cls) is not None:
        # Fields are compared on instances, in the schema and through validation; not as class
        # attributes: pydantic keeps none, hotswap keeps a stand-in for a field added after some
        # objects were made (they read its default through it: see instance_print).
        out["pydantic"] = pydantic_print(cls, owned)
        names = [n for n in names if n not in getattr(cls, "__pydantic_fields__", {})]
    if _is_attrs_class(cls):
        out["attrs"] = [[a.name, canon(a.default, owned)] for a in cls.__attrs_attrs__]
    for name in names:
        kind = member_kind(cls, name)
        owner = next((c.__qualname__ for c in cls.__mro__ if name in vars(c)), None)
        entry = [kind, owner]
        if kind in ("classmethod", "staticmethod"):
            entry.append(function_print(getattr(cls, name), owned))
        elif kind not in ("function", "property", "cached_property", "member"):
            try:
                entry.append(canon(getattr(cls, name), owned))
            except Exception as error:  # noqa: BLE001
                entry.append(raised(error))
        out["members"][name] = entry
    if isinstance(cls, enum.EnumMeta):
        out["enum"] = [
            [name, canon(member.value, owned), instance_print(member, public_names(member), owned)]
            for name, member in cls.__members__.items()
        ]
        return out
    try:
        instance = cls()
    except Exception as error:  # noqa: BLE001
        out["instance"] = raised(error)
    else:
        out["instance"] = instance_print(instance, public_names(instance), owned)
    return out


def value_print(value, owned=()):
    """A module-level value: classes and instances of the modules' own classes in depth."""
    if isinstance(value, type):
        if value.__module__ in owned:
            return ["class", value.__qualname__, class_print(value, owned)]
        return ["foreign class", value.__qualname__]
    kind = type(value)
    if (
        kind.__module__ in owned
        and not callable(value)
        and not isinstance(value, (enum.Enum, BaseException))
        and not dataclasses.is_dataclass(value)
    ):
        return ["instance", kind.__qualname__, instance_print(value, public_names(value), owned)]
    return canon(value, owned)


def module_print(module, owned=()):
    """The fingerprint of one module: every public name."""
    return {
        name: value_print(value, owned)
        for name, value in sorted(vars(module).items())
        if not name.startswith("_")
    }


# -- the worker: fresh imports in this interpreter ------------------------------


def _load(name, path, text):
    """Import ``text`` as module ``name``, as a fresh import would (and leave nothing if it fails)."""
    module = types.ModuleType(name)
    module.__file__ = path
    sys.modules[name] = module
    try:
        exec(compile(text, path, "exec", dont_inherit=True), module.__dict__)  # noqa: S102 - a fresh import
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def settle(modules, effective, current):
    """Fresh imports of the modules, each at its current text or else its last good one.

    ``modules``: [(name, path)] in dependency order; ``effective``: name -> the
    text that last imported (None before the first); ``current``: name -> the
    text on disk (None: the file is gone). Returns (texts that won, status per
    module, fingerprint per module).
    """
    for name, _ in modules:
        sys.modules.pop(name, None)
        if "." in name:  # in a package: an empty one, as its __init__.py is
            package = name.rpartition(".")[0]
            sys.modules[package] = types.ModuleType(package)
            sys.modules[package].__path__ = []
    owned = {name for name, _ in modules}
    won, status = {}, {}
    for name, path in modules:
        candidates = []
        if current.get(name) is not None:
            candidates.append(("current", current[name]))
        if effective.get(name) is not None and effective[name] != current.get(name):
            candidates.append(("kept", effective[name]))
        won[name] = effective.get(name)
        status[name] = ["unimportable", "no text"]
        errors = []
        for label, text in candidates:
            try:
                _load(name, path, text)
            except BaseException as error:  # noqa: BLE001 - a broken version
                errors.append(type(error).__name__)
                continue
            won[name], status[name] = text, [label] + errors
            break
        else:
            status[name] = ["unimportable"] + errors
    prints = {}
    for name, _ in modules:
        module = sys.modules.get(name)
        prints[name] = module_print(module, owned) if module is not None else None
    for name, _ in modules:
        sys.modules.pop(name, None)
        sys.modules.pop(name.rpartition(".")[0], None)
    return won, status, prints


def serve(stdin=sys.stdin, stdout=sys.stdout):
    """One JSON request per line in, one JSON answer per line out, until EOF."""
    for line in stdin:
        request = json.loads(line)
        try:
            won, status, prints = settle(
                [tuple(m) for m in request["modules"]], request["effective"], request["current"]
            )
            answer = {"effective": won, "status": status, "prints": prints}
        except BaseException as error:  # noqa: BLE001 - report, keep serving
            answer = {"error": f"{type(error).__name__}: {error}"}
        stdout.write(json.dumps(answer) + "\n")
        stdout.flush()


if __name__ == "__main__":
    sys.dont_write_bytecode = True
    serve()
