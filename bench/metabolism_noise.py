"""Benchmark: rate-constant recovery of the shipped metabolism config under noise, per training objective.

Each case changes only the simulation's noise (or, for ``mixed``, uses ``configs/metabolism_mixed.yaml``);
each objective is run for every training seed. Prints a table (median over seeds) and writes
``bench/results/metabolism_noise.json``.

    python bench/metabolism_noise.py                                  # every case, objective auto, 3 seeds
    python bench/metabolism_noise.py --cases meas_0.01 --objectives derivative trajectory smoothed_derivative
    python bench/metabolism_noise.py --seeds 0 --cases clean          # a quick look

Targets (issue 6, median over 3 training seeds, <= 10 min per run on 2 cores): clean >= 0.998,
measurement noise 0.01 >= 0.95, 0.05 >= 0.85, relative 5 % >= 0.95, process noise 0.01 >= 0.98.
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import gnnlab

ROOT = Path(__file__).resolve().parents[1]
CASES: dict[str, tuple[str, list[str]]] = {
    "clean": ("metabolism.yaml", []),
    "meas_0.01": ("metabolism.yaml", ["simulation.measurement_noise_level=0.01"]),
    "meas_0.05": ("metabolism.yaml", ["simulation.measurement_noise_level=0.05"]),
    "relative_5%": (
        "metabolism.yaml",
        ["simulation.measurement_noise_type=relative", "simulation.measurement_noise_level=0.05"],
    ),
    "process_0.01": ("metabolism.yaml", ["simulation.noise_model_level=0.01"]),
}
TARGETS = {"clean": 0.998, "meas_0.01": 0.95, "meas_0.05": 0.85, "relative_5%": 0.95, "process_0.01": 0.98}


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--objectives", nargs="+", default=["auto"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for case in args.cases:
            config_file, overrides = CASES[case]
            for objective in args.objectives:
                for seed in args.seeds:
                    settings = [
                        *overrides,
                        f"training.objective={objective}",
                        f"training.seed={seed}",
                        f"training.n_threads={args.threads}",
                    ]
                    start = time.perf_counter()
                    metrics = gnnlab.run(
                        ROOT / "configs" / config_file,
                        Path(scratch) / f"{case}-{objective}-{seed}",
                        overrides=settings,
                        cache_dir=Path(scratch) / "cache",
                        progress=False,
                        plots=False,
                    )
                    row = {
                        "case": case,
                        "objective": objective,
                        "ran": metrics.get("objective"),
                        "seed": seed,
                        "status": metrics["status"],
                        "rate_constants_R2": metrics.get("rate_constants_R2"),
                        "wall_min": (time.perf_counter() - start) / 60,
                    }
                    rows.append(row)
                    print(
                        f"{case:>13} {objective:>20} (ran {row['ran']}) seed {seed}: "
                        f"R2 {row['rate_constants_R2']}  {row['wall_min']:.1f} min",
                        flush=True,
                    )

    print("\n| case | objective | ran | median R² | worst R² | max wall min | target |")
    print("|---|---|---|---|---|---|---|")
    summary = []
    for case in args.cases:
        for objective in args.objectives:
            group = [r for r in rows if r["case"] == case and r["objective"] == objective]
            scores = [r["rate_constants_R2"] for r in group if r["rate_constants_R2"] is not None]
            median = statistics.median(scores) if scores else None
            entry = {
                "case": case,
                "objective": objective,
                "ran": sorted({str(r["ran"]) for r in group}),
                "median_R2": median,
                "worst_R2": min(scores) if scores else None,
                "max_wall_min": max(r["wall_min"] for r in group),
                "target": TARGETS[case],
                "met": median is not None and median >= TARGETS[case],
            }
            summary.append(entry)
            cells = [case, objective, "/".join(entry["ran"]), _fmt(median), _fmt(entry["worst_R2"])]
            print(f"| {' | '.join(cells)} | {entry['max_wall_min']:.1f} | ≥ {TARGETS[case]} |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "metabolism_noise.json").write_text(json.dumps({"runs": rows, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
