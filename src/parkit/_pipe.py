"""``parkit.Pipe[T]``: a typed two-ended channel that notices a dead peer.

The public face of :mod:`parkit._core._channel` (frames over a socket pair or a
pipe, read against a deadline, from a watched peer): typing, pickling of the
objects sent (:func:`parkit._core._wire.dumps`, so lambdas travel), the errors,
and the passing of an end to a child process as it starts.

Ends travel only while ``multiprocessing`` starts a process (spawn and
forkserver pickle the arguments then; fork copies them). An end rebuilt in the
child announces the child to the other end; under fork,
``parkit.Process.start()`` does it (:meth:`Connection._handed_to`).
"""

from __future__ import annotations

import multiprocessing.context
import os
import pickle
import socket
import weakref
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic

from ._core import _platform, _wire
from ._core._channel import Channel
from ._core._checks import check_bool, wait_timeout
from ._core._context import ContextLike, start_method
from ._core._peer import PeerId, identify
from .errors import SerializationError

if TYPE_CHECKING:
    # A default (PEP 696) so that a bare ``Pipe()`` gives ``Connection[Any]``;
    # ``typing.TypeVar`` takes ``default=`` only from Python 3.13.
    from typing_extensions import TypeVar

    T = TypeVar("T", default=Any)
else:
    from typing import TypeVar

    T = TypeVar("T")

__all__ = ["Connection", "Pipe"]

_ATOMS = _wire.ATOMS
_SIZED = _wire.SIZED
_SMALL = _wire.SMALL
_PROTOCOL = _wire.PROTOCOL
_dumps = pickle.dumps


class Connection(Generic[T]):
    """One end of a :class:`Pipe`; made by ``Pipe()``, never directly.

    Like :class:`multiprocessing.connection.Connection`, one thread may send and
    another receive at the same time; more than one reader (or writer) at a time
    on the same end is not supported. Even so ``send`` and ``recv`` each hold a
    lock of this end, so concurrent sends from threads never interleave frames.

    A connection can be passed to :class:`parkit.Process` (or any process while
    ``multiprocessing`` starts it) under every start method; pickling it at any
    other time raises :class:`parkit.SerializationError`.

    Args:
        channel: the framed channel over the end's file descriptor (internal).
        method: the start method ``Pipe(context=)`` named.
    """

    def __init__(self, channel: Channel, method: str) -> None:
        self._ch = channel
        self._method = method
        self._sibling: weakref.ref[Connection[T]] | None = None

    @property
    def start_method(self) -> str:
        """The start method ``Pipe(context=)`` named (informational).

        Either end can be passed to a process of any start method.
        """
        return self._method

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._ch.fd is None

    @property
    def readable(self) -> bool:
        """Whether this end can receive."""
        return self._ch.readable

    @property
    def writable(self) -> bool:
        """Whether this end can send."""
        return self._ch.writable

    def fileno(self) -> int:
        """The file descriptor (readable when data arrives).

        Returns:
            The end's file descriptor, for ``select``/``selectors``.

        Raises:
            OSError: the connection is closed.
        """
        return self._ch.open_fd()

    def close(self) -> None:
        """Close this end (in this process); closing twice is harmless."""
        self._ch.close()

    def send(self, obj: T) -> None:
        """Send ``obj`` to the other end.

        ``obj`` is pickled here, before anything is written: by reference where
        the receiver can import it, else by value (lambdas and closures travel).
        Like the stdlib's, it waits while the other end's buffer is full.

        Args:
            obj: the object to send.

        Raises:
            parkit.SerializationError: ``obj`` can't be pickled (direction
                ``"argument"``, stage ``"pickle"``, the error chained); nothing
                was written and the connection stays usable.
            OSError: this end can only receive, or is closed;
                ``BrokenPipeError`` if every copy of the other end is closed.
        """
        self._check(send=True)
        kind = type(obj)
        if kind in _ATOMS or (kind in _SIZED and len(obj) <= _SMALL):  # type: ignore[arg-type]
            # Pickled as parkit's pickler would (see _wire.ATOMS), for a third
            # of the cost: a round trip of small objects is mostly overhead.
            data = _dumps(obj, _PROTOCOL)
        else:
            data = _wire.dumps_or_raise(obj, f"a {kind.__qualname__} to send it through a Pipe")
        self._ch.send_data(data)

    def recv(self, timeout: float | None = None) -> T:
        """Receive the next object sent from the other end.

        Args:
            timeout: seconds to wait for the whole of it; ``None`` (or ``inf``)
                waits for as long as the peer lives, ``0`` takes only what has
                arrived already.

        Returns:
            The object.

        Raises:
            TimeoutError: ``timeout`` passed before a whole object arrived (what
                arrived of it is kept for the next call).
            EOFError: every copy of the other end is closed, or the process that
                uses it died (the message names its pid), and nothing complete is
                left to read.
            parkit.SerializationError: the object can't be unpickled here (stage
                ``"unpickle"``); it was consumed and the connection stays usable.
            OSError: this end can only send, or is closed (then also a
                ``ValueError``).
            ValueError, TypeError: ``timeout`` is negative, NaN or not a number.
        """
        data = self.recv_bytes(timeout)  # checks timeout
        obj: T = _wire.loads_or_raise(
            data, "an object received through a Pipe", direction="argument"
        )
        return obj

    def poll(self, timeout: float | None = 0.0) -> bool:
        """Whether :meth:`recv` would return (or raise ``EOFError``) without waiting.

        Unlike the stdlib, ``True`` means a *whole* object has arrived, not just
        its first byte.

        Args:
            timeout: seconds to wait; ``None`` (or ``inf``) waits for ever.

        Returns:
            True if a whole object (or the end of the stream) is there to read.

        Raises:
            OSError: this end can only send, or is closed.
            ValueError, TypeError: ``timeout`` is negative, NaN or not a number.
        """
        timeout = wait_timeout(timeout)
        self._check(send=False)
        return self._ch.poll(timeout)

    def send_bytes(self, data: bytes | bytearray | memoryview) -> None:
        """Send raw bytes; the other end gets them from :meth:`recv_bytes`.

        Args:
            data: the bytes to send, as one message.

        Raises:
            OSError: as :meth:`send`.
        """
        self._check(send=True)
        self._ch.send_data(bytes(data))

    def recv_bytes(self, timeout: float | None = None) -> bytes:
        """Receive the next message as bytes (what :meth:`send_bytes` or :meth:`send` sent).

        Args:
            timeout: seconds to wait for the whole message; ``None`` waits for
                as long as the peer lives.

        Returns:
            The message's bytes (a pickle, if :meth:`send` sent it).

        Raises:
            TimeoutError: as :meth:`recv`.
            EOFError: as :meth:`recv`.
            OSError: as :meth:`recv`.
        """
        timeout = wait_timeout(timeout)
        self._check(send=False)
        return self._ch.recv_data(timeout)

    def __enter__(self) -> Connection[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        ch = self._ch
        mode = {(True, True): "duplex", (True, False): "recv-only", (False, True): "send-only"}
        state = "closed" if ch.fd is None else f"fd={ch.fd}"
        peer = "" if ch.peer is None else f" peer={ch.peer.pid}"
        return f"<parkit.Connection {mode[ch.readable, ch.writable]} {state}{peer}>"

    def _check(self, *, send: bool) -> None:
        self._ch.open_fd()
        if send and not self._ch.writable:
            raise OSError(
                "this end of a one-way Pipe can only receive; Pipe(duplex=False) "
                "returns (receiving end, sending end)"
            )
        if not send and not self._ch.readable:
            raise OSError(
                "this end of a one-way Pipe can only send; Pipe(duplex=False) "
                "returns (receiving end, sending end)"
            )

    # -- passing an end to a child process ----------------------------------

    def __reduce__(self) -> tuple[Any, ...]:
        popen: Any = multiprocessing.context.get_spawning_popen()
        if popen is None:
            raise SerializationError(
                "a parkit Connection can only be passed to a process as it starts "
                "(parkit.Process args, under any start method), not pickled later "
                "(e.g. as an argument of a pool task: parkit.map, Pool.submit); "
                "pass a parkit.Queue instead, which pool tasks accept",
                direction="argument",
                stage="pickle",
            )
        ch = self._ch
        # As multiprocessing.connection.reduce_connection: the child gets its own
        # copy of the descriptor through the popen object that starts it.
        dup = popen.DupFd(popen.duplicate_for_child(ch.open_fd()))
        state = (ch.readable, ch.writable, ch.peer, bytes(ch.rbuf), ch.eof, self._method)
        return (_rebuild, (dup, state))

    def _handed_to(self, pid: int) -> None:
        """Record that process ``pid``, just started with this end, uses it.

        Called by ``parkit.Process.start()`` (see :meth:`Channel.handed_to`).
        """
        sibling = None if self._sibling is None else self._sibling()
        self._ch.handed_to(pid, None if sibling is None else sibling._ch)


def _rebuild(
    dup: Any, state: tuple[bool, bool, PeerId | None, bytes, bool, str]
) -> Connection[Any]:
    readable, writable, peer, buffered, eof, method = state
    ch = Channel(dup.detach(), readable=readable, writable=writable, peer=peer)
    ch.rbuf += buffered
    ch.eof = eof
    # A new process uses this end: tell the other end, if that can't block
    # (else the first send does).
    ch.user = None
    ch.announce_if_new(block=False)
    return Connection(ch, method)


class Pipe(Generic[T]):
    """Make a pipe: ``(conn1, conn2) = parkit.Pipe[T](duplex=True, context=None)``.

    ``Pipe[int]()`` returns two :class:`Connection` objects typed
    ``Connection[int]``; a bare ``Pipe()`` gives ``Connection[Any]``. With
    ``duplex=False`` the first can only receive and the second only send, as the
    stdlib's. What differs from :func:`multiprocessing.Pipe`:

    * ``recv(timeout=)`` (raises ``TimeoutError``), bounded over the whole frame;
    * ``EOFError`` when the process using the other end died, even if another
      process still holds a copy of that end (FAULTS F26);
    * objects travel with cloudpickle where plain pickle can't (lambdas);
    * an unpicklable object raises :class:`parkit.SerializationError` in ``send``.

    Args:
        duplex: both ends can send and receive (a socket pair); else one way (a
            pipe).
        context: start method name or ``multiprocessing`` context, validated
            like parkit's other objects and recorded as each end's
            :attr:`Connection.start_method`; the transport is the same for all,
            and either end can go to a process of any start method.

    Returns:
        The two ends.

    Raises:
        ValueError: an unknown start method.
        TypeError: ``context`` is neither a name nor a context.
    """

    def __new__(  # type: ignore[misc]  # a factory, typed by its subscription
        cls, duplex: bool = True, *, context: ContextLike = None
    ) -> tuple[Connection[T], Connection[T]]:
        _platform.not_on_windows(
            "parkit.Pipe", "POSIX descriptors read against a deadline", "multiprocessing.Pipe"
        )
        check_bool(duplex, "duplex")
        method = start_method(context)
        me = identify(os.getpid())
        if duplex:
            a, b = socket.socketpair()
            first: Connection[T] = Connection(
                Channel(a.detach(), readable=True, writable=True, peer=me), method
            )
            second: Connection[T] = Connection(
                Channel(b.detach(), readable=True, writable=True, peer=me), method
            )
        else:
            r, w = os.pipe()
            first = Connection(Channel(r, readable=True, writable=False, peer=me), method)
            second = Connection(Channel(w, readable=False, writable=True, peer=me), method)
        first._sibling = weakref.ref(second)
        second._sibling = weakref.ref(first)
        return first, second
