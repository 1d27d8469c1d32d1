"""ipyparallel: a real local cluster of two engines; ``%px`` cells and ``view.apply`` see edits."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ipp = pytest.importorskip("ipyparallel", reason="ipyparallel is in the test extra; not installed here")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Path]]:
    folder = tmp_path_factory.mktemp("ipp")
    os.environ.setdefault("IPYTHONDIR", str(tmp_path_factory.mktemp("ipythondir")))
    cluster = ipp.Cluster(n=2, log_level=40)
    try:
        client = cluster.start_and_connect_sync()
        client.wait_for_engines(2, timeout=120)
    except Exception as error:  # noqa: BLE001 - a machine that cannot start engines
        pytest.skip(f"an ipyparallel cluster could not start here: {error!r}")
    try:
        client[:].execute(f"import sys; sys.path.insert(0, {str(folder)!r})", block=True)
        yield client, folder
    finally:
        cluster.stop_cluster_sync()


def px(client: Any, code: str) -> None:
    """What ``%px code`` does: run a cell on every engine (hooks fire, unlike ``silent``)."""
    client[:].execute(code, silent=False, block=True)


CALL = "__import__('ipp_lib').f()"  # the task: builtins travel by reference, this file does not


def test_px_cells_and_apply_calls_on_every_engine_see_edits(cluster: tuple[Any, Path]) -> None:
    client, folder = cluster
    module = folder / "ipp_lib.py"
    module.write_text("def f():\n    return 1\n")
    px(client, "%load_ext hotswap")
    px(client, "%autoreload 2")
    px(client, "import ipp_lib")
    view = client[:]
    assert view.apply_sync(eval, CALL) == [1, 1]

    module.write_text("def f():\n    return 2\n")
    px(client, "x = ipp_lib.f()")  # a %px cell: every engine reloads before running it
    assert view["x"] == [2, 2]

    module.write_text("def f():\n    return 3\n")  # no cell in between: apply reloads too
    assert view.apply_sync(eval, CALL) == [3, 3]
    assert view.map_sync(eval, [CALL] * 4) == [3, 3, 3, 3]

    module.write_text("def f(:\n    return 4\n")  # broken: engines keep the last good version
    assert view.apply_sync(eval, CALL) == [3, 3]

    px(client, "%unload_ext hotswap")
    module.write_text("def f():\n    return 5\n")
    assert view.apply_sync(eval, CALL) == [3, 3]
