"""What the benchmarks share: the frozen copy of the hotswap package they measure."""

from __future__ import annotations

import argparse
import compileall
import hashlib
import importlib.util
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def add_source_argument(parser: argparse.ArgumentParser) -> None:
    """``--src``: the hotswap to measure (what ``snapshot_source`` copies)."""
    parser.add_argument("--src", help="the hotswap package (or the directory holding it) to measure; "
                        "default: the one this interpreter imports")


def snapshot_source(src: str | None) -> tuple[str, Path, str, str]:
    """Copy the hotswap package to measure into a temp dir: edits during the run cannot mix versions.

    Returns (where it came from, the directory to put on PYTHONPATH, git state, digest).
    """
    if src is None:
        spec = importlib.util.find_spec("hotswap")
        if spec is None or not spec.submodule_search_locations:
            sys.exit("hotswap is not importable: run with the interpreter that has it, or pass --src")
        package = Path(list(spec.submodule_search_locations)[0])
    else:
        package = Path(src).resolve()
        if package.name != "hotswap":
            package = package / "hotswap"
    if not (package / "__init__.py").is_file():
        sys.exit(f"no hotswap package at {package}")
    dest = Path(tempfile.mkdtemp(prefix="hotswap-bench-src-"))
    shutil.copytree(package, dest / "hotswap", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    # compiled, as an install compiles it: children that may not write bytecode (PYTHONDONTWRITEBYTECODE)
    # would otherwise compile hotswap's modules in every measurement that imports them
    compileall.compile_dir(str(dest / "hotswap"), quiet=1)
    digest = hashlib.sha256()
    for path in sorted((dest / "hotswap").rglob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return str(package), dest, source_state(package), digest.hexdigest()[:12]


def source_state(package: Path) -> str:
    """The git commit of the hotswap being measured, and whether its files have local edits."""
    try:
        head = subprocess.run(
            ["git", "-C", str(package), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(package), "status", "--porcelain", "--", "."], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "git state unknown"
    if not head:
        return "not a git checkout"
    return f"commit {head}" + (" + uncommitted changes" if dirty else "")
