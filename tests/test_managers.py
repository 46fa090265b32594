"""parkit.Manager: shared objects in a server process, and its handshake."""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import socket
import stat
import struct
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

import parkit
from manager_tasks import Marker, Math, add_under_lock, put_pid, record
from parkit import _managers

KEY = b"k" * 16 + os.urandom(16)


# --------------------------------------------------------------------- local use


def test_dict_and_list_from_pool_tasks(context: str) -> None:
    # Proxies travel as task arguments under every start method.
    with parkit.Manager(context) as m, parkit.Pool(2, context=context) as pool:
        d = m.dict()
        items: Any = m.list()
        pids = pool.starmap(record, [(i, d, items) for i in range(20)])
        assert dict(d) == {i: i * i for i in range(20)}
        assert sorted(items) == list(range(20))
        assert len(pids) == 20
        assert os.getpid() not in pids  # they ran in the workers


def test_lock_value_and_queue_from_processes(context: str) -> None:
    with parkit.Manager(context) as m:
        lock = m.Lock()
        value = m.Value(int, 0)
        procs = [
            parkit.Process(add_under_lock, (lock, value, 50), context=context) for _ in range(3)
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=60)
        assert value.value == 150
        q = m.Queue()
        child = parkit.Process(put_pid, (q,), context=context)
        child.start()
        child.join(timeout=60)
        assert q.get(timeout=10) == child.pid


def test_namespace_typecode_value_and_prefilled(context: str) -> None:
    with parkit.Manager(context) as m:
        ns = m.Namespace(x=1)
        ns.y = "two"
        assert (ns.x, ns.y) == (1, "two")
        v = m.Value("d", 1.5)
        v.value = 2.5
        assert v.value == 2.5
        assert dict(m.dict({"a": 1})) == {"a": 1}
        assert list(m.list(range(3))) == [0, 1, 2]


def test_registered_types_and_named_objects(context: str) -> None:
    with parkit.Manager(context, types=[Math], objects={"config": {"n": 3}}) as m:
        math = m.create(Math, 10)
        assert math.add(4, 4) == 18
        config = m.get("config")
        assert config.get("n") == 3
        with pytest.raises(ValueError, match=r"pass types=\[Marker\]"):
            m.create(Marker, "x")


def test_default_socket_is_private() -> None:
    with parkit.Manager() as m:
        assert isinstance(m.address, str)
        assert stat.S_IMODE(os.stat(m.address).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(os.path.dirname(m.address)).st_mode) == 0o700
        assert m.authkey == bytes(multiprocessing.current_process().authkey)


def test_not_started_and_repr() -> None:
    m = parkit.Manager()
    assert repr(m) == "<parkit.Manager address=None not started>"
    with pytest.raises(RuntimeError, match="not started"):
        m.dict()
    with m:
        assert repr(m).startswith(f"<parkit.Manager address={m.address!r} serving pid=")
        with pytest.raises(RuntimeError, match="already started"):
            m.start()
    assert m.address is not None
    m.shutdown()  # idempotent


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"authkey": b""}, ValueError, "must not be empty"),
        ({"authkey": b"secret-key"}, ValueError, r"10 bytes; at least 32.*secrets.token_bytes"),
        ({"authkey": "x" * 32}, TypeError, "authkey must be bytes, not str"),
        ({"address": ("0.0.0.0", 50000)}, ValueError, "every interface.*allow_remote=True"),
        ({"address": ("", 50000)}, ValueError, "every interface.*allow_remote=True"),
        ({"address": ("192.0.2.7", 50000)}, ValueError, "'192.0.2.7'.*allow_remote=True"),
        ({"address": ("example.org", 1)}, ValueError, "allow_remote=True"),
        ({"address": ("127.0.0.1", 70000)}, ValueError, r"port must be in 0\.\.65535"),
        ({"address": 50000}, TypeError, "address must be None"),
        ({"types": [Math()]}, TypeError, "types must hold classes"),
        ({"context": "nope"}, ValueError, "nope"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        parkit.Manager(**kwargs)


def test_remote_address_needs_allow_remote_and_loopback_does_not() -> None:
    m = parkit.Manager(address=("0.0.0.0", 0), allow_remote=True)
    assert m.address == ("0.0.0.0", 0)
    assert len(m.authkey) == 32  # a fresh random key, not this program's
    assert m.authkey != bytes(multiprocessing.current_process().authkey)
    assert parkit.Manager(address=("::1", 0)).address == ("::1", 0)
    assert parkit.Manager(address=("localhost", 0)).address == ("localhost", 0)


def test_bad_values() -> None:
    with parkit.Manager() as m:
        with pytest.raises(TypeError, match="value must be a int, not str"):
            m.Value(int, "1")
        with pytest.raises(ValueError, match="typecode must be one of"):
            m.Value("z", 1)
        with pytest.raises(TypeError, match="cls must be a class"):
            m.create(record)


# -------------------------------------------------------- the server, on loopback


@pytest.fixture
def served() -> Any:
    with parkit.Manager(
        address=("127.0.0.1", 0), authkey=KEY, types=[Math], objects={"config": {"n": 3}}
    ) as m:
        yield m


def _good_client_works(address: Any) -> None:
    with parkit.Manager.connect(address, authkey=KEY) as client:
        assert client.create(Math).add(2, 3) == 5


def test_unknown_type_or_object_is_a_clear_error(served: Any) -> None:
    with parkit.Manager.connect(served.address, authkey=KEY) as client:
        with pytest.raises(
            ValueError,
            match=r"^this manager has no 'manager_tasks.Marker': its owner must pass it in types=$",
        ):
            client.create(Marker, "x")
        with pytest.raises(ValueError, match=r"^this manager has no 'nope': .* in objects=$"):
            client.get("nope")
        assert client.create(Math).add(1, 1) == 2


def test_right_key_from_a_client_process(served: Any) -> None:
    host, port = served.address
    code = f"""
        import parkit
        from manager_tasks import Math
        with parkit.Manager.connect(({host!r}, {port}), authkey={KEY!r}) as m:
            print(m.create(Math, 1).add(4, 4), m.get("config").get("n"))
    """
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=Path(__file__).parent,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "9 3\n", "")


def test_wrong_key_is_refused_at_once(served: Any) -> None:
    start = time.monotonic()
    with pytest.raises(multiprocessing.AuthenticationError, match="refused the key"):
        parkit.Manager.connect(served.address, authkey=os.urandom(32))
    assert time.monotonic() - start < _managers.HANDSHAKE_TIMEOUT
    _good_client_works(served.address)


def test_client_without_key_is_refused(served: Any) -> None:
    # No key given: the client proves this program's key, which is not the server's.
    with pytest.raises(multiprocessing.AuthenticationError, match="refused the key"):
        parkit.Manager.connect(served.address)
    _good_client_works(served.address)


def test_unauthenticated_pickle_is_never_loaded(served: Any, tmp_path: Path) -> None:
    # A stdlib client without a key sends its request at once: the server must
    # not unpickle it (FAULTS F17/F18).
    marker = tmp_path / "unpickled"
    conn = multiprocessing.connection.Client(served.address)
    with conn:
        conn.send(Marker(str(marker)))
        assert conn.recv_bytes().startswith(b"parkit-manager/1 challenge:")
        # The pickle was read as raw bytes: a wrong answer to the challenge.
        assert conn.recv_bytes() == b"parkit-manager/1 denied"
        with pytest.raises(EOFError):
            conn.recv_bytes()  # the server closed the connection
    assert not marker.exists()
    _good_client_works(served.address)


def test_server_is_not_a_parkit_manager() -> None:
    # A peer that speaks another protocol: the stdlib's own challenge.
    stdlib = multiprocessing.connection.Listener(("127.0.0.1", 0), authkey=KEY)
    with stdlib:
        errors: list[BaseException] = []

        def accept() -> None:
            try:
                stdlib.accept()
            except Exception as exc:
                errors.append(exc)

        thread = threading.Thread(target=accept)
        thread.start()
        with pytest.raises(multiprocessing.AuthenticationError, match="not a parkit manager"):
            parkit.Manager.connect(stdlib.address, authkey=KEY)
        thread.join(30)
        assert not thread.is_alive()
        assert [type(e) for e in errors] == [EOFError]  # we hung up on its challenge


def _raw(address: Any) -> socket.socket:
    sock = socket.create_connection(address, timeout=30)
    (size,) = struct.unpack("!i", _recv_exact(sock, 4))
    assert _recv_exact(sock, size).startswith(b"parkit-manager/1 challenge:")
    return sock


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, "closed early"
        data += chunk
    return data


def _closed_by_server(sock: socket.socket) -> bool:
    # A close with our bytes unread reaches us as a reset, else as EOF.
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True


def test_garbage_bytes_are_dropped(served: Any) -> None:
    with _raw(served.address) as sock:
        sock.sendall(b"\x7f\xff\xff\xff" + b"garbage" * 100)
        assert _closed_by_server(sock)
    _good_client_works(served.address)


def test_disconnect_mid_message(served: Any) -> None:
    sock = _raw(served.address)
    sock.sendall(struct.pack("!i", 64) + b"x" * 10)
    sock.close()
    _good_client_works(served.address)


def test_a_stalled_client_does_not_block_others(served: Any) -> None:
    with _raw(served.address):
        _good_client_works(served.address)  # while the other says nothing


def test_wrong_answer_of_right_size_is_denied(served: Any) -> None:
    with _raw(served.address) as sock:
        sock.sendall(struct.pack("!i", 64) + b"\0" * 64)
        (size,) = struct.unpack("!i", _recv_exact(sock, 4))
        assert _recv_exact(sock, size) == b"parkit-manager/1 denied"
        assert _closed_by_server(sock)


# ------------------------------------------------------------------- no orphans


def test_server_exits_when_its_owner_is_killed(context: str) -> None:
    code = f"""
        import sys, parkit
        m = parkit.Manager({context!r}).start()
        print(m._process.pid, flush=True)
        sys.stdin.read()
    """
    owner = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None
        server = psutil.Process(int(owner.stdout.readline()))
        owner.kill()
        owner.wait(30)
        server.wait(timeout=10)  # psutil.TimeoutExpired if it outlives its owner
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
        assert owner.stdin is not None
        assert owner.stdout is not None
        owner.stdin.close()
        owner.stdout.close()


def test_the_handshake_reads_from_a_descriptor_numbered_above_1023() -> None:
    # A process with many files open gets high descriptor numbers; select.select
    # refuses those (ValueError), poll does not.
    a, b = socket.socketpair()
    high = os.dup2(a.fileno(), 1500)
    try:
        b.sendall(b"hello")
        assert _managers._read_exact(high, 5, time.monotonic() + 30, "the peer") == b"hello"
    finally:
        os.close(high)
        a.close()
        b.close()
