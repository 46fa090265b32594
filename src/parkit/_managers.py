"""``parkit.Manager``: dicts, lists, queues and objects that one server process
holds for many, with a handshake that is safe by default.

Built on ``multiprocessing.managers``: its server, its object registry and its
proxies behave right, and parkit keeps them. What parkit changes is what the
stdlib gets wrong (docs/managers.md; FAULTS F17-F20, F31, F41):

- **The handshake.** One of parkit's own, the same on every Python: each side
  proves it holds the key with HMAC-SHA256 over a fresh 32-byte nonce of the
  other's (the stdlib uses HMAC-MD5 on 3.11). Every handshake read has a
  bound, in size (256 bytes) and in time, and reads raw bytes: nothing a peer
  sends is unpickled before it has proved the key. A peer without the key, one
  that sends garbage or hangs up mid-message gets its connection closed, in
  its own thread: the server goes on serving everyone else. (The stdlib hangs
  when only one side has a key, gh-123736, and unpickles what an
  unauthenticated client sends when neither has.)
- **The key.** Never empty, never shorter than 32 bytes. Left out, a local
  manager uses this program's ``multiprocessing`` authkey (32 random bytes that
  its child processes inherit, so a proxy passed to a pool task or a
  ``Process`` connects), and a manager serving an address of its own gets 32
  fresh random bytes (``Manager.authkey``).
- **The address.** A Unix socket in a private directory, mode 0600, by
  default; a TCP address must be loopback unless the caller passes
  ``allow_remote=True``.
- **The server process** is started the parkit way and exits when its owner
  dies, however it dies (SIGKILL included: no orphan).

The handshake travels as an entry of ``multiprocessing.managers.listener_client``
named :data:`_SERIALIZER`, a ``str`` subclass of this module: a proxy that is
unpickled in another process names it, so unpickling imports this module (and
so registers the entry) before the proxy connects.
"""

from __future__ import annotations

import contextlib
import functools
import hmac
import ipaddress
import multiprocessing
import multiprocessing.connection
import multiprocessing.managers
import os
import queue
import secrets
import signal
import stat
import struct
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, TypeVar, overload

from ._core import _platform
from ._core._checks import check_bool, check_maxsize, show, wait_timeout
from ._core._context import ContextLike, resolve_context, start_process
from .errors import ManagerGone

if TYPE_CHECKING:
    from multiprocessing.managers import DictProxy, ListProxy, ValueProxy
    from types import TracebackType
    from typing import Self

__all__ = ["Manager"]

K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")

#: A manager's address: a Unix socket path, or a (host, port) pair.
Address: TypeAlias = "str | tuple[str, int]"

MIN_KEY_BYTES = 32
_HANDSHAKE_LIMIT = 256  # bytes: every handshake message is far shorter
_HELLO = b"parkit-manager/1 challenge:"
_WELCOME = b"parkit-manager/1 welcome:"
_DENIED = b"parkit-manager/1 denied"
_NONCE_BYTES = 32


# The stdlib's module, for the names typeshed leaves out (AutoProxy, dispatch,
# listener_client, Server's attributes): parkit builds on them knowingly.
_stdlib: Any = multiprocessing.managers


class SharedLock(Protocol):
    """What ``Manager.Lock()`` returns: a lock held in the manager."""

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool: ...
    def release(self) -> None: ...
    def __enter__(self) -> bool: ...
    def __exit__(self, *exc: object) -> None: ...


class SharedNamespace(Protocol):
    """What ``Manager.Namespace()`` returns: attributes shared by every process."""

    def __getattr__(self, name: str) -> Any: ...
    def __setattr__(self, name: str, value: Any) -> None: ...


class _Serializer(str):
    """The ``listener_client`` key: pickled by reference to this module."""

    __slots__ = ()


_SERIALIZER = _Serializer("parkit-sha256")


# --- the handshake -------------------------------------------------------------


def _mac(key: bytes, role: bytes, nonce: bytes) -> bytes:
    # The role keeps an answer from being replayed in the other direction.
    return hmac.new(key, role + nonce, "sha256").digest()


class _HungUp(multiprocessing.AuthenticationError):
    """The peer closed the connection during the handshake."""


def _read_exact(fd: int, size: int, deadline: float, peer: str) -> bytes:
    data = bytearray()
    while len(data) < size:
        left = deadline - time.monotonic()
        if left <= 0:
            raise multiprocessing.AuthenticationError(
                f"{peer} did not complete the handshake in time"
            )
        if not _platform.wait_fds([fd], left):
            continue
        chunk = os.read(fd, size - len(data))
        if not chunk:
            raise _HungUp(f"{peer} closed the connection during the handshake")
        data += chunk
    return bytes(data)


def _recv_frame(conn: multiprocessing.connection.Connection, deadline: float, peer: str) -> bytes:
    """One message in ``Connection``'s framing, read as raw bytes with bounds."""
    fd = conn.fileno()
    (size,) = struct.unpack("!i", _read_exact(fd, 4, deadline, peer))
    if not 0 < size <= _HANDSHAKE_LIMIT:
        raise multiprocessing.AuthenticationError(
            f"{peer} sent a message of {size} bytes where the handshake expects at "
            f"most {_HANDSHAKE_LIMIT}: not a parkit manager handshake"
        )
    return _read_exact(fd, size, deadline, peer)


def _server_handshake(
    conn: multiprocessing.connection.Connection, key: bytes, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    nonce = os.urandom(_NONCE_BYTES)
    conn.send_bytes(_HELLO + nonce)
    answer = _recv_frame(conn, deadline, "the client")
    if len(answer) != 32 + _NONCE_BYTES or not hmac.compare_digest(
        answer[:32], _mac(key, b"client", nonce)
    ):
        with contextlib.suppress(OSError):
            conn.send_bytes(_DENIED)
        raise multiprocessing.AuthenticationError("the client does not have the key")
    conn.send_bytes(_WELCOME + _mac(key, b"server", answer[32:]))


def _client_handshake(
    conn: multiprocessing.connection.Connection, key: bytes, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    hello = _recv_frame(conn, deadline, "the manager")
    if len(hello) != len(_HELLO) + _NONCE_BYTES or not hello.startswith(_HELLO):
        raise multiprocessing.AuthenticationError(
            "the server is not a parkit manager (its handshake is not parkit's)"
        )
    mine = os.urandom(_NONCE_BYTES)
    conn.send_bytes(_mac(key, b"client", hello[len(_HELLO) :]) + mine)
    reply = _recv_frame(conn, deadline, "the manager")
    if reply == _DENIED:
        raise multiprocessing.AuthenticationError("the manager refused the key")
    if not reply.startswith(_WELCOME) or not hmac.compare_digest(
        reply[len(_WELCOME) :], _mac(key, b"server", mine)
    ):
        raise multiprocessing.AuthenticationError("the manager does not have the key")


#: Seconds a connecting peer has to prove its key, on either side.
HANDSHAKE_TIMEOUT = 10.0
#: Seconds the server process has to start serving.
_START_TIMEOUT = 60.0


class _Listener(multiprocessing.connection.Listener):
    """A listener whose Unix socket only its owner can open."""

    def __init__(self, address: Any = None, family: Any = None, backlog: int = 1) -> None:
        super().__init__(address, family, backlog)  # no authkey: the server checks keys
        if isinstance(self.address, str):
            os.chmod(self.address, stat.S_IRUSR | stat.S_IWUSR)


class _ServerConnection(multiprocessing.connection.Connection):
    """A connection to a manager, once the key is proved: its loss is ``ManagerGone``.

    Every request of a proxy (and of the manager's own methods) is a ``send``
    and a ``recv`` on one of these. When the server is gone, shut down or
    killed, the stdlib raises ``BrokenPipeError`` from the send, ``EOFError``
    from the recv (a call waiting in the server when it died) or
    ``ConnectionResetError``: one error says it instead (docs/managers.md).
    """

    def send(self, obj: Any) -> None:
        try:
            super().send(obj)
        except (EOFError, ConnectionError) as e:
            raise _gone(e) from e

    def recv(self) -> Any:
        try:
            return super().recv()
        except (EOFError, ConnectionError) as e:
            raise _gone(e) from e


def _gone(error: BaseException, address: object = None) -> ManagerGone:
    # The stdlib's frames go: Connection.send's hold the pickle's buffer
    # exported from a BytesIO, and a kept ManagerGone would keep them until a
    # garbage collection frees the BytesIO first (Python 3.13 then reports a
    # BufferError as an unraisable exception).
    error.__traceback__ = None
    where = "" if address is None else f" at {address!r}"
    why = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return ManagerGone(
        f"the manager's server{where} is gone: it was shut down, or its process died ({why})"
    )


def _client(address: Any, authkey: bytes | None = None) -> multiprocessing.connection.Connection:
    """Connect to a parkit manager and prove the key (what proxies call).

    Raises:
        parkit.ManagerGone: nothing serves ``address`` (any more).
        multiprocessing.AuthenticationError: the key is wrong, or the server
            is not a parkit manager.
    """
    if authkey is None:
        authkey = bytes(multiprocessing.current_process().authkey)
    try:
        conn = multiprocessing.connection.Client(address)  # no stdlib handshake
    except (ConnectionRefusedError, FileNotFoundError) as e:
        # A socket nobody listens on (the server was killed), or none at all.
        raise _gone(e, address) from e
    try:
        _client_handshake(conn, bytes(authkey), HANDSHAKE_TIMEOUT)
    except (_HungUp, ConnectionError) as e:
        # A parkit server answers a handshake or refuses it in words: a hang-up
        # or a reset means that it died as this connected (its dying socket
        # still took the connection).
        conn.close()
        raise _gone(e, address) from e
    except BaseException:
        conn.close()
        raise
    conn.__class__ = _ServerConnection
    return conn


_stdlib.listener_client[_SERIALIZER] = (_Listener, _client)


class _Server(_stdlib.Server):  # type: ignore[misc]
    """The stdlib's server, with parkit's handshake on every connection."""

    handshake_timeout = HANDSHAKE_TIMEOUT

    def handle_request(self, conn: multiprocessing.connection.Connection) -> None:
        # Runs in a thread of its own per connection: a peer that stalls holds
        # only its own thread, for at most handshake_timeout.
        try:
            try:
                _server_handshake(conn, bytes(self.authkey), self.handshake_timeout)
            except (multiprocessing.AuthenticationError, OSError, EOFError):
                return  # a peer without the key: nothing of it is unpickled
            self._answer(conn)
        except SystemExit:
            pass  # serve_client() ends a client's session this way at EOF
        finally:
            conn.close()

    def _answer(self, conn: multiprocessing.connection.Connection) -> None:
        # The stdlib's request format, read only after the handshake.
        try:
            _, name, args, kwargs = conn.recv()
            if name not in self.public:
                raise ValueError(f"{name!r} is not a manager request")
            if name == "create" and args and args[0] not in self.registry:
                # Raised as itself in the client, not as a RemoteError with
                # the server's KeyError traceback.
                kind, _, what = str(args[0]).partition(":")
                hint = "types=" if kind == "type" else "objects="
                reply: tuple[str, Any] = (
                    "#ERROR",
                    ValueError(f"this manager has no {what!r}: its owner must pass it in {hint}"),
                )
                conn.send(reply)
                return
            result = getattr(self, name)(conn, *args, **kwargs)
        except Exception:
            reply = ("#TRACEBACK", traceback.format_exc())
        else:
            reply = ("#RETURN", result)
        with contextlib.suppress(Exception):
            conn.send(reply)

    def accepter(self) -> None:
        # The stdlib's loop, ending once the server stops (it would spin on
        # the closed listener's OSError for ever).
        while not self.stop_event.is_set():
            try:
                conn = self.listener.accept()
            except OSError:
                continue
            if self.stop_event.is_set():
                conn.close()
                return
            threading.Thread(target=self.handle_request, args=(conn,), daemon=True).start()

    def serve_until_stopped(self) -> None:
        """Serve until a ``shutdown`` request (or Ctrl-C); then return."""
        self.stop_event = threading.Event()
        multiprocessing.current_process()._manager_server = self  # type: ignore[attr-defined]
        accepter = threading.Thread(target=self.accepter, name="parkit-manager", daemon=True)
        accepter.start()
        try:
            self.stop_event.wait()
        finally:
            self.stop_event.set()
            # Wake the accepter's accept() (closing the socket would not), so
            # that it sees stop_event and ends; then close the listener.
            with contextlib.suppress(OSError):
                multiprocessing.connection.Client(self.address).close()
            accepter.join(HANDSHAKE_TIMEOUT)
            with contextlib.suppress(OSError):
                self.listener.close()


# --- what the server holds -----------------------------------------------------


def _same(obj: T) -> T:
    return obj


def _typeid(cls: type) -> str:
    # A class of the script is __main__.X to its owner and __mp_main__.X to a
    # spawn or forkserver child that runs the same script: one name for both.
    module = "__main__" if cls.__module__ == "__mp_main__" else cls.__module__
    return f"type:{module}.{cls.__qualname__}"


def _registry(
    types: tuple[type, ...], objects: Mapping[str, object]
) -> dict[str, tuple[Any, Any, Any, Any]]:
    # Called in the owner, whose type ids clients use: in a spawned server, a
    # class of the script's says __mp_main__, not __main__.
    registry: dict[str, tuple[Any, Any, Any, Any]] = dict(_stdlib.SyncManager._registry)
    for cls in types:
        registry[_typeid(cls)] = (cls, None, None, _stdlib.AutoProxy)
    for name, obj in objects.items():
        registry[f"object:{name}"] = (
            functools.partial(_same, obj),
            None,
            None,
            _stdlib.AutoProxy,
        )
    return registry


def _serve(
    registry: dict[str, tuple[Any, Any, Any, Any]],
    address: Any,
    authkey: bytes,
    writer: multiprocessing.connection.Connection,
) -> None:
    """The server process's target."""
    from ._core._worker import start_lifeline  # noqa: PLC0415

    # A terminal's Ctrl-C reaches the whole process group: the owner decides
    # when its manager stops (as the stdlib's manager process does).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    start_lifeline()  # its owner's death ends it (FAULTS F31)
    server = _Server(registry, address, authkey, _SERIALIZER)
    writer.send(server.address)
    writer.close()
    server.serve_until_stopped()


# --- checks --------------------------------------------------------------------


def _check_key(authkey: object) -> bytes:
    if not isinstance(authkey, bytes | bytearray):
        raise TypeError(f"authkey must be bytes, not {type(authkey).__qualname__}")
    if not authkey:
        raise ValueError(
            "authkey must not be empty (it would let anyone in); leave it out for a "
            "random key, or make one with secrets.token_bytes(32)"
        )
    if len(authkey) < MIN_KEY_BYTES:
        raise ValueError(
            f"authkey has {len(authkey)} bytes; at least {MIN_KEY_BYTES} are required "
            "(a short key can be guessed): make one with secrets.token_bytes(32), or "
            "leave it out for a random one"
        )
    return bytes(authkey)


def _typecodes() -> dict[str, Any]:
    import multiprocessing.sharedctypes  # noqa: PLC0415

    codes: dict[str, Any] = vars(multiprocessing.sharedctypes)["typecode_to_type"]
    return codes


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: only "localhost" is known to stay on this machine


def _check_address(address: object, allow_remote: bool) -> Address | None:
    if address is None or isinstance(address, str):
        return address
    if not (
        isinstance(address, tuple)
        and len(address) == 2
        and isinstance(address[0], str)
        and isinstance(address[1], int)
        and not isinstance(address[1], bool)
    ):
        raise TypeError(
            f"address must be None, a Unix socket path (str) or a (host, port) tuple, "
            f"not {address!r}"
        )
    host, port = address
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be in 0..65535, not {port}")
    if not _is_loopback(host) and not allow_remote:
        where = "every interface" if host in ("", "0.0.0.0", "::") else repr(host)
        raise ValueError(
            f"address {address!r} listens on {where}, where other machines can connect; "
            "use 127.0.0.1 (or a Unix socket path), or pass allow_remote=True to mean it"
        )
    return (host, port)


def _check_types(types: Iterable[type]) -> tuple[type, ...]:
    result = tuple(types)
    for cls in result:
        if not isinstance(cls, type):
            raise TypeError(f"types must hold classes, not {cls!r}")
    return result


# --- the public class ----------------------------------------------------------


class Manager:
    """A server process that holds shared dicts, lists, queues and objects.

    Other processes use them through proxies: pass a proxy to a pool task or a
    ``Process`` as an argument, and each method call on it runs in the
    manager's process. Each call is one round trip, so prefer few large calls
    (``d.update(...)``) to many small ones.

    A local manager: ``with parkit.Manager() as m: d = m.dict()``. A manager
    that other programs reach: give it an ``address`` (and share its
    ``authkey``), run it with ``with`` or :meth:`serve_forever`, and connect
    with :meth:`Manager.connect`.

    Args:
        context: start method of the server process (see SPEC §4).
        types: classes whose instances clients may create with :meth:`create`.
        objects: named objects the server holds for every client
            (:meth:`get`); they travel to the server process by pickle.
        address: ``None`` (a Unix socket in a private directory, mode 0600), a
            socket path, or a ``(host, port)`` pair; a non-loopback host needs
            ``allow_remote=True``.
        authkey: the key clients must prove, at least 32 bytes; left out, this
            program's ``multiprocessing`` authkey when ``address`` is ``None``,
            else 32 random bytes.
        allow_remote: allow an address that other machines can reach.

    Raises:
        ValueError: an empty or short key, a non-loopback address without
            ``allow_remote``.
        TypeError: arguments of the wrong type.
    """

    def __init__(
        self,
        context: ContextLike = None,
        *,
        types: Iterable[type] = (),
        objects: Mapping[str, object] | None = None,
        address: Address | None = None,
        authkey: bytes | None = None,
        allow_remote: bool = False,
    ) -> None:
        _platform.not_on_windows(
            "parkit.Manager", "POSIX process control (a lifeline pipe)", "multiprocessing.Manager"
        )
        self._ctx = resolve_context(context)
        check_bool(allow_remote, "allow_remote")
        self._types = _check_types(types)
        self._objects = dict(objects or {})
        self._address: Address | None = _check_address(address, allow_remote)
        if authkey is not None:
            self._authkey = _check_key(authkey)
        elif address is None:
            self._authkey = bytes(multiprocessing.current_process().authkey)
        else:
            self._authkey = secrets.token_bytes(MIN_KEY_BYTES)
        self._process: Any = None
        self._client: multiprocessing.managers.SyncManager | None = None
        self._serving = False

    @classmethod
    def connect(
        cls,
        address: Address,
        *,
        authkey: bytes | None = None,
        allow_remote: bool = False,
    ) -> Manager:
        """A client of the manager serving at ``address``.

        Its :meth:`shutdown` (or the end of its ``with`` block) disconnects; the
        server keeps running.

        Args:
            address: the server's socket path or ``(host, port)``.
            authkey: the server's key; left out, this program's
                ``multiprocessing`` authkey.
            allow_remote: allow an address that other machines can reach.

        Returns:
            A connected client manager.

        Raises:
            multiprocessing.AuthenticationError: the key is wrong, or the server
                is not a parkit manager (within the handshake's time bound).
            TypeError: ``address`` is neither a path nor a ``(host, port)``.
            ValueError: a short key, or a non-loopback address without
                ``allow_remote``.
        """
        checked = _check_address(address, allow_remote)
        if checked is None:
            raise TypeError("address must be a Unix socket path or a (host, port) tuple")
        self = cls(address=checked, authkey=authkey, allow_remote=allow_remote)
        if authkey is None:
            self._authkey = bytes(multiprocessing.current_process().authkey)
        self._connect(checked)
        return self

    # lifecycle ------------------------------------------------------------------

    def start(self) -> Self:
        """Start the server process (``with`` calls this); returns the manager.

        Returns:
            The manager itself, started.

        Raises:
            RuntimeError: it is already started, or the server process did
                not start serving in time.
        """
        if self._process is not None or self._client is not None:
            raise RuntimeError("this manager is already started")
        reader, writer = self._ctx.Pipe(duplex=False)
        process = self._ctx.Process(  # type: ignore[attr-defined]
            target=_serve,
            args=(_registry(self._types, self._objects), self._address, self._authkey, writer),
            name="parkit-manager",
            daemon=True,
        )
        with reader:
            start_process(process, "print")
            self._process = process
            writer.close()
            try:
                if not reader.poll(_START_TIMEOUT):
                    raise EOFError
                address = reader.recv()
            except EOFError:
                self._process = None
                process.join(0.5)
                if process.is_alive():
                    process.kill()
                    process.join()
                raise RuntimeError(
                    f"the manager process did not start serving within {_START_TIMEOUT:g} s "
                    f"(exit code {process.exitcode}; its error, if any, is on stderr)"
                ) from None
        self._address = address
        self._connect(address)
        return self

    def _connect(self, address: Address) -> None:
        client = multiprocessing.managers.SyncManager(
            address=address, authkey=self._authkey, serializer=_SERIALIZER
        )
        client.connect()
        self._client = client

    def serve_forever(self) -> None:
        """Serve clients from this process until interrupted (Ctrl-C).

        Raises:
            RuntimeError: the manager is already started as a server process
                or a client.
        """
        if self._process is not None or self._client is not None:
            raise RuntimeError("this manager is already started")
        server = _Server(
            _registry(self._types, self._objects), self._address, self._authkey, _SERIALIZER
        )
        self._address = server.address
        self._serving = True
        server.serve_until_stopped()

    def shutdown(self, timeout: float | None = 5.0) -> None:
        """Stop the server process (a client only disconnects); idempotent.

        Args:
            timeout: seconds the server may take to exit before it is killed;
                ``None`` waits for as long as it takes.

        Raises:
            ValueError, TypeError: ``timeout`` is negative, NaN or not a number.
        """
        timeout = wait_timeout(timeout)
        client, self._client = self._client, None
        process, self._process = self._process, None
        if process is None:
            return
        if client is not None:
            with contextlib.suppress(Exception):
                conn = _client(self._address, self._authkey)
                with conn:
                    _stdlib.dispatch(conn, None, "shutdown")
        process.join(timeout)
        if process.is_alive():
            process.kill()
            process.join()
        with contextlib.suppress(KeyError):
            del _stdlib.BaseProxy._address_to_local[self._address]

    def __enter__(self) -> Self:
        if self._client is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()
        self._client = None

    def __repr__(self) -> str:
        if self._process is not None:
            state = f"serving pid={self._process.pid}"
        elif self._client is not None:
            state = "connected"
        else:
            state = "not started"
        return f"<parkit.Manager address={self._address!r} {state}>"

    @property
    def address(self) -> Address | None:
        """Where the server listens (``None`` until started, for a default one)."""
        return self._address

    @property
    def authkey(self) -> bytes:
        """The key clients must prove."""
        return self._authkey

    # what it makes --------------------------------------------------------------

    def _sync(self) -> multiprocessing.managers.SyncManager:
        if self._client is None:
            raise RuntimeError(
                "the manager is not started: use 'with parkit.Manager() as m:' or m.start()"
            )
        return self._client

    @overload
    def dict(self, /) -> DictProxy[Any, Any]: ...
    @overload
    def dict(self, data: Mapping[K, V], /) -> DictProxy[K, V]: ...
    def dict(self, data: Any = None, /) -> Any:
        """A shared ``dict`` (optionally filled from ``data``).

        Args:
            data: a mapping (or an iterable of pairs) to copy into it.

        Returns:
            A proxy of the dict, held by the server.

        Raises:
            RuntimeError: the manager is not started.
            TypeError: ``data`` is not a mapping or an iterable of pairs.
        """
        try:
            items = {} if data is None else dict(data)
        except (TypeError, ValueError):
            raise TypeError(
                f"data must be a mapping, an iterable of (key, value) pairs or None, "
                f"not {show(data)}"
            ) from None
        return self._sync().dict(items)

    def list(self, data: Iterable[T] = (), /) -> ListProxy[T]:
        """A shared ``list`` (optionally filled from ``data``).

        Args:
            data: items to copy into it.

        Returns:
            A proxy of the list, held by the server.

        Raises:
            RuntimeError: the manager is not started.
            TypeError: ``data`` is not iterable.
        """
        try:
            items = list(data)
        except TypeError:
            raise TypeError(f"data must be an iterable, not {show(data)}") from None
        return self._sync().list(items)

    def Queue(self, maxsize: int = 0) -> queue.Queue[Any]:  # noqa: N802  (as the stdlib)
        """A shared ``queue.Queue``; ``get``/``put`` take the usual timeouts.

        Args:
            maxsize: at most this many items; 0 for no bound.

        Returns:
            A proxy of the queue, held by the server.

        Raises:
            RuntimeError: the manager is not started.
            ValueError, TypeError: ``maxsize`` is not an int >= 0 (as
                ``parkit.Queue``; the stdlib takes a negative one as unbounded).
        """
        check_maxsize(maxsize)
        return self._sync().Queue(maxsize)

    def Lock(self) -> SharedLock:  # noqa: N802
        """A lock held in the manager (prefer ``parkit.Lock`` on one machine).

        Returns:
            A proxy of a ``threading.Lock`` in the server.

        Raises:
            RuntimeError: the manager is not started.
        """
        sync: Any = self._sync()
        return sync.Lock()  # type: ignore[no-any-return]

    def Value(self, kind: type[T] | str, value: T) -> ValueProxy[T]:  # noqa: N802
        """A shared value; ``kind`` is its type or a ctypes typecode (``"i"``).

        Args:
            kind: the value's type (``int``, ``float``, ...) or a typecode.
            value: the initial value.

        Returns:
            A proxy whose ``.value`` reads and writes it.

        Raises:
            TypeError: ``value`` is not of type ``kind`` (or does not fit the
                typecode), or ``kind`` is neither a type nor a typecode.
            ValueError: an unknown typecode, or a value out of its range.
            RuntimeError: the manager is not started.
        """
        if isinstance(kind, type):
            if not isinstance(value, kind):
                raise TypeError(
                    f"value must be a {kind.__qualname__}, not {type(value).__qualname__}"
                )
        elif isinstance(kind, str):
            if kind not in _typecodes():
                codes = "".join(sorted(_typecodes()))
                raise ValueError(f"typecode must be one of {codes!r}, not {kind!r}")
            from ._values import check_item  # noqa: PLC0415 - ctypes, on first use

            check_item(kind, value, "value")  # the rule of parkit.Value
        else:
            raise TypeError(f"kind must be a type or a typecode, not {kind!r}")
        return self._sync().Value(kind, value)

    def Namespace(self, **attributes: Any) -> SharedNamespace:  # noqa: N802
        """A shared namespace: attributes set on it are seen by every process.

        Args:
            **attributes: its initial attributes.

        Returns:
            A proxy of the namespace.

        Raises:
            RuntimeError: the manager is not started.
        """
        return self._sync().Namespace(**attributes)

    def create(self, cls: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A new instance of one of the manager's ``types``, held by the server.

        The proxy offers the instance's public methods (not its attributes);
        the type says ``T`` so that editors complete them.

        Args:
            cls: one of the classes passed as ``types=``.
            *args: positional arguments for ``cls``.
            **kwargs: keyword arguments for ``cls``.

        Returns:
            A proxy of the new instance.

        Raises:
            TypeError: ``cls`` is not a class.
            ValueError: ``cls`` is not one of the manager's ``types``.
            RuntimeError: the manager is not started.
        """
        if not isinstance(cls, type):
            raise TypeError(f"cls must be a class, not {cls!r}")
        if self._process is not None and cls not in self._types:
            raise ValueError(
                f"{cls.__qualname__} is not one of this manager's types: pass "
                f"types=[{cls.__qualname__}] to parkit.Manager"
            )
        return self._proxy(_typeid(cls), *args, **kwargs)  # type: ignore[no-any-return]

    def get(self, name: str) -> Any:
        """A proxy of the object the server holds under ``name`` (``objects=``).

        Args:
            name: a key of the ``objects=`` mapping.

        Returns:
            A proxy of that object.

        Raises:
            TypeError: ``name`` is not a str.
            ValueError: the server holds no object of that name.
            RuntimeError: the manager is not started.
        """
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__qualname__}")
        return self._proxy(f"object:{name}")

    def _proxy(self, typeid: str, *args: Any, **kwargs: Any) -> Any:
        sync = self._sync()
        token, exposed = sync._create(typeid, *args, **kwargs)  # type: ignore[attr-defined]
        proxy = _stdlib.AutoProxy(
            token, _SERIALIZER, manager=sync, authkey=self._authkey, exposed=exposed
        )
        # _create left a reference for the proxy to take over; drop it (as
        # the stdlib's own creation methods do).
        with _client(token.address, self._authkey) as conn:
            _stdlib.dispatch(conn, None, "decref", (token.id,))
        return proxy
