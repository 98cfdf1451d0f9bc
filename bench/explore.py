"""Benchmark of the exploration loop: the rule agent against random search and TPE, side by side.

Every agent explores ``configs/explore/metabolism.yaml`` — the same parameter space, the same poor starting
config, the same iteration budget and slots — over several exploration seeds. Printed per agent and seed:
the best rate_constants_R2 reached (the mean over a node's robustness re-runs where it has them), the
iteration at which the best-so-far first reached 0.95, wall minutes and the loop's own overhead per
iteration (everything but runs and simulation). Then the median best-so-far curves and the targets.

    python bench/explore.py                 # 3 agents x 3 seeds x 24 iterations, 4 slots
    python bench/explore.py --seeds 0 --iterations 8   # a quick look

Writes ``bench/results/explore.json``; explorations are kept under ``bench/results/explore/``.
"""

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path

from gnnlab.explore import Store, explore
from gnnlab.explore.store import STORE_FILE

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "explore" / "metabolism.yaml"
THRESHOLD = 0.95


def best_so_far(store_dir: Path, metric: str, iterations: int) -> list[float | None]:
    """Per iteration i: the best value of ``metric`` among tree nodes with id <= i, each node scored by the
    mean over itself and its re-runs finished by then (a failed run counts as missing, never as best)."""
    store = Store(store_dir / STORE_FILE)
    try:
        nodes = store.nodes()
    finally:
        store.close()
    curve: list[float | None] = []
    for i in range(1, iterations + 1):
        runs: dict[int, list[float]] = {}
        for n in nodes:
            value = (n.metrics or {}).get(metric) if n.status == "done" else None
            if n.id <= i and isinstance(value, int | float):
                runs.setdefault(n.robust_of or n.id, []).append(float(value))
        means = [sum(v) / len(v) for v in runs.values()]
        curve.append(max(means) if means else None)
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--agents", nargs="+", default=["rule", "random", "optuna"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--iterations", type=int, default=24)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()

    work = args.out / "explore"
    cache = work / "cache"
    rows = []
    started = time.perf_counter()
    for seed in args.seeds:
        for agent in args.agents:
            out = work / f"{agent}-seed{seed}"
            shutil.rmtree(out, ignore_errors=True)
            t0 = time.perf_counter()
            summary = explore(
                CONFIG,
                out,
                agent=agent,
                seed=seed,
                iterations=args.iterations,
                slots=args.slots,
                cache_dir=cache,
                progress=False,
            )
            wall = (time.perf_counter() - t0) / 60
            curve = best_so_far(out, summary["metric"], args.iterations)
            reached = next((i + 1 for i, v in enumerate(curve) if v is not None and v >= THRESHOLD), None)
            rows.append(
                {
                    "agent": agent,
                    "seed": seed,
                    "best": curve[-1],
                    "best_node": (summary["best"] or {}).get("node"),
                    "best_node_runs": (summary["best"] or {}).get("n_runs"),
                    "iterations_to_0.95": reached,
                    "failed": len(summary["failed"]),
                    "wall_min": wall,
                    "overhead_s_per_iteration": summary["overhead_s_per_iteration"],
                    "curve": curve,
                }
            )
            r = rows[-1]
            print(
                f"{agent:>7} seed {seed}: best {r['best']:.4f}  reached {THRESHOLD} at {reached}  "
                f"wall {wall:.1f} min  overhead {r['overhead_s_per_iteration']:.2f} s/iter",
                flush=True,
            )

    print(
        "\n| agent | seed | best rate_constants_R2 | iterations to 0.95 | failed runs | wall min "
        "| loop overhead s/iter |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['agent']} | {r['seed']} | {r['best']:.4f} | {r['iterations_to_0.95'] or 'never'} "
            f"| {r['failed']} "
            f"| {r['wall_min']:.1f} | {r['overhead_s_per_iteration']:.2f} |"
        )
    medians = {}
    for agent in args.agents:
        curves = [r["curve"] for r in rows if r["agent"] == agent]
        medians[agent] = [
            statistics.median(c[i] if c[i] is not None else float("-inf") for c in curves)
            for i in range(args.iterations)
        ]
    marks = [i for i in (4, 8, 12, 16, 20, 24) if i <= args.iterations]
    print("\nmedian best-so-far rate_constants_R2 over seeds")
    print("| agent | " + " | ".join(f"iter {i}" for i in marks) + " |")
    print("|---|" + "---|" * len(marks))
    for agent, curve in medians.items():
        print(f"| {agent} | " + " | ".join(f"{curve[i - 1]:.4f}" for i in marks) + " |")

    targets = {}
    if "rule" in medians:
        rule_rows = [r for r in rows if r["agent"] == "rule"]
        targets["rule_reaches_0.95_every_seed"] = all(
            r["best"] is not None and r["best"] >= THRESHOLD for r in rule_rows
        )
        for other in (a for a in medians if a != "rule"):
            targets[f"rule_median_at_or_above_{other}_from_iter_8"] = all(
                medians["rule"][i] >= medians[other][i] for i in range(7, args.iterations)
            )
    total_min = (time.perf_counter() - started) / 60
    targets["total_minutes"] = total_min
    targets["max_overhead_s_per_iteration"] = max(r["overhead_s_per_iteration"] for r in rows)
    print("\ntargets:", json.dumps(targets, indent=2))
    args.out.mkdir(parents=True, exist_ok=True)
    result = {
        "config": str(CONFIG.relative_to(ROOT)),
        "iterations": args.iterations,
        "slots": args.slots,
        "rows": rows,
        "median_curves": medians,
        "targets": targets,
    }
    (args.out / "explore.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
