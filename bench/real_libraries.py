#!/usr/bin/env python
"""Real libraries' own test suites in a live IPython session, under hotswap and under IPython's
autoreload, across rounds of edits to the library's files, compared with a fresh process.

    python bench/real_libraries.py                        # all four libraries, all rounds
    python bench/real_libraries.py --libs toolz,click     # some of them
    python bench/real_libraries.py --quick                # rounds r0, r1, r4, r5 only
    python bench/real_libraries.py --work DIR             # keep the scratch venv and sdists in DIR

Libraries (pinned; their sdists, with their test suites, installed editable into a scratch venv):
more-itertools, toolz, attrs, click. Per library, two sessions live side by side, each a fresh
child process holding a real ``InteractiveShell``: one ran ``%load_ext hotswap``, the other
``%load_ext autoreload``, both ``%autoreload 2``; each imported every module of the library in a
cell, then runs the library's suite from a cell (``pytest.main`` in the session, test modules
dropped from ``sys.modules`` before each run, the library's modules never). Rounds (cumulative):

    r0 start: no edit               r4 semantic edit of one function the suite tests
    r1 a comment line at the top    r5 its revert
       of every module              r6 a broken save (syntax error) of one module
    r2 a new unused function at     r7 the fix
       the end of every module
    r3 every module saved again,
       same bytes (new mtime)

Each round: edit the files, run a ``pass`` cell in each session (the reloader acts; its time is the
round's reload time), run the suite in each session, then snapshot the library's modules (names and
kinds; per function and method reachable from module and class dicts, its code, file, first line
and the line of every instruction) and raise from inside a few library functions (the frames of the
traceback). A fresh process (``--fresh``) imports the same files, runs the suite and takes the same
snapshot: the reference. A broken save has no fresh reference (a fresh import fails): there the
reference is a process that imported the last good files before the save and runs the suite after
it, which is what keeping the old code gives (tests that start a new Python see the broken file).

Exit code 1 if hotswap differs from the fresh process in any round (or a child crashed), 2 if the
hotswap source does not import or the setup failed, 0 otherwise. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import io
import json
import os
import re
import selectors
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import snapshot_source

RELOADERS = ("hotswap", "autoreload")  # the %load_ext names
TAG = "REAL-LIBRARIES "  # a reply line on the protocol pipe: TAG + json
OP_TIMEOUT_S = 900.0  # one request to a session (a suite run) or one fresh process
PAST_S = 10  # files are dated this far back at reset: "saved a while ago"
UNUSED = "\n\ndef _hotswap_bench_unused():\n    return 'r2'\n"  # r2 appends this to every module
BROKEN = "\n\ndef _hotswap_bench_broken(:\n    pass\n"  # r6 appends this to one module
COMMENT = "# hotswap bench: a comment line added at the top (r1)\n"


# --------------------------------------------------------------------------
# The libraries
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Edit:
    """A semantic edit: ``old`` (found exactly once in ``path``) becomes ``new``."""

    path: str  # relative to the unpacked sdist
    old: str
    new: str
    what: str


@dataclass(frozen=True)
class Library:
    name: str  # the PyPI name
    version: str
    packages: tuple[str, ...]  # top-level import names
    package_root: str  # folder of the sdist holding them ("" or "src")
    test_dirs: tuple[str, ...]  # folders of test modules: dropped before each run, never edited
    pytest_args: tuple[str, ...]  # what to collect, and what to leave out
    semantic: Edit
    broken: str  # the module (file) that r6 breaks
    probes: tuple[str, ...]  # expressions that raise from inside the library
    exclude: tuple[str, ...] = ()  # modules not imported (platform-specific)
    test_requires: tuple[str, ...] = ()  # what its suite needs besides pytest
    hypothesis_examples: int | None = None  # max_examples of the suite's hypothesis tests
    note: str = ""


LIBRARIES: dict[str, Library] = {
    "more-itertools": Library(
        name="more-itertools",
        version="11.2.1",
        packages=("more_itertools",),
        package_root="",
        test_dirs=("tests",),
        pytest_args=(
            "tests",
            # 17 of the suite's 26 s, pure computation that no edit here touches
            "--deselect", "tests/test_recipes.py::PrimeFunctionTests::test_primes",
            "--deselect", "tests/test_recipes.py::PrimeFunctionTests::test_nth_prime_approximate",
            "--deselect", "tests/test_more.py::DiscreteFourierTransformTests::test_roundtrip",
        ),
        semantic=Edit(
            "more_itertools/more.py",
            "            'and no default value was provided.'\n        )\n    return default\n",
            "            'and no default value was provided.'\n        )\n    return [default]\n",
            "more_itertools.first(): returns [default] instead of default",
        ),
        broken="more_itertools/more.py",
        probes=("more_itertools.first([])", "more_itertools.one([1, 2])", "more_itertools.strictly_n('ab', 3)"),
        note="3 slow tests deselected (prime and DFT computations, 17 s of 26 s)",
    ),
    "toolz": Library(
        name="toolz",
        version="1.2.0",
        packages=("toolz",),
        package_root="",
        test_dirs=("toolz/tests", "toolz/sandbox/tests"),
        pytest_args=("toolz",),
        semantic=Edit(
            "toolz/itertoolz.py",
            "        d[item] += 1\n",
            "        d[item] += 2\n",
            "toolz.frequencies(): counts 2 per item (toolz.curried.frequencies wraps it in a curry)",
        ),
        broken="toolz/itertoolz.py",
        probes=("toolz.first([])", "toolz.curried.get(5)([])", "toolz.merge_with(sum, 1)"),
    ),
    "attrs": Library(
        name="attrs",
        version="26.1.0",
        packages=("attr", "attrs"),
        package_root="src",
        test_dirs=("tests",),
        pytest_args=(
            "tests",
            # type checkers' and packaging tests: they run mypy/pyright or read installed metadata
            "--ignore", "tests/test_mypy.yml",
            "--ignore", "tests/test_pyright.py",
        ),
        semantic=Edit(
            "src/attr/validators.py",
            '        return f"<instance_of validator for type {self.type!r}>"\n',
            '        return f"<instance-of validator for type {self.type!r}>"\n',
            "attr.validators._InstanceOfValidator.__repr__ (a method of a slotted attrs class)",
        ),
        broken="src/attr/validators.py",
        probes=(
            "attr.fields(int)",
            "attr.validators.instance_of(int)(None, attr.Attribute.from_counting_attr('x', attr.ib()), 's')",
            "attrs.evolve(1, x=2)",
        ),
        test_requires=("cloudpickle", "pympler"),
        hypothesis_examples=25,
        note="hypothesis: max_examples 25 (the suite's own profile: 100), derandomized, no database, no deadline",
    ),
    "click": Library(
        name="click",
        version="8.5.1",
        packages=("click",),
        package_root="src",
        test_dirs=("tests",),
        pytest_args=("tests",),
        semantic=Edit(
            "src/click/formatting.py",
            "        self.write(f\"{'':>{self.current_indent}}{heading}:\\n\")\n",
            "        self.write(f\"{'':>{self.current_indent}}{heading} -\\n\")\n",
            "click.formatting.HelpFormatter.write_heading: 'Options -' instead of 'Options:'",
        ),
        broken="src/click/formatting.py",
        probes=(
            "click.Choice(['a']).convert('b', None, None)",
            "click.IntRange(0, 1).convert(5, None, None)",
            "click.Context(click.Command('c')).fail('x')",
        ),
        exclude=("click._winconsole",),
        note="its default -m 'not stress' (31000 stress tests deselected)",
    ),
}


@dataclass(frozen=True)
class Round:
    key: str
    what: str


ROUNDS = (
    Round("r0", "start (no edit)"),
    Round("r1", "comment line at top of every module"),
    Round("r2", "unused function appended to every module"),
    Round("r3", "every module re-saved, same bytes"),
    Round("r4", "semantic edit of one function"),
    Round("r5", "revert of r4"),
    Round("r6", "broken save (syntax error)"),
    Round("r7", "fix of r6"),
)
QUICK_ROUNDS = ("r0", "r1", "r4", "r5")


# --------------------------------------------------------------------------
# What a child does: import, run the suite, snapshot (session and fresh alike)
# --------------------------------------------------------------------------


def module_name(relpath: str) -> str:
    """``src/attr/_make.py`` under root ``src`` -> ``attr._make``."""
    parts = Path(relpath).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_all(modules: list[str]) -> dict[str, str]:
    """Import every library module; what failed and why (a broken save makes its module fail)."""
    failed: dict[str, str] = {}
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as error:  # a SyntaxError of a broken save, an ImportError of a dependent
            failed[name] = f"{type(error).__name__}: {error}"
    return failed


def normalized_nodeid(nodeid: str) -> str:
    """Test ids that print an object's address differ between processes: not a difference."""
    return re.sub(r"0x[0-9a-fA-F]+", "0x?", nodeid)


OUTCOME_RANK = {"passed": 0, "skipped": 1, "xfailed": 2, "xpassed": 3, "failed": 4, "error": 5}


def trylast(function: Any) -> Any:
    """pytest's ``hookimpl(trylast=True)``; the parent, which runs no suite, needs no pytest."""
    try:
        import pytest
    except ImportError:
        return function
    return pytest.hookimpl(trylast=True)(function)


class Collector:
    """A pytest plugin: per test id its outcome (the worst of its phases and subtests), and for a
    failure the last lines of its report and the library frames of its traceback."""

    def __init__(self, spec: dict) -> None:
        self.root = spec["root"]
        self.library_files = set(spec["library_files"])
        self.hypothesis_examples = spec.get("hypothesis_examples")
        self.outcomes: dict[str, str] = {}
        self.details: dict[str, dict] = {}

    @trylast
    def pytest_configure(self, config: Any) -> None:
        """After the suite's own conftest (``trylast``): its hypothesis profile, derandomized, so
        that a session and a fresh process draw the same examples."""
        if self.hypothesis_examples is None:
            return
        from hypothesis import settings

        current = settings.get_profile(settings.get_current_profile_name())
        settings.register_profile(
            "hotswap-bench", parent=current, max_examples=self.hypothesis_examples,
            derandomize=True, database=None, deadline=None,
        )
        settings.load_profile("hotswap-bench")

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            self.record(report.nodeid or "<collection>", "error", report)

    def pytest_runtest_logreport(self, report: Any) -> None:
        xfail = hasattr(report, "wasxfail")
        if report.when == "call":
            if report.passed:
                outcome = "xpassed" if xfail else "passed"
            elif report.skipped:
                outcome = "xfailed" if xfail else "skipped"
            else:
                outcome = "failed"
        elif report.failed:
            outcome = "error"
        elif report.skipped:
            outcome = "xfailed" if xfail else "skipped"
        else:
            return
        self.record(report.nodeid, outcome, report)

    def record(self, nodeid: str, outcome: str, report: Any) -> None:
        nodeid = normalized_nodeid(nodeid)
        old = self.outcomes.get(nodeid)
        if old is not None and OUTCOME_RANK[old] >= OUTCOME_RANK[outcome]:
            return
        self.outcomes[nodeid] = outcome
        if outcome in ("failed", "error"):
            text = getattr(report, "longreprtext", "") or ""
            self.details[nodeid] = {"tail": text.rstrip().splitlines()[-8:], "frames": self.frames(report)}

    def frames(self, report: Any) -> list[list]:
        """(file, line) of each library frame in the failure's traceback, outermost first."""
        entries = getattr(getattr(report.longrepr, "reprtraceback", None), "reprentries", None) or []
        found = []
        for entry in entries:
            loc = getattr(entry, "reprfileloc", None)
            if loc is None:
                continue
            path = os.path.relpath(os.path.normpath(os.path.join(os.getcwd(), str(loc.path))), self.root)
            if path in self.library_files:
                found.append([path, loc.lineno])
        return found


def drop_test_modules(test_dirs: list[str]) -> None:
    """The suite is collected anew each run: its modules (and conftests) leave ``sys.modules``.
    The library's own modules stay: the reloader is what keeps them up to date."""
    prefixes = tuple(os.path.join(d, "") for d in test_dirs)
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None) or ""
        if name == "conftest" or (path and os.path.realpath(path).startswith(prefixes)):
            del sys.modules[name]


def run_suite(spec: dict) -> dict:
    """The library's suite, in this process; per-test outcomes (pytest prints to the log)."""
    import pytest

    drop_test_modules([os.path.realpath(os.path.join(spec["root"], d)) for d in spec["test_dirs"]])
    collector = Collector(spec)
    argv, sys.argv = sys.argv, ["pytest"]  # alike in a session and a fresh process
    started = time.perf_counter()
    raised = ""
    try:
        code = int(pytest.main(["-p", "no:cacheprovider", "-q", *spec["pytest_args"]], plugins=[collector]))
    except Exception as error:  # e.g. a warning turned error at the end of the run: the outcomes still count
        code, raised = -1, f"{type(error).__name__}: {error}"[:500]
    finally:
        sys.argv = argv
    return {"exit": code, "raised": raised, "seconds": time.perf_counter() - started,
            "outcomes": collector.outcomes, "details": collector.details}


def relative_file(filename: str, root: str) -> str:
    """A code object's file, relative to the sdist (the same in every process)."""
    if filename.startswith("<"):
        return filename
    return os.path.relpath(os.path.realpath(filename), root)


def code_digest(code: types.CodeType) -> str:
    """What the code refers to: names, variables and constants, nested code objects included."""
    digest = hashlib.sha256(repr((code.co_names, code.co_varnames, code.co_freevars, code.co_argcount,
                                  code.co_kwonlyargcount, code.co_flags)).encode())
    for const in code.co_consts:
        digest.update(code_digest(const).encode() if isinstance(const, types.CodeType) else repr(const).encode())
    return digest.hexdigest()[:12]


def bytecode_digest(code: types.CodeType) -> str:
    """The instructions themselves, nested code objects included: the same source compiled another
    way (e.g. without the module around it) gives other instructions with the same names."""
    digest = hashlib.sha256(code.co_code)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            digest.update(bytecode_digest(const).encode())
    return digest.hexdigest()[:12]


def lines_digest(code: types.CodeType) -> str:
    """The lines its instructions are on, in order (what a traceback shows), nested code included;
    not the offsets, which other instructions for the same line would move."""
    lines = [line for _, _, line in code.co_lines()]
    digest = hashlib.sha256(repr([x for i, x in enumerate(lines) if i == 0 or x != lines[i - 1]]).encode())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            digest.update(lines_digest(const).encode())
    return digest.hexdigest()[:12]


class Snapshot:
    """Module contents as a reloader leaves them, comparable across processes."""

    def __init__(self, root: str, modules: list[str]) -> None:
        self.root = root
        self.library = set(modules)
        self.codes: dict[str, list] = {}  # path -> [file, first line, lines, code, bytecode] (digests)
        self.names: dict[str, str] = {}  # path -> type name

    def take(self, modules: list[str]) -> dict:
        out: dict[str, dict | None] = {}
        for name in modules:
            module = sys.modules.get(name)
            if module is None:
                out[name] = None
                continue
            self.codes, self.names = {}, {}
            for key, value in sorted(vars(module).items()):
                if not (key.startswith("__") and key.endswith("__")):
                    self.walk(key, value, 0)
            out[name] = {"names": self.names, "codes": self.codes}
        return out

    def walk(self, path: str, value: object, depth: int) -> None:
        self.names[path] = type(value).__name__
        self.functions(path, value)
        if isinstance(value, type) and depth < 4 and value.__module__ in self.library:
            for key, member in list(vars(value).items()):
                if key == "_abc_impl":
                    continue
                qualname = getattr(member, "__qualname__", "")
                if isinstance(member, type) and not qualname.startswith(value.__qualname__ + "."):
                    self.names[f"{path}.{key}"] = "type"  # an alias of another class: walked where it lives
                    continue
                self.walk(f"{path}.{key}", member, depth + 1)

    def functions(self, path: str, value: object) -> None:
        """The Python functions a name reaches: itself, and through method wrappers, properties,
        ``__wrapped__`` and ``func`` (functools.partial, toolz.curry)."""
        if isinstance(value, types.FunctionType):
            code = value.__code__
            self.codes[path] = [relative_file(code.co_filename, self.root), code.co_firstlineno,
                                lines_digest(code), code_digest(code), bytecode_digest(code)]
            wrapped = value.__dict__.get("__wrapped__")
            if isinstance(wrapped, types.FunctionType):
                self.functions(path + ".__wrapped__", wrapped)
        elif isinstance(value, (classmethod, staticmethod)):
            self.functions(path + ".__func__", value.__func__)
        elif isinstance(value, property):
            for part in ("fget", "fset", "fdel"):
                self.functions(f"{path}.{part}", getattr(value, part))
        elif not isinstance(value, type) and type(value).__module__ in self.library | {"functools"}:
            try:
                inner = vars(value).get("func") if hasattr(value, "__dict__") else None
                inner = inner if inner is not None else getattr(value, "func", None)
            except Exception:  # a descriptor of the library's own that does not want to be read
                inner = None
            if isinstance(inner, types.FunctionType):
                self.functions(path + ".func", inner)


def run_probes(spec: dict) -> list[dict]:
    """Raise from inside library functions: exception and the library frames of its traceback."""
    namespace: dict[str, Any] = {}
    for name in spec["modules"]:
        top = name.split(".")[0]
        if name in sys.modules and top in sys.modules:
            namespace[top] = sys.modules[top]
    library_files = set(spec["library_files"])
    found = []
    for expression in spec["probes"]:
        try:
            eval(expression, namespace)  # our own fixed expressions
            found.append({"probe": expression, "exception": "none raised", "frames": []})
            continue
        except BaseException as error:  # whatever it raises is the result
            frames = [[relative_file(f.filename, spec["root"]), f.lineno, f.name]
                      for f in traceback.extract_tb(error.__traceback__)]
            frames = [f for f in frames if f[0] in library_files]
            found.append({"probe": expression, "exception": f"{type(error).__name__}: {error}"[:200], "frames": frames})
    return found


def observe(spec: dict) -> dict:
    """After a suite run: the snapshot and the probes."""
    return {"snapshot": Snapshot(spec["root"], spec["modules"]).take(spec["modules"]), "probes": run_probes(spec)}


# --------------------------------------------------------------------------
# The session child: one reloader, one library, requests on a pipe
# --------------------------------------------------------------------------


def protocol_pipes() -> tuple[io.TextIOWrapper, io.TextIOWrapper]:
    """The parent speaks on fds 0 and 1; the suite gets /dev/null and the log (stderr) instead,
    as in a fresh process, so a test that reads stdin or prints cannot touch the protocol."""
    requests = os.fdopen(os.dup(0), "r")
    replies = os.fdopen(os.dup(1), "w")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    return requests, replies


def run_cell_checked(shell: Any, source: str) -> None:
    result = shell.run_cell(source)
    if not result.success:
        raise RuntimeError(f"cell failed: {source[:80]!r}: {result.error_in_exec or result.error_before_exec!r}")


class SessionChild:
    """One reloader in a real ``InteractiveShell``: start, reload, suite (+ snapshot)."""

    def __init__(self, spec: dict) -> None:
        self.spec = spec
        self.shell: Any = None

    def start(self) -> dict:
        from IPython.core.interactiveshell import InteractiveShell

        self.shell = InteractiveShell.instance()
        run_cell_checked(self.shell, f"%load_ext {self.spec['reloader']}")
        run_cell_checked(self.shell, "%autoreload 2")
        ns = self.shell.user_ns
        ns["_bench_import_all"] = import_all
        ns["_bench_run_suite"] = run_suite
        ns["_bench_spec"] = self.spec
        tops = sorted({m.split(".")[0] for m in self.spec["modules"]})
        run_cell_checked(self.shell, f"import {', '.join(tops)}\n"
                         "_bench_import_errors = _bench_import_all(_bench_spec['modules'])")
        return {"import_errors": ns["_bench_import_errors"]}

    def reload(self) -> dict:
        """The ``pass`` cell after an edit: the reloader acts here. Timed; what it said, captured."""
        said = io.StringIO()
        with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
            started = time.perf_counter_ns()
            result = self.shell.run_cell("pass")
            elapsed = (time.perf_counter_ns() - started) / 1000
        return {"us": elapsed, "said": said.getvalue().strip(), "success": bool(result.success)}

    def suite(self) -> dict:
        result = self.shell.run_cell("_bench_result = _bench_run_suite(_bench_spec)")
        if not result.success:
            error = result.error_in_exec or result.error_before_exec
            return {"error": f"the suite's cell failed: {type(error).__name__}: {error}"}
        return {"suite": self.shell.user_ns.pop("_bench_result"), **observe(self.spec)}


def child_main(spec: dict) -> int:
    requests, replies = protocol_pipes()
    sys.path[:] = [p for p in sys.path if os.path.realpath(p) != os.path.dirname(os.path.realpath(__file__))]
    child = SessionChild(spec)
    for line in requests:
        op = json.loads(line)["op"]
        if op == "quit":
            break
        try:
            reply = getattr(child, op)()
        except Exception:
            reply = {"error": traceback.format_exc()[-3000:]}
        sys.stdout.flush()
        sys.stderr.flush()
        replies.write(TAG + json.dumps(reply) + "\n")
        replies.flush()
    return 0


def fresh_main(spec: dict) -> int:
    """A fresh process on the same files: import them all, run the suite, snapshot: the reference.

    Held (``hold``), for the broken save: it imports the last good files, says so, and waits for
    the parent to break one before it runs the suite. That is what keeping the old code gives,
    tests that start a new Python on the broken file included.
    """
    sys.path[:] = [p for p in sys.path if os.path.realpath(p) != os.path.dirname(os.path.realpath(__file__))]
    import_errors = import_all(spec["modules"])
    if spec.get("hold"):
        Path(spec["out"] + ".imported").touch()
        deadline = time.monotonic() + OP_TIMEOUT_S
        while not Path(spec["out"] + ".go").exists():
            if time.monotonic() > deadline:
                return 3
            time.sleep(0.05)
    result = {"import_errors": import_errors, "suite": run_suite(spec), **observe(spec),
              "syntax_errors": syntax_errors(spec)}
    Path(spec["out"]).write_text(json.dumps(result))
    return 0


def syntax_errors(spec: dict) -> dict[str, str]:
    """Library files that do not compile: a fresh import of them fails."""
    found = {}
    for rel in spec["library_files"]:
        path = os.path.join(spec["root"], rel)
        try:
            compile(Path(path).read_bytes(), path, "exec")
        except SyntaxError as error:
            found[rel] = f"SyntaxError: {error.msg} ({rel}, line {error.lineno})"
    return found


# --------------------------------------------------------------------------
# The parent: scratch venv, sdists, edits, children, tables
# --------------------------------------------------------------------------


def say(text: str = "") -> None:
    print(text, flush=True)


def pip(python: Path, *args: str, cwd: Path | None = None) -> None:
    proc = subprocess.run([str(python), "-m", "pip", "--disable-pip-version-check", *args],
                          capture_output=True, text=True, cwd=cwd)
    if proc.returncode != 0:
        raise SystemExit(f"pip {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")


def dev_pins() -> list[str]:
    """IPython, pytest, hypothesis at the versions of the interpreter running this: the same
    shell and runner as the rest of the benchmarks."""
    from importlib import metadata

    pins = []
    for name in ("ipython", "pytest", "hypothesis"):
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pins.append(name)
    return pins


def ensure_venv(work: Path, libraries: list[Library]) -> Path:
    """The scratch venv (kept in ``work``; re-made only when what it needs changes)."""
    venv = work / "venv"
    python = venv / "bin" / "python"
    wanted = sorted({*dev_pins(), *(r for lib in libraries for r in lib.test_requires)})
    stamp = venv / "hotswap-bench-requirements.json"
    have = json.loads(stamp.read_text()) if stamp.exists() else []
    if not python.exists():
        say(f"creating the scratch venv {venv} ...")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    missing = [r for r in wanted if r not in have]
    if missing:
        say(f"installing into the scratch venv: {' '.join(missing)} ...")
        pip(python, "install", "-q", *missing)
        stamp.write_text(json.dumps(sorted({*have, *missing})))
    return python


def ensure_library(work: Path, python: Path, lib: Library) -> Path:
    """The sdist (downloaded once), a pristine unpacked copy, and the live copy installed editable."""
    sdists = work / "sdists"
    sdists.mkdir(parents=True, exist_ok=True)
    found = find_sdist(sdists, lib)
    if not found:
        say(f"downloading the {lib.name} {lib.version} sdist ...")
        pip(python, "download", "-q", "--no-binary", ":all:", "--no-deps", "-d", str(sdists), f"{lib.name}=={lib.version}")
        found = find_sdist(sdists, lib)
    if not found:
        raise SystemExit(f"no sdist of {lib.name} {lib.version} in {sdists}")
    pristine = work / "pristine" / lib.name
    if not pristine.exists():
        with tarfile.open(found[0]) as archive:
            top = archive.getnames()[0].split("/")[0]
            archive.extractall(work / "pristine" / "tmp", filter="data")
        (work / "pristine" / "tmp" / top).rename(pristine)
    live = work / "lib" / lib.name
    if not live.exists():
        shutil.copytree(pristine, live)
    stamp = live / ".hotswap-bench-installed"
    if not stamp.exists():
        say(f"installing {lib.name} {lib.version} editable ...")
        pip(python, "install", "-q", "--no-deps", "-e", str(live))
        stamp.write_text(lib.version)
    return live


def find_sdist(sdists: Path, lib: Library) -> list[Path]:
    """``more_itertools-11.2.1.tar.gz`` for more-itertools 11.2.1 (names normalized as PEP 503)."""
    def norm(text: str) -> str:
        return re.sub(r"[-_.]+", "_", text).lower()

    stem = norm(f"{lib.name}-{lib.version}") + "_tar_gz"
    return [p for p in sdists.glob("*.tar.gz") if norm(p.name) == stem]


def library_files(live: Path, lib: Library) -> list[str]:
    """The library's modules (relative paths), tests and excluded modules left out."""
    tests = tuple(str(live / d) + os.sep for d in lib.test_dirs)
    found = []
    for package in lib.packages:
        for path in sorted((live / lib.package_root / package).rglob("*.py")):
            if str(path).startswith(tests):
                continue
            name = module_name(str(path.relative_to(live / lib.package_root)))
            if name not in lib.exclude:
                found.append(str(path.relative_to(live)))
    return found


class Tree:
    """The live copy of a library: reset from the pristine one, edited round by round."""

    def __init__(self, live: Path, pristine: Path, files: list[str]) -> None:
        self.live = live
        self.pristine = pristine
        self.files = files
        self.last_ns = 0

    def reset(self) -> None:
        """Every file as in the sdist, dated back, no bytecode of an edited version left."""
        for path in self.live.rglob("__pycache__"):
            shutil.rmtree(path, ignore_errors=True)
        past = time.time_ns() - PAST_S * 1_000_000_000
        for path in self.pristine.rglob("*"):
            if path.is_file():
                dest = self.live / path.relative_to(self.pristine)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, dest)
                os.utime(dest, ns=(past, past))
        self.last_ns = past

    def read(self, rel: str) -> str:
        return (self.live / rel).read_text()

    def write(self, rel: str, text: str) -> None:
        """Save with a fresh, strictly later mtime (so an mtime check sees every save)."""
        path = self.live / rel
        path.write_text(text)
        self.last_ns = max(time.time_ns(), self.last_ns + 1_000_000)
        os.utime(path, ns=(self.last_ns, self.last_ns))

    def digest(self) -> str:
        """What the library's files hold: a fresh process on the same bytes is the same reference."""
        h = hashlib.sha256()
        for rel in self.files:
            h.update(rel.encode() + b"\0" + (self.live / rel).read_bytes())
        return h.hexdigest()


def apply_round(tree: Tree, lib: Library, key: str, saved: dict[str, str]) -> None:
    """Edit the files for one round (rounds build on each other; ``saved`` keeps what r5/r7 restore)."""
    if key == "r1":
        for rel in tree.files:
            tree.write(rel, COMMENT + tree.read(rel))
    elif key == "r2":
        for rel in tree.files:
            text = tree.read(rel)
            tree.write(rel, text + ("" if text.endswith("\n") else "\n") + UNUSED)
    elif key == "r3":
        for rel in tree.files:
            tree.write(rel, tree.read(rel))
    elif key == "r4":
        text = tree.read(lib.semantic.path)
        if text.count(lib.semantic.old) != 1:
            raise SystemExit(f"{lib.name}: the semantic edit's text is not found exactly once in {lib.semantic.path}")
        saved["r4"] = text
        tree.write(lib.semantic.path, text.replace(lib.semantic.old, lib.semantic.new))
    elif key == "r5":
        tree.write(lib.semantic.path, saved.pop("r4"))
    elif key == "r6":
        saved["r6"] = tree.read(lib.broken)
        tree.write(lib.broken, saved["r6"] + BROKEN)
    elif key == "r7":
        tree.write(lib.broken, saved.pop("r6"))


class ChildCrashed(Exception):
    pass


class Session:
    """A session child seen from the parent: requests out, replies in, with a deadline."""

    def __init__(self, python: Path, spec: dict, env: dict[str, str], log: Path) -> None:
        self.name = spec["reloader"]
        self.log = log
        self.log_file = open(log, "w")  # open for the child's life
        self.proc = subprocess.Popen(
            [str(python), os.path.abspath(__file__), "--child", json.dumps(spec)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log_file,
            env=env, cwd=spec["root"], text=True,
        )
        self.dead = ""

    def request(self, op: str) -> dict:
        self.send(op)
        return self.receive(op)

    def send(self, op: str) -> None:
        if self.dead:
            return
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps({"op": op}) + "\n")
            self.proc.stdin.flush()
        except OSError as error:
            self.crashed(op, error)

    def receive(self, op: str) -> dict:
        if self.dead:
            return {"error": self.dead}
        try:
            return self.reply()
        except (ChildCrashed, OSError) as error:
            self.crashed(op, error)
            return {"error": self.dead}

    def crashed(self, op: str, error: Exception) -> None:
        self.dead = f"{self.name} session crashed during {op!r}: {error}\n{self.log_tail()}"
        self.proc.kill()

    def reply(self) -> dict:
        assert self.proc.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + OP_TIMEOUT_S
        try:
            while True:
                if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                    raise ChildCrashed(f"no reply in {OP_TIMEOUT_S:.0f} s")
                line = self.proc.stdout.readline()
                if not line:
                    raise ChildCrashed(f"exit code {self.proc.wait()}")
                if line.startswith(TAG):
                    return json.loads(line[len(TAG):])
        finally:
            selector.close()

    def log_tail(self) -> str:
        self.log_file.flush()
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])

    def close(self) -> None:
        if not self.dead and self.proc.poll() is None:
            with contextlib.suppress(OSError):
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log_file.close()


class Fresh:
    """A fresh process on the files as they are now, running in the background (or, held, on the
    files as they are now for its imports and as they are at ``go()`` for the suite)."""

    def __init__(self, python: Path, spec: dict, env: dict[str, str], log: Path, hold: bool = False) -> None:
        self.out = log.with_suffix(".json")
        self.log = log
        for stale in (self.out, Path(f"{self.out}.imported"), Path(f"{self.out}.go")):
            stale.unlink(missing_ok=True)
        with open(log, "w") as log_file:
            self.proc = subprocess.Popen(
                [str(python), os.path.abspath(__file__), "--fresh",
                 json.dumps({**spec, "out": str(self.out), "hold": hold})],
                stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=spec["root"],
            )

    def wait_imported(self) -> None:
        deadline = time.monotonic() + OP_TIMEOUT_S
        while not Path(f"{self.out}.imported").exists() and self.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)

    def go(self) -> None:
        Path(f"{self.out}.go").touch()

    def result(self) -> dict:
        try:
            code = self.proc.wait(timeout=OP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            code = "timeout"
        if code != 0 or not self.out.exists():
            tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
            return {"error": f"fresh process failed (exit {code}):\n{tail}"}
        return json.loads(self.out.read_text())


# --------------------------------------------------------------------------
# Comparing a session with the fresh process
# --------------------------------------------------------------------------


@dataclass
class Comparison:
    tests: list[tuple[str, str, str]] = field(default_factory=list)  # (test id, session, fresh)
    contents: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    frames: list[str] = field(default_factory=list)
    # The same names and constants compiled to other instructions: shown, not a difference that counts
    # (a function compiled alone does not know which of its module's globals are imports, so 3.11+
    # calls ``collections.defaultdict()`` through LOAD_METHOD where the whole module uses LOAD_ATTR).
    bytecode: list[str] = field(default_factory=list)
    error: str = ""

    def equal(self) -> bool:
        return not (self.tests or self.contents or self.lines or self.frames or self.error)


def compare(session: dict, fresh: dict) -> Comparison:
    if session.get("error") or fresh.get("error"):
        return Comparison(error=session.get("error") or f"no reference: {fresh.get('error')}")
    result = Comparison()
    mine, theirs = session["suite"]["outcomes"], fresh["suite"]["outcomes"]
    for test in sorted(set(mine) | set(theirs)):
        a, b = mine.get(test, "absent"), theirs.get(test, "absent")
        if a != b:
            result.tests.append((test, a, b))
    raised = (session["suite"].get("raised", ""), fresh["suite"].get("raised", ""))
    if raised[0] != raised[1]:
        result.tests.append(("<the pytest run>", f"raised {raised[0]}" if raised[0] else "ended",
                             f"raised {raised[1]}" if raised[1] else "ended"))
    compare_snapshots(session["snapshot"], fresh["snapshot"], result)
    compare_frames(session, fresh, result)
    return result


def compare_snapshots(mine: dict, theirs: dict, result: Comparison) -> None:
    for module in sorted(set(mine) | set(theirs)):
        a, b = mine.get(module), theirs.get(module)
        if a is None or b is None:
            if (a is None) != (b is None):
                result.contents.append(f"{module}: {'not loaded' if a is None else 'loaded'} in the session, "
                                       f"{'not loaded' if b is None else 'loaded'} in the fresh process")
            continue
        for name in sorted(set(a["names"]) | set(b["names"])):
            x, y = a["names"].get(name), b["names"].get(name)
            if x != y:
                result.contents.append(f"{module}.{name}: {x or 'missing'} in the session, {y or 'missing'} fresh")
        for path in sorted(set(a["codes"]) & set(b["codes"])):
            x, y = a["codes"][path], b["codes"][path]
            if x[3] != y[3]:
                result.contents.append(f"{module}.{path}: other code than the fresh process's (names or constants)")
            elif x[4] != y[4]:
                result.bytecode.append(f"{module}.{path}: other bytecode than the fresh process's, same names and "
                                       "constants (the same source compiled another way)")
            if x[0] != y[0] or x[1] != y[1]:
                result.lines.append(f"{module}.{path}: {x[0]}:{x[1]}, fresh {y[0]}:{y[1]}")
            elif x[2] != y[2]:
                result.lines.append(f"{module}.{path}: first line {x[1]} right, other lines inside differ")
        for path in sorted(set(a["codes"]) ^ set(b["codes"])):
            where = "session" if path in a["codes"] else "fresh process"
            result.contents.append(f"{module}.{path}: a function only in the {where}")


def compare_frames(session: dict, fresh: dict, result: Comparison) -> None:
    """The probes' tracebacks, and the library frames of tests that fail in both processes."""
    for a, b in zip(session["probes"], fresh["probes"]):
        if a != b:
            result.frames.append(f"probe {a['probe']}: {a['exception']} at {fmt_frames(a['frames'])}; "
                                 f"fresh: {b['exception']} at {fmt_frames(b['frames'])}")
    mine, theirs = session["suite"]["details"], fresh["suite"]["details"]
    for test in sorted(set(mine) & set(theirs)):
        if mine[test]["frames"] != theirs[test]["frames"]:
            result.frames.append(f"test {test}: library frames {fmt_frames(mine[test]['frames'])}; "
                                 f"fresh: {fmt_frames(theirs[test]['frames'])}")


def fmt_frames(frames: list[list]) -> str:
    return " > ".join(f"{f[0]}:{f[1]}" for f in frames) or "(none)"


# --------------------------------------------------------------------------
# One library: children, rounds, table
# --------------------------------------------------------------------------


@dataclass
class RoundResult:
    round: Round
    fresh: dict
    fresh_note: str  # "" or "=r2" (same bytes as that round's, result reused), or "import fails: ..."
    reference: dict  # what the sessions are compared with (the fresh one; for r6 the held one)
    sessions: dict[str, dict]
    reloads: dict[str, dict]
    comparisons: dict[str, Comparison]


def child_env(hotswap_dir: Path, scratch: str) -> dict[str, str]:
    """A child's environment: the frozen hotswap, its own IPython profile and pytest temp root
    (processes running at the same time would otherwise clean up each other's ``tmp_path``
    folders), one hash seed for all."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP", "VIRTUAL_ENV")}
    env.update(PYTHONPATH=str(hotswap_dir), IPYTHONDIR=os.path.join(scratch, "ipython"),
               PYTEST_DEBUG_TEMPROOT=os.path.join(scratch, "pytest"), PYTHONHASHSEED="0")
    for folder in (env["IPYTHONDIR"], env["PYTEST_DEBUG_TEMPROOT"]):
        os.makedirs(folder, exist_ok=True)
    return env


def library_spec(lib: Library, live: Path, files: list[str]) -> dict:
    root = str(live.resolve())
    modules = [module_name(str(Path(f).relative_to(lib.package_root))) if lib.package_root else module_name(f)
               for f in files]
    return {"library": lib.name, "root": root, "library_files": files, "modules": modules,
            "test_dirs": list(lib.test_dirs), "pytest_args": list(lib.pytest_args), "probes": list(lib.probes),
            "hypothesis_examples": lib.hypothesis_examples}


def run_library(lib: Library, python: Path, work: Path, hotswap_dir: Path, rounds: list[Round]) -> list[RoundResult]:
    live = work / "lib" / lib.name
    tree = Tree(live, work / "pristine" / lib.name, library_files(live, lib))
    tree.reset()
    spec = library_spec(lib, live, tree.files)
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    scratch = {r: tempfile.mkdtemp(prefix=f"hotswap-bench-{r}-") for r in (*RELOADERS, "fresh")}
    env = child_env(hotswap_dir, scratch["fresh"])
    sessions = {r: Session(python, {**spec, "reloader": r}, child_env(hotswap_dir, scratch[r]),
                           logs / f"{lib.name}-{r}.log") for r in RELOADERS}
    results: list[RoundResult] = []
    try:
        started = {r: s.request("start") for r, s in sessions.items()}
        for r, reply in started.items():
            if reply.get("import_errors"):
                say(f"   note: {r} session could not import {reply['import_errors']}")
        by_digest: dict[str, tuple[str, dict]] = {}
        saved: dict[str, str] = {}
        for index, rnd in enumerate(rounds):
            result = run_round(lib, tree, rnd, index, sessions, python, spec, env, logs, by_digest, saved)
            results.append(result)
            print_round_progress(result)
    finally:
        for session in sessions.values():
            session.close()
        for folder in scratch.values():
            shutil.rmtree(folder, ignore_errors=True)
        tree.reset()
    return results


def run_round(lib: Library, tree: Tree, rnd: Round, index: int, sessions: dict[str, Session], python: Path,
              spec: dict, env: dict[str, str], logs: Path, by_digest: dict, saved: dict) -> RoundResult:
    """Edit; each session's reload cell (timed, one after the other); then both sessions' suites
    and a fresh process at the same time; compare."""
    log = logs / f"{lib.name}-fresh-{rnd.key}.log"
    held = Fresh(python, spec, env, log, hold=True) if rnd.key == "r6" else None
    if held is not None:
        held.wait_imported()
    apply_round(tree, lib, rnd.key, saved)
    if held is not None:
        held.go()
    order = list(RELOADERS) if index % 2 == 0 else list(reversed(RELOADERS))
    reloads = {r: sessions[r].request("reload") for r in order} if rnd.key != "r0" else {}
    digest = tree.digest()
    fresh_proc = held or (Fresh(python, spec, env, log) if digest not in by_digest else None)
    for r in order:
        sessions[r].send("suite")
    results = {r: sessions[r].receive("suite") for r in order}
    note = ""
    if held is not None:
        fresh = held.result()
        broken = fresh.get("syntax_errors") or {}
        note = "import fails: " + next(iter(broken.values())) if broken else "held (the broken save compiled?)"
    else:
        if fresh_proc is not None:
            by_digest[digest] = (rnd.key, fresh_proc.result())
        first_key, fresh = by_digest[digest]
        note = "" if first_key == rnd.key else f"={first_key}"
        if fresh.get("import_errors"):
            say(f"   note: {rnd.key}: the fresh process could not import {fresh['import_errors']}")
    comparisons = {r: compare(results[r], fresh) for r in RELOADERS}
    for r, reload in reloads.items():
        if reload.get("error") and not comparisons[r].error:
            comparisons[r].error = f"the reload cell: {reload['error']}"
    return RoundResult(rnd, fresh, note, fresh, results, reloads, comparisons)


def print_round_progress(result: RoundResult) -> None:
    words = ", ".join(f"{r} {'=' if c.equal() else 'DIFFERS'}" for r, c in result.comparisons.items())
    say(f"   {result.round.key} done ({words})")


def counts(data: dict) -> str:
    if data.get("error"):
        return "crash"
    outcomes = data["suite"]["outcomes"].values()
    passed = sum(o == "passed" for o in outcomes)
    failed = sum(o in ("failed", "error") for o in outcomes)
    return f"{passed}/{failed}"


def reload_time(data: dict | None) -> str:
    if not data or "us" not in data:
        return "-"
    us = data["us"]
    return f"{us / 1e6:.2f} s" if us >= 1e6 else (f"{us / 1000:.0f} ms" if us >= 10_000 else f"{us / 1000:.1f} ms")


def print_table(lib: Library, results: list[RoundResult], seconds: float, spec: dict) -> None:
    say()
    say(f"{lib.name} {lib.version}: {len(spec['library_files'])} modules; suite: pytest {' '.join(lib.pytest_args)}"
        + (f" ({lib.note})" if lib.note else ""))
    say(f"   semantic edit (r4): {lib.semantic.what}; broken save (r6): {lib.broken}; {seconds:.0f} s")
    say("   tests: passed/failed (failed includes errors), and (N) tests whose outcome differs from fresh;")
    say("   contents, lines, tb: differences from fresh (module names/kinds/code; first line or instruction lines; "
        "traceback frames); bc: functions with the same names and constants compiled to other instructions "
        "(shown, not counted)")
    header = (f"   {'round':<44} {'fresh':<18} {'hotswap':<13} {'autoreload':<13} {'contents h/a':>12} "
              f"{'lines h/a':>10} {'tb h/a':>7} {'bc h/a':>7} {'reload h/a':>19}")
    say(header)
    for res in results:
        fresh = counts(res.fresh)
        if res.fresh_note:
            fresh = f"{fresh} held*" if res.round.key == "r6" else f"{fresh} {res.fresh_note}"
        cells = {}
        for r in RELOADERS:
            c = res.comparisons[r]
            cells[r] = "crash" if c.error else f"{counts(res.sessions[r])} ({len(c.tests)})"
        h, a = res.comparisons["hotswap"], res.comparisons["autoreload"]
        say(f"   {res.round.key + ' ' + res.round.what:<44} {fresh:<18} {cells['hotswap']:<13} {cells['autoreload']:<13} "
            f"{len(h.contents):>5}/{len(a.contents):<6} {len(h.lines):>4}/{len(a.lines):<5} "
            f"{len(h.frames):>3}/{len(a.frames):<3} {len(h.bytecode):>3}/{len(a.bytecode):<3} "
            f"{reload_time(res.reloads.get('hotswap')):>9}/{reload_time(res.reloads.get('autoreload')):<9}")
    for res in results:
        if res.round.key == "r6":
            say(f"   *{res.round.key}: a fresh process: {res.fresh_note}.")
            say("    'held': the reference is a process that imported the last good files before the broken save and ran "
                "the suite after it (what keeping the old code gives)")
            for r in RELOADERS:
                said = (res.reloads.get(r) or {}).get("said", "")
                say(f"      {r} said: " + (" | ".join(said.splitlines()[:4])[:400] if said else "(nothing)"))
    semantic = next((res for res in results if res.round.key == "r4"), None)
    base = next((res for res in results if res.round.key == "r0"), None)
    if semantic and base and counts(semantic.fresh) == counts(base.fresh):
        say("   note: the semantic edit changed no test's outcome in the fresh process")


def print_differences(results: list[RoundResult], limit: int = 10) -> None:
    """Per reloader and round, what differs from the fresh process: only what is new since the
    reloader's previous round (a difference that stays is said once, then counted)."""
    for r in RELOADERS:
        seen: set[str] = set()
        for res in results:
            c = res.comparisons[r]
            if c.equal():
                seen = set()
                continue
            say(f"   {r}, {res.round.key} ({res.round.what}):")
            if c.error:
                say("      " + c.error.replace("\n", "\n      ")[:3000])
                continue
            items = difference_lines(res, r)
            new = [(key, lines) for key, lines in items if key not in seen]
            for _, lines in new[:limit]:
                for line in lines:
                    say(f"      {line[:300]}")
            if len(new) > limit:
                say(f"      ... and {len(new) - limit} more new differences")
            if len(items) > len(new):
                say(f"      ({len(items) - len(new)} differences as in the previous round)")
            seen = {key for key, _ in items}


def difference_lines(res: RoundResult, reloader: str) -> list[tuple[str, list[str]]]:
    """(a key that says whether it is the same difference as before, the lines that tell it)."""
    c = res.comparisons[reloader]
    details_s = res.sessions[reloader]["suite"]["details"]
    details_f = res.reference["suite"]["details"]
    items: list[tuple[str, list[str]]] = []
    for test, mine, theirs in c.tests:
        tail = (details_s.get(test) or details_f.get(test) or {}).get("tail", [])
        lines = [f"test {test}: {mine} in the session, {theirs} fresh"] + [f"   | {t[:160]}" for t in tail[-4:]]
        items.append((f"test {test} {mine} {theirs}", lines))
    for label, found in (("contents", c.contents), ("lines", c.lines), ("traceback", c.frames)):
        items.extend((f"{label}: {item}", [f"{label}: {item}"]) for item in found)
    return items


def save_results(path: Path, results: list[RoundResult]) -> None:
    """Every reply and snapshot of the run, for a closer look at a difference (``--work`` keeps it)."""
    rows = [{"round": res.round.key, "fresh": res.fresh, "fresh_note": res.fresh_note, "sessions": res.sessions,
             "reloads": res.reloads} for res in results]
    path.write_text(json.dumps(rows))


def hotswap_equal(results: list[RoundResult]) -> tuple[bool, list[str]]:
    """Does hotswap equal a fresh process in every round? (A broken save: equal to the last good
    files' fresh process, and it said so.)"""
    bad = []
    for res in results:
        ok = res.comparisons["hotswap"].equal()
        if res.round.key == "r6" and not (res.reloads.get("hotswap") or {}).get("said"):
            ok = False
        if not ok:
            bad.append(res.round.key)
    return not bad, bad


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------


def preflight(python: Path, hotswap_dir: Path) -> str | None:
    """hotswap's version in the scratch venv, or None if it does not import there."""
    proc = subprocess.run([str(python), "-c", "import hotswap, hotswap._ipython; print(hotswap.__version__)"],
                          env={**os.environ, "PYTHONPATH": str(hotswap_dir)}, capture_output=True, text=True)
    if proc.returncode != 0:
        say(f"the hotswap source does not import in the scratch venv:\n{proc.stderr[-3000:]}")
        return None
    return proc.stdout.strip()


def load_average() -> str:
    """Other work on the machine slows the suites down (the run itself keeps about 2 CPUs busy)."""
    try:
        return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "load average unknown"


def venv_versions(python: Path) -> str:
    code = ("import sys, IPython, pytest, hypothesis; "
            "print(f'python {sys.version.split()[0]}, IPython {IPython.__version__}, pytest {pytest.__version__}, "
            "hypothesis {hypothesis.__version__}')")
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True).stdout.strip()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--libs", default=",".join(LIBRARIES),
                        help=f"comma-separated, of: {', '.join(LIBRARIES)} (default: all)")
    parser.add_argument("--quick", action="store_true", help=f"rounds {', '.join(QUICK_ROUNDS)} only")
    parser.add_argument("--work", help="where the scratch venv, sdists, library copies and logs are kept between "
                        "runs (default: a temporary directory, removed at the end)")
    parser.add_argument("--src", help="the hotswap package (or the folder holding it) to measure; default: the "
                        "src/ folder of this checkout (copied at start: edits during the run do not count)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--fresh", help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if args.child:
        return child_main(json.loads(args.child))
    if args.fresh:
        return fresh_main(json.loads(args.fresh))
    names = [n.strip() for n in args.libs.split(",") if n.strip()]
    unknown = [n for n in names if n not in LIBRARIES]
    if unknown:
        say(f"unknown libraries: {', '.join(unknown)} (known: {', '.join(LIBRARIES)})")
        return 2
    libraries = [LIBRARIES[n] for n in names]
    rounds = [r for r in ROUNDS if not args.quick or r.key in QUICK_ROUNDS]
    work = Path(args.work).resolve() if args.work else Path(tempfile.mkdtemp(prefix="hotswap-real-libraries-"))
    work.mkdir(parents=True, exist_ok=True)
    origin, hotswap_dir, state, digest = snapshot_source(args.src or str(Path(__file__).resolve().parents[1] / "src"))
    try:
        return run_all(libraries, rounds, work, hotswap_dir, origin, state, digest, args.quick)
    finally:
        shutil.rmtree(hotswap_dir, ignore_errors=True)
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


def run_all(libraries: list[Library], rounds: list[Round], work: Path, hotswap_dir: Path,
            origin: str, state: str, digest: str, quick: bool) -> int:
    started = time.perf_counter()
    python = ensure_venv(work, libraries)
    lives = {lib.name: ensure_library(work, python, lib) for lib in libraries}
    version = preflight(python, hotswap_dir)
    if version is None:
        return 2
    for lib in libraries:
        missing = [d for d in lib.test_dirs if not (lives[lib.name] / d).is_dir()]
        if missing:
            say(f"note: the {lib.name} sdist lacks its test folder(s) {missing}")
    say("real libraries' suites in a live IPython session: hotswap vs IPython's autoreload (both "
        "`%autoreload 2`) vs a fresh process")
    say(f"{venv_versions(python)}, hotswap {version}; {os.cpu_count()} CPUs; "
        f"{'quick' if quick else 'full'} run: rounds {', '.join(r.key for r in rounds)}")
    say(f"hotswap measured: a copy of {origin} taken at start ({state}; sha256 of files {digest})")
    say(f"at start: {load_average()} (the run keeps about 2 CPUs busy: more than that is other work, and slower suites)")
    say(f"libraries: sdists installed editable (pip install -e) into the scratch venv {work / 'venv'}")
    say("fresh = a new process importing the same files, running the suite, snapshotting; '=rN': same bytes as "
        "round rN, its result reused")
    failures: list[str] = []
    summaries: list[str] = []
    for lib in libraries:
        say()
        say(f"{lib.name} {lib.version} ...")
        lib_started = time.perf_counter()
        results = run_library(lib, python, work, hotswap_dir, rounds)
        spec = library_spec(lib, lives[lib.name], library_files(lives[lib.name], lib))
        save_results(work / "logs" / f"{lib.name}-results.json", results)
        print_table(lib, results, time.perf_counter() - lib_started, spec)
        print_differences(results)
        ok, bad = hotswap_equal(results)
        auto_bad = [res.round.key for res in results if not res.comparisons["autoreload"].equal()]
        summaries.append(f"{lib.name}: hotswap equals a fresh process in every round: "
                         f"{'yes' if ok else 'no (' + ', '.join(bad) + ')'}; autoreload: "
                         f"{'yes' if not auto_bad else 'no (' + ', '.join(auto_bad) + ')'}")
        if not ok:
            failures.append(lib.name)
    say()
    say(f"summary ({time.perf_counter() - started:.0f} s; at the end: {load_average()})")
    for line in summaries:
        say(f"  {line}")
    if failures:
        say(f"exit code 1: hotswap differs from a fresh process for {', '.join(failures)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
