"""``hydra/launcher=ray_cluster``: Hydra's Ray launcher with sweeper's live table of trials, and
a trial whose Ray worker dies for good failing alone instead of ending the sweep.

The heavy lifting is in :mod:`sweeper.launch.ray_tasks`, imported only when a sweep launches.
Without the ``ray`` extra installed there is nothing here for Hydra to find.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hydra.core.utils import JobReturn

try:
    from hydra_plugins.hydra_ray_launcher.ray_launcher import RayLauncher
except ImportError:  # pip install -e ".[ray]"
    HAVE_RAY = False
else:
    HAVE_RAY = True

if HAVE_RAY:

    class RayClusterLauncher(RayLauncher):
        def launch(self, job_overrides: Sequence[Sequence[str]],
                   initial_job_idx: int) -> Sequence[JobReturn]:
            from sweeper.launch.ray_tasks import RayBatch

            return RayBatch(self).launch(job_overrides, initial_job_idx)

        def stream(self, first: Sequence[Sequence[str]], more: Any,
                   initial_job_idx: int) -> Sequence[JobReturn]:
            """As the pool launcher's: each ended job's successors submitted at once."""
            from sweeper.launch.ray_tasks import RayBatch

            return RayBatch(self).stream(first, more, initial_job_idx)
