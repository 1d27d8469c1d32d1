"""Loading hotswap is cheap: nothing it can do later is done at ``%load_ext``. Modules already
imported are adopted after the cell (or when first needed), and the pool machinery of
``multiprocessing`` and ``concurrent.futures`` is not imported for the user: pools join when
the user's code first imports it. Each test runs a fresh interpreter, as a new kernel is."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

_SESSION = textwrap.dedent(
    """
    import os, sys, time
    sys.path.insert(0, sys.argv[1])
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell.instance(config=config)

    def cell(source):
        result = shell.run_cell(source)
        assert result.success, (source, result.error_before_exec, result.error_in_exec)

    def save(path, text):
        time.sleep(1.1)  # (an mtime a second on)
        with open(path, "w") as file:
            file.write(text)
    """
)


def _run(tmp_path: Path, body: str) -> list[str]:
    script = tmp_path / "session.py"
    script.write_text(_SESSION + textwrap.dedent(body))
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # as a user's
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=240, env=environment
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]


def test_loading_imports_no_pool_machinery_and_pools_made_later_follow(tmp_path):
    (tmp_path / "lazy_lib.py").write_text("def f():\n    return 1\n")
    results = _run(
        tmp_path,
        """
        cell("pass")  # (what IPython itself imports at its first cell, before looking)
        watched_for = [m for m in ("multiprocessing.pool", "concurrent.futures.process", "subprocess")
                       if m not in sys.modules]
        cell("%load_ext hotswap")
        cell("%autoreload 2")
        loaded = sorted(m for m in watched_for if m in sys.modules)
        print("RESULT loaded", loaded, flush=True)
        cell("import lazy_lib, multiprocessing\\n"
             "from concurrent.futures import ProcessPoolExecutor\\n"
             "spawn = multiprocessing.get_context('spawn')\\n"
             "pool = spawn.Pool(1)\\n"
             "executor = ProcessPoolExecutor(1, mp_context=spawn)")
        cell("before = (pool.apply(lazy_lib.f), executor.submit(lazy_lib.f).result())")
        save(os.path.join(sys.argv[1], "lazy_lib.py"), "def f():\\n    return 2\\n")
        cell("after = (pool.apply(lazy_lib.f), executor.submit(lazy_lib.f).result())")
        print("RESULT values", shell.user_ns["before"], shell.user_ns["after"], flush=True)
        cell("pool.terminate(); executor.shutdown()")
        """,
    )

    assert results == ["RESULT loaded []", "RESULT values (1, 1) (2, 2)"]


def test_modules_imported_before_loading_are_adopted_after_the_cell(tmp_path):
    """Adopted from a list made at load: the cell after ``%load_ext`` finds an edit saved right
    after it, and the state of the module is kept."""
    past = time.time() - 10  # saved a while before the session started
    for i in range(50):
        path = tmp_path / f"early_{i}.py"
        path.write_text(f"N = {i}\n\ndef f():\n    return N\n")
        os.utime(path, (past, past))
    results = _run(
        tmp_path,
        """
        cell("import early_0, early_49\\nearly_49.state = 'kept'")
        shell.run_line_magic("load_ext", "hotswap")  # (as a cell does, before the cell ends)
        from hotswap._ipython import session_of
        watchlist = session_of(shell).reloader.watchlist
        print("RESULT waiting", watchlist.unsettled >= 2, flush=True)
        cell("%autoreload 2")
        save(os.path.join(sys.argv[1], "early_49.py"), "N = 4900\\n\\ndef f():\\n    return N\\n")
        cell("value = early_49.f()")
        print("RESULT edit", shell.user_ns["value"], shell.user_ns["early_49"].state, "early_0" in watchlist, flush=True)
        """,
    )

    assert results == ["RESULT waiting True", "RESULT edit 4900 kept True"]


def test_the_reload_machinery_is_imported_after_the_cell_not_at_load(tmp_path):
    """Not by ``%load_ext``; by the warm-up thread once there are modules to reload, while the
    user reads the cell's output (the first edit does not wait for it)."""
    (tmp_path / "machine_lib.py").write_text("X = 1\n")
    results = _run(
        tmp_path,
        """
        shell.run_line_magic("load_ext", "hotswap")
        print("RESULT at load", "hotswap._apply" in sys.modules, flush=True)
        cell("%autoreload 2")
        cell("import machine_lib")
        from hotswap._ipython import session_of
        warm_up = session_of(shell).reloader.warm_up
        deadline = time.monotonic() + 30
        while warm_up.busy and time.monotonic() < deadline:
            time.sleep(0.01)
        print("RESULT after the cell", "hotswap._apply" in sys.modules, flush=True)
        """,
    )

    assert results == ["RESULT at load False", "RESULT after the cell True"]


def test_the_machinery_imports_nothing_outside_hotswap_once_its_needs_are_imported(tmp_path):
    """What makes importing it on the warm-up thread safe (see ``_machinery``): with the modules
    it lists imported, it imports hotswap's own modules, which no other code imports, and difflib,
    whose own imports are among them."""
    results = _run(
        tmp_path,
        """
        import importlib
        from hotswap import _machinery
        import hotswap._ipython
        for name in _machinery._OUTSIDE:
            importlib.import_module(name)
        before = set(sys.modules)
        _machinery.load()
        new = set(sys.modules) - before
        print("RESULT", sorted(m for m in new if not m.startswith("hotswap.") and m != "difflib"), flush=True)
        import ast, inspect
        tree = ast.parse(inspect.getsource(sys.modules["difflib"]))
        imports = {a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names}  # (at import time)
        imports |= {n.module for n in tree.body if isinstance(n, ast.ImportFrom)}
        print("RESULT", sorted(imports - set(_machinery._OUTSIDE)), flush=True)
        """,
    )

    assert results == ["RESULT []", "RESULT []"]
