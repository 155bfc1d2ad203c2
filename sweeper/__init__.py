"""sweeper: hyperparameter sweeps of Keras image classifiers, from overrides to a served model.

The public surface is fixed here; modules behind it may move.
"""

from importlib.metadata import version

from sweeper.api import Results, load, sweep
from sweeper.config.identity import trial_id
from sweeper.errors import ConfigError, SweeperError, SweepIncomplete
from sweeper.record import Status, TrialRecord

__version__ = version("keras-sweeper")  # pyproject.toml's [project] name and version
__all__ = ["ConfigError", "Results", "Status", "SweepIncomplete", "SweeperError", "TrialRecord",
           "__version__", "load", "sweep", "trial_id"]
