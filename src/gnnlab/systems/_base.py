"""The simulator side of a system plug-in.

A system turns its ``simulation`` config section into two separate records: :class:`Observations`, what an
experimenter would measure (time series, derivative targets, known structure), and :class:`GroundTruth`,
everything hidden (parameters, types). They never share an object, and they are stored in separate files,
so training code can be handed the first without any path to the second.
"""

import abc
import dataclasses
from typing import ClassVar

import numpy as np
from pydantic import BaseModel


@dataclasses.dataclass(frozen=True)
class Record:
    """A frozen bundle of named numpy arrays and scalars, the unit gnnlab stores on disk."""

    def arrays(self) -> dict[str, np.ndarray]:
        """The fields as arrays, in declaration order (scalars become 0-d arrays)."""
        return {f.name: np.asarray(getattr(self, f.name)) for f in dataclasses.fields(self)}


@dataclasses.dataclass(frozen=True)
class Frames:
    """Training pairs of a system, one row per observed frame.

    The model maps ``states`` (and the known ``inputs``) to a prediction of ``targets``; entries where
    ``mask`` is 0 carry no information (a censored reading) and are left out of every loss.
    """

    states: np.ndarray  # (F, N)
    inputs: np.ndarray  # (F, N)
    targets: np.ndarray  # (F, N)
    mask: np.ndarray  # (F, N) 1.0 where the target is usable


@dataclasses.dataclass(frozen=True)
class Observations(Record):
    """What training may see. Subclasses add their fields and the views their trainer reads (a dynamics
    system's ``frames(split)``: :class:`Frames` of the training or held-out runs)."""


@dataclasses.dataclass(frozen=True)
class GroundTruth(Record):
    """What only evaluation may see. Subclasses add their fields."""


class System(abc.ABC):
    """A dynamical system on a graph that gnnlab can simulate.

    Subclasses set ``name`` and the three record/config types, and implement :meth:`simulate`.
    """

    name: ClassVar[str]
    simulation_config: ClassVar[type[BaseModel]]
    observations_type: ClassVar[type[Observations]]
    ground_truth_type: ClassVar[type[GroundTruth]]

    @abc.abstractmethod
    def simulate(self, config: BaseModel) -> tuple[Observations, GroundTruth]:
        """Generate hidden parameters and trajectories as ``config`` says (deterministic in its seed)."""
