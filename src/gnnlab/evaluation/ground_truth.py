"""The one place ground truth is read back from disk. Only evaluation imports it."""

from pathlib import Path

from gnnlab.data import GROUND_TRUTH_FILE, load_record
from gnnlab.systems import GroundTruth, get_system


def load_ground_truth(directory: Path, system: str) -> GroundTruth:
    """The hidden parameters of a dataset directory, for scoring a trained model."""
    return load_record(get_system(system).ground_truth_type, Path(directory) / GROUND_TRUTH_FILE)
