"""The one owner of parkit's shared-memory segments: name, create, attach, unlink, sweep.

A segment holds the out-of-band buffers of a pool message (``_oob.py``), a
``SharedArray`` (``_shared.py``), a ``Value``/``Array`` (``_values.py``) or the
state of a lock, event, barrier or queue (``_sync/_segment.py``). One naming
rule covers them all::

    parkit-<owner pid>-<writer>-<token>
           |            |        |
           |            |        10 hex digits (a counter for messages)
           |            "p" (a pool's parent), "w<pid>" (a pool worker),
           |            "sa" (SharedArray), "val" (Value/Array), "sync" (sync
           |            objects), "q" (a queue's data area, see below),
           |            "b" (a :class:`Block`, removed as soon as it is made)
           the process whose death makes the segment garbage

At most 30 characters where pids have at most 5 digits (macOS: ``shm_open``
names are limited to 31 bytes, the leading "/" included); Linux allows 255.
Whoever outlives an owner can remove what it left (:func:`sweep`): a pool worker
whose parent was SIGKILLed removes every ``parkit-<parent>-`` segment as it
exits, a pool removes what a dead worker left half-sent, and a child that stops
while importing the main module removes its own.

Two kinds of segment, chosen once by the platform probe (``_platform.py``):

* **files in /dev/shm** (Linux, ``SHM_FILES``): created with ``os.open``,
  listed by scanning ``/dev/shm``, written with ``pwrite``, grown with
  ``ftruncate``, their pages reserved with ``posix_fallocate``;
* **POSIX shared-memory objects** (macOS and any POSIX without ``/dev/shm``;
  ``POSIX_SHM``): made with ``shm_open`` through ``_posixshmem``, as
  ``multiprocessing.shared_memory`` makes them. Their names can't be listed,
  so each one has a *marker*: an empty file of the same name in this user's
  registry directory (:func:`registry_dir`: ``$XDG_RUNTIME_DIR/parkit``, else
  ``<tempdir>/parkit-<uid>``, mode 0700), made before the object and removed
  after it; :func:`sweep` lists the markers instead of ``/dev/shm``. A marker
  is also what a sync object ``flock``s where it has no robust mutex (macOS
  can't ``flock`` a shared-memory object). Such objects are written through a
  mapping only and sized once, when they are made (macOS refuses ``pwrite``
  and a second ``ftruncate``), so a queue's data area is a segment of its own
  (writer ``q``), replaced when it grows. On Linux, under the test switch
  ``PARKIT_FORCE_PORTABLE=1``, these objects are files in ``/dev/shm`` too, so
  the suite's leak guard still sees them.

Segments are created readable by their owner only (SPEC §7) and exclusively
(``O_EXCL``: never someone else's). Only the creating process unlinks a
segment it owns (:func:`unlink`): a forked child inherits its parent's objects
and must not remove them. Attaching to a segment whose owner already removed
it raises :class:`SegmentGone` everywhere, with the same words. On Windows
nothing here is used: every object that would need a segment raises
``NotImplementedError`` when it is made (:func:`require`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import weakref

from . import _frames, _platform

TYPE_CHECKING = False  # typing.TYPE_CHECKING: workers don't import typing (~0.5 MiB)
if TYPE_CHECKING:
    # Imported where a segment is mapped: a process that only names, creates
    # or sweeps segments (a parkit.run parent, a pool that sends nothing out
    # of band) does without it.
    import mmap
    from typing import Any

__all__ = [
    "DIR",
    "FILES",
    "Block",
    "SegmentGone",
    "attach",
    "available",
    "create",
    "discard",
    "fill",
    "guard_fd",
    "map_existing",
    "map_new",
    "map_received",
    "new_name",
    "owned",
    "owner_of",
    "prefix",
    "registry_dir",
    "reopen",
    "require",
    "sweep",
    "unlink",
]

#: Segments are files in :data:`DIR` (else POSIX shared-memory objects).
FILES = _platform.SHM_FILES
DIR = _platform.SHM_DIR
_POSIX = _platform.POSIX_SHM
#: Hex digits of a name's random token (40 bits; the pid in the name scopes it).
_TOKEN_BYTES = 5


class SegmentGone(FileNotFoundError, ValueError):
    """A segment's owner removed it before this process attached to it.

    Both a ``FileNotFoundError`` (the file is gone) and a ``ValueError`` (the
    handle that named it is stale), as ``io.UnsupportedOperation`` is both an
    ``OSError`` and a ``ValueError``: code written against either keeps working.
    """


def available() -> bool:
    """Whether segments can be made here."""
    return FILES or _POSIX


def require(what: str, instead: str) -> None:
    """Raise where ``what`` can have no segment.

    Raises:
        NotImplementedError: on Windows, naming ``instead`` (the stdlib's way).
        OSError: a POSIX system with neither ``/dev/shm`` nor ``shm_open``.
    """
    _platform.not_on_windows(what, "POSIX shared memory", instead)
    if not available():
        raise OSError(
            f"{what} needs shared memory: {DIR} or shm_open (_posixshmem), and "
            f"{_platform.NAME} has neither"
        )


def prefix(owner: int, writer: str) -> str:
    """The name prefix of segments written by ``writer`` for owner ``owner``."""
    return f"parkit-{owner}-{writer}-"


def new_name(writer: str, owner: int | None = None) -> str:
    """A fresh segment name, owned by this process (or by ``owner``)."""
    who = os.getpid() if owner is None else owner
    return f"{prefix(who, writer)}{os.urandom(_TOKEN_BYTES).hex()}"


def owner_of(name: str) -> int:
    """The owner pid that segment ``name`` carries."""
    return int(name.split("-", 2)[1])


def _path(name: str) -> str:
    return os.path.join(DIR, name)


# -- the registry of POSIX shared-memory objects -------------------------------------

_registry: str | None = None


def registry_dir() -> str:
    """This user's directory of segment markers (made on first use, mode 0700).

    ``$XDG_RUNTIME_DIR/parkit`` where that is set (a per-user tmpfs on Linux),
    else ``parkit-<uid>`` in :func:`tempfile.gettempdir` (per user on macOS).

    Raises:
        PermissionError: the directory exists but is not this user's alone.
    """
    global _registry
    if _registry is not None:
        return _registry
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime) and os.path.isdir(runtime):
        path = os.path.join(runtime, "parkit")
    else:
        import tempfile  # noqa: PLC0415 - only where segments are shm_open objects

        path = os.path.join(tempfile.gettempdir(), f"parkit-{os.getuid()}")
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise PermissionError(
            f"parkit's segment registry {path} must be a directory of this user's "
            "with mode 0700 (it lists shared-memory segments to remove when their "
            "owner dies)"
        )
    _registry = path
    return path


def _marker(name: str) -> str:
    return os.path.join(registry_dir(), name)


def _shm_open(name: str, flags: int, mode: int = 0o600) -> int:
    import _posixshmem  # noqa: PLC0415 - POSIX only (probed: _platform.POSIX_SHM)

    fd: int = _posixshmem.shm_open("/" + name, flags, mode)
    return fd


def _shm_unlink(name: str) -> None:
    import _posixshmem  # noqa: PLC0415

    with contextlib.suppress(OSError):
        _posixshmem.shm_unlink("/" + name)


# -- create, attach ----------------------------------------------------------------


def create(name: str, size: int) -> int:
    """Create segment ``name`` of ``size`` bytes; its descriptor (read-write).

    Raises:
        OSError: it exists, or the system refused it (nothing is left).
    """
    if not FILES:
        return _create_object(name, size)
    path = _path(name)
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


def _create_object(name: str, size: int) -> int:
    # The marker first: it claims the name (O_EXCL), and a sweep that finds it
    # removes the object too, whatever step this process dies in.
    marker = _marker(name)
    os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    try:
        fd = _shm_open(name, os.O_CREAT | os.O_EXCL | os.O_RDWR)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(marker)
        raise
    try:
        os.ftruncate(fd, size)  # macOS: once, here; its pages are allocated now
    except BaseException:
        os.close(fd)
        discard(name)
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
    if size == 0:
        return
    try:
        os.posix_fallocate(fd, 0, size)
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
    flags = os.O_RDWR if writable else os.O_RDONLY
    try:
        if FILES:
            return os.open(_path(name), flags)
        return _shm_open(name, flags, 0)
    except FileNotFoundError:
        raise SegmentGone(
            f"the {what} {name} no longer exists: the process that created it closed "
            "it or exited; keep it alive while other processes use it"
        ) from None


def guard_fd(name: str, fd: int) -> int:
    """A descriptor to ``flock`` for segment ``name`` (open as ``fd``).

    The segment's own where it is a file; else a new descriptor of its marker
    (macOS can't ``flock`` a shared-memory object): the caller closes it.
    """
    if FILES:
        return fd
    try:
        return os.open(_marker(name), os.O_RDWR)
    except FileNotFoundError:
        raise SegmentGone(f"the segment {name} no longer exists") from None


def reopen(name: str, fd: int) -> None:
    """Give descriptor ``fd`` (from :func:`guard_fd`) a new open file description.

    A forked child shares its parent's, and with it the parent's ``flock``.
    The same descriptor number is kept. Through ``/proc/self/fd`` where there is
    one (the segment may be unlinked already), else by name: a segment whose
    owner removed it keeps sharing its lock with the parent.
    """
    paths = [f"/proc/self/fd/{fd}"] if _platform.PROC else []
    paths.append(_path(name) if FILES else _marker(name))
    for path in paths:
        try:
            new = os.open(path, os.O_RDWR)
        except OSError:
            continue
        os.dup2(new, fd)
        os.close(new)
        return


def fill(fd: int, size: int, pieces: list[tuple[int, memoryview]]) -> None:
    """Write each ``(offset, bytes)`` of ``pieces`` into the new segment ``fd``.

    ``pwrite`` into a file (no page faults in this process); through a mapping
    into a shared-memory object, which macOS does not let ``write``.
    """
    if FILES:
        for at, raw in pieces:
            written = 0
            while written < raw.nbytes:
                written += os.pwrite(fd, raw[written:], at + written)
        return
    import mmap  # noqa: PLC0415 - on first mapping (see the imports above)

    with mmap.mmap(fd, size) as region:
        for at, raw in pieces:
            region[at : at + raw.nbytes] = raw


def map_received(name: str, what: str) -> mmap.mmap:
    """Map a message's segment for its receiver, and remove its name.

    Copy-on-write where the segment is a file: the receiver's writes stay its
    own. A shared-memory object can only be mapped shared (macOS), which comes
    to the same: its name is gone, and its sender wrote it before sending.

    Raises:
        SegmentGone: its sender removed it already.
    """
    fd = attach(name, what, writable=not FILES)
    try:
        discard(name)  # mapped or not, nobody needs the name any more
        size = os.fstat(fd).st_size
        import mmap  # noqa: PLC0415 - on first mapping (see the imports above)

        if FILES:
            return mmap.mmap(
                fd, size, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE
            )
        return mmap.mmap(fd, size)
    finally:
        os.close(fd)


# -- ownership and removal ---------------------------------------------------------


def unlink(name: str, owner_pid: int | None) -> None:
    """Remove segment ``name`` if this process is ``owner_pid``, its owner."""
    # A fork child inherits the owner's objects: only the owner itself unlinks.
    if owner_pid == os.getpid():
        discard(name)
        from . import _owned  # noqa: PLC0415 - the pool's workers never own one

        _owned.disown(name)


def map_new(writer: str, size: int, what: str, instead: str) -> tuple[str, mmap.mmap]:
    """A new segment of ``size`` bytes owned by this process, mapped; its name.

    Args:
        writer: the name's writer part (``"sa"``, ``"val"``).
        size: bytes (0 maps one byte: mmap refuses an empty mapping).
        what: what it holds, for the errors.
        instead: the stdlib's alternative, for the error on Windows.
    """
    require(what, instead)
    name = new_name(writer)
    size = max(size, 1)
    fd = create(name, size)
    import mmap  # noqa: PLC0415 - on first mapping (see the imports above)

    try:
        region = mmap.mmap(fd, size)
    except BaseException:
        discard(name)
        raise
    finally:
        os.close(fd)  # the mapping keeps the segment
    return name, region


class Block(_frames.OwnedFd):
    """Shared memory without a name, for this process and the children it starts.

    A segment removed as soon as it is made: nothing is left to sweep, whoever
    dies. Forked children inherit the mapping; spawn and forkserver children
    get the descriptor while they start (pickled as ``multiprocessing`` passes
    a ``Connection``'s) and map it. ``multiprocessing.heap.BufferWrapper`` does
    the same, but imports ``tempfile`` (~3 ms of a cold start, see
    ``_frames.py``).
    """

    __slots__ = ("_region", "size")

    _CLOSED = "the shared block's descriptor is closed"

    def __init__(self, size: int, what: str) -> None:
        """``size`` bytes, zeroed; ``what`` names it in errors (``OSError``)."""
        import mmap  # noqa: PLC0415 - on first mapping (see the imports above)

        super().__init__(-1)
        name = new_name("b")
        self.size = max(size, 1)
        fd = create(name, self.size)
        discard(name)  # children get the descriptor, never the name
        try:
            self._region = mmap.mmap(fd, self.size)
        except OSError as e:
            os.close(fd)
            raise OSError(e.errno, f"could not map the {what}: {e.strerror}") from e
        self._fd = fd

    def memoryview(self) -> memoryview:
        """The block's bytes."""
        return memoryview(self._region)

    def close(self) -> None:
        """Close the descriptor (children started from now on can't get it); the
        mapping stays while anything uses it."""
        super().close()

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_block, (self._for_child(), self.size))


def _rebuild_block(dup: Any, size: int) -> Block:
    import mmap  # noqa: PLC0415 - on first mapping (see the imports above)

    block = Block.__new__(Block)
    block.size = size
    block._fd = -1  # mapped: the descriptor is not needed any more
    fd = dup.detach()
    try:
        block._region = mmap.mmap(fd, size)
    finally:
        os.close(fd)
    return block


def map_existing(name: str, size: int, what: str) -> mmap.mmap:
    """Map the existing segment ``name`` (``size`` bytes, as made by :func:`map_new`).

    Raises:
        SegmentGone: its owner removed it already.
    """
    fd = attach(name, what)
    import mmap  # noqa: PLC0415 - on first mapping (see the imports above)

    try:
        return mmap.mmap(fd, max(size, 1))
    finally:
        os.close(fd)


def owned(holder: object, name: str) -> weakref.finalize[Any, Any]:
    """Make this process remove segment ``name`` once ``holder`` is done with it.

    When ``holder`` is collected, when the returned finalizer is called
    (``close()``), or at interpreter exit once the non-daemonic children are
    joined (``_owned.py``: a child still starting may need the segment).
    """
    finalizer = weakref.finalize(holder, unlink, name, os.getpid())
    finalizer.atexit = False
    from . import _owned  # noqa: PLC0415 - the pool's workers never own one

    _owned.own(name)
    return finalizer


def discard(name: str) -> None:
    """Remove segment ``name`` whoever owns it, if it is still there (a message
    segment whose receiver never mapped it)."""
    if FILES:
        with contextlib.suppress(OSError):
            os.unlink(_path(name))
        return
    _shm_unlink(name)
    with contextlib.suppress(OSError):
        os.unlink(_marker(name))  # after the object: a sweep still finds it


def sweep(owner: int, writer: str | None = None) -> None:
    """Remove every segment of ``owner`` (of its ``writer`` only, if given).

    For when the owner (or that writer) is gone: nobody else would remove them.
    Lists ``/dev/shm``, or the registry of markers where segments are
    shared-memory objects.
    """
    start = f"parkit-{owner}-" if writer is None else prefix(owner, writer)
    # A plain prefix test, not glob(): glob compiles a regex per pattern, and
    # every worker's pattern is new (its pid), which cost ~0.2 ms per worker
    # on each pool shutdown.
    try:
        entries = os.scandir(DIR if FILES else registry_dir())
    except OSError:
        return
    with entries:
        names = [entry.name for entry in entries if entry.name.startswith(start)]
    for name in names:
        discard(name)
