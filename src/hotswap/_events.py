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
import errno
import functools
import os
import struct
import sys
import threading
import time

__all__ = ["Inotify", "is_network_path", "lock_of_the_child", "open_inotify"]

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
    """Directory watches on one inotify descriptor, kept by path rather than by inode.

    A watch belongs to a folder's inode: a folder removed and recreated, or
    moved away and back (as ``git checkout`` of another branch and back does),
    would leave it watching nothing. So a folder whose watch goes is watched
    again at its path at once if it is there, or else, through its nearest
    existing ancestor, as soon as it comes back; either way ``drain`` names it,
    so the caller looks at each of its files then.
    """

    def __init__(self, fd: int, libc: ctypes.CDLL) -> None:
        self._fd = fd
        self._libc = libc
        self._dirs: dict[int, list[str]] = {}  # watch descriptor -> its paths (links can share a folder)
        self._watched: dict[str, int] = {}  # path -> watch descriptor
        self._since: dict[str, int] = {}  # path -> when its watch was made (``time.time_ns``)
        self._wanted: set[str] = set()  # the folders asked for (a module's file is there)
        # wanted folders without a watch for now (they are gone) -> the paths whose coming back
        # to look out for: the folder, and where it led when a link on its way points elsewhere
        self._orphans: dict[str, tuple[str, ...]] = {}
        self._blind: set[str] = set()  # orphans not even an ancestor could be watched for: tried each drain
        self._links: set[str] = set()  # wanted folders that are symlinks: their parent is watched too
        # an import on another thread may watch a new folder while a check drains: one at a time
        self._lock = threading.RLock()

    def watched_before(self, directory: str, moment_ns: int) -> bool:
        """Were a directory's entries watched already at that moment (a change made since is seen)?"""
        return self._since.get(directory, moment_ns) < moment_ns

    def watch(self, directory: str) -> bool:
        """Watch a directory's entries; ``False`` if it cannot be watched (fall back to stat)."""
        if directory in self._wanted and directory in self._watched:
            return True  # (at every import: no lock)
        with self._lock:
            return self._watch(directory)

    def _watch(self, directory: str) -> bool:
        self._wanted.add(directory)
        if directory in self._watched:
            return True
        if not self._add(directory):
            return False
        self._orphans.pop(directory, None)
        if os.path.islink(directory):  # the watch follows the link: see it re-pointed in its parent
            self._links.add(directory)
            self._watch(os.path.dirname(directory))
        return True

    def drain(self) -> tuple[set[str], set[str], bool]:
        """What happened since the last drain: the paths touched, the folders to look at
        whole (watched again after they went, or just gone), and whether events were
        lost (look at everything)."""
        with self._lock:
            return self._drain()

    def _drain(self) -> tuple[set[str], set[str], bool]:
        touched: set[str] = set()
        went: set[str] = set()
        lost = False
        while True:
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                break
            except OSError as error:
                if error.errno == errno.EINTR:
                    continue
                return touched, went, True
            lost |= self._read_events(data, touched, went)
        if went or touched and (self._orphans or self._links) or self._blind:  # (idle: nothing more to do)
            return touched, self._follow_paths(touched, went | (touched & self._links)), lost
        return touched, went, lost

    def _read_events(self, data: bytes, touched: set[str], went: set[str]) -> bool:
        """Add one read's events to ``touched`` and ``went``; ``True`` if the queue overflowed."""
        overflow = False
        offset = 0
        while offset + _HEADER.size <= len(data):
            wd, mask, _cookie, length = _HEADER.unpack_from(data, offset)
            offset += _HEADER.size
            name = data[offset : offset + length].rstrip(b"\0")
            offset += length
            if mask & _IN_Q_OVERFLOW:
                overflow = True
                went |= self._wanted  # what was dropped may have said a folder went: check every watch
                continue
            directories = self._dirs.get(wd)
            if directories is None:
                continue
            if mask & (_IN_IGNORED | _IN_DELETE_SELF | _IN_MOVE_SELF):
                went |= self._lose(wd, moved=bool(mask & _IN_MOVE_SELF))
            elif name:
                entry = os.fsdecode(name)
                touched.update(os.path.join(directory, entry) for directory in directories)
        return overflow

    def _lose(self, wd: int, *, moved: bool) -> set[str]:
        """A watched folder was deleted or moved: forget its paths, and those watched below them
        (a folder moved takes its subfolders along without telling their watches)."""
        paths = self._dirs.pop(wd, [])
        if moved:
            self._rm_watch(wd)  # it watches the folder where it went, not the path
        gone = set(paths)
        for path in paths:
            self._watched.pop(path, None)
            self._since.pop(path, None)
            below = path + os.sep
            gone.update(p for p in self._watched if p.startswith(below))
        for path in gone - set(paths):
            self._unwatch(path)
        return gone

    def _follow_paths(self, touched: set[str], went: set[str]) -> set[str]:
        """Watch again the wanted folders that went or came back; the ones to look at whole.

        A folder that went (or a link to one, re-pointed) is looked at whole once
        (its files may be gone); an orphan is tried when something appeared on its
        way (an ancestor's entry).
        """
        look = went & self._wanted
        for folder in look:
            self._orphans.setdefault(folder, tuple(dict.fromkeys((folder, os.path.realpath(folder)))))
        changed = went | touched
        retry = [
            orphan for orphan, ways in self._orphans.items()
            if orphan in self._blind or any(_on_the_way(way, changed) for way in ways)
        ]
        for orphan in sorted(retry):  # parents first: a child's guard may be its parent
            if self._add(orphan) or self._guard(orphan):
                del self._orphans[orphan]
                self._blind.discard(orphan)
                look.add(orphan)  # watched again: each of its files is looked at once
        if retry:
            self._drop_guards()
        return look

    def _guard(self, orphan: str) -> bool:
        """Watch the nearest existing ancestors of a folder that is gone (and of where its
        links led), to see it come back; ``True`` if it came back meanwhile."""
        self._blind.discard(orphan)
        for way in self._orphans[orphan]:
            ancestor = os.path.dirname(way)
            while ancestor not in self._watched and not self._add(ancestor):
                parent = os.path.dirname(ancestor)
                if parent == ancestor:
                    self._blind.add(orphan)  # nothing to watch on its way: tried at each drain
                    break
                ancestor = parent
        return self._add(orphan)  # it may have come back before the guard was set: no event says so

    def _drop_guards(self) -> None:
        """Stop watching ancestors that no gone folder waits on any more."""
        guards = [path for path in self._watched if path not in self._wanted]
        for guard in guards:
            if not any(_on_the_way(way, {guard}) for ways in self._orphans.values() for way in ways):
                self._unwatch(guard)

    def _add(self, path: str) -> bool:
        wd = self._libc.inotify_add_watch(self._fd, os.fsencode(path), _MASK)
        if wd < 0:
            return False
        if self._watched.get(path, wd) != wd:
            self._unwatch(path)  # the path leads to another folder now (a link re-pointed)
        paths = self._dirs.setdefault(wd, [])
        if path not in paths:
            paths.append(path)
        if path not in self._watched:
            self._since[path] = time.time_ns()
        self._watched[path] = wd
        return True

    def _unwatch(self, path: str) -> None:
        wd = self._watched.pop(path, None)
        self._since.pop(path, None)
        paths = self._dirs.get(wd) if wd is not None else None
        if wd is None or paths is None:
            return
        if path in paths:
            paths.remove(path)
        if not paths:
            del self._dirs[wd]
            self._rm_watch(wd)

    def _rm_watch(self, wd: int) -> None:
        self._libc.inotify_rm_watch(self._fd, wd)  # its IN_IGNORED comes later, for a forgotten wd

    def after_fork_in_child(self) -> None:
        self._lock = lock_of_the_child(self._lock)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


def lock_of_the_child(lock: threading.RLock) -> threading.RLock:
    """In a child process just forked: ``lock`` if the thread that forked holds it (it releases it
    here too), else a new one (another thread held it, or may have: that thread is not in the
    child, and the lock would be held for ever)."""
    owned = getattr(lock, "_is_owned", None)
    return lock if owned is not None and owned() else threading.RLock()


def _on_the_way(folder: str, paths: set[str]) -> bool:
    """Is one of ``paths`` the folder or one of its ancestors?"""
    while folder not in paths:
        parent = os.path.dirname(folder)
        if parent == folder:
            return False
        folder = parent
    return True


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
    from ctypes.util import find_library  # (it imports subprocess and tempfile: only if the two above fail)

    return ctypes.CDLL(find_library("c"), use_errno=True)


def open_inotify() -> Inotify | None:
    """An inotify descriptor, or ``None`` where the platform has none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = _libc()
        libc.inotify_init1.argtypes = [ctypes.c_int]
        libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
        fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
    except (OSError, AttributeError):
        return None
    return Inotify(fd, libc) if fd >= 0 else None


@functools.lru_cache(maxsize=4096)
def is_network_path(path: str) -> bool:
    """On a network file system, changes made on another machine raise no local event. (Asked of
    a folder at each import of a module in it: answered once per folder.)"""
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
