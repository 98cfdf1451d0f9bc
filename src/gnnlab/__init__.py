"""gnnlab: simulate dynamical systems on graphs, recover their hidden mechanics with GNNs, evaluate honestly.

The Python API mirrors the CLI::

    import gnnlab
    metrics = gnnlab.run("configs/metabolism.yaml", "runs/demo", overrides=["training.seed=1"])
    summary = gnnlab.explore("configs/explore/metabolism.yaml", "runs/explore", iterations=8)
    summary = gnnlab.explore_status("runs/explore")

(``gnnlab.explore`` is the loop's function; the package behind it is imported by module path, e.g.
``from gnnlab.explore.store import Store``.)
"""

from gnnlab._version import __version__
from gnnlab.config import load_config
from gnnlab.explore import explore
from gnnlab.explore import status as explore_status
from gnnlab.pipeline import evaluate, run, simulate, train_model

__all__ = [
    "__version__",
    "evaluate",
    "explore",
    "explore_status",
    "load_config",
    "run",
    "simulate",
    "train_model",
]
