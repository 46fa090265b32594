"""The one owner of parkit's shared-memory segments: name, create, attach, unlink, sweep.

Every parkit segment is a file in ``/dev/shm``, whatever it holds: the
out-of-band buffers of a pool message (``_oob.py``), a ``SharedArray``
(``_shared.py``), the state of a lock, event, barrier or queue
(``_sync/_segment.py``). One naming rule covers them all::

    parkit-<owner pid>-<writer>-<token>
           |            |
           |            "p" (a pool's parent), "w<pid>" (a pool worker),
           |            "sa" (SharedArray), "sync" (sync objects)
           the process whose death makes the segment garbage

so that whoever outlives an owner can remove what it left (:func:`sweep`): a
pool worker whose parent was SIGKILLed removes every ``parkit-<parent>-``
segment as it exits, a pool removes what a dead worker left half-sent, and a
child that stops while importing the main module removes its own.

Segments are created readable by their owner only (SPEC §7) and exclusively
(``O_EXCL``: never someone else's file). Only the creating process unlinks a
segment it owns (:func:`unlink`): a forked child inherits its parent's objects
and must not remove their files. Attaching to a segment whose owner already
removed it raises :class:`SegmentGone` everywhere, with the same words.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import secrets
import weakref

TYPE_CHECKING = False  # typing.TYPE_CHECKING: workers don't import typing (~0.5 MiB)
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "DIR",
    "SegmentGone",
    "attach",
    "available",
    "create",
    "discard",
    "map_existing",
    "map_new",
    "new_name",
    "owned",
    "path_of",
    "prefix",
    "require",
    "sweep",
    "unlink",
]

DIR = "/dev/shm"


class SegmentGone(FileNotFoundError, ValueError):
    """A segment's owner removed it before this process attached to it.

    Both a ``FileNotFoundError`` (the file is gone) and a ``ValueError`` (the
    handle that named it is stale), as ``io.UnsupportedOperation`` is both an
    ``OSError`` and a ``ValueError``: code written against either keeps working.
    """


def available() -> bool:
    """Whether segments can be made here (``/dev/shm`` exists and is writable)."""
    return os.path.isdir(DIR) and os.access(DIR, os.W_OK)


def require(what: str) -> None:
    """Raise ``OSError`` naming ``what`` where there is no ``/dev/shm``."""
    if not os.path.isdir(DIR):
        raise OSError(f"{what} needs {DIR} (shared memory, Linux)")


def prefix(owner: int, writer: str) -> str:
    """The name prefix of segments written by ``writer`` for owner ``owner``."""
    return f"parkit-{owner}-{writer}-"


def new_name(writer: str) -> str:
    """A fresh segment name owned by this process."""
    return f"{prefix(os.getpid(), writer)}{secrets.token_hex(8)}"


def path_of(name: str) -> str:
    """The file of segment ``name``."""
    return os.path.join(DIR, name)


def create(name: str, size: int) -> int:
    """Create segment ``name`` of ``size`` bytes; its descriptor (read-write).

    Raises:
        OSError: the file exists, or ``/dev/shm`` refused it (nothing is left).
    """
    path = path_of(name)
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    try:
        os.ftruncate(fd, size)
        _reserve(fd, size, path)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    return fd


def _reserve(fd: int, size: int, path: str) -> None:
    """Give the segment its pages now, so that a full ``/dev/shm`` is an error here.

    ``ftruncate`` alone makes a sparse file: on a full tmpfs (a container's 64 MiB
    default) the first write to a page past its capacity is a SIGBUS that kills the
    process, far from the call that made the segment.

    Raises:
        OSError: ENOSPC, naming the segment and its size.
    """
    fallocate = getattr(os, "posix_fallocate", None)  # absent on macOS
    if fallocate is None or size == 0:
        return
    try:
        fallocate(fd, 0, size)
    except OSError as e:
        if e.errno in (errno.EOPNOTSUPP, errno.EINVAL):
            return  # a file system without it: sparse, as before
        if e.errno == errno.ENOSPC:
            raise OSError(
                e.errno,
                f"no space left in {DIR} for a shared-memory segment of {size} bytes "
                "(a container's /dev/shm is often 64 MiB: raise it, e.g. docker "
                "--shm-size)",
                path,
            ) from None
        raise


def attach(name: str, what: str, *, writable: bool = True) -> int:
    """Open the existing segment ``name``; its descriptor.

    Args:
        name: the segment's name, as its handle carries it.
        what: what it holds, for the error (``"parkit.Lock"``).
        writable: open it read-write (else read-only).

    Raises:
        SegmentGone: its owner removed it already.
        ValueError: ``name`` is not a parkit segment's name.
    """
    if "/" in name or not name.startswith("parkit-"):
        raise ValueError(f"not a parkit segment name: {name!r}")
    try:
        return os.open(path_of(name), os.O_RDWR if writable else os.O_RDONLY)
    except FileNotFoundError:
        raise SegmentGone(
            f"the {what} {name} no longer exists: the process that created it closed "
            "it or exited; keep it alive while other processes use it"
        ) from None


def unlink(path: str, owner_pid: int | None) -> None:
    """Remove the segment at ``path`` if this process is ``owner_pid``, its owner."""
    # A fork child inherits the owner's objects: only the owner itself unlinks.
    if owner_pid == os.getpid():
        with contextlib.suppress(OSError):
            os.unlink(path)
        from . import _owned  # noqa: PLC0415 - the pool's workers never own one

        _owned.disown(path)


def map_new(writer: str, size: int, what: str) -> tuple[str, mmap.mmap]:
    """A new segment of ``size`` bytes owned by this process, mapped; its name.

    Args:
        writer: the name's writer part (``"sa"``, ``"val"``).
        size: bytes (0 maps one byte: mmap refuses an empty mapping).
        what: what it holds, for the error where there is no ``/dev/shm``.
    """
    require(what)
    name = new_name(writer)
    size = max(size, 1)
    fd = create(name, size)
    try:
        region = mmap.mmap(fd, size, flags=mmap.MAP_SHARED)
    except BaseException:
        discard(name)
        raise
    finally:
        os.close(fd)  # the mapping keeps the file
    return name, region


def map_existing(name: str, size: int, what: str) -> mmap.mmap:
    """Map the existing segment ``name`` (``size`` bytes, as made by :func:`map_new`).

    Raises:
        SegmentGone: its owner removed it already.
    """
    fd = attach(name, what)
    try:
        return mmap.mmap(fd, max(size, 1), flags=mmap.MAP_SHARED)
    finally:
        os.close(fd)


def owned(holder: object, name: str) -> weakref.finalize[Any, Any]:
    """Make this process remove segment ``name`` once ``holder`` is done with it.

    When ``holder`` is collected, when the returned finalizer is called
    (``close()``), or at interpreter exit once the non-daemonic children are
    joined (``_owned.py``: a child still starting may need the file).
    """
    path = path_of(name)
    finalizer = weakref.finalize(holder, unlink, path, os.getpid())
    finalizer.atexit = False
    from . import _owned  # noqa: PLC0415 - the pool's workers never own one

    _owned.own(path)
    return finalizer


def discard(name: str) -> None:
    """Remove segment ``name`` whoever owns it, if it is still there (a message
    segment whose receiver never mapped it)."""
    with contextlib.suppress(OSError):
        os.unlink(path_of(name))


def sweep(owner: int, writer: str | None = None) -> None:
    """Remove every segment of ``owner`` (of its ``writer`` only, if given).

    For when the owner (or that writer) is gone: nobody else would remove them.
    """
    start = f"parkit-{owner}-" if writer is None else prefix(owner, writer)
    # A plain prefix test, not glob(): glob compiles a regex per pattern, and
    # every worker's pattern is new (its pid), which cost ~0.2 ms per worker
    # on each pool shutdown.
    try:
        entries = os.scandir(DIR)
    except OSError:
        return
    with entries:
        for entry in entries:
            if entry.name.startswith(start):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
