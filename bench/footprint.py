#!/usr/bin/env python
"""Imports, loading, memory and stalls: hotswap vs IPython's autoreload vs no extension.

    python bench/footprint.py            # full run (about 3 minutes on 2 cores)
    python bench/footprint.py --quick    # under a minute
    python bench/footprint.py --src DIR  # measure the hotswap package in DIR

Section 4 of ``bench/run.py``'s full run, and runnable alone. Every measurement
runs in fresh child processes with a real ``InteractiveShell`` (one per reloader
and repetition, interleaved; medians of them):

* ``import``: a cell importing a package of 1 000 small modules, with the
  reloader loaded and ``%autoreload 2``; the resident memory after it. Its
  target is the median of paired ratios: each repetition's hotswap child over
  the no-extension child of the same repetition (they run seconds apart; this
  machine's slow spells last longer, and shift a median of a few children by
  more than the 15% the target allows).
* ``load``: the 1 000 modules imported first, then ``%load_ext`` timed.
* ``growth``: 2 000 edit cycles of a module of 30 functions with a dependent;
  resident memory after them minus after the first few.
* ``big``: a module holding a 5 MB string literal, its function edited 80 times.
* ``stall``: a busy pure-Python thread in the user's namespace; the worst and
  the median cell after an edit of a ~200-line module.

After every edit a check that the new code ran (hotswap and autoreload).
Exit code 1 if a hotswap check failed or a child crashed; missed targets are
FAIL lines only.
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
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from _common import add_source_argument, snapshot_source
from run import Checks, big_module_source, check_lines, fmt_us, load_average, run, verdict

RELOADERS = ("none", "autoreload", "hotswap")  # "none": the shell without any extension
TAG = "FOOTPRINT-RESULT "
N_MODULES = 1000
PACKAGE = "fpkg"
CYCLES = 2000  # edit cycles of the small module
WARM_EDITS = 5  # edits before the memory baseline is taken
BIG_BYTES = 5_000_000
BIG_EDITS = 80
EDITED = "usermod_big"  # the ~200-line module of the stall measurement (bench/run.py's)
PAST_S = 10  # module files are dated this far back, as files saved a while ago
SETTLE_S = 2.3  # hotswap re-hashes a file whose ctime is < 2 s old: wait past that

IMPORT_RATIO_TARGET = 1.15  # import of 1 000 modules: at most this times no extension
GROWTH_TARGET_MB = 5.0  # 2 000 edit cycles grow hotswap's resident memory less than this
BIG_TARGET_MB = 50.0  # a 5 MB module edited 80 times: less than this
MB = 1e6

IMPORT_CELL = (
    "import importlib as _importlib\n"
    f"for _i in range({N_MODULES}):\n"
    f"    _importlib.import_module(f'{PACKAGE}.m{{_i:04d}}')\n"
)


# --------------------------------------------------------------------------
# Module sources
# --------------------------------------------------------------------------


def package_module_source(i: int) -> str:
    """One of the 1 000: a function and a class."""
    return (
        f'"""{PACKAGE}.m{i:04d}: one of {N_MODULES} small modules."""\n'
        f"X = {i}\n\n\n"
        "def f(x):\n"
        "    return x + X\n\n\n"
        "class C:\n"
        "    def g(self):\n"
        "        return f(1)\n"
    )


def small_edited_source(value: int) -> list[bytes]:
    """30 small functions and ``f()`` returning ``value``."""
    funcs = "".join(f"def g{j}(x):\n    return x + {j}\n\n\n" for j in range(30))
    return [(funcs + f"def f():\n    return {value}\n").encode()]


BLOB = b'BLOB = "' + b"x" * BIG_BYTES + b'"\n\n\n'  # made once: the bench itself allocates no 5 MB per edit


def big_edited_source(value: int) -> list[bytes]:
    """A 5 MB string literal and ``f()`` returning ``value`` (in pieces, written one after the other)."""
    return [BLOB, f"def f():\n    return {value}\n".encode()]


def write_package(folder: Path) -> None:
    """The 1 000 modules as one package in ``folder``, dated ``PAST_S`` back."""
    pkg = folder / PACKAGE
    pkg.mkdir(parents=True)
    paths = [pkg / "__init__.py"]
    paths[0].write_text(f'"""{N_MODULES} small modules."""\n')
    for i in range(N_MODULES):
        path = pkg / f"m{i:04d}.py"
        path.write_text(package_module_source(i))
        paths.append(path)
    past = time.time_ns() - PAST_S * 1_000_000_000
    for path in paths:
        os.utime(path, ns=(past, past))


# --------------------------------------------------------------------------
# The child: one reloader, one measurement, one fresh process
# --------------------------------------------------------------------------


def rss() -> int:
    """Resident memory, in bytes."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def settled_rss() -> int:
    """Resident memory once the reloader's background work is done and garbage collected."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(
        t.name.startswith("hotswap") and t.is_alive() for t in threading.enumerate()
    ):
        time.sleep(0.02)
    gc.collect()
    return rss()


def new_shell(folder: Path):
    sys.path.insert(0, str(folder))
    from IPython.core.interactiveshell import InteractiveShell

    return InteractiveShell.instance()


def load(shell, reloader: str) -> None:
    if reloader != "none":
        run(shell, f"%load_ext {reloader}")
        run(shell, "%autoreload 2")


def timed(shell, source: str) -> float:
    """Wall time of one cell that must succeed, in seconds."""
    start = time.perf_counter()
    run(shell, source)
    return time.perf_counter() - start


def check_import(shell, checks: Checks) -> None:
    last = f"{PACKAGE}.m{N_MODULES - 1:04d}"
    run(shell, "import sys as _fp_sys\n"
               f"_fp_check = (sum(1 for _k in _fp_sys.modules if _k.startswith('{PACKAGE}.m')), "
               f"_fp_sys.modules['{last}'].C().g())")
    count, value = shell.user_ns["_fp_check"]
    checks.add("all modules imported and run", count == N_MODULES and value == N_MODULES,
               f"{count} modules imported, {last}.C().g() -> {value}")


def child_import(spec: dict, root: Path) -> dict:
    """A cell importing the 1 000 modules, the reloader loaded first; the memory after."""
    shell = new_shell(Path(spec["folder"]))
    load(shell, spec["reloader"])
    run(shell, "pass")
    before = settled_rss()
    seconds = timed(shell, IMPORT_CELL)
    after = settled_rss()
    checks = Checks()
    check_import(shell, checks)
    return {"import_s": seconds, "rss": after, "rss_import": after - before, "checks": checks.data}


def child_load(spec: dict, root: Path) -> dict:
    """The 1 000 modules imported, then ``%load_ext`` (no extension: ``%pwd``) and ``%autoreload 2``."""
    shell = new_shell(Path(spec["folder"]))
    run(shell, IMPORT_CELL)
    run(shell, "pass")
    gc.collect()
    if spec["reloader"] == "none":
        load_s, mode_s = timed(shell, "%pwd"), 0.0
    else:
        load_s = timed(shell, f"%load_ext {spec['reloader']}")
        mode_s = timed(shell, "%autoreload 2")
    checks = Checks()
    check_import(shell, checks)
    return {"load_s": load_s, "mode_s": mode_s, "checks": checks.data}


def write_edit(path: Path, pieces: list[bytes], last_ns: int) -> int:
    """Save a new version whose mtime is a second past the last one (mtime checks see every edit)."""
    with open(path, "wb") as file:
        for piece in pieces:
            file.write(piece)
    last_ns = max(time.time_ns(), last_ns + 1_000_000_000)
    os.utime(path, ns=(last_ns, last_ns))
    return last_ns


def child_memory(spec: dict, root: Path) -> dict:
    """Edit ``f()`` of a module ``spec["edits"]`` times, a cell calling it after each; RSS growth."""
    big = spec["kind"] == "big"
    source = big_edited_source if big else small_edited_source
    name = "fp_big" if big else "fp_small"
    path = root / f"{name}.py"
    write_edit(path, source(0), 0)
    (root / "fp_dep.py").write_text(f"from {name} import f\n\nLIMIT = f()\n")
    past = time.time_ns() - PAST_S * 1_000_000_000
    for p in (path, root / "fp_dep.py"):
        os.utime(p, ns=(past, past))
    shell = new_shell(root)
    load(shell, spec["reloader"])
    run(shell, f"import {name} as m\nimport fp_dep")
    imported = settled_rss()
    checks = Checks()
    last_ns = past
    reloads = spec["reloader"] != "none"

    def cycle(value: int) -> None:
        nonlocal last_ns
        last_ns = write_edit(path, source(value), last_ns)
        result = shell.run_cell("m.f()")
        got = result.result if result.success else result.error_in_exec or result.error_before_exec
        if reloads:
            checks.add("m.f() returns the new value", got == value, f"edit {value}: m.f() -> {got!r}, expected {value}")

    for value in range(1, WARM_EDITS + 1):
        cycle(value)
    before = settled_rss()
    for value in range(WARM_EDITS + 1, WARM_EDITS + spec["edits"] + 1):
        cycle(value)
    after = settled_rss()
    return {"rss_import": imported, "first": before - imported, "growth": after - before,
            "total": after - imported, "checks": checks.data}


BUSY_THREAD = """\
import threading as _fp_threading
_fp_stop = False
def _fp_spin():
    while not _fp_stop:
        _s = 0
        for _k in range(10_000):
            _s += _k
_fp_thread = _fp_threading.Thread(target=_fp_spin, daemon=True)
_fp_thread.start()
"""


def child_stall(spec: dict, root: Path) -> dict:
    """A busy thread in the user's namespace; the cell after each edit of a ~200-line module."""
    path = root / f"{EDITED}.py"
    path.write_text(big_module_source(0))
    past = time.time_ns() - PAST_S * 1_000_000_000
    os.utime(path, ns=(past, past))
    shell = new_shell(root)
    load(shell, spec["reloader"])
    run(shell, f"import {EDITED}\nfrom {EDITED} import target")
    time.sleep(SETTLE_S)
    run(shell, BUSY_THREAD)
    for _ in range(5):
        run(shell, "pass")
    checks = Checks()
    reloads = spec["reloader"] != "none"
    last_ns = past
    cells: list[float] = []
    for edit in range(1, spec["edits"] + 1):
        if reloads:  # no extension: the same cells, no edits
            path.write_text(big_module_source(edit))
            last_ns = max(time.time_ns(), last_ns + 1_000_000)
            os.utime(path, ns=(last_ns, last_ns))
        cells.append(timed(shell, "pass"))
        if reloads:
            run(shell, f"_fp_check = ({EDITED}.target(), target())")
            got = shell.user_ns["_fp_check"]
            checks.add("target() returns the new value", got == (1000 + edit, 1000 + edit),
                       f"edit {edit}: ({EDITED}.target(), target()) -> {got}, expected {1000 + edit}")
    run(shell, "_fp_stop = True\n_fp_thread.join()")
    return {"worst_s": max(cells), "median_s": statistics.median(cells), "first_s": cells[0], "checks": checks.data}


CHILDREN = {"warm": child_import, "import": child_import, "load": child_load,
            "growth": child_memory, "big": child_memory, "stall": child_stall}


def child_main(spec: dict) -> None:
    sys.dont_write_bytecode = False  # as on a user's machine: __pycache__ is written and read
    root = Path(tempfile.mkdtemp(prefix="hotswap-footprint-"))
    try:
        result = CHILDREN[spec["kind"]](spec, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    sys.stdout.flush()
    print(TAG + json.dumps(result), flush=True)


# --------------------------------------------------------------------------
# The parent
# --------------------------------------------------------------------------


class ChildFailed(Exception):
    pass


def run_child(spec: dict, pythonpath: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    ipython_dir = tempfile.mkdtemp(prefix="hotswap-footprint-ipython-")
    env["IPYTHONDIR"] = ipython_dir  # never touch the user's profile or history
    env["PYTHONPATH"] = os.pathsep.join(p for p in (pythonpath, env.get("PYTHONPATH", "")) if p)
    try:
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", json.dumps(spec)],
                              env=env, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired as error:
        raise ChildFailed(f"child {spec['reloader']}/{spec['kind']} timed out after {error.timeout} s") from None
    finally:
        shutil.rmtree(ipython_dir, ignore_errors=True)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(TAG):
            return json.loads(line[len(TAG):])
    raise ChildFailed(f"child {spec['reloader']}/{spec['kind']} failed (exit {proc.returncode}):\n"
                      f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")


@dataclass
class Section:
    """What the section found: target lines, hotswap failures and crashes, autoreload's misses."""

    targets: list[tuple[str, str, bool]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)

    def target(self, name: str, measured: str, ok: bool, res: dict[str, dict]) -> None:
        """A target counts only if hotswap's checks held in the children measured."""
        if not check_lines(res["hotswap"])[0]:
            measured, ok = measured + " -- but hotswap's checks failed", False
        self.targets.append((name, measured, ok))


def measure(kind: str, reps: int, pythonpath: str, found: Section, folders: dict[str, str] | None = None,
            **spec) -> dict[str, dict] | None:
    """Each reloader ``reps`` times, interleaved, the order rotating; medians. ``None`` on a crash."""
    folders = folders or {}
    runs: dict[str, list[dict]] = {r: [] for r in RELOADERS}
    for rep in range(reps):
        order = RELOADERS[rep % 3:] + RELOADERS[:rep % 3]
        for reloader in order:
            try:
                child = {**spec, "kind": kind, "reloader": reloader, "folder": folders.get(reloader)}
                runs[reloader].append(run_child(child, pythonpath))
            except ChildFailed as error:
                found.errors.append(str(error))
                print(f"   CRASH {reloader}/{kind}: see the end of the output", flush=True)
                return None
    merged = {}
    for reloader, results in runs.items():
        out: dict = {"all": results}
        for key in results[0]:
            if key == "checks":
                checks: dict[str, list] = {}
                for r in results:
                    for label, (ok, total, miss) in r["checks"].items():
                        entry = checks.setdefault(label, [0, 0, ""])
                        entry[0] += ok
                        entry[1] += total
                        entry[2] = entry[2] or miss
                out[key] = checks
            else:
                out[key] = statistics.median(r[key] for r in results)
        ok, misses = check_lines(out)
        for miss in misses:
            if reloader == "hotswap":
                found.errors.append(f"hotswap correctness, {kind}: {miss}")
            else:
                found.differences.append(f"{reloader}, {kind}: {miss}")
        merged[reloader] = out
    return merged


def paired_ratios(results: dict[str, dict], reloader: str, key: str) -> list[float]:
    """Each repetition's measure for ``reloader`` over that of the shell without an extension."""
    return [r[key] / n[key] for r, n in zip(results[reloader]["all"], results["none"]["all"])]


def mb(n: float) -> str:
    return f"{n / MB:+.1f} MB" if abs(n) < 100 * MB else f"{n / MB:+.0f} MB"


def ms(seconds: float) -> str:
    return fmt_us(seconds * 1e6)


def spread(values: list[float], scale: float = 1e3) -> str:
    return f"{min(values) * scale:.0f}..{max(values) * scale:.0f}"


def section(quick: bool, pythonpath: str, number: str = "") -> Section:
    """Measure, print the tables, and return the target lines (the caller prints them)."""
    found = Section()
    # repetitions (times, memory, stalls), edit cycles (small module, big module), edits with a busy thread
    if quick:
        reps, import_reps, mem_reps, stall_reps, cycles, big_edits, stall_edits = 3, 5, 1, 2, 500, 30, 10
    else:
        reps, import_reps, mem_reps, stall_reps, cycles, big_edits, stall_edits = 5, 9, 1, 3, CYCLES, BIG_EDITS, 25
    root = Path(tempfile.mkdtemp(prefix="hotswap-footprint-pkg-"))
    try:
        folders = {}
        for reloader in RELOADERS:  # a copy each: each reloader finds __pycache__ as it leaves it
            folders[reloader] = str(root / reloader)
            write_package(root / reloader)
        print()
        print(f"{number + ' ' if number else ''}Imports, loading, memory, stalls (fresh processes, one per reloader and repetition, "
              "interleaved; medians)")
        print(f"   import: a cell importing a package of {N_MODULES} small modules, the reloader loaded and "
              "`%autoreload 2`;")
        print("   each reloader has its own copy of the package, whose __pycache__ one untimed child of that "
              "reloader wrote first")
        print("   (hotswap writes checked hash-based .pyc, the others timestamp-based), so each is measured "
              "in its steady state.")
        print(f"   RSS: resident memory after that cell (and what the import added). `%load_ext` with "
              f"{N_MODULES} loaded: the")
        print("   modules imported first (no extension: a trivial magic, `%pwd`); then `%autoreload 2`.")
        for reloader in RELOADERS:
            try:
                run_child({"kind": "warm", "reloader": reloader, "folder": folders[reloader]}, pythonpath)
            except ChildFailed as error:
                found.errors.append(str(error))
        time.sleep(max(0.0, SETTLE_S - 1))
        imp = measure("import", import_reps, pythonpath, found, folders=folders)
        ld = measure("load", reps, pythonpath, found, folders=folders)
        print(f"   {'':>10} {'import s':>8} {'min..max ms':>12} {'vs none':>7} {'RSS MB':>7} {'import +MB':>10} "
              f"{'%load_ext':>9} {'min..max ms':>12} {'%autoreload 2':>13}")
        for reloader in RELOADERS:
            cols = f"   {reloader:>10}"
            if imp:
                r, none = imp[reloader], imp["none"]["import_s"]
                cols += (f" {r['import_s']:>8.3f} {spread([x['import_s'] for x in r['all']]):>12} "
                         f"{r['import_s'] / none:>6.2f}x {r['rss'] / MB:>7.1f} {r['rss_import'] / MB:>+10.1f}")
            if ld:
                r = ld[reloader]
                cols += (f" {ms(r['load_s']):>9} {spread([x['load_s'] for x in r['all']]):>12} "
                         f"{ms(r['mode_s']) if reloader != 'none' else '-':>13}")
            print(cols, flush=True)
        if imp:
            h, none = imp["hotswap"]["import_s"], imp["none"]["import_s"]
            paired = paired_ratios(imp, "hotswap", "import_s")
            ratio = statistics.median(paired)
            print(f"   import, paired (each repetition's child over its no-extension child): hotswap "
                  f"{ratio:.2f}x ({min(paired):.2f}..{max(paired):.2f}), autoreload "
                  f"{statistics.median(paired_ratios(imp, 'autoreload', 'import_s')):.2f}x")
            found.target(
                f"import of {N_MODULES} modules: hotswap at most {IMPORT_RATIO_TARGET:.2f}x no extension",
                f"{ratio:.2f}x paired ({h / none:.2f}x of the medians: {h:.3f} s vs {none:.3f} s; "
                f"autoreload {imp['autoreload']['import_s']:.3f} s)",
                ratio <= IMPORT_RATIO_TARGET, imp)
        if ld:
            h, a = ld["hotswap"]["load_s"], ld["autoreload"]["load_s"]
            found.target(
                f"`%load_ext` with {N_MODULES} modules loaded: hotswap no slower than autoreload",
                f"hotswap {ms(h)} vs autoreload {ms(a)}", h <= a, ld)

        print()
        print(f"   memory: resident memory (RSS) after gc: after the import, then what the first {WARM_EDITS} edit cycles "
              "added, what the")
        print("   cycles after them added (`growth`), and all the edits together (`total`).")
        print(f"   small: a module of 30 functions and f(), and `from m import f; LIMIT = f()` in another; "
              f"{WARM_EDITS}+{cycles} cycles")
        print(f"   of: edit f() (mtime a second on), a cell `m.f()`. big: a module with a {BIG_BYTES / MB:.0f} MB "
              f"string literal and f(), {WARM_EDITS}+{big_edits} cycles.")
        growth = measure("growth", mem_reps, pythonpath, found, edits=cycles)
        big = measure("big", mem_reps, pythonpath, found, edits=big_edits)
        print(f"   {'':>10}  {'small:':<6} {'import':>6} {'first':>8} {'growth':>8} {'total':>8}  "
              f"{'big:':<4} {'import':>6} {'first':>8} {'growth':>8} {'total':>8}")
        for reloader in RELOADERS:
            cols = f"   {reloader:>10} "
            for res, label in ((growth, "small:"), (big, "big:")):
                if res:
                    r = res[reloader]
                    cols += (f" {'':<{len(label)}} {r['rss_import'] / MB:>6.1f} {mb(r['first']):>8} "
                             f"{mb(r['growth']):>8} {mb(r['total']):>8} ")
            print(cols.rstrip(), flush=True)
        if growth:
            note = "" if cycles == CYCLES else f" (quick run: {cycles} cycles; the target is for {CYCLES})"
            g = growth["hotswap"]["growth"]
            found.target(
                f"memory over {CYCLES} edit cycles: hotswap grows less than {GROWTH_TARGET_MB:.0f} MB{note}",
                f"{mb(g)} (autoreload {mb(growth['autoreload']['growth'])}, "
                f"no extension {mb(growth['none']['growth'])})",
                g < GROWTH_TARGET_MB * MB, growth)
        if big:
            note = "" if big_edits == BIG_EDITS else f" (quick run: {big_edits} edits)"
            g = big["hotswap"]["total"]
            found.target(
                f"a {BIG_BYTES / MB:.0f} MB module edited {BIG_EDITS} times: hotswap adds less than "
                f"{BIG_TARGET_MB:.0f} MB (from the import on){note}",
                f"{mb(g)} (autoreload {mb(big['autoreload']['total'])}, no extension {mb(big['none']['total'])}; "
                f"after the first {WARM_EDITS} edits: hotswap {mb(big['hotswap']['growth'])})",
                g < BIG_TARGET_MB * MB, big)

        print()
        print(f"   stall: a thread in the user's namespace sums in a pure-Python loop; {stall_edits} edits of "
              f"{EDITED}.py (~200 lines),")
        print("   the cell after each (`pass`) timed (no extension: the same cells, no edits); the worst, the median, and")
        print("   the first edit after the import on its own (medians over the processes)")
        stall = measure("stall", stall_reps, pythonpath, found, edits=stall_edits)
        if stall:
            print(f"   {'':>10} {'worst ms':>9} {'min..max':>10} {'median ms':>10} {'1st edit ms':>11}")
            for reloader in RELOADERS:
                r = stall[reloader]
                print(f"   {reloader:>10} {r['worst_s'] * 1e3:>9.1f} {spread([x['worst_s'] for x in r['all']]):>10} "
                      f"{r['median_s'] * 1e3:>10.1f} {r['first_s'] * 1e3:>11.1f}", flush=True)
            h, a = stall["hotswap"]["worst_s"], stall["autoreload"]["worst_s"]
            found.target(
                "worst cell stall with a busy thread: hotswap no worse than autoreload",
                f"hotswap {ms(h)} vs autoreload {ms(a)} (no extension {ms(stall['none']['worst_s'])})",
                h <= a, stall)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a shorter run (under a minute)")
    add_source_argument(parser)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(json.loads(args.child))
        return 0
    origin, snapshot, state, digest = snapshot_source(args.src)
    try:
        import IPython

        print("hotswap footprint: hotswap vs IPython's autoreload (both `%autoreload 2`) vs no extension")
        print(f"python {platform.python_version()}, IPython {IPython.__version__}, {os.cpu_count()} CPUs, "
              f"{'quick' if args.quick else 'full'} run")
        print(f"hotswap measured: a copy of {origin} taken at start ({state}; sha256 of files {digest})")
        print(f"at start: {load_average()}")
        started = time.perf_counter()
        found = section(args.quick, str(snapshot), number="")
    finally:
        shutil.rmtree(snapshot, ignore_errors=True)
    print()
    print(f"summary ({time.perf_counter() - started:.0f} s; at the end: {load_average()})")
    print("targets (medians):")
    for name, measured, ok in found.targets:
        print(f"  {verdict(ok)} {name}: {measured}")
    print("correctness differences (not hotswap; reported, not failures):")
    for line in found.differences or ["none"]:
        print(f"  {line}")
    print("hotswap correctness and crashes (exit code 1 if any):")
    for line in found.errors or ["none: every check held"]:
        print(f"  {'FAIL ' if found.errors else ''}{line}")
    return 1 if found.errors else 0


if __name__ == "__main__":
    sys.exit(main())
