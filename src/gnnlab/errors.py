"""Exceptions gnnlab raises on bad input.

Every error subclasses :class:`GnnlabError` and a builtin, so ``except ValueError`` keeps working, and
every message is one line that names what went wrong and where (file, key, value).
"""


class GnnlabError(Exception):
    """Root of gnnlab's errors; the CLI prints these as one line instead of a traceback."""


class ConfigError(GnnlabError, ValueError):
    """A config file or override is missing, malformed, or holds an unknown key or invalid value."""


class DataError(GnnlabError, ValueError):
    """A dataset or run directory is missing files or holds arrays of the wrong shape."""


class TrainingDiverged(GnnlabError, RuntimeError):
    """The training loss became non-finite; the run is recorded as ``failed: diverged``."""


class SimulationDiverged(GnnlabError, RuntimeError):
    """A simulated trajectory became non-finite or exploded; nothing is cached. The message names the
    system, run, frame and node so the offending config can be fixed rather than silently trained on."""
