"""The method works: a small system's rate constants are recovered from observations alone.

(Its speed is the benchmark's business, not a unit test's: a wall-time assert fails on a loaded machine.)
"""

import gnnlab


def test_small_system_rate_constants_are_recovered(small_config, cache, tmp_path):
    metrics = gnnlab.run(small_config, tmp_path / "run", cache_dir=cache, progress=False, plots=False)
    assert metrics["status"] == "ok"
    assert metrics["n_identifiable"] == 30
    assert metrics["rate_constants_R2"] >= 0.95
    assert metrics["n_outliers"] == 0


def test_an_untrained_model_does_not_recover_rate_constants(small_config, cache, tmp_path):
    untrained = small_config.model_copy(
        update={
            "training": small_config.training.model_copy(
                update={"data_augmentation_loop": 0.01, "lbfgs_iterations": 0}
            )
        }
    )
    metrics = gnnlab.run(untrained, tmp_path / "run", cache_dir=cache, progress=False, plots=False)
    assert metrics["rate_constants_R2"] < 0.5
