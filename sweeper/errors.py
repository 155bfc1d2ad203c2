"""sweeper's errors, by intent.

A :class:`SweeperError` means "stop: this command cannot do what was asked"; its message is one
line naming what is wrong, and :mod:`sweeper.cli` turns it into ``sweeper: error: ...`` and the
error's exit status. A trial that cannot finish raises :class:`TrialFailed` instead: the trial is
recorded as failed and the sweep goes on.
"""

from __future__ import annotations

EXIT_BAD_INPUT = 2
EXIT_INCOMPLETE = 1


class SweeperError(Exception):
    """The command cannot go on; the message is one line."""

    status = EXIT_BAD_INPUT


class ConfigError(SweeperError):
    """A configuration value no trial could run with."""


class DatasetError(SweeperError):
    """The data cannot be had or read: a missing file, an unreachable origin, a corrupt image."""


class DownloadError(SweeperError):
    """A file the sweep needs (pretrained weights) is not in the cache and cannot be fetched."""


class DeviceError(SweeperError):
    """The requested devices or cluster cannot be had."""


class SearchError(SweeperError):
    """A search space or setting the tuner sweeper cannot use."""


class SweepLocked(SweeperError):
    """Another sweep process holds the sweep folder."""


class NoResults(SweeperError):
    """A sweep folder without results to rank, promote or export."""


class ExportError(SweeperError):
    """A model cannot be exported in the asked format; what was there is left as it was."""


class SweepIncomplete(SweeperError):
    """The trials ran, but part of what a sweep must leave behind is missing."""

    status = EXIT_INCOMPLETE


class TrialFailed(Exception):
    """This trial cannot finish (NaN loss, no checkpoint); it is recorded and the sweep goes on."""


class TrialInfeasible(Exception):
    """This trial's model breaks a constraint known before training: it is not trained."""


def first_line(message: str) -> str:
    """The first line of ``message``, stripped ("" when there is none)."""
    lines = message.strip().splitlines()
    return lines[0] if lines else ""
