"""Figures from a recorded benchmark run: the PNGs in docs/img/.

    python benchmarks/plots.py docs/benchmarks/2026-12-02-2core-final.md --out docs/img
    python benchmarks/run.py --out /tmp/run.md --plots docs/img     # measure, then draw

Reads the markdown that ``run.py`` writes (``### title`` then a ``| contender |
unit |`` table per workload) and draws what a reader would rather look at than
read, each figure titled with the run's date and machine:

* ``cold-start.png``: the time to a first result from nothing, by start method
  (D-cold: a fresh interpreter imports, starts a pool or a process, runs one
  task and shuts down; D: a pool made, used once and shut down in a running
  interpreter), parkit beside the stdlib and the peers;
* ``throughput-by-size.png``: MiB/s moved against the size of one item, for
  pool arguments (workloads A: ints, C1: NumPy arrays, G: one large array) and
  for queues (Q: ints and 1 MiB items), parkit beside the stdlib.

A workload missing from the record leaves its part of a figure out. Needs
matplotlib (``pip install 'parkit[bench]'``).
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

#: Bytes of one int item as the pool and the queue pickle it (``pickle.dumps(199_999,
#: 5)`` is 15 bytes with the protocol header and frame; an item inside a chunk costs
#: about 5). Only where the point sits on a log axis depends on it.
INT_BYTES = 5
MIB = 1024 * 1024
METHODS = ("forkserver", "spawn", "fork")


@dataclass
class Record:
    """One run's header line and its tables: title -> {contender: cell text}."""

    date: str = ""
    machine: str = ""
    tables: dict[str, dict[str, str]] = field(default_factory=dict)

    def find(self, pattern: str) -> tuple[re.Match[str], dict[str, str]] | None:
        """The first table whose title matches ``pattern``, with the match."""
        for title, rows in self.tables.items():
            match = re.match(pattern, title)
            if match:
                return match, rows
        return None

    @property
    def caption(self) -> str:
        return f"{self.date}; {self.machine}" if self.machine else self.date


def read(path: Path) -> Record:
    """Parse a record written by ``run.py`` (``--out``) or kept in docs/benchmarks/."""
    record = Record()
    title: str | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("## Benchmarks, "):
            record.date = line.removeprefix("## Benchmarks, ").strip()
        elif " CPUs on the machine" in line and not record.machine:
            cpus = line.split(" CPUs on the machine")[0]
            system = line.split("; ")[1] if "; " in line else ""
            record.machine = f"{cpus} CPUs, {system.split('-with-')[0]}"
        elif line.startswith("###"):
            title = line.lstrip("#").strip()
            record.tables[title] = {}
        elif title and line.startswith("| ") and not line.startswith("| contender"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if len(cells) == 2:
                record.tables[title][cells[0]] = cells[1]
    return record


def number(cell: str | None) -> float | None:
    """The first number of a cell (``"178.1 (0.4)"`` -> 178.1), or None."""
    if cell is None:
        return None
    match = re.match(r"\s*([0-9.]+(?:e[+-]?[0-9]+)?)", cell.replace(",", ""))
    return float(match.group(1)) if match else None


def size_of(text: str) -> float:
    """Bytes of ``"4 MiB"``, ``"256 MiB"``, ``"1 KiB"``."""
    value, unit = text.split()
    return float(value) * {"B": 1, "KiB": 1024, "MiB": MIB, "GiB": 1024 * MIB}[unit]


def cold_start(record: Record, out: Path) -> Path | None:
    """D-cold and D by start method, grouped bars."""
    import matplotlib.pyplot as plt

    panels = []
    for pattern, heading in (
        (r"D-cold\..*\((\w+)\)$", "fresh interpreter: import, start, one task, exit"),
        (r"D\. create a pool.*\((\w+)\)$", "warm interpreter: make a pool, one task, shut down"),
    ):
        by_method: dict[str, dict[str, float]] = {}
        for title, rows in record.tables.items():
            match = re.match(pattern, title)
            if match:
                by_method[match.group(1)] = {
                    name: value
                    for name, cell in rows.items()
                    if not name.startswith("ratio") and (value := number(cell)) is not None
                }
        if by_method:
            panels.append((heading, by_method))
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.2), squeeze=False)
    for ax, (heading, by_method) in zip(axes[0], panels, strict=True):
        methods = [m for m in METHODS if m in by_method]
        names = list(dict.fromkeys(n for m in methods for n in by_method[m]))
        width = 0.8 / len(names)
        for k, name in enumerate(names):
            xs = [i + (k - (len(names) - 1) / 2) * width for i in range(len(methods))]
            ys = [by_method[m].get(name, 0.0) for m in methods]
            style = {"hatch": "//"} if name.startswith("floor") else {}
            bars = ax.bar(xs, ys, width, label=name, **style)
            ax.bar_label(bars, fmt="%.0f", fontsize=6, padding=1)
        ax.set_xticks(range(len(methods)), methods)
        ax.set_ylabel("ms (median)")
        ax.set_title(heading, fontsize=10)
        if max(max(v.values()) for v in by_method.values()) > 5 * min(
            min(v.values()) for v in by_method.values()
        ):
            ax.set_yscale("log")
            ax.set_ylabel("ms (median, log scale)")
        ax.legend(fontsize=7, loc="upper right")
    fig.suptitle(f"Cold start by start method (lower is better) - {record.caption}", fontsize=10)
    fig.tight_layout()
    path = out / "cold-start.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _pool_points(record: Record) -> dict[str, list[tuple[float, float]]]:
    """(item bytes, MiB/s) per contender from A, C1 and G."""
    points: dict[str, list[tuple[float, float]]] = {}

    def add(name: str, size: float, mib_s: float | None) -> None:
        if mib_s is not None and mib_s > 0:
            points.setdefault(name, []).append((size, mib_s))

    found = record.find(r"A\. x\*x over ([0-9,]+) ints")
    if found:
        for name in ("parkit", "multiprocessing.Pool"):
            per_item = number(found[1].get(name))  # µs per item
            if per_item:
                add(name, INT_BYTES, INT_BYTES / (per_item * 1e-6) / MIB)
    found = record.find(r"C1\. \d+ NumPy arrays of (\d+ \w+) as arguments")
    if found:
        size = size_of(found[0].group(1))
        for name in ("parkit", "multiprocessing.Pool"):
            add(name, size, number(found[1].get(name)))
    found = record.find(r"G\. handing a (\d+ \w+) array to a worker")
    if found:
        size = size_of(found[0].group(1))
        rows = found[1]
        for name, row in (
            ("parkit", "parkit, the ndarray pickled (out-of-band buffers)"),
            ("multiprocessing.Pool", "multiprocessing.Pool, the ndarray pickled"),
            ("parkit.SharedArray (a handle: nothing copied)", "parkit.SharedArray (a handle)"),
        ):
            ms = number(rows.get(row))
            if ms:
                add(name, size, size / MIB / (ms / 1000))
    return points


def _queue_points(record: Record) -> dict[str, list[tuple[float, float]]]:
    """(item bytes, MiB/s) per queue from Q, one producer."""
    points: dict[str, list[tuple[float, float]]] = {}
    for pattern in (
        r"Q\. Queue throughput, [0-9,]+ ints, 1 producer",
        r"Q\. Queue throughput, \d+ items of (\d+ \w+) \(bytes\), 1 producer",
    ):
        found = record.find(pattern)
        if not found:
            continue
        size = size_of(found[0].group(1)) if found[0].groups() else INT_BYTES
        for name in ("parkit.Queue", "multiprocessing.Queue"):
            per_s = number(found[1].get(name))
            if per_s:
                points.setdefault(name, []).append((size, per_s * size / MIB))
    return points


def throughput_by_size(record: Record, out: Path) -> Path | None:
    """MiB/s against item size, log-log: pool arguments and queues."""
    import matplotlib.pyplot as plt

    panels = [
        ("pool arguments (A: ints, C1: arrays, G: one array)", _pool_points(record)),
        ("Queue, 1 producer to 1 consumer (Q)", _queue_points(record)),
    ]
    panels = [(heading, points) for heading, points in panels if points]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.2), squeeze=False)
    for ax, (heading, points) in zip(axes[0], panels, strict=True):
        for name, pairs in points.items():
            pairs.sort()
            marker = "*" if "SharedArray" in name else "o"
            ax.plot(*zip(*pairs, strict=True), marker=marker, label=name, markersize=7)
            for x, y in pairs:
                ax.annotate(f"{y:,.0f}" if y >= 1 else f"{y:.2f}", (x, y), fontsize=6,
                            textcoords="offset points", xytext=(4, 4))  # fmt: skip
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ticks = sorted({x for pairs in points.values() for x, _ in pairs})
        ax.set_xticks(ticks, [_size_label(t) for t in ticks])
        ax.set_xlabel("size of one item")
        ax.set_ylabel("MiB/s moved (median, log scale)")
        ax.set_title(heading, fontsize=10)
        ax.legend(fontsize=7)
        ax.grid(True, which="major", alpha=0.3)
    fig.suptitle(f"Throughput against item size (higher is better) - {record.caption}", fontsize=10)
    fig.tight_layout()
    path = out / "throughput-by-size.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _size_label(size: float) -> str:
    if size == INT_BYTES:
        return "an int"
    for unit, scale in (("MiB", MIB), ("KiB", 1024)):
        if size >= scale:
            return f"{size / scale:g} {unit}"
    return f"{size:g} B"


def draw(record_path: Path, out: Path) -> list[Path]:
    """Every figure the record has the data for; the paths written."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    out.mkdir(parents=True, exist_ok=True)
    record = read(record_path)
    made = [cold_start(record, out), throughput_by_size(record, out)]
    return [path for path in made if path is not None]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("record", type=Path, help="a run's markdown (run.py --out)")
    parser.add_argument("--out", type=Path, default=Path("docs/img"), help="where the PNGs go")
    args = parser.parse_args(argv)
    for path in draw(args.record, args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
