"""What the system benchmarks share: one timed ``gnnlab.run`` and a markdown table of its rows."""

import resource
import time
from pathlib import Path

import gnnlab


def timed_run(config: Path, out: Path, overrides: list[str], cache: Path) -> dict:
    """One run through ``gnnlab.run`` (no progress bars, no plots), with its wall minutes and the process's
    peak resident memory so far (per run when a bench call makes one run)."""
    start = time.perf_counter()
    metrics = gnnlab.run(config, out, overrides=overrides, cache_dir=cache, progress=False, plots=False)
    wall_min = (time.perf_counter() - start) / 60
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {**metrics, "wall_min": wall_min, "peak_rss_mib": peak_mib}


def cell(row: dict, key: str, fmt: str) -> str:
    value = row.get(key)
    return "-" if value is None else fmt.format(value)


def print_table(rows: list[dict], keys: list[str], columns: list[tuple[str, str, str]]) -> None:
    """A markdown table: the ``keys`` of each row as they are, then ``columns`` (key, title, format)."""
    header = [*keys, *(title for _, title, _ in columns)]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        cells = [*(str(row[k]) for k in keys), *(cell(row, k, f) for k, _, f in columns)]
        print("| " + " | ".join(cells) + " |")
