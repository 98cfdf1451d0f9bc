"""Simulators, one plug-in per system, registered by name."""

from gnnlab.errors import ConfigError
from gnnlab.systems._base import Frames, GroundTruth, Observations, Record, System
from gnnlab.systems.flyvis.simulator import FlyVisSystem
from gnnlab.systems.metabolism.simulator import MetabolismSystem
from gnnlab.systems.perturbation.simulator import PerturbationSystem
from gnnlab.systems.signal.simulator import SignalSystem

SYSTEMS: dict[str, System] = {
    system.name: system
    for system in (MetabolismSystem(), PerturbationSystem(), SignalSystem(), FlyVisSystem())
}


def get_system(name: str) -> System:
    """The registered system called ``name``."""
    if name not in SYSTEMS:
        raise ConfigError(f"unknown system {name!r}; choose from {', '.join(sorted(SYSTEMS))}")
    return SYSTEMS[name]


__all__ = ["SYSTEMS", "Frames", "GroundTruth", "Observations", "Record", "System", "get_system"]
