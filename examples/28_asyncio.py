"""asyncio and processes: awaiting parallel work without blocking the event loop.

Shows ``await parkit.amap(...)`` (the asyncio twin of ``parkit.map``), ``async
for`` over ``pool.aimap(...)`` in completion order, ``await pool.asubmit(...)``
calls gathered, and a running call cancelled by ``asyncio.wait_for``: the worker
running it is stopped and the pool goes on.

What the stdlib version gets wrong: the usual bridge,
``loop.run_in_executor(ProcessPoolExecutor(), fn)``, can't stop work it has
started: when ``asyncio.wait_for`` times out or the task is cancelled, the
asyncio side gives up but the function runs on in its worker to the end,
holding that worker (and a stuck function holds it for ever). parkit's async
calls kill and replace the workers running cancelled items, and re-raise a
worker's exception as itself, with the worker's frames in its traceback.
"""

from __future__ import annotations

import asyncio
import os
import time

import parkit


def square(x: int) -> int:
    return x * x


def stuck(pid_box: parkit.Value[int]) -> None:
    pid_box.value = os.getpid()
    time.sleep(60)  # never finishes in time


async def main() -> None:
    print("amap:", await parkit.amap(square, range(6)))

    with parkit.Pool(2) as pool:
        done = sorted([r async for r in pool.aimap(square, range(6), ordered=False)])
        print("aimap, as completed, sorted:", done)

        both = await asyncio.gather(pool.asubmit(square, 12), pool.asubmit(pow, 2, 10))
        print("two asubmit calls, gathered:", both)

        pid_box = parkit.Value(int, 0)
        task = asyncio.create_task(pool.asubmit(stuck, pid_box))
        while pid_box.value == 0 and not task.done():  # until it runs in a worker
            await asyncio.sleep(0.01)
        try:
            await asyncio.wait_for(task, timeout=0.2)
        except TimeoutError:
            print("wait_for(asubmit(stuck), timeout=0.2): TimeoutError, the task cancelled")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _alive(pid_box.value):
            await asyncio.sleep(0.05)
        print("the worker that ran it was stopped:", not _alive(pid_box.value))
        print("the pool goes on:", await pool.amap(square, [7, 8]))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


if __name__ == "__main__":
    asyncio.run(main())
