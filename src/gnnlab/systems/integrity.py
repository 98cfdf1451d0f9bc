"""The integrity check every simulator runs on its trajectories before anything is cached.

A blown-up simulation must never reach training: an earlier version cached a dataset full of ``inf`` and the
run then failed with a *training* divergence, pointing the user at the wrong culprit. Simulators call
:func:`check_trajectory` on each new frame (or on a whole trajectory); the first non-finite value or the
first magnitude above the configured bound raises :class:`SimulationDiverged` naming the system, run, frame
and node, and the remedy.
"""

import numpy as np

from gnnlab.errors import SimulationDiverged


def check_trajectory(
    states: np.ndarray, *, system: str, bound: float, remedy: str, first_frame: int = 0, first_run: int = 0
) -> None:
    """Raise :class:`SimulationDiverged` at the first bad entry of ``states`` (runs, frames, nodes).

    ``first_frame`` and ``first_run`` number ``states[0, 0]``, so a check on a slice reports true positions.
    """
    bad = ~np.isfinite(states) | (np.abs(states) > bound)
    if not bad.any():
        return
    run, frame, node = (int(x) for x in np.argwhere(bad.transpose(1, 0, 2))[0][[1, 0, 2]])
    value = states[run, frame, node]
    raise SimulationDiverged(
        f"system {system!r}: run {first_run + run} diverged at frame {first_frame + frame}, node {node} "
        f"(value {value:.3g}, bound {bound:g}); {remedy}"
    )


__all__ = ["check_trajectory"]
