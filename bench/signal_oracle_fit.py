"""Diagnostic: can W be recovered at all from these frames? Least squares *with the true functions*.

For a regime of ``bench/neural_signal.py``, the training run's frames are regressed as the projection trainer
does, but with the simulator's own per-type functions instead of f_theta and g_phi: the target is the
observed forward difference minus the known self terms, y_i = du_i/dt + a u_i - b - s tanh(u_i), the
features are x_j = tanh((u_j - h) / w), and every row of g * W is the ridge least-squares fit over its
candidate sources (the shared-inverse solve of ``solve_weights``, in float32 or float64). Scored with the
package's ``connectivity_R2``. If this is below the target, no trained model can reach it: the data or the
numerics are the limit, not the GNN.

Prints: how exact the regression is (the true law's residual on the forward differences: float32 storage,
process noise, substeps), the singular values of the feature matrix, and R2 by frames used (the first F,
and F at random over the run), ridge and floating-point precision. JSON to bench/results/signal_oracle.json.

    python bench/signal_oracle_fit.py --cache /tmp/sig/cache                       # chaotic_N1000
    python bench/signal_oracle_fit.py --regime chaotic_N100 --frames 200 500 9999
"""

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from neural_signal import CONFIG, REGIMES

from gnnlab import pipeline
from gnnlab.data import GROUND_TRUTH_FILE, OBSERVATIONS_FILE, load_record
from gnnlab.evaluation.signal import connectivity_metrics
from gnnlab.systems.signal.simulator import SignalGroundTruth, SignalObservations

ROOT = Path(__file__).resolve().parents[1]


def true_law(observations: SignalObservations, truth: SignalGroundTruth) -> tuple[np.ndarray, np.ndarray]:
    """Features x (F, N) and targets y (F, N), float64, of the training run with the true functions."""
    if observations.activity.shape[0] - observations.n_validation_runs != 1:
        raise SystemExit("expected one training run")
    u = observations.activity[0, :-1].astype(np.float64)
    dudt = observations.derivatives[0].astype(np.float64) - observations.inputs[0, :-1]
    a, b, s, h, w = (
        np.asarray(p)[truth.types]
        for p in (truth.decay, truth.baseline, truth.self_recurrence, truth.threshold, truth.width)
    )
    return np.tanh((u - h) / w), dudt + a * u - b - s * np.tanh(u)


def oracle_solve(x: np.ndarray, y: np.ndarray, ridge: float, dtype: type) -> np.ndarray:
    """Dense g * W (zero diagonal) by the shared-inverse least squares of ``solve_weights`` in ``dtype``."""
    x, y = x.astype(dtype), y.astype(dtype)
    n_frames, n = x.shape
    gram = x.T @ x / dtype(n_frames) + dtype(ridge) * np.eye(n, dtype=dtype)
    cross = y.T @ x / dtype(n_frames)
    inverse = np.linalg.inv(gram)
    full = cross @ inverse
    dense = full - (np.diag(full) / np.diag(inverse))[:, None] * inverse
    np.fill_diagonal(dense, 0.0)
    return dense.astype(np.float64)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--regime", choices=list(REGIMES), default="chaotic_N1000")
    parser.add_argument("--frames", nargs="+", type=int, default=[1500, 2000, 5000, 9999])
    parser.add_argument("--ridges", nargs="+", type=float, default=[0.0, 1e-10, 1e-8, 1e-6, 1e-4])
    parser.add_argument("--cache", type=Path, help="dataset cache (default: gnnlab's)")
    parser.add_argument("--seed", type=int, default=0, help="draw of the random frame subsets")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "signal_oracle.json")
    args = parser.parse_args()

    config = pipeline.resolve_config(CONFIG, REGIMES[args.regime])
    directory = pipeline.simulate(config, cache_dir=args.cache)
    observations = load_record(SignalObservations, directory / OBSERVATIONS_FILE)
    truth = load_record(SignalGroundTruth, directory / GROUND_TRUTH_FILE)
    x, y = true_law(observations, truth)
    gain_w = truth.gain * truth.W
    misfit = y - x @ gain_w.T
    exactness = float(np.sqrt((misfit**2).mean()) / y.std())
    print(f"{args.regime}: {x.shape[0]} training frames, N={x.shape[1]}, dataset {directory.name}")
    print(f"true law on the forward differences: residual rms / target std = {exactness:.2e}")
    singular = np.linalg.svd(x, compute_uv=False)
    ranks = sorted({max(int(q * len(singular)) - 1, 0) for q in (0.0, 0.01, 0.1, 0.5, 0.9, 1.0)})
    print(
        "singular values of the features (all frames): "
        + ", ".join(f"s{k + 1}={singular[k]:.3g}" for k in ranks)
        + f"; condition {singular[0] / singular[-1]:.3g} (Gram: {(singular[0] / singular[-1]) ** 2:.3g})"
    )

    rng = np.random.default_rng(args.seed)
    source, target = observations.edge_index
    rows = []
    print("| frames | subset | condition | ridge | float64 R2 | float32 R2 |")
    print("|---|---|---|---|---|---|")
    for n_frames in args.frames:
        n_frames = min(n_frames, len(x))
        subsets = {"first": np.arange(n_frames), "random": np.sort(rng.permutation(len(x))[:n_frames])}
        for subset, index in subsets.items():
            sv = np.linalg.svd(x[index], compute_uv=False)
            condition = float(sv[0] / sv[-1])
            for ridge in args.ridges:
                row = {"frames": n_frames, "subset": subset, "condition": condition, "ridge": ridge}
                for dtype in (np.float64, np.float32):
                    start = time.perf_counter()
                    dense = oracle_solve(x[index], y[index], ridge, dtype)
                    scores = connectivity_metrics(
                        dense[target, source], observations.edge_index, truth.W, truth.gain
                    )
                    row[dtype.__name__] = {**scores, "seconds": time.perf_counter() - start}
                rows.append(row)
                print(
                    f"| {n_frames} | {subset} | {condition:.3g} | {ridge:g} | "
                    f"{row['float64']['connectivity_R2']:.5f} | {row['float32']['connectivity_R2']:.5f} |",
                    flush=True,
                )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "regime": args.regime,
        "overrides": REGIMES[args.regime],
        "dataset": directory.name,
        "true_law_relative_residual": exactness,
        "singular_values": singular.tolist(),
        "load_average_end": os.getloadavg(),
        "fits": rows,
    }
    args.out.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
