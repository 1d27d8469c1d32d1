"""Which files are the user's own code: what hotswap watches, and what a worker may take from
the journal. The standard library only: every worker process imports it (see ``_join``).
"""

from __future__ import annotations

import functools
import os
import site
from importlib.machinery import EXTENSION_SUFFIXES

__all__ = ["is_user_extension", "is_user_file", "real_path"]

_OWN_DIR = os.path.dirname(os.path.realpath(__file__)) + os.sep


def _library_roots() -> tuple[str, ...]:
    """Where the standard library and installed packages live. (``sysconfig`` is not asked: loading
    it costs more than the answer; a folder named ``site-packages`` or ``dist-packages`` is never
    the user's anyway.)"""
    roots = {os.path.dirname(os.__file__)}  # the standard library (``lib-dynload`` is below it)
    try:
        roots.update(site.getsitepackages())
        roots.add(site.getusersitepackages())
    except AttributeError:  # some embedded interpreters lack these
        pass
    return tuple(os.path.realpath(r).rstrip(os.sep) + os.sep for r in roots if r)


_LIBRARY_ROOTS = _library_roots()


def is_user_file(path: str) -> bool:
    """Is this the user's own Python source (not the stdlib, not an installed package)?

    Editable installs count as the user's code: their files live in the
    user's tree, not under site-packages; so does a link from elsewhere into it
    (``flit install --symlink``). A file in the user's folders is theirs, link or
    not. (Asked at every import: answered once per folder, and with one ``lstat``
    for a file outside the user's folders.)
    """
    if not path.endswith(".py"):
        return False
    return _user_folder(folder_of(path)) or (os.path.islink(path) and _in_user_tree(os.path.realpath(path)))


def folder_of(path: str) -> str:
    """``os.path.dirname`` of a file's path, at half its cost: asked at every import."""
    cut = path.rfind(_SEP)
    if cut > 0 and path[cut - 1] != _SEP and _ONE_SEP:
        return path[:cut]
    return os.path.dirname(path)  # (a file at the root, doubled separators, Windows: as it says)


_SEP = os.sep
_ONE_SEP = os.altsep is None


def is_user_extension(path: str) -> bool:
    """A compiled extension module built in the user's tree (e.g. with Cython, in place)."""
    return path.endswith(tuple(EXTENSION_SUFFIXES)) and _in_user_tree(real_path(path))


def real_path(path: str) -> str:
    """``os.path.realpath``, resolving each folder once: a load looks at every loaded module."""
    folder, name = os.path.split(path)
    real = os.path.join(_real_folder(folder), name)
    return os.path.realpath(real) if os.path.islink(real) else real


@functools.lru_cache(maxsize=4096)
def _real_folder(folder: str) -> str:
    return os.path.realpath(folder)


@functools.lru_cache(maxsize=4096)
def _user_folder(folder: str) -> bool:
    return _in_user_tree(os.path.join(_real_folder(folder), ""))


def _in_user_tree(real: str) -> bool:
    parts = real.split(os.sep)
    if "site-packages" in parts or "dist-packages" in parts:
        return False
    return not real.startswith(_LIBRARY_ROOTS) and not real.startswith(_OWN_DIR)
