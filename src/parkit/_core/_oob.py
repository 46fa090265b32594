"""Large buffers beside the pickle, through a shared-memory file instead of a pipe.

Pickle protocol 5 hands buffer-backed objects (NumPy arrays, ``bytearray``,
``PickleBuffer``) to a ``buffer_callback`` instead of copying them into the
pickle. :func:`dumps` writes the large ones (≥ :data:`THRESHOLD`) into one
shared-memory segment (``_segments.py``: a file in ``/dev/shm`` on Linux, a
``shm_open`` object elsewhere) and returns, besides the small pickle, a
descriptor naming the segment and where each buffer lies. :func:`loads` maps
it (copy-on-write where it is a file), removes its name at once and rebuilds
the objects *on* the mapping: the receiver's arrays are views of shared pages,
writable, and nothing is copied again. A pipe
moves about 1 GiB/s one way; this moves what the kernel can allocate and copy.

Who cleans up, so no segment outlives its use (SPEC §6, FAULTS: leaked segments):

* the receiver unlinks a segment as soon as it has mapped it;
* the sender unlinks it too once the message has been handled or lost (a dead
  receiver never mapped it); unlinking twice is harmless;
* names carry the owning parent's pid and who wrote them
  (``parkit-<owner>-p-<n>`` by the parent, ``parkit-<owner>-w<pid>-<n>`` by a
  worker), so the parent removes what a dead worker left half-sent, and a worker
  whose parent died removes all of that parent's segments before it exits
  (``_segments.py`` owns the naming rule, creation and the sweep).

Segments are created readable by their owner only (SPEC §7). Where there is no
shared memory, or it is full, everything travels in-band, as before.
"""

from __future__ import annotations

import itertools
import os
import pickle
import struct

from . import _segments, _wire

TYPE_CHECKING = False  # typing.TYPE_CHECKING: workers don't import typing (~0.5 MiB)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["THRESHOLD", "discard", "dumps", "loads"]

#: Buffers at least this large go out of band (smaller ones are cheaper in-band).
THRESHOLD = 1 << 20
_ALIGN = 64  # keep every buffer cache-line (and SIMD) aligned
_counter = itertools.count()
_LAYOUT = struct.Struct("<QQ")  # offset, length of one buffer


_ENABLED = _segments.available()


def dumps(obj: Any, main: _wire.MainPolicy, owner: int, writer: str) -> tuple[bytes, bytes]:
    """Pickle ``obj``; large buffers go to a segment.

    Returns:
        ``(pickle, descriptor)``; the descriptor is ``b""`` when nothing went
        out of band.

    Raises:
        Exception: what pickling raised (see :func:`parkit._core._wire.dumps`).
    """
    if not _ENABLED:
        return _wire.dumps(obj, main), b""
    buffers: list[memoryview] = []

    def keep(buffer: pickle.PickleBuffer) -> bool:
        raw = buffer.raw()
        if raw.nbytes < THRESHOLD:
            return True  # in-band
        buffers.append(raw)
        return False

    data = _wire.dumps(obj, main, buffer_callback=keep, on_retry=buffers.clear)
    if not buffers:
        return data, b""
    try:
        descriptor = _write(buffers, _segments.prefix(owner, writer))
    except OSError:
        # Shared memory full (a container's 64 MiB /dev/shm) or gone: in-band it is.
        return _wire.dumps(obj, main), b""
    return data, descriptor


def _write(buffers: list[memoryview], name_prefix: str) -> bytes:
    layout: list[tuple[int, int]] = []
    offset = 0
    for raw in buffers:
        layout.append((offset, raw.nbytes))
        offset += -(-raw.nbytes // _ALIGN) * _ALIGN
    name = f"{name_prefix}{next(_counter)}"
    fd = _segments.create(name, offset)
    try:
        _segments.fill(
            fd, offset, [(at, raw) for raw, (at, _) in zip(buffers, layout, strict=True)]
        )
    except BaseException:
        os.close(fd)
        _segments.discard(name)
        raise
    os.close(fd)
    encoded = name.encode()
    return b"".join(
        [
            struct.pack("<HI", len(encoded), len(layout)),
            encoded,
            *(_LAYOUT.pack(*x) for x in layout),
        ]
    )


def _decode(descriptor: bytes | memoryview) -> tuple[str, list[tuple[int, int]]]:
    name_len, count = struct.unpack_from("<HI", descriptor)
    at = 6
    name = bytes(descriptor[at : at + name_len]).decode()
    at += name_len
    layout = [_LAYOUT.unpack_from(descriptor, at + k * _LAYOUT.size) for k in range(count)]
    return name, layout


def loads(data: bytes | memoryview, descriptor: bytes | memoryview) -> Any:
    """Unpickle what :func:`dumps` produced; the segment is unlinked first."""
    if not descriptor:
        return _wire.loads(data)
    name, layout = _decode(descriptor)
    # The receiver's arrays are writable, and its writes stay its own, as with
    # a pickled copy.
    region = _segments.map_received(name, "out-of-band buffer of a message")
    view = memoryview(region)
    return pickle.loads(data, buffers=[view[at : at + length] for at, length in layout])


def discard(descriptor: bytes | memoryview) -> None:
    """Unlink a segment if it is still there (its receiver never mapped it)."""
    if descriptor:
        _segments.discard(_decode(descriptor)[0])
