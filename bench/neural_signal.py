"""Benchmark: the signal system's regimes (issue 9's target table) over training seeds.

Prints a table and writes JSON (default bench/results/signal.json). The targets are for 2 CPU cores; on a
machine shared with other jobs ``--threads 1`` was ten times faster than two contended threads.

    python bench/neural_signal.py                                  # chaotic N=100, 1 type, seeds 0 1 2
    python bench/neural_signal.py --regimes four_types known_support --seeds 0
    python bench/neural_signal.py --frames 5000 --set training.lbfgs_iterations=100

Targets (issue 9): chaotic N=100 connectivity_R2 >= 0.999 every seed in <= 3 min; N=1000 >= 0.99 in
<= 10 min; 4 types conn >= 0.99 and cluster_accuracy >= 0.95; filling 0.5 known support >= 0.99,
unknown support >= 0.95 over all pairs with edge AUROC >= 0.99; low rank + Dale and measurement noise: report.
"""

import argparse
import json
import os
import platform
import resource
from pathlib import Path

from timed_run import print_connectivity_summary, print_table, run_grid

from gnnlab.pipeline import code_revision

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "signal.yaml"

FOUR_TYPES = [
    "simulation.n_neuron_types=4",
    "simulation.decay_per_type=[1.0, 2.0, 1.0, 2.0]",
    "simulation.baseline_per_type=[0.0, 0.0, 0.0, 0.0]",
    "simulation.self_recurrence_per_type=[0.0, 0.0, 1.0, 1.0]",
    "simulation.threshold_per_type=[0.0, 0.0, 0.0, 0.0]",
    "simulation.width_per_type=[1.0, 1.0, 1.0, 1.0]",
    # four f_theta to learn, not one: faster embeddings and longer training (defaults: 0.960 / 0.55 seed 0)
    "training.learning_rate_embedding_start=0.01",
    "training.projection_steps=200",
    "training.lbfgs_iterations=100",
]

# regime -> overrides of configs/signal.yaml
REGIMES: dict[str, list[str]] = {
    "chaotic_N100": [],
    # N=1000: f_theta on 200 random target rows per Adam step (the features of all 1000 sources), L-BFGS
    # on a fixed 5000 frames x 200 rows, two held-out evaluations; W is finally solved on every frame.
    # Ridge 1e-10, not 1e-4: the features' mean-square Gram has eigenvalues down to 3e-7 here, and a ridge
    # of 1e-4 caps even the true functions' least squares at connectivity R2 0.716 (signal_oracle_fit.py).
    # 100 L-BFGS iterations: at 10 the projected loss was still falling (1.25e-6 -> 3e-7; 1e-9 at 100)
    "chaotic_N1000": [
        "simulation.n_neurons=1000",
        "training.projection_batch_neurons=200",
        "training.projection_lbfgs_frames=5000",
        "training.lbfgs_iterations=100",
        "training.projection_validations=2",
        "training.ridge=1e-10",
    ],
    "four_types": FOUR_TYPES,
    "known_support": ["simulation.connectivity_filling_factor=0.5"],
    "unknown_support": ["simulation.connectivity_filling_factor=0.5", "simulation.known_support=false"],
    "low_rank_Dale": [
        "simulation.connectivity_type=low_rank",
        "simulation.connectivity_rank=20",
        "simulation.Dale_law=true",
    ],
    "measurement_noise": ["simulation.measurement_noise_level=0.05"],
}

COLUMNS = [
    ("connectivity_R2", "conn R2", "{:.4f}"),
    ("connectivity_pearson_R2", "pearson R2", "{:.4f}"),
    ("connectivity_sign_accuracy", "sign acc", "{:.3f}"),
    ("edge_auroc", "AUROC", "{:.4f}"),
    ("cluster_accuracy", "cluster acc", "{:.3f}"),
    ("cluster_accuracy_embedding", "cluster acc (emb)", "{:.3f}"),
    ("effective_rank", "rank", "{}"),
    ("test_R2_short", "rollout R2 (1st 10%)", "{:.3f}"),
    ("training_time_min", "train min", "{:.2f}"),
    ("wall_min", "wall min", "{:.2f}"),
    ("peak_rss_mib", "peak RSS MiB", "{:.0f}"),
]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--regimes", nargs="+", choices=list(REGIMES), default=["chaotic_N100"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--frames", type=int, help="override simulation.n_frames")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--set", nargs="*", default=[], help="extra section.key=value overrides")
    parser.add_argument(
        "--cache", type=Path, help="dataset cache (default: a temporary one, so wall includes simulation)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "signal.json")
    args = parser.parse_args()

    extra = [f"training.n_threads={args.threads}", *args.set]
    if args.frames:
        extra.append(f"simulation.n_frames={args.frames}")
    rows = run_grid(
        CONFIG,
        {regime: REGIMES[regime] for regime in args.regimes},
        args.seeds,
        extra,
        args.cache,
        "regime",
        COLUMNS,
    )
    print_table(rows, ["regime", "seed"], COLUMNS)
    print_connectivity_summary(rows, "regime")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"peak resident memory {peak_mib:.0f} MiB; load average at the end {load}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "code_revision": code_revision(),
        "machine": platform.platform(),
        "overrides": extra,
        "peak_rss_mib": peak_mib,
        "load_average_end": os.getloadavg(),
        "runs": rows,
    }
    args.out.write_text(json.dumps(payload, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
