"""Benchmark harness: every figure is printed beside a reference measured in the same run.

Benchmarks never assert on time (machines differ); they print, and `make bench` collects them.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Measurement:
    name: str
    samples: list[float]
    unit: str = "ms"

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p99(self) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def measure(name: str, run: Callable[[], float | None], *, repeat: int = 5, unit: str = "ms") -> Measurement:
    """`run` returns its own figure (e.g. a time measured inside a subprocess) or None to be timed here."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        figure = run()
        samples.append(figure if figure is not None else (time.perf_counter() - started) * 1000)
    return Measurement(name, samples, unit)


def report(title: str, rows: list[Measurement], reference: Measurement) -> str:
    width = max(len(r.name) for r in [*rows, reference]) + 2
    lines = [f"\n{title}", f"  {'':{width}} {'median':>10} {'min':>10} {'max':>10}   vs reference"]
    for row in [reference, *rows]:
        ratio = "reference" if row is reference else f"x{row.median / reference.median:.2f}"
        lines.append(
            f"  {row.name:{width}} {row.median:>8.1f}{row.unit} {min(row.samples):>8.1f}{row.unit} "
            f"{max(row.samples):>8.1f}{row.unit}   {ratio}"
        )
    text = "\n".join(lines)
    print(text)
    return text
