"""Workers follow: tasks sent to local pools after an edit run the new code on every worker."""

from __future__ import annotations

import multiprocessing
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

LIBRARY = """
import os
STATE = {"calls": 0}

def f(x):
    STATE["calls"] += 1
    return ("VERSION", os.getpid(), STATE["calls"])
"""

METHODS = [m for m in ("fork", "spawn", "forkserver") if m in multiprocessing.get_all_start_methods()]


@pytest.fixture
def library(shell, modules, cell):
    """A module on disk, mode 2, and ``save(version)`` to edit it."""

    def save(version: str, extra: str = "") -> None:
        modules.write(modules.name, LIBRARY.replace("VERSION", version) + extra)

    save("v1")
    cell("__spec__ = None")  # what a fresh IPython has; the fixture's %reset removed it (spawn reads it)
    cell("%autoreload 2")
    cell(f"import multiprocessing as mp, {modules.name} as lib")
    cell("from concurrent.futures import ProcessPoolExecutor")
    return save


def versions(cell, pool: str) -> set[str]:
    return set(cell(f"[r[0] for r in {pool}.map(lib.f, range(16))]"))


# -- every backend, one story each ---------------------------------------------------------

STORY_LIBRARY = """
import os
import time
STATE = {"calls": 0}

def f(x):
    STATE["calls"] += 1
    time.sleep(0.01)  # long enough for every worker to get tasks
    return ("VERSION", os.getpid(), STATE["calls"])
"""


@dataclass(frozen=True)
class Backend:
    """A kind of pool, as cells: ``pool`` is made by ``start``; ``run`` is an expression giving the
    results of ``lib.f`` over a few tasks; ``pids`` the worker processes now; ``grow`` makes a worker
    start (after the edit); ``stop`` ends the pool."""

    name: str
    start: str
    run: str
    pids: str
    grow: str
    stop: str
    needs: str | None = None  # a module the backend needs (skipped, with the reason, without it)
    method: str | None = None  # the start method it needs


def _mp(method: str) -> Backend:
    return Backend(
        name=f"mp-{method}",
        start=f"pool = mp.get_context({method!r}).Pool(2)",
        run="pool.map(lib.f, range(8), chunksize=1)",
        pids="[p.pid for p in pool._pool]",
        # a worker leaves (mid-task, holding no lock); the pool starts another
        grow=(
            "_before = {p.pid for p in pool._pool}\n"
            "pool.apply_async(os._exit, (0,))\n"
            "_deadline = time.monotonic() + 30\n"
            "while ({p.pid for p in pool._pool} == _before or any(p.exitcode is not None for p in pool._pool))"
            " and time.monotonic() < _deadline:\n"
            "    time.sleep(0.02)"
        ),
        stop="pool.terminate(); pool.join()",
        method=method,
    )


def _ppe(method: str) -> Backend:
    make = f"ProcessPoolExecutor(2, mp_context=mp.get_context({method!r}))"
    return Backend(
        name=f"ppe-{method}",
        # ``spare`` is made with ``pool`` but starts its workers (on first use) after the edit
        start=f"pool = {make}; spare = {make}",
        run="list(pool.map(lib.f, range(8)))",
        pids="list(pool._processes)",
        grow="pool.shutdown(); pool = spare",
        stop="pool.shutdown(); spare.shutdown()",
        method=method,
    )


LOKY = "__import__('joblib.externals.loky.reusable_executor').externals.loky.reusable_executor"
BACKENDS = [
    *(_mp(method) for method in ("fork", "spawn", "forkserver")),
    _ppe("spawn"),
    _ppe("fork"),
    Backend(
        name="joblib-loky",
        start="from joblib import Parallel, delayed\njobs = 2",
        run="Parallel(n_jobs=jobs, backend='loky', batch_size=1)(delayed(lib.f)(i) for i in range(8))",
        pids=f"list({LOKY}._executor._processes)",
        grow="jobs = 3",  # the reusable executor grows at the next call
        stop=f"{LOKY}._executor.shutdown(wait=True, kill_workers=True)",
        needs="joblib",
    ),
    Backend(
        name="dask",
        start=(
            "from distributed import Client, LocalCluster\n"
            "cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)\n"
            "client = Client(cluster)"
        ),
        run="client.gather(client.map(lib.f, range(8), pure=False))",
        pids="list(client.run(os.getpid).values())",
        grow="cluster.scale(3); client.wait_for_workers(3)",
        stop="client.close(); cluster.close()",
        needs="distributed",
    ),
]


def _usable(backend: Backend) -> Backend:
    if backend.method and backend.method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"start method {backend.method!r} is not available on this machine")
    if backend.needs:
        pytest.importorskip(backend.needs, reason=f"{backend.needs} is in the test extra; not installed here")
    return backend


class Pool:
    """A backend's pool in the test's shell: tasks until every worker answered, with what they ran."""

    def __init__(self, backend: Backend, cell: Any) -> None:
        self.backend = backend
        self.cell = cell

    def start(self) -> None:
        try:
            self.cell(self.backend.start)
            self.cell(f"_ = {self.backend.run}")
        except AssertionError as error:
            pytest.skip(f"{self.backend.name} cannot start here: {error}")

    def start_with_hotswap(self, loaded: str) -> None:
        """``start``, with ``%load_ext hotswap`` and mode 2 ``loaded`` "before the pool" or "after the pool"."""
        if loaded == "before the pool":
            self.cell("%load_ext hotswap")
            self.cell("%autoreload 2")
        self.start()
        if loaded == "after the pool":
            try:
                self.cell("%load_ext hotswap")
                self.cell("%autoreload 2")
            except BaseException:
                self.cell(self.backend.stop)
                raise

    def every_worker(self) -> dict[int, list[tuple[str, int]]]:
        """pid -> [(version, calls)] of tasks sent until every worker of the pool ran some."""
        seen: dict[int, list[tuple[str, int]]] = {}
        for _ in range(20):
            for version, pid, calls in self.cell(self.backend.run):
                seen.setdefault(pid, []).append((version, calls))
            if set(self.cell(self.backend.pids)) <= set(seen):
                return seen
        raise AssertionError(f"{self.backend.name}: some workers never got a task: {self.cell(self.backend.pids)}, {seen}")

    def versions(self) -> set[str]:
        return {version for results in self.every_worker().values() for version, _ in results}


@pytest.fixture(params=BACKENDS, ids=[b.name for b in BACKENDS])
def backend(request: pytest.FixtureRequest) -> Backend:
    return _usable(request.param)


@pytest.fixture
def story_library(plain_shell, modules, cell):
    """The module on disk, imported in the shell (hotswap not loaded yet); ``save(version)`` edits it."""

    def save(version: str, extra: str = "") -> None:
        modules.write(modules.name, STORY_LIBRARY.replace("VERSION", version) + extra)

    save("v1")
    cell("__spec__ = None")  # what a fresh IPython has; the fixture's %reset removed it (spawn reads it)
    cell(f"import multiprocessing as mp, os, time, {modules.name} as lib")
    cell("from concurrent.futures import ProcessPoolExecutor")
    return save


@pytest.mark.parametrize("loaded", ["after the pool", "before the pool"])
def test_every_backend_follows_edits(story_library, backend, loaded, cell, capfd, modules):
    """Tasks sent after each edit run the new code on every worker, state kept; a broken save never
    reaches them; a worker or a pool started after the edit runs it too; %load_ext before or after
    the pool started."""
    save = story_library
    pool = Pool(backend, cell)
    pool.start_with_hotswap(loaded)
    try:
        before = pool.every_worker()
        assert {v for results in before.values() for v, _ in results} == {"v1"}

        save("v2")
        after = pool.every_worker()
        assert {v for results in after.values() for v, _ in results} == {"v2"}
        for pid, results in after.items():  # module state on each worker survived the edit
            if pid in before:
                assert min(calls for _, calls in results) > max(calls for _, calls in before[pid]), (pid, results)

        capfd.readouterr()
        save("v3", extra="\ndef broken(:\n    pass\n")  # a broken save: workers keep v2
        assert pool.versions() == {"v2"}
        err = capfd.readouterr().err
        assert f"[autoreload of {modules.name} failed" in err and "SyntaxError" in err, err

        save("v4")
        assert pool.versions() == {"v4"}

        # a worker started after the edit runs the last good version, not the file (broken again)
        save("v5", extra="\ndef broken(:\n    pass\n")
        old = set(cell(backend.pids))
        cell(backend.grow)
        cell(f"_ = {backend.run}")
        assert set(cell(backend.pids)) - old, f"{backend.name}: no new worker started"
        assert pool.versions() == {"v4"}

        save("v6")
        cell("lib.f(0)")  # the session applies v6
        cell(backend.stop)
        pool.start()  # a pool started after the edit
        assert pool.versions() == {"v6"}
    finally:
        cell(backend.stop)
    assert "internal error" not in capfd.readouterr().err




DEPENDENT = """
import os
import time
from CORE import K
LIMIT = K + ''
STATE = {"calls": 0}

def f(x):
    STATE["calls"] += 1
    time.sleep(0.01)  # long enough for every worker to get tasks
    return (LIMIT, os.getpid(), STATE["calls"])
"""


@pytest.mark.parametrize("loaded", ["after the pool", "before the pool"])
def test_every_backend_makes_dependents_follow(plain_shell, backend, loaded, cell, capfd, modules):
    """A module whose file did not change follows what it took from one that did, on every worker as
    in the session: ``from core import K; LIMIT = K + ''`` gives the new ``LIMIT`` after each edit of
    core, in every task of a batch (never old and new mixed), module state kept."""
    core = modules.named("core")
    modules.write(core, "K = 'v1'\n")
    modules.write(modules.name, DEPENDENT.replace("CORE", core))
    cell("__spec__ = None")  # what a fresh IPython has; the fixture's %reset removed it (spawn reads it)
    cell(f"import multiprocessing as mp, os, time, {modules.name} as lib")
    cell("from concurrent.futures import ProcessPoolExecutor")
    pool = Pool(backend, cell)
    pool.start_with_hotswap(loaded)
    try:
        before = pool.every_worker()
        assert {v for results in before.values() for v, _ in results} == {"v1"}
        for version in ("v2", "v3"):
            modules.write(core, f"K = {version!r}\n")
            after = pool.every_worker()
            assert cell("lib.LIMIT") == version  # the session follows
            assert {v for results in after.values() for v, _ in results} == {version}, (backend.name, after)
            for pid, results in after.items():  # the dependent's state survived on each worker
                if pid in before:
                    assert min(calls for _, calls in results) > max(calls for _, calls in before[pid]), (pid, results)
            before = after
        assert pool.versions() == {"v3"}  # one batch: every task on the same version
    finally:
        cell(backend.stop)
    err = capfd.readouterr().err
    assert "internal error" not in err and "[autoreload of" not in err, err


def test_workers_can_be_turned_off(plain_shell, modules, cell):
    from traitlets.config import Config

    config = Config()
    config.Hotswap.workers = False
    plain_shell.config.merge(config)
    try:
        modules.write(modules.name, LIBRARY.replace("VERSION", "v1"))
        cell("%load_ext hotswap")
        cell("%autoreload 2")
        cell(f"import multiprocessing as mp, {modules.name} as lib")
        cell("__spec__ = None; pool = mp.get_context('spawn').Pool(1)")
        assert versions(cell, "pool") == {"v1"}  # the worker has imported the module
        modules.write(modules.name, LIBRARY.replace("VERSION", "v2"))
        assert cell("lib.f(0)[0]") == "v2"
        assert versions(cell, "pool") == {"v1"}
        cell("pool.terminate(); pool.join()")
    finally:
        plain_shell.config.pop("Hotswap", None)


def test_a_worker_that_cannot_apply_an_edit_says_so_once_naming_itself(story_library, backend, cell, capfd):
    """The pool starts before %load_ext hotswap (its workers join through their tasks)."""
    pool = Pool(backend, cell)
    pool.start()
    try:
        cell("%load_ext hotswap")
        cell("%autoreload 2")
        assert pool.versions() == {"v1"}
        only_in_workers = (
            "\nif __import__('multiprocessing').current_process().name != 'MainProcess':\n"
            "    raise RuntimeError('no v2 here')\n"
        )
        story_library("v2", extra=only_in_workers)
        capfd.readouterr()
        assert pool.versions() == {"v1"}  # every worker kept its last good version
        assert cell("lib.f(0)[0]") == "v2"
        err = ""
        for _ in range(50):  # said at a following cell, once the session heard from the workers
            cell("1")
            err += capfd.readouterr().err
            if "no v2 here" in err:
                break
            time.sleep(0.05)
        assert "worker" in err and "RuntimeError: no v2 here" in err, err
        assert "internal error" not in err
        cell("1")
        assert "no v2 here" not in capfd.readouterr().err
    finally:
        cell(backend.stop)


@pytest.mark.parametrize("name", ["mp-spawn", "ppe-spawn"])
def test_a_pool_made_before_loading_is_left_as_it_was_by_unload_and_joins_again(story_library, cell, name):
    backend = _usable(next(b for b in BACKENDS if b.name == name))
    pool = Pool(backend, cell)
    pool.start()
    untouched = (
        "(type(getattr(pool, '_taskqueue', None)).__module__, pool._initializer, "
        "ProcessPoolExecutor.submit.__module__, mp.pool.Pool.__init__.__module__)"
    )
    before = cell(untouched)
    try:
        cell("%load_ext hotswap")
        cell("%autoreload 2")
        assert pool.versions() == {"v1"}
        cell("%unload_ext hotswap")
        assert cell(untouched) == before
        assert "_hotswap_late" not in cell("vars(pool)")
        cell("%load_ext hotswap")
        cell("%autoreload 2")
        story_library("v2")
        assert pool.versions() == {"v2"}
    finally:
        cell(backend.stop)


# -- a spawned worker starts as fast as without hotswap -------------------------------------

WORKER_STATE = """
import sys

AT_START = []

def hotswap_in_worker():
    return sorted(name for name in sys.modules if name.startswith("hotswap"))

def remember_start():  # the user's initializer: runs right after hotswap's
    AT_START.extend(hotswap_in_worker())

def at_start():
    return AT_START

def code_origin(name):
    module = sys.modules[name]
    return module.f.__code__.co_filename
"""


def test_a_spawned_worker_starts_without_the_reload_machinery_and_warms_up_later(library, modules, cell):
    probe = modules.named("probe")
    modules.write(probe, WORKER_STATE)
    cell(f"import {probe} as probe")
    cell("pool = mp.get_context('spawn').Pool(1, initializer=probe.remember_start)")
    try:
        assert versions(cell, "pool") == {"v1"}
        at_start = cell("pool.apply(probe.at_start)")
        assert "hotswap._join" in at_start, at_start
        assert "hotswap._engine" not in at_start and "hotswap._watch" not in at_start, at_start
        deadline = time.monotonic() + 20  # then, in the background, with no edit yet
        while "hotswap._engine" not in cell("pool.apply(probe.hotswap_in_worker)") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "hotswap._engine" in cell("pool.apply(probe.hotswap_in_worker)")
        calls = cell("pool.apply(lib.f, (0,))[2]")
        library("v2")
        version, _, after = cell("pool.apply(lib.f, (0,))")
        assert version == "v2" and after == calls + 1  # followed, its state kept
    finally:
        cell("pool.terminate(); pool.join()")


def test_a_warmed_up_worker_watches_what_it_imports_later_and_makes_it_follow(plain_shell, modules, cell):
    """Imported in the worker after its warm-up, before any edit: a dependent follows all the same."""
    core, dependent, probe = modules.named("core"), modules.named("dep"), modules.named("probe")
    modules.write(core, "K = 'v1'\n")
    modules.write(dependent, DEPENDENT.replace("CORE", core))
    modules.write(probe, WORKER_STATE)
    cell("__spec__ = None")
    cell("%load_ext hotswap")
    cell("%autoreload 2")
    cell(f"import multiprocessing as mp, time, {probe} as probe, {dependent} as dep")
    cell("pool = mp.get_context('spawn').Pool(1)")
    try:
        deadline = time.monotonic() + 20  # the worker warms up with nothing of ours imported
        while "hotswap._engine" not in cell("pool.apply(probe.hotswap_in_worker)") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert cell("pool.apply(dep.f, (0,))[0]") == "v1"  # (dep and core are imported there now)
        modules.write(core, "K = 'v2'\n")
        assert cell("dep.LIMIT") == "v2"
        assert cell("pool.apply(dep.f, (0,))[0]") == "v2"
    finally:
        cell("pool.terminate(); pool.join()")


def test_a_worker_runs_the_sessions_version_not_a_broken_save_on_disk(library, modules, cell, capfd):
    library("v2")
    cell("1")
    modules.write(modules.name, "def f(x):\n    return (\n")  # broken: the session keeps v2
    cell("1")
    capfd.readouterr()
    for _ in range(2):  # the second worker loads the bytecode the first one cached
        cell("pool = mp.get_context('spawn').Pool(1)")
        try:
            assert cell("pool.apply(lib.f, (0,))[0]") == "v2"
        finally:
            cell("pool.terminate(); pool.join()")
    journal = Path(os.environ["HOTSWAP_JOURNAL"])
    assert any("." in name and not name.endswith(".tmp") for name in os.listdir(journal / "texts"))


def test_the_status_says_which_version_each_pools_workers_run(library, cell, status_until):
    cell("pool = mp.get_context('spawn').Pool(2)")
    try:
        assert versions(cell, "pool") == {"v1"}
        line = r"multiprocessing.Pool \(spawn\): 2 workers, 2 on version (\d+) \(current\)"
        now = re.search(line, status_until(line))  # (a spawned worker takes a while to start)
        assert now
        library("v2")
        cell("1")
        said = str(cell("%hotswap"))
        assert f"2 on version {now[1]} (catch up before their next task)" in said, said
        caught_up = f"multiprocessing.Pool (spawn): 2 workers, 2 on version {int(now[1]) + 1} (current)"
        assert versions(cell, "pool") == {"v2"}
        said = status_until(re.escape(caught_up), tasks="pool.map(lib.f, range(16))")
        assert caught_up in said, said
    finally:
        cell("pool.terminate(); pool.join()")
    assert "multiprocessing.Pool" not in str(cell("%hotswap"))
