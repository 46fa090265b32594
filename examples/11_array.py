"""``parkit.Array``: a fixed-length array of numbers shared by processes.

Shows the tutorial's array squared in place by one process per element, reading
and writing slices, an array of floats, and a square that no longer fits the
array's type.

What the stdlib version gets wrong: ``multiprocessing.Array("i", ...)`` stores a
number too big for a C int by wrapping it round without a word — square 50,000
in place and the array holds -1,794,967,296 — so an overflow in one worker turns
into a wrong answer far away. parkit refuses the write with a ``ValueError`` that
the parent gets back (here from ``parkit.run``), and the element keeps its old value.
"""

from __future__ import annotations

import parkit


def square(i: int, numbers: parkit.Array[int]) -> None:
    numbers[i] = numbers[i] ** 2


def main() -> None:
    numbers = parkit.Array("i", range(5))
    procs = [parkit.Process(square, args=(i, numbers)) for i in range(5)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    print(f"Squared numbers are: {numbers[:]}")

    numbers[1:3] = [10, 20]
    print("after numbers[1:3] = [10, 20]:", numbers.tolist(), "length", len(numbers))
    halves = parkit.Array(float, 4)  # four zeros
    halves[:] = [x / 2 for x in range(4)]
    print("floats:", halves[:])

    big = parkit.Array("i", [50_000])
    try:
        parkit.run(square, 0, big)  # one call in a fresh process; raises what it raised
    except ValueError as error:
        print("50000 ** 2 into a C int:", error)
    print("the element kept its value:", big[0])


if __name__ == "__main__":
    main()
