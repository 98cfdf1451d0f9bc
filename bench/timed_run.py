"""What the system benchmarks share: one timed ``gnnlab.run`` and a markdown table of its rows."""

import resource
import statistics
import tempfile
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


def run_grid(
    config: Path,
    cases: dict[str, list[str]],
    seeds: list[int],
    extra: list[str],
    cache: Path | None,
    label: str,
    columns: list[tuple[str, str, str]],
) -> list[dict]:
    """Every case (name -> overrides) at every training seed, a line printed per run; rows keyed by
    ``label`` and ``seed``. Without ``cache`` the datasets go to a temporary one: wall includes simulation."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, overrides in cases.items():
            for seed in seeds:
                metrics = timed_run(
                    config,
                    Path(tmp) / f"{name}-{seed}",
                    [*overrides, *extra, f"training.seed={seed}"],
                    cache or Path(tmp),
                )
                rows.append({label: name, "seed": seed, **metrics})
                print(name, seed, " ".join(f"{k}={cell(metrics, k, f)}" for k, _, f in columns), flush=True)
    return rows


def print_connectivity_summary(rows: list[dict], label: str) -> None:
    """Median and worst connectivity_R2 per case."""
    for name in dict.fromkeys(r[label] for r in rows):
        scores = [
            r["connectivity_R2"] for r in rows if r[label] == name and r.get("connectivity_R2") is not None
        ]
        if scores:
            print(f"{name}: median connectivity_R2 {statistics.median(scores):.4f}, worst {min(scores):.4f}")
