"""An authenticated manager server, and a client in another program.

Shows the tutorial's ``MathClass`` served by a manager and used by a client that
connects with the server's address and key. The client here is this same script
run again as a separate program (``--client``), which reads the key on its
standard input. Before that, the tutorial's own settings, refused.

What the stdlib version gets wrong: the tutorial's server is
``BaseManager(address=('', 50000), authkey=b'secret-key')``: the empty host binds
every network interface, so any machine that can reach port 50000 may try keys,
and ``b'secret-key'`` is 10 bytes a person chose. A client that authenticates can
make the server unpickle anything — run any code as the server's user (FAULTS
F17). A parkit manager refuses both settings with a ``ValueError`` that says what
to do: it binds loopback (or a private Unix socket) unless given a remote address
*and* ``allow_remote=True``, needs a key of at least 32 bytes (or makes a random
one), and refuses a wrong key before unpickling anything.
"""

from __future__ import annotations

import multiprocessing
import subprocess
import sys

import parkit


class MathClass:
    def add(self, x: int, y: int) -> int:
        return x + y


def client(host: str, port: int, key: bytes) -> None:
    with parkit.Manager.connect((host, port), authkey=key) as manager:
        math = manager.create(MathClass)
        print(math.add(4, 4))  # Should print 8 if authenticated


def server() -> None:
    tutorial = (("", 50000), b"secret-key")
    for address, key in [tutorial, (("127.0.0.1", 50000), b"secret-key")]:
        try:
            parkit.Manager(address=address, authkey=key, types=[MathClass])
        except ValueError as error:
            print(f"Manager(address={address}, authkey of {len(key)} bytes): ValueError: {error}")

    # Loopback, a free port, and a random 32-byte key (server.authkey).
    with parkit.Manager(address=("127.0.0.1", 0), types=[MathClass]) as server:
        assert isinstance(server.address, tuple)
        host, port = server.address
        print(f"Server started on {host}, key of {len(server.authkey)} random bytes")
        done = subprocess.run(
            [sys.executable, __file__, "--client", host, str(port)],
            input=server.authkey.hex(),  # the key goes to the client, not on its command line
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        print("the client printed:", done.stdout.strip())
        try:
            parkit.Manager.connect(server.address, authkey=b"y" * 32)
        except multiprocessing.AuthenticationError as error:
            print("a client with the wrong key:", error)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--client"]:
        client(sys.argv[2], int(sys.argv[3]), bytes.fromhex(sys.stdin.read().strip()))
    else:
        server()
