"""IPython's own autoreload tests, run against hotswap.

The test file of the IPython installed here (in the package up to IPython 8, in
its source distribution from IPython 9 on: downloaded once from the package
index, then cached) runs twice, each time in a new process: as it is, against
IPython's autoreload, and with ``ipython_suite/hotswap_as_autoreload.py``, which
gives each test a new real shell with ``%load_ext hotswap`` in place of its
``FakeShell``. Every test that passes for IPython must pass for hotswap, except
those of ``DIFFERENT_BY_DESIGN``, which must fail (so that list stays true).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import IPython
import pytest

ADAPTER = Path(__file__).parent / "ipython_suite"
DIFFERENT_BY_DESIGN = {
    "test_autoreload_output": (
        "it saves a module again with the same text and expects 'Reloading' printed and logged: "
        "hotswap compares what the file holds, so nothing changed and nothing is reloaded or said "
        "(its -p and -l output is tested in tests/test_shells.py and tests/test_errors.py)"
    ),
}


def test_every_test_that_passes_for_ipython_passes_for_hotswap(tmp_path):
    suite = ipython_autoreload_tests()
    for_ipython = outcomes(suite, tmp_path / "ipython.xml", hotswap=False)
    for_hotswap = outcomes(suite, tmp_path / "hotswap.xml", hotswap=True)

    assert for_hotswap.keys() == for_ipython.keys()
    assert len(for_ipython) >= 8, for_ipython  # the whole file ran (8 tests in IPython 8.0)
    assert set(for_ipython.values()) == {"passed"}, for_ipython  # numpy is in the test extra: none skipped
    lost = {
        name: outcome
        for name, outcome in for_hotswap.items()
        if outcome != "passed" and short(name) not in DIFFERENT_BY_DESIGN
    }
    assert not lost, f"pass for IPython's autoreload, not for hotswap: {lost}"
    assert all(for_hotswap[name] == "failed" for name in for_hotswap if short(name) in DIFFERENT_BY_DESIGN)


def short(name: str) -> str:
    return name.rpartition(".")[2]


def outcomes(suite: Path, report: Path, *, hotswap: bool) -> dict[str, str]:
    """Each test of ``suite`` -> passed / failed / skipped, run in a new process."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(suite)]
    command += ["-c", str(suite.with_name("pytest.ini")), "--rootdir", str(suite.parent), f"--junitxml={report}"]
    environment = dict(os.environ)
    if hotswap:
        command += ["-p", "hotswap_as_autoreload"]
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ADAPTER), environment.get("PYTHONPATH")]))
    run = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=600)
    if not report.exists():
        pytest.fail(f"IPython's tests did not run ({run.returncode}):\n{run.stdout}\n{run.stderr}")
    found = {}
    for case in ElementTree.parse(report).iter("testcase"):
        name = f"{case.get('classname')}.{case.get('name')}"
        kinds = {child.tag for child in case}
        found[name] = "failed" if kinds & {"failure", "error"} else "skipped" if "skipped" in kinds else "passed"
    return found


def ipython_autoreload_tests() -> Path:
    """IPython's autoreload test file for the installed IPython, with an empty ``pytest.ini`` beside it."""
    folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hotswap-tests"
    folder /= f"ipython-{IPython.__version__}"
    target = folder / "test_autoreload_of_ipython.py"
    if not target.exists():
        folder.mkdir(parents=True, exist_ok=True)
        _put(folder / "pytest.ini", b"[pytest]\n")
        _put(target, _shipped_tests() or _tests_from_source_distribution())
    return target


def _shipped_tests() -> bytes | None:
    """IPython 8 ships its tests in the package."""
    shipped = Path(IPython.__file__).parent / "extensions" / "tests" / "test_autoreload.py"
    return shipped.read_bytes() if shipped.exists() else None


def _tests_from_source_distribution() -> bytes:
    with tempfile.TemporaryDirectory() as download:
        fetched = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
             f"ipython=={IPython.__version__}", "-d", download],
            capture_output=True, text=True, timeout=600,
        )
        archives = list(Path(download).glob("ipython-*.tar.gz"))
        if not archives:
            pytest.fail(f"could not download IPython's source distribution:\n{fetched.stderr}")
        with tarfile.open(archives[0]) as archive:
            member = next(m for m in archive.getmembers() if m.name.endswith("/tests/test_zzz_autoreload.py"))
            extracted = archive.extractfile(member)
            assert extracted is not None
            return extracted.read()


def _put(path: Path, data: bytes) -> None:
    """Written whole or not at all: suites on several interpreters may fill the cache at once."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_bytes(data)
    os.replace(temporary, path)
