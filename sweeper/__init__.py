"""sweeper: hyperparameter sweeps of Keras image classifiers, from overrides to a served model.

The public surface is fixed here; modules behind it may move.
"""

from sweeper.api import Results, load, sweep
from sweeper.config.identity import trial_id
from sweeper.errors import ConfigError, SweeperError, SweepIncomplete
from sweeper.record import Status, TrialRecord

__version__ = "0.1.0"
__all__ = ["ConfigError", "Results", "Status", "SweepIncomplete", "SweeperError", "TrialRecord",
           "__version__", "load", "sweep", "trial_id"]
