"""gnnlab: simulate dynamical systems on graphs, recover their hidden mechanics with GNNs, evaluate honestly.

The Python API mirrors the CLI::

    import gnnlab
    metrics = gnnlab.run("configs/metabolism.yaml", "runs/demo", overrides=["training.seed=1"])
"""

from gnnlab._version import __version__
from gnnlab.config import load_config
from gnnlab.pipeline import evaluate, run, simulate, train_model

__all__ = ["__version__", "evaluate", "load_config", "run", "simulate", "train_model"]
