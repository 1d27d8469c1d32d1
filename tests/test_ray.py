"""Ray: tasks and actor calls submitted after a reload run the new code on the job's workers.

One real local Ray instance for the module (two worker slots); its workers find the modules in
a folder of their own, on their ``PYTHONPATH``. Each test is a session of its own (hotswap
loaded, then unloaded): the workers, reused from test to test, follow each in turn.
"""

from __future__ import annotations

import os
import re
import sys
import time
from typing import Any

import pytest

from conftest import modules_in

LIBRARY = '''
import os
import time

import ray

CALLS = []


def version():
    return "VERSION"


def f(x, *, y=0):
    CALLS.append(x)
    return version(), x, y


@ray.remote
def decorated(x):
    return version(), x


def slow(marker, seconds):
    first = version()
    open(marker, "w").close()
    time.sleep(seconds)
    return first, version()


def where():
    return os.getpid(), version()


def counted():
    CALLS.append(None)
    return os.getpid(), len(CALLS), version()


@ray.remote
class Counter:
    def __init__(self):
        self.count = 0

    def bump(self):
        self.count += 1
        return version(), self.count


class Plain:
    def __init__(self):
        self.count = 0

    def bump(self):
        self.count += 1
        return version(), self.count
'''


ray: Any = None  # imported by the first test that needs it (not at collection: other tests run without it)


@pytest.fixture(scope="module")
def ray_folder(tmp_path_factory):
    global ray
    ray = pytest.importorskip("ray", reason="ray is in the test extra; not installed here")
    folder = tmp_path_factory.mktemp("ray_modules")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(folder), "RAY_USAGE_STATS_ENABLED": "0"}},
    )
    try:
        yield folder
    finally:
        ray.shutdown()


@pytest.fixture
def ray_modules(ray_folder):
    with modules_in(ray_folder) as modules:
        yield modules


@pytest.fixture
def library(shell, ray_modules, cell):
    """``lib`` (``LIBRARY`` at version v1) imported in mode 2; returns ``save(version)``."""

    def save(version: str, text: str = LIBRARY) -> None:
        ray_modules.write(ray_modules.name, text.replace("VERSION", version))

    save("v1")
    cell("%autoreload 2")
    cell(f"import ray, {ray_modules.name} as lib")
    return save


def _stored_keys() -> list[bytes]:
    from ray.experimental.internal_kv import _internal_kv_list

    return _internal_kv_list("", namespace="hotswap")


def test_tasks_submitted_after_each_save_run_its_version(library, cell):
    cell("f = ray.remote(lib.f)")
    assert cell("ray.get([f.remote(i, y=1) for i in range(4)])") == [("v1", i, 1) for i in range(4)]
    library("v2")
    assert cell("ray.get([f.remote(i) for i in range(4)])") == [("v2", i, 0) for i in range(4)]
    library("v3")
    assert cell("ray.get([f.remote(i) for i in range(4)])") == [("v3", i, 0) for i in range(4)]


def test_module_state_on_the_workers_is_kept_across_an_edit(library, cell):
    """A module-level list each task appends to: after the edit, each worker's list goes on growing
    (a fresh import of the module there would start it again from empty)."""
    cell("counted = ray.remote(lib.counted)")
    before: dict[int, int] = {}
    for pid, count, version in cell("ray.get([counted.remote() for _ in range(8)])"):
        assert version == "v1"
        before[pid] = max(count, before.get(pid, 0))
    library("v2")

    after = cell("ray.get([counted.remote() for _ in range(8)])")
    assert {version for _, _, version in after} == {"v2"}
    grew = [(pid, count) for pid, count, _ in after if pid in before]
    assert grew, "no task ran on a worker of the first batch"
    assert all(count > before[pid] for pid, count in grew), (before, after)


def test_a_call_that_does_not_fit_the_function_is_still_refused_when_submitted(library, shell, cell):
    cell("f = ray.remote(lib.f)")
    library("v2")

    assert cell("ray.get(f.remote(1))") == ("v2", 1, 0)
    with pytest.raises(TypeError, match="too many positional arguments"):
        shell.user_ns["f"].remote(1, 2, 3)


def test_a_function_defined_in_the_session_runs_the_new_versions_of_what_it_calls(library, cell):
    cell("def task(x):\n    return lib.version(), x\n\nremote_task = ray.remote(task)")
    assert cell("ray.get(remote_task.remote(1))") == ("v1", 1)
    library("v2")

    assert cell("ray.get([remote_task.remote(i) for i in range(4)])") == [("v2", i) for i in range(4)]


def test_remote_functions_of_other_libraries_are_left_as_they_are(library, cell):
    cell("import json\ndumps = ray.remote(json.dumps)")
    library("v2")

    assert cell("ray.get(dumps.remote([1, 2]))") == "[1, 2]"
    assert cell("type(dumps._function).__name__") == "function"
    assert cell("type(ray.remote(lib.f)._function).__name__") == "function"  # (not submitted yet)


def test_a_remote_function_decorated_in_the_module_follows(library, cell):
    assert cell("ray.get(lib.decorated.remote(1))") == ("v1", 1)
    library("v2")

    assert cell("ray.get(lib.decorated.remote(2))") == ("v2", 2)


@pytest.mark.parametrize("make", ["lib.Counter.remote()", "ray.remote(lib.Plain).remote()"], ids=["decorated", "plain"])
def test_an_actor_made_before_the_edits_runs_the_new_methods_and_keeps_its_state(library, cell, make):
    cell(f"actor = {make}")
    assert cell("ray.get(actor.bump.remote())") == ("v1", 1)
    library("v2")
    assert cell("ray.get(actor.bump.remote())") == ("v2", 2)
    library("v3")

    assert cell("ray.get([actor.bump.remote() for _ in range(2)])") == [("v3", 3), ("v3", 4)]


def test_dependents_follow_on_the_workers(shell, ray_modules, cell):
    core, dep = ray_modules.named("core"), ray_modules.named("dep")
    ray_modules.write(core, "K = 1\n")
    ray_modules.write(dep, f"from {core} import K\n\nLIMIT = K * 2\n\n\ndef limit():\n    return LIMIT\n")
    cell("%autoreload 2")
    cell(f"import ray, {dep} as dep\nlimit = ray.remote(dep.limit)")
    assert cell("ray.get([limit.remote() for _ in range(4)])") == [2] * 4
    ray_modules.write(core, "K = 5\n")

    assert cell("ray.get([limit.remote() for _ in range(4)])") == [10] * 4


def test_a_broken_save_never_reaches_the_workers_not_even_new_ones(library, cell, capsys):
    cell("f = ray.remote(lib.f)\nfresh = ray.remote(max_calls=1)(lib.where)")  # a new worker process each task
    library("v2")
    assert cell("ray.get(f.remote(1))") == ("v2", 1, 0)
    library("v3", LIBRARY + "\ndef broken(:\n")

    assert cell("ray.get([f.remote(i) for i in range(4)])") == [("v2", i, 0) for i in range(4)]
    assert "SyntaxError" in capsys.readouterr().err
    pids = set()
    for _ in range(3):
        pid, version = cell("ray.get(fresh.remote())")
        assert version == "v2"
        pids.add(pid)
    assert len(pids) == 3, "max_calls=1: each task in a new worker"
    library("v4")
    assert cell("ray.get(f.remote(1))") == ("v4", 1, 0)


def test_a_task_running_during_a_save_finishes_with_its_version(library, cell, tmp_path):
    marker = tmp_path / "started"
    cell(f"slow = ray.remote(lib.slow).remote({str(marker)!r}, 2.0)")
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert time.monotonic() < deadline, "the slow task never started"
        time.sleep(0.01)
    library("v2")

    assert cell("ray.get(ray.remote(lib.f).remote(1))") == ("v2", 1, 0)
    assert cell("ray.get(slow)") == ("v1", "v1")


def test_a_worker_that_cannot_apply_a_version_says_so_at_a_later_cell(library, cell, capsys):
    cell("f = ray.remote(lib.f)")
    assert cell("ray.get(f.remote(1))") == ("v1", 1, 0)
    session = os.getpid()
    library("v2", LIBRARY + f"\nif os.getpid() != {session}:\n    raise RuntimeError('not on this machine')\n")

    assert cell("ray.get(f.remote(2))") == ("v1", 2, 0)  # the worker keeps the version it had
    said = ""
    deadline = time.monotonic() + 30
    while "not on this machine" not in said and time.monotonic() < deadline:
        cell("ray.get(f.remote(3))")
        said += capsys.readouterr().err
        time.sleep(0.05)
    workers = re.findall(r"hotswap: Ray worker (\d+): .*RuntimeError: not on this machine", said)
    assert workers, said
    assert len(workers) == len(set(workers)), f"said once by each worker: {said}"
    assert re.search(r"Ray job \w+: \d+ workers? heard from", str(cell("%hotswap")))


def test_a_remote_function_used_before_hotswap_was_loaded_follows_too(plain_shell, ray_modules, cell):
    ray_modules.write(ray_modules.name, LIBRARY.replace("VERSION", "v1"))
    cell(f"import ray, {ray_modules.name} as lib\nf = ray.remote(lib.f)")
    assert cell("ray.get(f.remote(1))") == ("v1", 1, 0)
    cell("%load_ext hotswap")
    cell("%autoreload 2")
    ray_modules.write(ray_modules.name, LIBRARY.replace("VERSION", "v2"))

    assert cell("ray.get([f.remote(i) for i in range(4)])") == [("v2", i, 0) for i in range(4)]


def test_unloading_leaves_nothing_in_the_cluster_and_tasks_run_as_without_hotswap(library, cell):
    cell("f = ray.remote(lib.f)")
    library("v2")
    assert cell("ray.get(f.remote(1))") == ("v2", 1, 0)
    assert _stored_keys() != []
    cell("%unload_ext hotswap")

    assert _stored_keys() == []
    assert cell("ray.get([f.remote(i) for i in range(4)])") == [("v2", i, 0) for i in range(4)]
    assert cell("ray.get(lib.decorated.remote(1))") == ("v2", 1)


def test_a_decorated_function_of_a_module_the_workers_cannot_import_runs_as_without_hotswap(
    ray_folder, shell, modules, cell
):
    """Ray sends what a module-level ``@ray.remote`` wraps by value: a worker without the module
    (it is on the session's path only, here) runs it all the same, and gets each new version."""
    modules.write(modules.name, "import ray\n\n\n@ray.remote\ndef alone(x):\n    return 'v1', x * 2\n")
    cell("%autoreload 2")
    cell(f"import ray, {modules.name} as solo")
    assert cell("ray.get(solo.alone.remote(2))") == ("v1", 4)
    modules.write(modules.name, "import ray\n\n\n@ray.remote\ndef alone(x):\n    return 'v2', x * 3\n")

    assert cell("ray.get(solo.alone.remote(2))") == ("v2", 6)


SESSION = """
import os, sys, time
from pathlib import Path

import ray
from IPython.core.interactiveshell import InteractiveShell

folder, name, address, ending = sys.argv[1:]
sys.path.insert(0, folder)
library = Path(folder, name + ".py")
library.write_text("def version():\\n    return 'v1'\\n")
ray.init(address=address, log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": folder}})
shell = InteractiveShell.instance()


def cell(source):
    result = shell.run_cell(source)
    assert result.success, source
    return result.result


cell("%load_ext hotswap")
cell("%autoreload 2")
cell(f"import ray, {name} as lib\\nversion = ray.remote(lib.version)")
first = cell("ray.get(version.remote())")
time.sleep(0.05)
library.write_text("def version():\\n    return 'v2'\\n")
print("JOB", ray.get_runtime_context().get_job_id(), flush=True)
print("RESULT", first, cell("ray.get(version.remote())"), len(cell("__import__('ray').experimental.internal_kv._internal_kv_list('', namespace='hotswap')")) > 0, flush=True)
if ending == "shutdown":
    cell("ray.shutdown()")
    os._exit(0)  # no exit handlers: ray.shutdown() alone must have cleaned up
"""


@pytest.mark.parametrize("ending", ["exit", "shutdown"])
def test_a_session_joined_to_a_running_cluster_follows_and_its_end_leaves_nothing_there(ray_folder, ray_modules, ending):
    """Another process joins this module's cluster (``ray.init(address=...)``), as a notebook joins a
    cluster it did not start: its tasks follow its edits, and when it exits (or calls
    ``ray.shutdown()``, then ends without exit handlers) its keys are gone."""
    import subprocess

    address = ray.get_runtime_context().gcs_address
    done = subprocess.run(
        [sys.executable, "-c", SESSION, str(ray_folder), ray_modules.named("joined"), address, ending],
        capture_output=True, text=True, timeout=120,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    assert "RESULT v1 v2 True" in done.stdout, done.stdout[-3000:] + done.stderr[-3000:]
    job = re.search(r"^JOB (\w+)$", done.stdout, re.MULTILINE)
    assert job is not None, done.stdout[-3000:]
    assert [key for key in _stored_keys() if key.startswith(job.group(1).encode())] == []
    assert "could not delete" not in done.stderr


def test_a_worker_keeps_only_the_texts_the_last_index_names():
    """A big module saved again and again: each worker keeps one copy of its text, not one per save."""
    from hotswap._ray_worker import _Texts

    texts = _Texts("session")
    texts.fetched = {"a1": b"A = 1", "a2": b"A = 2", "base": b"A = 0", "gone": b"B = 1"}
    texts.keep_only([{"path": "a.py", "digest": "a2", "base_digest": "base"}])

    assert texts.fetched == {"a2": b"A = 2", "base": b"A = 0"}
