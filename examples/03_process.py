"""``parkit.Process``: your first processes, and what their targets return.

Shows the tutorial's first programs — two processes printing "Hello", then a
target with arguments — with ``parkit.Process``, which keeps the stdlib surface
(``start``, ``join``, ``pid``, ``name``, ``exitcode``) and adds ``result()``: the
target's return value, or its exception. A lambda or a closure is a valid target
under every start method, and ``parkit.run`` is the one-line form.

What the stdlib version gets wrong: what the target returns is thrown away (the
tutorial's targets can only print), and under ``spawn`` and ``forkserver`` a
lambda or a function defined inside another function can't be a target at all
(``PicklingError``/``AttributeError: Can't pickle local object``) — so code that
works under ``fork`` on Linux breaks on macOS and Windows.
"""

from __future__ import annotations

import parkit


def print_hello() -> None:
    # The line and its newline in one write: two processes print at the same time,
    # and two writes each could interleave ("Hello, world!Hello, world!").
    print("Hello, world!\n", end="", flush=True)


def my_function(name: str) -> str:
    print(f"Hello from {name}\n", end="", flush=True)
    return f"{name} is done"


def make_multiplier(factor: int) -> parkit.Process[int]:
    # A closure over `factor`: travels to the child by value under every start method.
    return parkit.Process(lambda: 6 * factor)


def main() -> None:
    process1 = parkit.Process(print_hello)
    process2 = parkit.Process(print_hello)
    process1.start()
    process2.start()
    process1.join()
    process2.join()

    p1 = parkit.Process(my_function, args=("Process 1",), name="first")
    p2 = parkit.Process(my_function, args=("Process 2",), name="second")
    p1.start()
    p2.start()
    print(f"{p1.name}: {p1.result(timeout=60)}")  # waits, then gives the return value
    print(f"{p2.name}: {p2.result(timeout=60)}")
    p1.join()
    p2.join()
    print("Both processes are done, exit codes", p1.exitcode, p2.exitcode)

    with make_multiplier(7) as p:  # the with block joins it
        p.start()
        print("a closure as the target:", p.result(timeout=60))
    print("parkit.run, one call in a fresh process:", parkit.run(pow, 2, 10))


if __name__ == "__main__":
    main()
