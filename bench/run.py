#!/usr/bin/env python
"""hotswap against IPython's own autoreload and against no extension, side by side.

    python bench/run.py            # full run (about 6 minutes on 2 cores)
    python bench/run.py --quick    # about 2 minutes
    python bench/run.py --profile edit-core          # cProfile of one scenario's cells
    python bench/run.py --profile idle-5000:autoreload

Scenarios (see bench/README.md):

* idle-N: N user modules (N = 500, 2000, 5000) imported in the shell; the cost
  of a trivial cell, and of the cell after a one-function edit, at that N.
* edit-func, edit-core, edit-class: a project of 20 small modules, a ~200-line
  module, ``core`` with 200 modules doing ``from core import THRESHOLD, helper``,
  and a class with 200 000 live instances; the cell after a one-function edit,
  after changing ``core.THRESHOLD``, after editing a method of that class.
* the same three with a heap of 2 500 000 more live objects (``-heap``).
* section 4 (``bench/footprint.py``, also runnable alone): the import of 1 000
  modules, ``%load_ext`` with them loaded, resident memory, memory over 2 000
  edit cycles and over 80 edits of a 5 MB module, the worst cell with a busy
  thread; against no extension as well.

Every (reloader, scenario) runs in a fresh subprocess with a real
``InteractiveShell``, real ``run_cell`` cells and real module files. The
no-extension baseline is the same process with the reloader's hooks switched
off, interleaved with the measured cells. After every edit an untimed cell
checks that the new code runs.

Exit code 1 if a hotswap correctness check failed or a measurement crashed;
targets missed are printed as FAIL lines but do not change the exit code.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from _common import add_source_argument, snapshot_source

RELOADERS = ("autoreload", "hotswap")  # the %load_ext names
RESULT_TAG = "BENCH-RESULT "
PAST_S = 10  # module files are dated this far back: steady state, not "just saved"
PER_PACKAGE = 25  # idle-N: user modules come in packages of an __init__ + 24 submodules
N_SMALL = 20  # edit-*: small user modules besides the ones edited
N_DEPENDENTS = 200  # edit-*: modules doing `from core import THRESHOLD, helper`
N_INSTANCES = 200_000  # edit-*: live instances of particles.Particle in the user namespace
HEAP = 2_500_000  # edit-*-heap: extra live, gc-tracked objects in the user namespace
EDITED = "usermod_big"

IDLE_TARGET_US = 100.0  # idle cell at 5000 modules: within 0.1 ms of no extension
IDLE_RATIO_TARGET = 20.0  # ... and at least 20x less overhead than autoreload
HEAP_TOLERANCE = 1.5  # "independent of the heap": heap/no-heap cost at most this ...
HEAP_SLACK_US = 500.0  # ... or at most this much more, whichever is larger

EDIT_CASES = {
    "func": "one-function edit (usermod_big.target body)",
    "core": f"core.THRESHOLD changed ({N_DEPENDENTS} modules `from core import THRESHOLD, helper`)",
    "class": f"method body of a class with {N_INSTANCES:,} live instances",
}


# --------------------------------------------------------------------------
# Module sources
# --------------------------------------------------------------------------


def small_module_source(name: str) -> str:
    return (
        f'"""{name}: a small module of the benchmark."""\n'
        "CONSTANT = 7\n\n\n"
        "def helper(x):\n"
        "    return x * CONSTANT\n\n\n"
        "def other(x, y=2):\n"
        "    return helper(x) + y\n\n\n"
        "class Thing:\n"
        "    def __init__(self, v):\n"
        "        self.v = v\n\n"
        "    def value(self):\n"
        "        return helper(self.v)\n"
    )


def edited_body(edit: int, indent: str) -> list[str]:
    """A body returning ``1000 + edit``; odd and even edits differ in length, so code below moves."""
    if edit % 2 == 0:
        return [f"{indent}value = 1000", f"{indent}value += {edit}", f"{indent}return value"]
    return [f"{indent}return sum([1000, {edit}])"]


def big_module_source(edit: int) -> str:
    """~200 lines, 20 functions, 3 classes; ``target()`` returns ``1000 + edit``."""
    lines = ['"""usermod_big: the module the benchmark edits."""', "import math", "", "SCALE = 3", ""]

    def function(i: int) -> list[str]:
        return [
            "",
            f"def func_{i:02d}(x, y=1):",
            "    total = 0",
            "    for k in range(x):",
            f"        total += k * y + {i}",
            "    return total // SCALE if total > 100 else total",
            "",
        ]

    for i in range(10):
        lines += function(i)
    lines += ["", "def target():", '    """The function the benchmark edits."""']
    lines += edited_body(edit, "    ")
    lines += [""]
    for i in range(10, 19):
        lines += function(i)
    lines += [
        "",
        "class Shape:",
        '    """A base class."""',
        "",
        "    sides = 0",
        "",
        "    def __init__(self, size):",
        "        self.size = size",
        "",
        "    def area(self):",
        "        return self.size * self.size",
        "",
        "    def perimeter(self):",
        "        return self.sides * self.size",
        "",
        "    def __repr__(self):",
        "        return f'{type(self).__name__}({self.size})'",
        "",
        "",
        "class Circle(Shape):",
        '    """A subclass."""',
        "",
        "    def area(self):",
        "        return math.pi * self.size ** 2",
        "",
        "    def perimeter(self):",
        "        return 2 * math.pi * self.size",
        "",
        "    @property",
        "    def diameter(self):",
        "        return 2 * self.size",
        "",
        "",
        "class Registry:",
        '    """A class with a classmethod and a staticmethod."""',
        "",
        "    items = {}",
        "",
        "    @classmethod",
        "    def add(cls, key, value):",
        "        cls.items[key] = value",
        "        return value",
        "",
        "    @staticmethod",
        "    def describe(value):",
        "        return f'<{value}>'",
        "",
        "    def __len__(self):",
        "        return len(self.items)",
        "",
        "",
        "SHAPES = [Shape(1), Circle(2)]",
    ]
    return "\n".join(lines) + "\n"


def core_threshold(edit: int) -> int:
    return 100 + edit


def core_source(edit: int) -> str:
    """Constants and functions; an edit changes ``THRESHOLD`` only."""
    return (
        '"""core: constants and helpers that many modules import by name."""\n'
        "import math\n\n"
        f"THRESHOLD = {core_threshold(edit)}\n"
        "SCALE = 3\n"
        'UNITS = ("m", "s", "kg")\n\n\n'
        "def helper(x):\n"
        "    return x * SCALE\n\n\n"
        "def clamp(x, low=0):\n"
        "    return max(low, min(x, THRESHOLD))\n\n\n"
        "def norm(xs):\n"
        "    return math.sqrt(sum(x * x for x in xs))\n\n\n"
        "class Config:\n"
        "    def __init__(self, **kw):\n"
        "        self.values = dict(kw)\n\n"
        "    def get(self, key, default=None):\n"
        "        return self.values.get(key, default)\n"
    )


def dependent_source(i: int) -> str:
    return (
        f'"""dep_{i:03d}: takes names from core."""\n'
        "from core import THRESHOLD, helper\n\n"
        "LIMIT = THRESHOLD * 2\n\n\n"
        "def threshold():\n"
        "    return THRESHOLD\n\n\n"
        "def scaled(x):\n"
        "    return helper(x) + THRESHOLD\n\n\n"
        "class Gate:\n"
        "    def __init__(self, v):\n"
        "        self.v = v\n\n"
        "    def is_open(self):\n"
        "        return self.v > THRESHOLD\n"
    )


def particles_source(edit: int) -> str:
    """A class whose ``energy()`` returns ``1000 + edit``; a subclass; a factory."""
    lines = [
        '"""particles: a class with many live instances."""',
        "import math",
        "",
        "",
        "class Particle:",
        '    """A particle."""',
        "",
        '    kind = "p"',
        "",
        "    def __init__(self, i):",
        "        self.i = i",
        "        self.x = i * 0.5",
        "",
        "    def energy(self):",
        *edited_body(edit, "        "),
        "",
        "    def distance(self, other):",
        "        return math.hypot(self.x - other.x, 0.0)",
        "",
        "    def __repr__(self):",
        '        return f"Particle({self.i})"',
        "",
        "",
        "class Heavy(Particle):",
        '    kind = "h"',
        "",
        "    def mass(self):",
        "        return 2 * self.i",
        "",
        "",
        "def make(n):",
        "    return [Particle(i) for i in range(n)]",
    ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# Module trees
# --------------------------------------------------------------------------


@dataclass
class Tree:
    user_dir: Path
    modules: list[str] = field(default_factory=list)  # import names, in import order
    files: list[Path] = field(default_factory=list)
    written_ns: int = 0  # ctime of the last file written (utime cannot date a ctime back)

    def add(self, module: str, relpath: str, text: str) -> Path:
        path = self.user_dir / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        self.files.append(path)
        if module:
            self.modules.append(module)
        return path

    def date_back(self) -> None:
        """Every file's mtime ``PAST_S`` seconds back, before anything imports it."""
        past = time.time_ns() - PAST_S * 1_000_000_000
        for path in self.files:
            os.utime(path, ns=(past, past))
        self.written_ns = max(os.stat(path).st_ctime_ns for path in self.files)


def add_packages(tree: Tree, count: int, prefix: str = "app") -> None:
    """``count`` small user modules, as packages of an ``__init__`` and ``PER_PACKAGE - 1`` submodules."""
    made = package = 0
    while made < count:
        pkg = f"{prefix}_{package:03d}"
        tree.add(pkg, f"{pkg}/__init__.py", small_module_source(pkg))
        made += 1
        for j in range(1, PER_PACKAGE):
            if made >= count:
                break
            tree.add(f"{pkg}.m_{j:02d}", f"{pkg}/m_{j:02d}.py", small_module_source(f"{pkg}.m_{j:02d}"))
            made += 1
        package += 1


def build_idle_tree(root: Path, n: int) -> Tree:
    """``n`` user modules: ``usermod_big`` and ``n - 1`` in packages."""
    tree = Tree(root / "user")
    add_packages(tree, n - 1)
    tree.add(EDITED, f"{EDITED}.py", big_module_source(0))
    tree.date_back()
    return tree


def build_project_tree(root: Path) -> Tree:
    """The edit scenarios' project: small modules, usermod_big, core and its dependents, particles."""
    tree = Tree(root / "user")
    for i in range(N_SMALL):
        tree.add(f"usermod_{i:02d}", f"usermod_{i:02d}.py", small_module_source(f"usermod_{i:02d}"))
    tree.add(EDITED, f"{EDITED}.py", big_module_source(0))
    tree.add("core", "core.py", core_source(0))
    for i in range(N_DEPENDENTS):
        tree.add(f"dep_{i:03d}", f"dep_{i:03d}.py", dependent_source(i))
    tree.add("particles", "particles.py", particles_source(0))
    tree.date_back()
    return tree


def wait_until_settled(tree: Tree) -> None:
    """Sleep until every file's ctime is older than hotswap's racy window.

    hotswap re-hashes a file it looks at whose mtime *or ctime* is within 2 s
    of its last read. The mtimes are dated back, but ``os.utime`` sets the
    ctime to now, so a steady state (files saved a while ago) needs this wait.
    """
    try:
        from hotswap._source import RACY_WINDOW_NS
    except ImportError:
        RACY_WINDOW_NS = 2_000_000_000
    delay = (tree.written_ns + RACY_WINDOW_NS + 300_000_000 - time.time_ns()) / 1e9
    if delay > 0:
        time.sleep(delay)


# --------------------------------------------------------------------------
# The child: one reloader, one scenario, one fresh process
# --------------------------------------------------------------------------


class Hooks:
    """The event callbacks a reloader registered, so they can be switched off and on.

    With them off, the shell runs cells exactly as without the extension: that
    is the no-extension baseline, measured in the same process.
    """

    def __init__(self, shell, before: dict[str, list]) -> None:
        self.shell = shell
        self.added = [
            (event, callback)
            for event, callbacks in shell.events.callbacks.items()
            for callback in callbacks
            if callback not in before.get(event, [])
        ]
        self.is_on = True

    def off(self) -> None:
        if self.is_on:
            for event, callback in self.added:
                self.shell.events.unregister(event, callback)
            self.is_on = False

    def on(self) -> None:
        if not self.is_on:
            for event, callback in self.added:
                self.shell.events.register(event, callback)
            self.is_on = True


class Timer:
    """Times ``run_cell``; with a profiler, profiles the cells run with the hooks on."""

    def __init__(self, shell, hooks: Hooks, profile: bool) -> None:
        self.shell = shell
        self.hooks = hooks
        self.profilers: dict[str, object] = {}
        self.profile = profile

    def cell(self, source: str = "pass", label: str = "idle") -> float:
        """Wall time of one ``run_cell``, in microseconds."""
        profiler = None
        if self.profile and self.hooks.is_on:
            import cProfile

            profiler = self.profilers.setdefault(label, cProfile.Profile())
            profiler.enable()
        start = time.perf_counter_ns()
        self.shell.run_cell(source)
        elapsed = (time.perf_counter_ns() - start) / 1000
        if profiler is not None:
            profiler.disable()
        return elapsed

    def report(self, reloader: str, name: str) -> None:
        import pstats

        for label, profiler in self.profilers.items():
            print(f"\n===== cProfile: {reloader} / {name} / {label} cells (cumulative) =====", file=sys.stderr)
            stats = pstats.Stats(profiler, stream=sys.stderr)
            stats.sort_stats("cumulative").print_stats(30)
            print(f"===== cProfile: {reloader} / {name} / {label} cells (own time) =====", file=sys.stderr)
            stats.sort_stats("tottime").print_stats(15)


def run(shell, source: str) -> None:
    result = shell.run_cell(source)
    if not result.success:
        raise RuntimeError(f"benchmark cell failed: {source[:80]!r}: {result.error_in_exec or result.error_before_exec}")


def start_shell(tree: Tree, reloader: str):
    sys.path.insert(0, str(tree.user_dir))
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    before = {event: list(callbacks) for event, callbacks in shell.events.callbacks.items()}
    run(shell, f"%load_ext {reloader}")
    run(shell, "%autoreload 2")
    return shell, Hooks(shell, before)


def import_all(shell, modules: list[str], chunk: int = 500) -> float:
    """Import the modules in ``import a, b.c, ...`` cells; seconds taken."""
    start = time.perf_counter()
    for i in range(0, len(modules), chunk):
        run(shell, "import " + ", ".join(modules[i : i + chunk]))
    return time.perf_counter() - start


def watched_count(shell, reloader: str) -> int | None:
    if reloader != "hotswap":
        return None
    try:
        from hotswap._ipython import session_of

        session = session_of(shell)
        return len(session.reloader.watchlist) if session else None
    except (ImportError, AttributeError):
        return None


class Checks:
    """Per check label: edits where it held, edits checked, the first miss."""

    def __init__(self) -> None:
        self.data: dict[str, list] = {}

    def add(self, label: str, ok: bool, miss: str = "") -> None:
        entry = self.data.setdefault(label, [0, 0, ""])
        entry[0] += int(ok)
        entry[1] += 1
        if not ok and not entry[2]:
            entry[2] = miss


def write_edit(path: Path, text: str, last_ns: int) -> int:
    """Save a new version with a fresh, strictly later mtime (so mtime checks see every edit)."""
    path.write_text(text)
    last_ns = max(time.time_ns(), last_ns + 1_000_000)
    os.utime(path, ns=(last_ns, last_ns))
    return last_ns


def edit_loop(shell, hooks: Hooks, timer: Timer, case: str, tree: Tree, edits: int, between: int, baseline: list[float], checks: Checks) -> list[float]:
    """Edit, time the next cell, check the new code ran in an untimed cell; ``edits`` times."""
    user = tree.user_dir
    path = {"func": user / f"{EDITED}.py", "core": user / "core.py", "class": user / "particles.py"}[case]
    source = {"func": big_module_source, "core": core_source, "class": particles_source}[case]
    last_ns = os.stat(path).st_mtime_ns
    times: list[float] = []
    for edit in range(1, edits + 1):
        last_ns = write_edit(path, source(edit), last_ns)
        times.append(timer.cell(label=f"edit-{case}"))
        check_edit(shell, case, edit, checks)
        hooks.off()  # more baseline samples between edits
        baseline.extend(timer.cell() for _ in range(between))
        hooks.on()
    return times


def check_edit(shell, case: str, edit: int, checks: Checks) -> None:
    """Did the new code run, where the user holds it? (An untimed cell, hooks on.)"""
    ns = shell.user_ns
    want = 1000 + edit
    if case == "func":
        run(shell, f"_bench_check = ({EDITED}.target(), target())")
        got_module, got_from = ns["_bench_check"]
        checks.add(f"{EDITED}.target()", got_module == want, f"edit {edit}: {EDITED}.target() -> {got_module}, expected {want}")
        checks.add("target() from `from usermod_big import target`", got_from == want, f"edit {edit}: target() -> {got_from}, expected {want}")
    elif case == "core":
        want = core_threshold(edit)
        run(shell, "_bench_check = (core.THRESHOLD, [m.threshold() for m in _bench_deps], THRESHOLD)")
        got_core, got_deps, got_user = ns["_bench_check"]
        seen = sum(v == want for v in got_deps)
        checks.add("core.THRESHOLD", got_core == want, f"edit {edit}: core.THRESHOLD -> {got_core}, expected {want}")
        checks.add(
            "dependents see new value",
            seen == len(got_deps),
            f"edit {edit}: {seen}/{len(got_deps)} dep_NNN.threshold() return {want} "
            f"(dep_000.threshold() -> {got_deps[0]})",
        )
        checks.add(
            "user namespace THRESHOLD (`from core import`)",
            got_user == want,
            f"edit {edit}: THRESHOLD -> {got_user}, expected {want}",
        )
    else:
        run(shell, "_bench_check = (_bench_instances[0].energy(), _bench_instances[-1].energy(), Particle(-1).energy())")
        first, last, fresh = ns["_bench_check"]
        checks.add("instances[0].energy()", first == want, f"edit {edit}: instances[0].energy() -> {first}, expected {want}")
        checks.add("instances[-1].energy()", last == want, f"edit {edit}: instances[-1].energy() -> {last}, expected {want}")
        checks.add("Particle(...).energy() (`from particles import Particle`)", fresh == want, f"edit {edit}: -> {fresh}, expected {want}")


def child_idle(spec: dict, root: Path) -> dict:
    tree = build_idle_tree(root, spec["n"])
    shell, hooks = start_shell(tree, spec["reloader"])
    timer = Timer(shell, hooks, spec.get("profile", False))
    import_s = import_all(shell, tree.modules)
    run(shell, f"from {EDITED} import target")
    gc.collect()
    wait_until_settled(tree)
    for _ in range(spec["warmup"]):
        hooks.on()
        timer.cell(label="warmup")
        hooks.off()
        timer.cell()
    timer.profilers.pop("warmup", None)
    block = spec["block"]
    on: list[float] = []
    off: list[float] = []
    for r in range(max(1, spec["cells"] // block)):
        # alternate which comes first, so neither side always follows the other
        for state in (("on", "off") if r % 2 == 0 else ("off", "on")):
            getattr(hooks, state)()
            samples = on if state == "on" else off
            samples.extend(timer.cell() for _ in range(block))
    hooks.on()

    # the cell after a one-function edit, at this N
    checks = Checks()
    baseline = list(off[-spec["block"] :])
    times = edit_loop(shell, hooks, timer, "func", tree, spec["edits"], spec["between"], baseline, checks)
    base = statistics.median(baseline)
    if spec.get("profile"):
        timer.report(spec["reloader"], spec["name"])
    return {
        "baseline_us": statistics.median(off),
        "with_us": statistics.median(on),
        "overhead_us": statistics.median(on) - statistics.median(off),
        "import_s": import_s,
        "sys_modules": len(sys.modules),
        "watched": watched_count(shell, spec["reloader"]),
        "edit_first_us": times[0] - base,
        "edit_us": statistics.median([t - base for t in times[1:]] or [times[0] - base]),
        "checks": checks.data,
    }


def child_edit(spec: dict, root: Path) -> dict:
    tree = build_project_tree(root)
    shell, hooks = start_shell(tree, spec["reloader"])
    timer = Timer(shell, hooks, spec.get("profile", False))
    import_all(shell, tree.modules)
    run(shell, f"from {EDITED} import target")
    run(shell, "from core import THRESHOLD, helper")
    run(shell, f"_bench_deps = [__import__(f'dep_{{i:03d}}') for i in range({N_DEPENDENTS})]")
    run(shell, "from particles import Particle")
    # held by the user's namespace, as a session's data would be
    run(shell, f"_bench_instances = [Particle(i) for i in range({N_INSTANCES})]")
    if spec["heap"]:
        run(shell, f"_bench_heap = [[k] for k in range({spec['heap']})]")
    gc.collect()
    wait_until_settled(tree)
    for _ in range(spec["warmup"]):
        timer.cell(label="warmup")
    timer.profilers.pop("warmup", None)
    hooks.off()
    baseline = [timer.cell() for _ in range(spec["block"])]
    hooks.on()
    checks = Checks()
    times = edit_loop(shell, hooks, timer, spec["case"], tree, spec["edits"], spec["between"], baseline, checks)
    base = statistics.median(baseline)
    costs = [t - base for t in times]
    later = costs[1:] or costs  # the first edit after the imports is reported on its own
    if spec.get("profile"):
        timer.report(spec["reloader"], spec["name"])
    return {
        "baseline_us": base,
        "edit_first_us": costs[0],
        "edit_us": statistics.median(later),
        "edit_min_us": min(later),
        "edit_max_us": max(later),
        "gc_objects": len(gc.get_objects()),
        "sys_modules": len(sys.modules),
        "watched": watched_count(shell, spec["reloader"]),
        "checks": checks.data,
    }


def child_main(spec: dict) -> None:
    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="hotswap-bench-"))
    try:
        result = (child_idle if spec["kind"] == "idle" else child_edit)(spec, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    result["child_s"] = time.perf_counter() - started
    sys.stdout.flush()
    print(RESULT_TAG + json.dumps(result), flush=True)


# --------------------------------------------------------------------------
# The parent: run the children, print tables, ratios and targets
# --------------------------------------------------------------------------


class ChildFailed(Exception):
    pass


def run_child(spec: dict, pythonpath: str) -> dict:
    env = dict(os.environ)
    ipython_dir = tempfile.mkdtemp(prefix="hotswap-bench-ipython-")
    env["IPYTHONDIR"] = ipython_dir  # never touch the user's profile or history
    env["PYTHONPATH"] = os.pathsep.join(p for p in (pythonpath, env.get("PYTHONPATH", "")) if p)
    try:
        proc = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--child", json.dumps(spec)],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
    except subprocess.TimeoutExpired as error:
        raise ChildFailed(f"child {spec['reloader']}/{spec['name']} timed out after {error.timeout} s") from None
    finally:
        shutil.rmtree(ipython_dir, ignore_errors=True)
    if spec.get("profile"):
        sys.stderr.write(proc.stderr)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG) :])
    raise ChildFailed(
        f"child {spec['reloader']}/{spec['name']} failed (exit {proc.returncode}):\n"
        f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    )


def merge(results: list[dict]) -> dict:
    """Several processes of one (reloader, scenario): medians of numbers, checks summed."""
    out: dict = {}
    for key in results[0]:
        values = [r[key] for r in results]
        if key == "checks":
            merged: dict[str, list] = {}
            for value in values:
                for label, (ok, total, miss) in value.items():
                    entry = merged.setdefault(label, [0, 0, ""])
                    entry[0] += ok
                    entry[1] += total
                    entry[2] = entry[2] or miss
            out[key] = merged
        elif isinstance(values[0], float):
            out[key] = statistics.median(values)
        else:
            out[key] = values[0]
    return out


def measure(spec: dict, reps: int, pythonpath: str, errors: list[str]) -> dict[str, dict] | None:
    """Each reloader ``reps`` times, alternating which goes first; ``None`` if a child crashed."""
    runs: dict[str, list[dict]] = {r: [] for r in RELOADERS}
    for rep in range(reps):
        order = RELOADERS if rep % 2 == 0 else tuple(reversed(RELOADERS))
        for reloader in order:
            try:
                runs[reloader].append(run_child({**spec, "reloader": reloader}, pythonpath))
            except ChildFailed as error:
                errors.append(str(error))
                print(f"   CRASH {reloader}/{spec['name']}: see the end of the output", flush=True)
                return None
    return {reloader: merge(results) for reloader, results in runs.items()}


def ratio(a: float, h: float) -> tuple[float, str]:
    """autoreload/hotswap; a hotswap cost within noise of zero is floored at 1 µs."""
    if h < 1.0:
        return a / 1.0, ">="
    return a / h, ""


def fmt_ratio(a: float, h: float) -> str:
    value, mark = ratio(a, h)
    return f"{mark}{value:.2f}x"


def fmt_us(us: float) -> str:
    """Microseconds, or milliseconds above 10 ms."""
    return f"{us / 1000:.1f} ms" if abs(us) >= 10_000 else f"{us:.0f} µs"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def timed_target(name: str, measured: str, ok: bool, hotswap: dict) -> tuple[str, str, bool]:
    """A time target counts only if hotswap's new code ran: a reload that did nothing is cheap."""
    if not check_lines(hotswap)[0]:
        return name, measured + " -- but hotswap's checks failed, so this is not the time of a reload", False
    return name, measured, ok


def load_average() -> str:
    try:
        return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "load average unknown"


def check_lines(result: dict) -> tuple[bool, list[str]]:
    """All checks held? And a line per check that did not."""
    misses = []
    for label, (ok, total, miss) in result["checks"].items():
        if ok < total:
            misses.append(f"{label}: no ({ok}/{total} edits); {miss}")
    return not misses, misses


def correct_word(result: dict, label: str | None = None) -> str:
    checks = result["checks"]
    if label is not None:
        ok, total, _ = checks[label]
        return "yes" if ok == total else ("no" if ok == 0 else f"{ok}/{total}")
    ok = all(o == t for o, t, _ in checks.values())
    return "yes" if ok else "NO"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a shorter run (about 2 minutes)")
    add_source_argument(parser)
    parser.add_argument("--profile", metavar="SCENARIO[:RELOADER]",
                        help="run one scenario under cProfile (timed cells with the hooks on), print the "
                        "profile, no results: idle-500, idle-2000, idle-5000, edit-func, edit-core, "
                        "edit-class, or one of those with -heap (reloader: hotswap unless given)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(json.loads(args.child))
        return 0

    quick = args.quick
    # reps: processes per (reloader, scenario), idle and edit scenarios; the median is kept
    if quick:
        sizes, cells, block, warmup, edits, idle_edits, between, reps = [500, 2000], 200, 20, 20, 10, 5, 5, (1, 1)
    else:
        sizes, cells, block, warmup, edits, idle_edits, between, reps = [500, 2000, 5000], 300, 20, 30, 16, 8, 8, (2, 3)

    origin, snapshot, state, digest = snapshot_source(args.src)
    try:
        sys.path.insert(0, str(snapshot))
        preflight = subprocess.run(
            [sys.executable, "-c", "import hotswap, hotswap._ipython; print(hotswap.__version__)"],
            env={**os.environ, "PYTHONPATH": str(snapshot)}, capture_output=True, text=True, timeout=60,
        )
        if preflight.returncode != 0:
            print(f"the hotswap source at {origin} does not import:\n{preflight.stderr[-3000:]}")
            return 2
        version = preflight.stdout.strip()
        if args.profile:
            return profile(args.profile, str(snapshot), sizes, cells, block, warmup, edits, idle_edits, between)
        return benchmark(quick, str(snapshot), origin, state, digest, version,
                         sizes, cells, block, warmup, edits, idle_edits, between, reps)
    finally:
        shutil.rmtree(snapshot, ignore_errors=True)


def idle_spec(n: int, cells: int, block: int, warmup: int, idle_edits: int, between: int) -> dict:
    return {"kind": "idle", "name": f"idle-{n}", "n": n, "cells": cells, "block": block,
            "warmup": warmup, "edits": idle_edits, "between": between}


def edit_spec(case: str, heap: int, block: int, warmup: int, edits: int, between: int) -> dict:
    return {"kind": "edit", "name": f"edit-{case}" + ("-heap" if heap else ""), "case": case, "heap": heap,
            "edits": edits, "block": block, "between": between, "warmup": max(5, warmup // 3)}


def profile(what: str, pythonpath: str, sizes, cells, block, warmup, edits, idle_edits, between) -> int:
    name, _, reloader = what.partition(":")
    reloader = reloader or "hotswap"
    if name.startswith("idle-"):
        spec = idle_spec(int(name[5:]), cells, block, warmup, idle_edits, between)
    elif name.startswith("edit-"):
        case, _, heap = name[5:].partition("-")
        spec = edit_spec(case, HEAP if heap else 0, block, warmup, edits, between)
    else:
        print(f"unknown scenario {name!r}")
        return 2
    result = run_child({**spec, "reloader": reloader, "profile": True}, pythonpath)
    print(f"\n{reloader} / {name} under cProfile (times inflated by the profiler): "
          + ", ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items() if k != "checks"))
    return 0


def benchmark(quick: bool, pythonpath: str, origin: str, state: str, digest: str, version: str,
              sizes, cells, block, warmup, edits, idle_edits, between, reps) -> int:
    import IPython

    print("hotswap benchmark: hotswap vs IPython's autoreload (both `%autoreload 2`) vs no extension")
    print(
        f"python {platform.python_version()}, IPython {IPython.__version__}, hotswap {version}, "
        f"{os.cpu_count()} CPUs, {'quick' if quick else 'full'} run, "
        f"{reps[0]} process(es) per reloader and idle scenario, {reps[1]} per edit scenario (median of them)"
    )
    print(f"hotswap measured: a copy of {origin} taken at start ({state}; sha256 of files {digest})")
    print("no extension = the same process with the reloader's hooks off, interleaved with the measured cells")
    print("ratio = autoreload / hotswap, of the cost over no extension (higher is better for hotswap)")
    print(f"at start: {load_average()} (the run itself keeps about 1 of the CPUs busy; more load than that "
          "means other work, and noisier numbers)")
    started = time.perf_counter()
    errors: list[str] = []  # crashes and hotswap correctness failures: exit code 1
    targets: list[tuple[str, str, bool]] = []  # (target, measured, passed)
    ratios: list[str] = []
    first_edits: list[tuple[str, str, bool]] = []  # targets, listed after the others
    differences: list[str] = []  # correctness differences of autoreload (not failures)

    def correctness(scenario: str, res: dict) -> None:
        for reloader in RELOADERS:
            ok, misses = check_lines(res[reloader])
            for miss in misses:
                if reloader == "hotswap":
                    errors.append(f"hotswap correctness, {scenario}: {miss}")
                else:
                    differences.append(f"autoreload, {scenario}: {miss}")

    # 1. Idle, and the one-function edit, at N user modules ------------------
    print()
    print(f"1. Idle cell at N user modules (in packages of {PER_PACKAGE}, on sys.path, imported in the shell):")
    print(f"   `pass`; median of {cells} cells with the hooks on minus median of {cells} with them off.")
    print(f"   target: hotswap within {IDLE_TARGET_US:.0f} µs of no extension, "
          f"and >= {IDLE_RATIO_TARGET:.0f}x less overhead than autoreload, at N = 5000")
    print(f"   {'N':>5} {'ratio':>9} {'no ext µs':>9} {'autoreload +µs':>14} {'hotswap +µs':>11} "
          f"{'vs 100 µs':>9} {'sys.modules':>11} {'watched':>7} {'import s a/h':>12}")
    idle: dict[int, dict] = {}
    for n in sizes:
        res = measure(idle_spec(n, cells, block, warmup, idle_edits, between), reps[0], pythonpath, errors)
        if res is None:
            continue
        idle[n] = res
        a, h = res["autoreload"], res["hotswap"]
        base = (a["baseline_us"] + h["baseline_us"]) / 2
        print(
            f"   {n:>5} {fmt_ratio(a['overhead_us'], h['overhead_us']):>9} {base:>9.0f} "
            f"{a['overhead_us']:>14.1f} {h['overhead_us']:>11.1f} {verdict(h['overhead_us'] <= IDLE_TARGET_US):>9} "
            f"{a['sys_modules']:>11} {h['watched'] or 0:>7} {a['import_s']:>5.2f}/{h['import_s']:<5.2f}",
            flush=True,
        )
        ratios.append(f"idle cell, N={n}: {fmt_ratio(a['overhead_us'], h['overhead_us'])} "
                      f"(autoreload +{a['overhead_us']:.1f} µs, hotswap +{h['overhead_us']:.1f} µs)")
        correctness(f"idle-{n} one-function edit", res)

    print()
    print("2. The cell after a one-function edit, at N user modules (same processes as 1):")
    print(f"   {EDITED}.target() body changed, then `pass`; cost over no extension; median of edits 2..{idle_edits},")
    print("   and the first edit after the imports on its own")
    print(f"   {'N':>5} {'ratio':>9} {'autoreload':>11} {'hotswap':>11} {'1st edit a':>11} {'1st edit h':>11} {'correct a/h':>11}")
    for n, res in idle.items():
        a, h = res["autoreload"], res["hotswap"]
        print(
            f"   {n:>5} {fmt_ratio(a['edit_us'], h['edit_us']):>9} {fmt_us(a['edit_us']):>11} {fmt_us(h['edit_us']):>11} "
            f"{fmt_us(a['edit_first_us']):>11} {fmt_us(h['edit_first_us']):>11} "
            f"{correct_word(a) + '/' + correct_word(h):>11}",
            flush=True,
        )
        ratios.append(f"one-function edit, N={n}: {fmt_ratio(a['edit_us'], h['edit_us'])} "
                      f"(first edit: {fmt_ratio(a['edit_first_us'], h['edit_first_us'])})")
        targets.append(timed_target(
            f"one-function edit, N={n}: hotswap no slower than autoreload",
            f"hotswap {fmt_us(h['edit_us'])} vs autoreload {fmt_us(a['edit_us'])}",
            h["edit_us"] <= a["edit_us"], h,
        ))
        first_edits.append(timed_target(
            f"first edit after the imports, N={n}: hotswap no slower than autoreload",
            f"hotswap {fmt_us(h['edit_first_us'])} vs autoreload {fmt_us(a['edit_first_us'])}",
            h["edit_first_us"] <= a["edit_first_us"], h,
        ))

    # 3. The edit cases, without and with a big heap ---------------------------
    print()
    print(f"3. Edit cases: a project of {N_SMALL} small modules, {EDITED}.py (~200 lines), core.py and "
          f"{N_DEPENDENTS} modules")
    print(f"   doing `from core import THRESHOLD, helper`, particles.py with {N_INSTANCES:,} live Particle "
          f"instances in the user")
    print(f"   namespace; `heap` adds {HEAP:,} live lists (`[[k] for k in range({HEAP})]`). Cost of the cell "
          f"after the edit")
    print(f"   over no extension: median and min..max of edits 2..{edits}, and the first edit after the imports.")
    print("   target: hotswap no slower than autoreload, and independent of the heap")
    print(f"   {'case':>6} {'heap':>6} {'ratio':>8} {'autoreload':>10} {'hotswap':>9} {'hotswap min..max':>16} "
          f"{'1st edit a':>10} {'1st edit h':>10} {'gc objs':>7} {'correct a/h':>11}")
    edit_res: dict[tuple[str, int], dict] = {}
    for case in EDIT_CASES:
        for heap in (0, HEAP):
            spec = edit_spec(case, heap, block, warmup, edits, between)
            res = measure(spec, reps[1], pythonpath, errors)
            if res is None:
                continue
            edit_res[case, heap] = res
            a, h = res["autoreload"], res["hotswap"]
            spread = f"{h['edit_min_us'] / 1000:.1f}..{h['edit_max_us'] / 1000:.1f} ms"
            print(
                f"   {case:>6} {('+' + format(heap / 1e6, '.1f') + 'M') if heap else 'none':>6} "
                f"{fmt_ratio(a['edit_us'], h['edit_us']):>8} {fmt_us(a['edit_us']):>10} {fmt_us(h['edit_us']):>9} "
                f"{spread:>16} {fmt_us(a['edit_first_us']):>10} {fmt_us(h['edit_first_us']):>10} "
                f"{h['gc_objects'] / 1e6:>6.2f}M {correct_word(a) + '/' + correct_word(h):>11}",
                flush=True,
            )
            label = f"{case}{', heap' if heap else ''}"
            ratios.append(f"edit {label}: {fmt_ratio(a['edit_us'], h['edit_us'])} "
                          f"(autoreload {fmt_us(a['edit_us'])}, hotswap {fmt_us(h['edit_us'])})")
            correctness(spec["name"], res)
            targets.append(timed_target(
                f"edit {label}: hotswap no slower than autoreload",
                f"hotswap {fmt_us(h['edit_us'])} vs autoreload {fmt_us(a['edit_us'])}",
                h["edit_us"] <= a["edit_us"], h,
            ))
            first_edits.append(timed_target(
                f"first edit after the imports, {label}: hotswap no slower than autoreload",
                f"hotswap {fmt_us(h['edit_first_us'])} vs autoreload {fmt_us(a['edit_first_us'])}",
                h["edit_first_us"] <= a["edit_first_us"], h,
            ))

    core = [edit_res.get(("core", heap)) for heap in (0, HEAP)]
    if any(core):
        print()
        print("   edit core, who sees the new THRESHOLD (checked after every edit):")
        for reloader in RELOADERS:
            words = []
            for label in ("dependents see new value", "user namespace THRESHOLD (`from core import`)", "core.THRESHOLD"):
                words.append(f"{label}: " + "/".join(correct_word(r[reloader], label) for r in core if r))
            print(f"   {reloader:>10}  " + "; ".join(words))

    print()
    print("   heap independence: cost with the heap / without (hotswap target: "
          f"<= {HEAP_TOLERANCE}x or < +{HEAP_SLACK_US:.0f} µs)")
    for case in EDIT_CASES:
        small, big = edit_res.get((case, 0)), edit_res.get((case, HEAP))
        if not (small and big):
            continue
        parts = []
        for reloader in RELOADERS:
            s, b = small[reloader]["edit_us"], big[reloader]["edit_us"]
            parts.append(f"{reloader} {fmt_us(s)} -> {fmt_us(b)} ({b / max(s, 1.0):.2f}x)")
        print(f"   {case:>6}: " + ";  ".join(parts))
        s, b = small["hotswap"]["edit_us"], big["hotswap"]["edit_us"]
        name, measured, ok = timed_target(
            f"edit {case}: hotswap independent of the heap",
            f"{fmt_us(s)} without, {fmt_us(b)} with {HEAP / 1e6:.1f}M objects ({b / max(s, 1.0):.2f}x)",
            b <= max(s * HEAP_TOLERANCE, s + HEAP_SLACK_US), small["hotswap"],
        )
        targets.append(timed_target(name, measured, ok, big["hotswap"]))

    # 4. Imports, loading, memory, stalls (bench/footprint.py) -----------------
    import footprint

    found = footprint.section(quick, pythonpath, number="4.")
    targets.extend(found.targets)
    errors.extend(found.errors)
    differences.extend(found.differences)

    # targets on idle, at the largest N run
    if idle:
        n = max(idle)
        note = "" if n == 5000 else f" (target is at N=5000; this run's largest N is {n})"
        a, h = idle[n]["autoreload"], idle[n]["hotswap"]
        targets[:0] = [
            (f"idle cell, N={n}: hotswap within {IDLE_TARGET_US:.0f} µs of no extension{note}",
             f"+{h['overhead_us']:.1f} µs", h["overhead_us"] <= IDLE_TARGET_US),
            (f"idle cell, N={n}: hotswap overhead >= {IDLE_RATIO_TARGET:.0f}x less than autoreload's{note}",
             f"{fmt_ratio(a['overhead_us'], h['overhead_us'])} (+{a['overhead_us']:.0f} µs vs "
             f"+{h['overhead_us']:.1f} µs)", ratio(a["overhead_us"], h["overhead_us"])[0] >= IDLE_RATIO_TARGET),
        ]

    print()
    print(f"summary ({time.perf_counter() - started:.0f} s; at the end: {load_average()})")
    print("ratios, autoreload / hotswap cost over no extension (higher is better for hotswap):")
    for line in ratios:
        print(f"  {line}")
    print("targets (medians; the first edit after the imports is listed last):")
    for name, measured, ok in targets + first_edits:
        print(f"  {verdict(ok)} {name}: {measured}")
    print("correctness differences (autoreload; reported, not failures):")
    for line in differences or ["none"]:
        print(f"  {line}")
    print("hotswap correctness and crashes (exit code 1 if any):")
    for line in errors or ["none: every check held"]:
        print(f"  {'FAIL ' if errors else ''}{line}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
