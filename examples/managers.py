"""Shared state through parkit.Manager: the tutorial's list and dict filled by
several processes, a counter kept right under the manager's lock, and a manager
that serves another program on loopback with a key, as the tutorial's
authenticated BaseManager server does, but safe by default."""

from __future__ import annotations

import multiprocessing
from typing import Any

import parkit


class MathClass:
    def add(self, x: int, y: int) -> int:
        return x + y


def square_into(i: int, shared_list: Any, shared_dict: Any) -> None:
    shared_list.append(i * i)
    shared_dict[i] = i * i


def count(lock: Any, counter: Any, times: int) -> None:
    for _ in range(times):
        with lock:  # the read and the write of += are two calls: hold the lock over both
            counter.value += 1


def client(address: tuple[str, int], key: bytes) -> int:
    # Another program would do just this: connect with the address and the key.
    with parkit.Manager.connect(address, authkey=key) as m:
        result: int = m.create(MathClass).add(4, 4)
        return result


if __name__ == "__main__":
    with parkit.Manager() as m:
        squares, table = m.list(), m.dict()
        parkit.starmap(square_into, [(i, squares, table) for i in range(5)])
        print("list:", sorted(squares), "dict:", dict(sorted(table.items())))

        lock, counter = m.Lock(), m.Value(int, 0)
        parkit.starmap(count, [(lock, counter, 100)] * 4)
        print("counter:", counter.value)

    # A server on loopback; the key is 32 random bytes unless you give one.
    with parkit.Manager(address=("127.0.0.1", 0), types=[MathClass]) as server:
        assert isinstance(server.address, tuple)
        print("remote add:", parkit.run(client, server.address, server.authkey))
        try:
            parkit.Manager.connect(server.address, authkey=b"x" * 32)
        except multiprocessing.AuthenticationError as exc:
            print("wrong key:", exc)
    parkit.shutdown()
