"""File-system events for detection: Linux inotify, read without blocking at each check.

Why not a watcher thread: the kernel queues an inotify event inside the very
``write``/``rename`` call that causes it, so a non-blocking read at the start of
a cell sees every save that finished before the cell started. A thread with a
debounce (as file-watching libraries use) could deliver it late, and the cell
would race it. An idle check is one ``read`` that returns ``EAGAIN``, whatever
the number of modules loaded.

Events only say which files to look at; content hashes still decide whether a
file really changed. Where events cannot be had (another OS, a network file
system, no inotify watches left), the caller falls back to ``stat`` checks of
just those files.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import struct
import sys

__all__ = ["Inotify", "open_inotify", "is_network_path"]

_IN_MODIFY = 0x002
_IN_ATTRIB = 0x004
_IN_CLOSE_WRITE = 0x008
_IN_MOVED_FROM = 0x040
_IN_MOVED_TO = 0x080
_IN_CREATE = 0x100
_IN_DELETE = 0x200
_IN_DELETE_SELF = 0x400
_IN_MOVE_SELF = 0x800
_IN_Q_OVERFLOW = 0x4000
_IN_IGNORED = 0x8000
_IN_ONLYDIR = 0x01000000
_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = 0o2000000

_MASK = (
    _IN_MODIFY | _IN_ATTRIB | _IN_CLOSE_WRITE | _IN_MOVED_FROM | _IN_MOVED_TO
    | _IN_CREATE | _IN_DELETE | _IN_DELETE_SELF | _IN_MOVE_SELF | _IN_ONLYDIR
)
_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len

_NETWORK_FILE_SYSTEMS = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "afs", "ceph", "fuse", "lustre", "gpfs")


class Inotify:
    """Directory watches on one inotify descriptor."""

    def __init__(self, fd: int, libc: ctypes.CDLL) -> None:
        self._fd = fd
        self._libc = libc
        self._dirs: dict[int, str] = {}  # watch descriptor -> directory
        self._watched: dict[str, int] = {}  # directory -> watch descriptor

    def watch(self, directory: str) -> bool:
        """Watch a directory's entries; ``False`` if it cannot be watched (fall back to stat)."""
        if directory in self._watched:
            return True
        wd = self._libc.inotify_add_watch(self._fd, os.fsencode(directory), _MASK)
        if wd < 0:
            return False
        self._dirs[wd] = directory
        self._watched[directory] = wd
        return True

    def drain(self) -> tuple[set[str], bool]:
        """Paths touched since the last drain, and whether events were lost (check everything)."""
        touched: set[str] = set()
        lost = False
        while True:
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                break
            except OSError as error:
                if error.errno == errno.EINTR:
                    continue
                return touched, True
            offset = 0
            while offset + _HEADER.size <= len(data):
                wd, mask, _cookie, length = _HEADER.unpack_from(data, offset)
                offset += _HEADER.size
                name = data[offset : offset + length].rstrip(b"\0")
                offset += length
                if mask & _IN_Q_OVERFLOW:
                    lost = True
                    continue
                directory = self._dirs.get(wd)
                if directory is None:
                    continue
                if mask & (_IN_IGNORED | _IN_DELETE_SELF | _IN_MOVE_SELF):
                    self._forget(wd)  # the directory itself went: its files must be checked
                    lost = True
                    continue
                if name:
                    touched.add(os.path.join(directory, os.fsdecode(name)))
        return touched, lost

    def _forget(self, wd: int) -> None:
        directory = self._dirs.pop(wd, None)
        if directory is not None:
            self._watched.pop(directory, None)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _libc() -> ctypes.CDLL:
    """The C library: the interpreter's own symbols first (no ``ldconfig`` run, as
    ``find_library`` does), then by name (musl and others)."""
    for name in (None, "libc.so.6"):
        try:
            libc = ctypes.CDLL(name, use_errno=True)
            if hasattr(libc, "inotify_init1"):
                return libc
        except OSError:
            continue
    return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def open_inotify() -> Inotify | None:
    """An inotify descriptor, or ``None`` where the platform has none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = _libc()
        libc.inotify_init1.argtypes = [ctypes.c_int]
        libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
    except (OSError, AttributeError):
        return None
    return Inotify(fd, libc) if fd >= 0 else None


def is_network_path(path: str) -> bool:
    """On a network file system, changes made on another machine raise no local event."""
    fstype = _mount_types().get(_mount_point(path), "")
    return fstype.split(".")[0] in _NETWORK_FILE_SYSTEMS


_MOUNTS: dict[str, str] | None = None


def _mount_types() -> dict[str, str]:
    global _MOUNTS
    if _MOUNTS is None:
        _MOUNTS = {}
        try:
            with open("/proc/self/mounts", encoding="utf-8", errors="replace") as mounts:
                for line in mounts:
                    fields = line.split()
                    if len(fields) >= 3:
                        _MOUNTS[fields[1].replace("\\040", " ")] = fields[2]
        except OSError:
            pass
    return _MOUNTS


def _mount_point(path: str) -> str:
    path = os.path.realpath(path)
    while not os.path.ismount(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path
