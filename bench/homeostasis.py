"""Benchmark: homeostasis recovery without labels (issue 8), per benchmark, noise level and strategy.

For every (benchmark, measurement noise, training seed) phase 1 runs once (``gnnlab run`` with
``homeostasis_training: false``, kept under ``--phase1-dir`` and reused when present); every strategy row is
then a phase-2 run started from it (``skip_phase1``), so rows differ only in phase 2 (a finished phase-1 run
already in ``<phase1-dir>/<benchmark>-noise<level>-seed<seed>/phase1`` is used as it is). A row's minutes are
both phases' training time. Prints a table (median over seeds) and writes ``bench/results/homeostasis.json``.

    python bench/homeostasis.py                                      # default row, both benchmarks, 3 seeds
    python bench/homeostasis.py --benchmarks two --strategies all    # a row per strategy switched on alone
    python bench/homeostasis.py --noise 0.01 --benchmarks two

Targets (issue 8, median over 3 training seeds): every per-type slope ratio within [0.95, 1.05], every
offset within 10 %, embedding_cluster_acc >= 0.98 with n_clusters = n_types, rate_constants_R2 unchanged by
phase 2, <= 10 minutes per run (both phases) on 2 CPU cores.
"""

import argparse
import json
import statistics
from pathlib import Path

import gnnlab

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = {"two": "metabolism_homeostasis.yaml", "three": "metabolism_homeostasis_3types.yaml"}
# one row per option switched on alone, on top of the default (rollout-only strategies on a rollout row;
# rollout rows run a quarter of the default's steps, ROLLOUT_LOOP: BPTT costs T reaction evaluations a step)
ROLLOUT_LOOP = "training.homeostasis_data_augmentation_loop=5"
STRATEGIES: dict[str, list[str]] = {
    "default": [],
    "seed-001 baseline (residual, phase-1 embeddings)": [
        "training.homeostasis_objective=residual",
        "training.homeostasis_init=keep",
        "training.homeostasis_grouping=none",
        "training.homeostasis_reaction_correction=false",
    ],
    "no reaction correction": ["training.homeostasis_reaction_correction=false"],
    "no grouping": ["training.homeostasis_grouping=none"],
    "L-BFGS 200": ["training.homeostasis_lbfgs_iterations=200"],
    "s1 residual objective": ["training.homeostasis_objective=residual"],
    "s2 amplification 10x": ["training.homeostasis_amplification=10"],
    "embeddings trained (lr 1e-3)": ["training.learning_rate_embedding_homeostasis=0.001"],
    "s3 response-curve loss (embeddings trained)": [
        "training.coeff_embedding_cluster=1.0",
        "training.learning_rate_embedding_homeostasis=0.001",
    ],
    "s5 warm-up 100 + cosine": ["training.homeostasis_lr_warmup_steps=100"],
    "s7 gradient accumulation 4": ["training.homeostasis_gradient_accumulation=4"],
    "offset penalty": ["training.coeff_homeostasis_offset=1.0"],
    "gradient clipping": ["training.homeostasis_grad_clip_norm=0.001"],
    "kaiming re-init": ["training.homeostasis_node_init=kaiming"],
    "rollout T=8": [
        "training.homeostasis_objective=rollout",
        "training.homeostasis_time_step=8",
        ROLLOUT_LOOP,
    ],
    "s4 rollout T=8 + curriculum": [
        "training.homeostasis_objective=rollout",
        "training.homeostasis_time_step=8",
        "training.homeostasis_time_step_curriculum=true",
        ROLLOUT_LOOP,
    ],
    "s6 rollout multi-scale 1,4,8": [
        "training.homeostasis_objective=rollout",
        "training.homeostasis_rollout_lengths=[1, 4, 8]",
        ROLLOUT_LOOP,
    ],
    "s8 rollout T=8 + stop-gradient": [
        "training.homeostasis_objective=rollout",
        "training.homeostasis_time_step=8",
        "training.homeostasis_stop_gradient=true",
        ROLLOUT_LOOP,
    ],
}
COLUMNS = [
    "max_slope_ratio_error",
    "max_offset_ratio_error",
    "embedding_cluster_acc",
    "embedding_n_clusters",
    "rate_constants_R2",
    "phase1_rate_constants_R2",
    "minutes",
]


def _median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--benchmarks", nargs="+", default=list(BENCHMARKS), choices=list(BENCHMARKS))
    parser.add_argument("--strategies", nargs="+", default=["default"], help="row names, or: all")
    parser.add_argument("--noise", nargs="+", type=float, default=[0.0], help="measurement noise levels")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--phase1-dir", type=Path, default=ROOT / "runs" / "bench-homeostasis")
    parser.add_argument("--cache", type=Path, default=None, help="dataset cache directory")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    strategies = list(STRATEGIES) if args.strategies == ["all"] else args.strategies

    rows = []
    for benchmark in args.benchmarks:
        config = ROOT / "configs" / BENCHMARKS[benchmark]
        for noise in args.noise:
            for seed in args.seeds:
                common = [
                    f"simulation.measurement_noise_level={noise}",
                    f"training.seed={seed}",
                    f"training.n_threads={args.threads}",
                ]
                phase1_dir = args.phase1_dir / f"{benchmark}-noise{noise}-seed{seed}" / "phase1"
                if (phase1_dir / "metrics.json").is_file():  # any finished phase-1 run placed there
                    phase1 = json.loads((phase1_dir / "metrics.json").read_text())
                else:
                    phase1 = gnnlab.run(
                        config,
                        phase1_dir,
                        overrides=[*common, "training.homeostasis_training=false"],
                        cache_dir=args.cache,
                        progress=False,
                        plots=False,
                    )
                for name in strategies:
                    slug = "".join(ch if ch.isalnum() else "_" for ch in name)
                    metrics = gnnlab.run(
                        config,
                        phase1_dir.parent / slug,
                        overrides=[
                            *common,
                            "training.skip_phase1=true",
                            f"training.phase1_run={phase1_dir}",
                            *STRATEGIES[name],
                        ],
                        cache_dir=args.cache,
                        progress=False,
                        plots=False,
                    )
                    row = {
                        "benchmark": benchmark,
                        "noise": noise,
                        "strategy": name,
                        "seed": seed,
                        "status": metrics["status"],
                        "phase1_rate_constants_R2": phase1.get("rate_constants_R2"),
                        "minutes": metrics.get("training_time_min"),
                        **{
                            k: v
                            for k, v in metrics.items()
                            if k.startswith(("MLP_node_slope_ratio", "MLP_node_offset_ratio", "embedding_"))
                            or k
                            in (
                                "max_slope_ratio_error",
                                "max_offset_ratio_error",
                                "avg_slope_ratio",
                                "rate_constants_R2",
                                "phase2_loss",
                                "phase2_node_magnitude",
                                "phase2_time_s",
                            )
                        },
                    }
                    rows.append(row)
                    print(json.dumps(row), flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "homeostasis.json").write_text(json.dumps(rows, indent=2) + "\n")
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["benchmark"], row["noise"], row["strategy"]), []).append(row)
    print()
    ratio_keys = sorted(
        {k for r in rows for k in r if k.startswith(("MLP_node_slope_ratio", "MLP_node_offset_ratio"))}
    )
    header = ["benchmark", "noise", "strategy", *ratio_keys, *COLUMNS]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for (benchmark, noise, strategy), members in groups.items():
        cells = [benchmark, f"{noise:g}", strategy]
        cells += [_fmt(_median([m.get(k) for m in members])) for k in [*ratio_keys, *COLUMNS]]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
