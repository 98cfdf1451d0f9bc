"""The ``gnnlab`` command: a thin layer over :mod:`gnnlab.pipeline` that turns errors into one line."""

import argparse
import json
import signal
import sys
from pathlib import Path

from gnnlab._version import __version__
from gnnlab.config import dump_config, simulation_hash
from gnnlab.errors import GnnlabError

DESCRIPTION = """\
Simulate a dynamical system on a graph, train a GNN on the observations only, and score how well it
recovered the hidden mechanics (rate constants, homeostasis, metabolite types).

With no CONFIG every command uses the built-in metabolism benchmark (configs/metabolism.yaml);
configs/perturbation.yaml is the gene-perturbation benchmark.
Datasets are cached under $GNNLAB_CACHE (default ~/.cache/gnnlab), keyed by the simulation section's hash.
"""

EPILOG = """\
examples:
  gnnlab run --out runs/demo                      # the benchmark on the built-in defaults
  gnnlab run configs/metabolism.yaml --out runs/s1 --set training.seed=1
  gnnlab run configs/perturbation.yaml --out runs/p1 --set model.geometry=euclidean
  gnnlab simulate --set simulation.n_frames=1000
  gnnlab evaluate runs/demo                       # re-score a finished run
  gnnlab config --set training.batch_size=512     # print the resolved config
  gnnlab explore configs/explore/metabolism.yaml --out runs/explore   # the exploration loop
  gnnlab explore status runs/explore              # where an exploration stands
"""


def _add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", type=Path, help="YAML config (default: built-in benchmark)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one key (repeatable); VALUE is parsed as YAML",
    )


def _add_cache_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache", type=Path, default=None, help="dataset cache directory")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gnnlab",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"gnnlab {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="simulate (or reuse the cache), train, evaluate and write a run directory",
        description="Simulate (or reuse), train on observations only, evaluate against ground truth. Writes "
        "config.yaml, run.json, metrics.json, analysis.log, history.json, model.pt and plots/*.png "
        "into --out. Re-running into a finished run directory with the same config returns its metrics "
        "without retraining.",
    )
    _add_config_args(run)
    run.add_argument(
        "--out", type=Path, default=None, help="run directory (default: runs/<system>-<hash>-seed<N>)"
    )
    _add_cache_arg(run)
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.add_argument("--no-plots", action="store_true", help="skip the figures")

    simulate = commands.add_parser("simulate", help="generate (or find) the cached dataset of a config")
    _add_config_args(simulate)
    _add_cache_arg(simulate)
    simulate.add_argument("--force", action="store_true", help="simulate again even if cached")

    evaluate = commands.add_parser("evaluate", help="re-score a finished run directory against ground truth")
    evaluate.add_argument("run_dir", type=Path)
    _add_cache_arg(evaluate)
    evaluate.add_argument("--no-plots", action="store_true", help="skip the figures")

    show = commands.add_parser("config", help="print the resolved config (defaults and overrides applied)")
    _add_config_args(show)

    explore = commands.add_parser(
        "explore",
        help="run the exploration loop (or 'explore status DIR' for where one stands)",
        description="An agent proposes runs (mutations of a config), a UCB tree over the results chooses "
        "where to look next, block after block. CONFIG holds a system config and its 'explore' section "
        "(metric, goal, parameters, slots, budgets). Everything is recorded in DIR/explore.sqlite; "
        "analysis.md, memory.md, ucb_scores.txt, protocol.md, tree.png and progress.png are rendered "
        "from it. "
        "Kill it at any moment and continue with --resume.\n\n"
        "  gnnlab explore status DIR [--json]   one-screen summary of an exploration (also while it runs)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_config_args(explore)
    explore.add_argument("--out", type=Path, required=True, help="exploration directory")
    explore.add_argument("--iterations", type=int, default=None, help="iteration budget (explore.budget)")
    explore.add_argument(
        "--agent",
        choices=["rule", "random", "optuna", "replay", "anthropic", "openai", "claude"],
        default=None,
        help="who proposes (explore.agent); the LLM agents read explore.llm and their API key variable",
    )
    explore.add_argument("--slots", type=int, default=None, help="runs at once (explore.slots)")
    explore.add_argument("--seed", type=int, default=None, help="the agent's seed (explore.seed)")
    explore.add_argument("--resume", action="store_true", help="continue the exploration in --out")
    explore.add_argument(
        "--replay-from", type=Path, default=None, help="exploration whose proposals to replay"
    )
    _add_cache_arg(explore)
    explore.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def build_status_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gnnlab explore status", description="Where an exploration stands: best node, failures, budget."
    )
    parser.add_argument("directory", type=Path)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    return parser


def _print_status(summary: dict) -> None:
    best = summary["best"]
    print(f"{summary['directory']}: agent {summary['agent']}, metric {summary['metric']}")
    print(
        f"  iterations {summary['iterations_done']}/{summary['iterations_budget']} "
        f"in {summary['blocks']} block(s); "
        f"running {summary['running'] or 'none'}; pending {summary['pending'] or 'none'}"
    )
    print(
        f"  wall {summary['wall_minutes']:.1f} min, runs {summary['run_minutes']:.1f} min, "
        f"loop overhead {summary['overhead_s_per_iteration']:.2f} s/iteration"
    )
    print(f"  failed: {len(summary['failed'])}; rejected proposals: {summary['rejected_proposals']}")
    llm = summary["llm"]
    if llm["calls"]:
        print(
            f"  LLM: {llm['calls']} calls ({llm['calls_with_error']} failed or rejected), "
            f"{llm['input_tokens']} + {llm['output_tokens']} tokens, ${llm['cost_usd']:.4f}"
        )
    for failure in summary["failed"][:5]:
        print(f"    node {failure['node']}: {failure['reason']}")
    if best is None:
        print("  best: none yet")
        return
    mean = best["metric_mean"]
    print(
        f"  best: node {best['node']}  {summary['metric']} = "
        + (f"{mean:.4g}" if mean is not None else "n/a")
        + (f" (mean of {best['n_runs']} runs)" if best["n_runs"] > 1 else "")
    )


def _explore_status(argv: list[str]) -> int:
    args = build_status_parser().parse_args(argv)
    from gnnlab.explore import status

    try:
        summary = status(args.directory)
    except GnnlabError as exc:
        print(f"gnnlab: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        _print_status(summary)
    return 0


def _print_metrics(metrics: dict) -> None:
    keys = [
        "status",
        "rate_constants_R2",
        "rate_constants_pearson_R2",
        "n_outliers",
        "n_identifiable",
        "test_R2",
        "top20_pearson",
        "baseline_top20_pearson",
        "pearson",
        "sign_accuracy",
        "edge_auroc",
        "val_loss",
        "training_time_min",
        "frames_per_second",
    ]
    if "phase2_loss" in metrics:  # a metabolism run with phase 2: how well homeostasis was recovered
        keys += [
            "phase2_loss",
            "max_slope_ratio_error",
            "max_offset_ratio_error",
            "embedding_cluster_acc",
            "embedding_n_clusters",
        ]
    for key in keys:
        if key in metrics:
            value = metrics[key]
            print(f"  {key:<28} {value:.4g}" if isinstance(value, float) else f"  {key:<28} {value}")


def _interrupt(signum: int, frame: object) -> None:
    from gnnlab.explore.executor import STOP

    STOP.set()
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:2] == ["explore", "status"]:
        return _explore_status(argv[2:])
    args = build_parser().parse_args(argv)
    from gnnlab import pipeline  # deferred: keeps --help fast

    try:
        if args.command == "config":
            print(dump_config(pipeline.resolve_config(args.config, args.overrides)), end="")
        elif args.command == "simulate":
            config = pipeline.resolve_config(args.config, args.overrides)
            print(pipeline.simulate(config, cache_dir=args.cache, force=args.force))
        elif args.command == "evaluate":
            metrics = pipeline.evaluate(args.run_dir, cache_dir=args.cache, plots=not args.no_plots)
            print(f"{args.run_dir}:")
            _print_metrics(metrics)
        elif args.command == "explore":
            from gnnlab.explore import explore
            from gnnlab.explore.executor import STOP

            STOP.clear()
            signal.signal(signal.SIGTERM, _interrupt)  # a scheduler's SIGTERM stops the runs like Ctrl-C

            summary = explore(
                args.config,
                args.out,
                overrides=args.overrides,
                iterations=args.iterations,
                agent=args.agent,
                slots=args.slots,
                seed=args.seed,
                resume=args.resume,
                replay_from=args.replay_from,
                cache_dir=args.cache,
                progress=not args.quiet,
            )
            _print_status(summary)
        elif args.command == "run":
            config = pipeline.resolve_config(args.config, args.overrides)
            out = (
                args.out
                or Path("runs") / f"{config.system}-{simulation_hash(config)}-seed{config.training.seed}"
            )
            metrics = pipeline.run(
                config, out, cache_dir=args.cache, progress=not args.quiet, plots=not args.no_plots
            )
            print(f"{out}:")
            _print_metrics(metrics)
            if metrics.get("status") != "ok":
                print(
                    f"gnnlab: run {metrics.get('status')}: {metrics.get('message', '')} (recorded in {out})",
                    file=sys.stderr,
                )
                return 1
    except GnnlabError as exc:
        print(f"gnnlab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gnnlab: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
