"""Workers follow: tasks sent to local pools after an edit run the new code on every worker."""

from __future__ import annotations

import multiprocessing

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


@pytest.mark.parametrize("method", METHODS)
def test_a_pool_started_before_the_edit_runs_new_code_on_every_worker(library, cell, method):
    cell(f"pool = mp.get_context({method!r}).Pool(2)")
    try:
        assert versions(cell, "pool") == {"v1"}
        library("v2")
        assert versions(cell, "pool") == {"v2"}
        library("v3", extra="\ndef broken(:\n    pass\n")  # a broken save: workers keep v2
        assert versions(cell, "pool") == {"v2"}
        library("v4")
        assert versions(cell, "pool") == {"v4"}
        assert len({r[1] for r in cell("pool.map(lib.f, range(16))")}) >= 1
    finally:
        cell("pool.terminate(); pool.join()")


@pytest.mark.parametrize("method", METHODS)
def test_a_pool_started_after_the_edit_runs_the_new_code(library, cell, method):
    library("v2")
    cell("lib.f(0)")  # the session applies the edit
    cell(f"pool = mp.get_context({method!r}).Pool(2)")
    try:
        assert versions(cell, "pool") == {"v2"}
    finally:
        cell("pool.terminate(); pool.join()")


def test_module_state_on_a_worker_survives_an_edit(library, cell):
    cell("pool = mp.get_context('spawn').Pool(1)")
    try:
        assert [r[2] for r in cell("[pool.apply(lib.f, (i,)) for i in range(3)]")] == [1, 2, 3]
        library("v2")
        assert cell("pool.apply(lib.f, (0,))")[0::2] == ("v2", 4)  # the counter kept counting
    finally:
        cell("pool.terminate(); pool.join()")


@pytest.mark.parametrize("method", METHODS)
def test_process_pool_executor_follows(library, cell, method):
    cell(f"ex = ProcessPoolExecutor(2, mp_context=mp.get_context({method!r}))")
    try:
        assert versions(cell, "ex") == {"v1"}
        library("v2")
        assert versions(cell, "ex") == {"v2"}
    finally:
        cell("ex.shutdown()")


def test_a_worker_that_cannot_apply_an_edit_says_so_once_naming_itself(library, cell, capfd):
    cell("pool = mp.get_context('spawn').Pool(1)")
    try:
        assert versions(cell, "pool") == {"v1"}
        only_in_workers = (
            "\nif __import__('multiprocessing').current_process().name != 'MainProcess':\n"
            "    raise RuntimeError('no v2 here')\n"
        )
        library("v2", extra=only_in_workers)
        capfd.readouterr()
        assert versions(cell, "pool") == {"v1"}  # the worker kept its last good version
        cell("1")
        err = capfd.readouterr().err
        assert "worker" in err and "RuntimeError: no v2 here" in err
        cell("1")
        assert "no v2 here" not in capfd.readouterr().err
    finally:
        cell("pool.terminate(); pool.join()")


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


def test_joblib_loky_workers_follow(library, cell):
    pytest.importorskip("joblib", reason="joblib is in the test extra; not installed here")
    cell("from joblib import Parallel, delayed")
    run = "set(r[0] for r in Parallel(n_jobs=2, backend='loky')(delayed(lib.f)(i) for i in range(16)))"
    assert cell(run) == {"v1"}
    library("v2")
    assert cell(run) == {"v2"}
    library("v3", extra="\ndef broken(:\n    pass\n")
    assert cell(run) == {"v2"}
    library("v4")
    assert cell(run) == {"v4"}


def test_dask_workers_follow_and_a_worker_added_later_starts_current(library, cell, modules):
    pytest.importorskip("distributed", reason="dask[distributed] is in the test extra; not installed here")
    cell(
        "from distributed import Client, LocalCluster\n"
        "cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None)\n"
        "client = Client(cluster)"
    )
    try:
        run = "set(r[0] for r in client.gather(client.map(lib.f, range(8), pure=False)))"
        assert cell(run) == {"v1"}
        library("v2")
        assert cell(run) == {"v2"}
        library("v3", extra="\ndef broken(:\n    pass\n")  # never reaches the workers
        assert cell(run) == {"v2"}
        library("v4")
        cell("lib.f(0)")  # the session applies v4
        cell("cluster.scale(2); client.wait_for_workers(2)")
        assert cell("set(client.gather(client.map(lambda i: __import__(lib.__name__).f(i)[0], range(16), pure=False)))") == {"v4"}
    finally:
        cell("client.close(); cluster.close()")
