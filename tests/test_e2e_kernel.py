"""End to end: hotswap inside a real Jupyter kernel, driven over ZeroMQ as a notebook would.

One ipykernel process is started per file (same interpreter as the tests, a
throwaway IPYTHONDIR, a kernelspec of our own so no installed kernel is used).
Each test types cells as a user would and edits real files between cells; what
it checks is what a notebook shows: the cell's stdout, its stderr, its value and
whether it failed. Every test starts with ``%load_ext hotswap``; afterwards the
fixture checks hotswap had no internal error and unloads it, so tests do not
depend on each other's order.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

CELL_TIMEOUT = 60.0  # seconds, per cell: a cell never hangs the test run
KERNEL_NAME = "hotswap-e2e-python"


@dataclass
class Cell:
    """What a notebook shows for one executed cell."""

    code: str
    stdout: str = ""
    stderr: str = ""
    result: str | None = None  # the text/plain of the execute_result, if any
    status: str = ""  # "ok" or "error" (from the execute_reply)
    error: dict[str, object] = field(default_factory=dict)  # the iopub error message, if any
    reply: dict[str, object] = field(default_factory=dict)  # the execute_reply's content

    def __iter__(self) -> Iterator[object]:  # stdout, stderr, result_text, status = execute(...)
        return iter((self.stdout, self.stderr, self.result, self.status))

    def describe(self) -> str:
        return (
            f"cell {self.code!r}: status={self.status!r} result={self.result!r}\n"
            f"--- stdout ---\n{self.stdout}--- stderr ---\n{self.stderr}--- error ---\n{self.error}\n--- reply ---\n{self.reply}"
        )


class Kernel:
    """A running kernel and a blocking client to it."""

    def __init__(self, manager: KernelManager, client: BlockingKernelClient, code_dir: Path) -> None:
        self.manager = manager
        self.client = client
        self.code_dir = code_dir

    def execute(self, code: str, timeout: float = CELL_TIMEOUT) -> Cell:
        """Run one cell; collect its iopub output until the kernel is idle for it."""
        code = textwrap.dedent(code).strip()
        cell = Cell(code)
        msg_id = self.client.execute(code, store_history=True, allow_stdin=False)
        deadline = time.monotonic() + timeout
        idle = False
        while not idle:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.manager.interrupt_kernel()
                raise AssertionError(f"timed out after {timeout}s waiting for the kernel\n{cell.describe()}")
            try:
                msg = self.client.get_iopub_msg(timeout=remaining)
            except queue.Empty:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                if content["name"] == "stdout":
                    cell.stdout += content["text"]
                else:
                    cell.stderr += content["text"]
            elif kind == "execute_result":
                cell.result = content["data"].get("text/plain")
            elif kind == "error":
                cell.error = content
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out waiting for the execute_reply\n{cell.describe()}")
            try:
                reply = self.client.get_shell_msg(timeout=remaining)
            except queue.Empty:
                continue
            if reply["parent_header"].get("msg_id") == msg_id:
                cell.reply = reply["content"]
                cell.status = reply["content"]["status"]
                return cell

    def ok(self, code: str) -> Cell:
        """Run a cell that must succeed."""
        cell = self.execute(code)
        assert cell.status == "ok", cell.describe()
        return cell

    def value(self, code: str) -> str | None:
        """Run a cell that must succeed and print nothing on stderr; return its value's text."""
        cell = self.ok(code)
        assert cell.stderr == "", cell.describe()
        return cell.result


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kernel]:
    root = tmp_path_factory.mktemp("e2e-kernel")
    spec_dir = root / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    # The kernel runs with the interpreter running the tests, whatever kernels are installed.
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "hotswap e2e",
        "language": "python",
    }))
    ipython_dir = root / "ipython"
    ipython_dir.mkdir()
    code_dir = root / "code"
    code_dir.mkdir()

    manager = KernelManager(
        kernel_name=KERNEL_NAME,
        kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(root / "kernels")]),
        connection_file=str(root / "connection.json"),
    )
    assert manager.kernel_spec is not None and manager.kernel_spec.argv[0] == sys.executable
    env = dict(os.environ)
    env["IPYTHONDIR"] = str(ipython_dir)  # the user's profile stays untouched
    env.pop("HOTSWAP_DEBUG", None)
    manager.start_kernel(env=env, cwd=str(root))
    client = manager.blocking_client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=CELL_TIMEOUT)
        k = Kernel(manager, client, code_dir)
        setup = k.value(f"import sys; sys.path.insert(0, {str(code_dir)!r}); sys.executable")
        assert setup == repr(sys.executable)
        yield k
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


@pytest.fixture
def nb(kernel: Kernel) -> Iterator[Kernel]:
    """The kernel for one test; afterwards: no internal hotswap error, hotswap unloaded."""
    yield kernel
    check = kernel.ok(
        """
        import hotswap._ipython as _hotswap_ipython
        _hotswap_session = _hotswap_ipython.session_of(get_ipython())
        [repr(e) for e in _hotswap_session.internal_errors] if _hotswap_session else []
        """
    )
    kernel.ok("%unload_ext hotswap\ndel _hotswap_ipython, _hotswap_session")
    assert check.result == "[]", f"hotswap had internal errors: {check.result}"
    assert "internal error" not in check.stderr


Write = Callable[[str], Path]


@pytest.fixture
def module(kernel: Kernel) -> tuple[str, Write]:
    """A fresh module name in the kernel's code dir, and ``write(text)`` to save its file."""
    name = f"e2e_{uuid.uuid4().hex[:10]}"
    path = kernel.code_dir / f"{name}.py"

    def write(text: str) -> Path:
        path.write_text(textwrap.dedent(text).lstrip())
        return path

    return name, write


def load(nb: Kernel, flags: str = "") -> None:
    nb.ok("%load_ext hotswap")
    nb.ok(f"%autoreload {flags} 2".replace("  ", " "))


# -- tests ---------------------------------------------------------------------


def test_an_edit_reaches_functions_instances_and_classes(nb: Kernel, module: tuple[str, Write]) -> None:
    name, write = module
    write(
        """
        def f():
            return 1

        class Model:
            def predict(self):
                return "old predict"
        """
    )
    load(nb)
    nb.ok(f"import {name}\nfrom {name} import f, Model\nm = Model()\nOldModel = Model")
    assert nb.value("f()") == "1"
    assert nb.value("m.predict()") == "'old predict'"

    write(
        """
        def f():
            return 2

        class Model:
            def predict(self):
                return "new predict"

            def added(self):
                return "added method"
        """
    )
    assert nb.value("f()") == "2"
    assert nb.value("m.predict(), m.added()") == "('new predict', 'added method')"
    assert nb.value(f"isinstance(m, {name}.Model), {name}.Model is OldModel, Model is OldModel") == (
        "(True, True, True)"
    )
    assert nb.value(f"{name}.f is f, {name}.f()") == "(True, 2)"


def test_a_syntax_error_keeps_the_old_code_says_so_once_and_a_fix_is_picked_up(
    nb: Kernel, module: tuple[str, Write]
) -> None:
    name, write = module
    write(
        """
        def f():
            return 1
        """
    )
    load(nb)
    nb.ok(f"from {name} import f")
    assert nb.value("f()") == "1"

    path = write(
        """
        def f():
            return 2

        def broken(:
            pass
        """
    )
    cell = nb.ok("f()")
    assert cell.result == "1", cell.describe()  # the cell ran, with the last good version
    assert cell.stderr.count(f"hotswap: [autoreload of {name} failed:") == 1, cell.describe()
    assert f"{path}:4" in cell.stderr, cell.describe()
    assert "SyntaxError" in cell.stderr, cell.describe()
    assert cell.stdout == "" and not cell.error, cell.describe()

    assert nb.value("f()") == "1"  # the same broken file is not reported twice

    write(
        """
        def f():
            return 3
        """
    )
    assert nb.value("f()") == "3"


def test_an_exception_at_import_keeps_the_old_code_says_so_and_a_fix_is_picked_up(
    nb: Kernel, module: tuple[str, Write]
) -> None:
    name, write = module
    write(
        """
        def f():
            return 1
        """
    )
    load(nb)
    nb.ok(f"import {name}\nfrom {name} import f")
    assert nb.value("f()") == "1"

    path = write(
        """
        def f():
            return 2

        RATIO = 1 / 0
        """
    )
    cell = nb.ok(f"f(), {name}.f(), hasattr({name}, 'RATIO')")
    assert cell.result == "(1, 1, False)", cell.describe()  # rolled back, not half-applied
    assert cell.stderr.count(f"hotswap: [autoreload of {name} failed:") == 1, cell.describe()
    assert "ZeroDivisionError" in cell.stderr, cell.describe()
    assert f"{path}:4" in cell.stderr, cell.describe()
    assert cell.stdout == "" and not cell.error, cell.describe()

    assert nb.value("f()") == "1"

    write(
        """
        def f():
            return 3

        RATIO = 1 / 2
        """
    )
    assert nb.value(f"f(), {name}.RATIO") == "(3, 0.5)"


def test_print_flag_reports_each_reload_on_the_cells_stdout(nb: Kernel, module: tuple[str, Write]) -> None:
    name, write = module
    write(
        """
        def f():
            return 1
        """
    )
    load(nb, "-p")
    nb.ok(f"from {name} import f")
    cell = nb.ok("f()")
    assert cell.result == "1" and "hotswap:" not in cell.stdout, cell.describe()

    write(
        """
        def f():
            return 2
        """
    )
    cell = nb.ok("f()")
    assert cell.result == "2", cell.describe()
    assert cell.stdout.count(f"hotswap: reloaded {name}") == 1, cell.describe()
    assert cell.stderr == "", cell.describe()

    cell = nb.ok("f()")  # nothing changed: nothing to report
    assert cell.result == "2" and "hotswap:" not in cell.stdout, cell.describe()


def test_after_unload_ext_edits_are_no_longer_applied(nb: Kernel, module: tuple[str, Write]) -> None:
    name, write = module
    write(
        """
        def f():
            return 1
        """
    )
    load(nb)
    nb.ok(f"from {name} import f")
    assert nb.value("f()") == "1"
    write(
        """
        def f():
            return 2
        """
    )
    assert nb.value("f()") == "2"  # hotswap was active

    nb.ok("%unload_ext hotswap")
    write(
        """
        def f():
            return 3
        """
    )
    assert nb.value("f()") == "2"
    assert nb.value("f()") == "2"
    gone = nb.execute("%autoreload 2")  # its magics went with it
    assert gone.status == "error" and gone.reply.get("ename") == "UsageError", gone.describe()
    assert "autoreload" in gone.stderr + str(gone.error), gone.describe()

    load(nb)  # and it can come back
    write(
        """
        def f():
            return 4
        """
    )
    assert nb.value("f()") == "4"


def test_cells_with_top_level_await_reload_too_and_mode_3_brings_new_names(
    nb: Kernel, module: tuple[str, Write]
) -> None:
    """The kernel runs cells with top-level ``await`` on its async path: hooks still run."""
    name, write = module
    write(
        """
        def f():
            return 1
        """
    )
    nb.ok("%load_ext hotswap")
    nb.ok("%autoreload 3")
    nb.ok(f"import asyncio\nawait asyncio.sleep(0)\nfrom {name} import *")
    assert nb.value("await asyncio.sleep(0, result=f())") == "1"
    write(
        """
        def f():
            return 2

        def g():
            return "g is new"
        """
    )
    assert nb.value("await asyncio.sleep(0, result=f())") == "2"
    assert nb.value("g()") == "'g is new'"


# -- IPython's own autoreload ----------------------------------------------------------

_FORGET_IPYTHON_AUTORELOAD = """
_ip = get_ipython()
for _event in ("pre_run_cell", "post_execute", "post_run_cell"):
    for _callback in list(_ip.events.callbacks.get(_event, ())):
        if type(getattr(_callback, "__self__", None)).__module__ == "IPython.extensions.autoreload":
            _ip.events.unregister(_event, _callback)
for _name in ("autoreload", "IPython.extensions.autoreload"):  # %load_ext records the latter
    _ip.extension_manager.loaded.discard(_name)
for _magic in ("autoreload", "aimport"):
    if getattr(_ip.magics_manager.magics["line"].get(_magic), "__module__", None) == "IPython.extensions.autoreload":
        _ip.magics_manager.magics["line"].pop(_magic)
_ip.magics_manager.registry.pop("AutoreloadMagics", None)
del _ip, _name, _magic
"""


@pytest.fixture
def forget_ipython_autoreload(kernel: Kernel) -> Iterator[None]:
    """Request it before ``nb``: after hotswap is unloaded, IPython's autoreload goes too."""
    yield
    kernel.ok(_FORGET_IPYTHON_AUTORELOAD)


def test_hotswap_takes_over_from_ipython_autoreload_and_reloads_once(
    forget_ipython_autoreload: None, nb: Kernel, module: tuple[str, Write]
) -> None:
    name, write = module
    write(
        """
        def f():
            return 1
        """
    )
    nb.ok("%load_ext autoreload")
    nb.ok("%autoreload 2")
    nb.ok(f"from {name} import f")
    cell = nb.ok("%load_ext hotswap")
    assert "hotswap takes over" in cell.stderr, cell.describe()
    nb.ok("%autoreload 2")
    write(
        """
        print("module body ran")

        def f():
            return 2
        """
    )
    cell = nb.ok("f()")
    assert cell.result == "2", cell.describe()
    assert cell.stdout.count("module body ran") == 1, cell.describe()  # one reloader, not two
    cell = nb.ok("f()")
    assert cell.result == "2" and cell.stdout == "", cell.describe()


def test_after_unload_ext_a_previously_loaded_ipython_autoreload_works_again(
    forget_ipython_autoreload: None, nb: Kernel, module: tuple[str, Write]
) -> None:
    """Unloading gives back what loading took over: IPython's magic *and* its hooks.

    (Regression: the magic used to come back without the hooks, so the restored
    ``%autoreload 2`` was accepted and silently never reloaded anything.)
    """
    name, write = module
    write(
        """
        def f():
            return 1
        """
    )
    nb.ok("%load_ext autoreload")
    nb.ok("%autoreload 2")
    nb.ok(f"from {name} import f")
    nb.ok("%load_ext hotswap")
    nb.ok("%autoreload 2")
    write(
        """
        def f():
            return 2
        """
    )
    assert nb.value("f()") == "2"

    nb.ok("%unload_ext hotswap")
    cell = nb.ok("%autoreload 2")  # IPython's magic is back...
    assert cell.stderr == "", cell.describe()
    write(
        """
        def f():
            return 3
        """
    )
    assert nb.value("f()") == "3"  # ...and so are its hooks: IPython's autoreload reloads again
