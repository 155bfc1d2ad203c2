"""sweeper: hyperparameter sweeps of Keras image classifiers, from overrides to a served model."""

from sweeper.record import Status, trial_id
from sweeper.schema import ConfigError

__version__ = "0.1.0"
__all__ = ["ConfigError", "Status", "__version__", "trial_id"]
