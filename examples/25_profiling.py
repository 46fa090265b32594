"""Profiling parallel code: a profile of the workers, not of the parent waiting.

Shows the tutorial's ``cProfile`` around a pool call — which profiles the parent
only — next to ``parkit.Pool(profile=True)``, whose ``profile()`` merges the
``cProfile`` statistics of every worker into one ``pstats.Stats``: the function
and what it calls, with call counts summed over the workers.

What the stdlib version gets wrong: ``cProfile.run('main()')`` in the tutorial
profiles the parent process, which spends the call waiting on a lock; the
function that did the work ran in the workers and never appears in the report,
so the report points at ``multiprocessing``'s plumbing instead of your code.
"""

from __future__ import annotations

import cProfile
import io
import pstats

import parkit


def collatz_steps(n: int) -> int:
    steps = 0
    while n != 1:
        n = collatz_step(n)
        steps += 1
    return steps


def collatz_step(n: int) -> int:
    return 3 * n + 1 if n % 2 else n // 2


def calls_to(stats: pstats.Stats, name: str) -> int:
    """How many times functions called ``name`` were called, in these statistics."""
    table: dict[tuple[str, int, str], tuple[int, int, float, float, object]]
    table = stats.stats  # type: ignore[attr-defined]
    return sum(ncalls for (_, _, func), (_, ncalls, *_rest) in table.items() if func == name)


def main() -> None:
    data = list(range(1, 201))
    expected = sum(collatz_steps(n) for n in data)  # every step is one collatz_step call

    profiler = cProfile.Profile()
    with parkit.Pool(2, profile=True) as pool:
        profiler.enable()
        steps = pool.map(collatz_steps, data)
        profiler.disable()
    parent = pstats.Stats(profiler)
    print("the parent's cProfile sees collatz_steps:", calls_to(parent, "collatz_steps") > 0)

    workers = pool.profile()  # after the with block: the workers have written theirs
    print("pool.profile() counts collatz_steps calls:", calls_to(workers, "collatz_steps"))
    print(
        "and collatz_step calls equal to the total steps:",
        calls_to(workers, "collatz_step") == expected == sum(steps),
    )
    report = io.StringIO()
    workers.stream = report  # type: ignore[attr-defined]
    workers.sort_stats("tottime").print_stats(3)
    print("top of the workers' report:")
    print("\n".join(line for line in report.getvalue().splitlines() if "collatz" in line))


if __name__ == "__main__":
    main()
