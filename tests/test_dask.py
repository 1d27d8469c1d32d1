"""Dask: every live client's workers follow the session, between tasks, on any machine."""

from __future__ import annotations

import pytest

DASK_LIBRARY = """
import time

def version():
    return "VERSION"

def slow(seconds):
    first = version()
    time.sleep(seconds)
    return first, version()

def delegate(seconds):
    from distributed import worker_client

    with worker_client() as client:  # this task secedes: it waits for the one it sends
        time.sleep(seconds)
        return client.submit(version, pure=False).result()
"""


@pytest.fixture
def dask_library(shell, modules, cell):
    pytest.importorskip("distributed", reason="dask[distributed] is in the test extra; not installed here")

    def save(version: str) -> None:
        modules.write(modules.name, DASK_LIBRARY.replace("VERSION", version))

    save("v1")
    cell("__spec__ = None")  # what a fresh IPython has (Dask's nannies spawn, and read it)
    cell("%autoreload 2")
    cell(f"import os, sys, time, {modules.name} as lib")
    return save


def test_dask_workers_get_hotswap_when_the_client_appears_not_at_the_first_save(dask_library, cell):
    cell(
        "from distributed import Client, LocalCluster\n"
        "cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)\n"
        "client = Client(cluster)"
    )
    try:
        cell("1")  # the next cell: the plugin goes out, in the background
        joined = cell(
            "_deadline = time.monotonic() + 60\n"
            "while not all(client.run(lambda: 'hotswap._dask' in sys.modules).values()) "
            "and time.monotonic() < _deadline:\n"
            "    time.sleep(0.05)\n"
            "all(client.run(lambda: 'hotswap._dask' in sys.modules).values())"
        )
        assert joined, "no save yet: the workers should have hotswap already"
        dask_library("v2")
        assert set(cell("client.gather(client.map(lambda i: lib.version(), range(8), pure=False))")) == {"v2"}
    finally:
        cell("client.close(); cluster.close()")


def test_a_threaded_dask_worker_applies_an_edit_between_tasks_never_during_one(dask_library, cell):
    cell(
        "from distributed import Client, LocalCluster\n"
        "cluster = LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None)\n"
        "client = Client(cluster)"
    )
    try:
        assert cell("client.submit(lib.slow, 0, pure=False).result()") == ("v1", "v1")
        cell("running = client.submit(lib.slow, 2.0, pure=False); time.sleep(0.5)")  # in one thread
        dask_library("v2")
        cell("later = client.submit(lib.slow, 0, pure=False)")  # the other thread is free
        assert cell("later.result()") == ("v2", "v2")  # sent after the edit: new code
        assert cell("running.result()") == ("v1", "v1")  # running during the edit: its code throughout
        assert set(cell("client.gather(client.map(lambda i: lib.version(), range(8), pure=False))")) == {"v2"}
    finally:
        cell("client.close(); cluster.close()")


def test_a_dask_task_waiting_for_another_does_not_hold_an_edit_back(dask_library, cell):
    """A task that seceded (``worker_client``) waits for tasks it sends: they must not wait for it."""
    cell(
        "from distributed import Client, LocalCluster\n"
        "cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None)\n"
        "client = Client(cluster)"
    )
    try:
        assert cell("client.submit(lib.version, pure=False).result()") == "v1"
        cell("waiting = client.submit(lib.delegate, 1.5, pure=False); time.sleep(0.5)")
        dask_library("v2")
        cell("1")  # the edit is applied: the seceded task does not hold it back
        assert cell("waiting.result(timeout=30)") == "v2"  # the task it sent runs the new code
    finally:
        cell("client.close(); cluster.close()")
