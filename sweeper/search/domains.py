"""The values a sweep gives each hyperparameter: the domains its HParams dashboard declares.

A hyperparameter's domain must hold every value a trial of the sweep records, or TensorBoard's
filter hides that trial. Values come from three places: the swept keys (a grid's lists, a
search's space), the keys the command fixes, and the defaults each chosen group option brings
(SGD's learning rate is not Adam's). The last are read by composing one configuration per
combination of swept group options, with Hydra's compose API, inside the running application.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from typing import Any

from hydra import compose
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.types import Override
from omegaconf import DictConfig

from sweeper import hparams
from sweeper.config.overrides import lines, sweep_arguments
from sweeper.search import plan, settings

log = logging.getLogger(__name__)


def sweep_domains(config: DictConfig,
                  problems: list[str] | None = None) -> dict[str, hparams.Domain]:
    """Every hyperparameter a trial of this sweep records, with every value it can take; what
    could not be composed for them is added to ``problems`` (the dashboard may hide the trials
    whose values are missing from a domain).

    Sweep syntax Hydra's grid does not enumerate (intervals) is left to its own sweeper; the
    tuner sweeper's domains come from its search space (intervals as intervals).
    """
    task = list(config.hydra.overrides.task)
    groups = _groups()
    if settings.is_tuner(config.hydra.sweeper):
        space = plan.space_of(config, task, groups)
        fixed = list(space.fixed)
        swept: dict[str, hparams.Domain] = {p.name: p.domain() for p in space.swept()}
        group_options = {p.name: [str(v) for v in p.values] for p in space.swept()
                         if p.name in groups}
        if settings.Settings.of(config.hydra.sweeper).algorithm == "hyperband":
            swept["train.epochs"] = settings.Settings.of(config.hydra.sweeper).hyperband_epochs()
    else:
        parsed = sweep_arguments(config.hydra.sweeper, task)
        fixed = lines([o for o in parsed if not o.is_sweep_override()])
        swept = {o.key_or_group: list(o.sweep_iterator()) for o in parsed
                 if o.is_sweep_override() and not o.is_interval_sweep()}
        group_options = {o.key_or_group: [str(v) for v in o.sweep_string_iterator()]
                         for o in parsed if _group_sweep(o, groups)}
    examples = [f"{key}={_first(domain)}" for key, domain in swept.items()
                if key not in group_options]
    values: dict[str, list[Any]] = {}
    for cfg, chosen in _per_group_option(config, fixed, group_options, problems):
        choices = dict(cfg.hydra.runtime.choices)
        for key, value in hparams.trial_hparams(cfg, [*fixed, *chosen, *examples],
                                                choices).items():
            values.setdefault(key, []).append(value)
    domains: dict[str, hparams.Domain] = {k: sorted(set(v), key=str) for k, v in values.items()}
    domains.update(swept)
    return domains


def _per_group_option(config: DictConfig, fixed: list[str], options: dict[str, list[str]],
                      problems: list[str] | None) -> Any:
    """One composed configuration per combination of the swept groups' options (the sweep's own
    configuration when no group is swept), with the overrides that chose it."""
    if not options:
        yield config, []
        return
    name = str(config.hydra.job.config_name or "config")
    for combination in itertools.product(*options.values()):
        chosen = [f"{group}={option}" for group, option in zip(options, combination,
                                                                  strict=True)]
        try:
            yield compose(name, overrides=[*fixed, *chosen], return_hydra_config=True), chosen
        except Exception as e:  # the preflight composed these: say why, and carry on
            said = f"HParams domains: could not compose {' '.join(chosen)}: {e}"
            log.warning("%s", said)
            if problems is not None:
                problems.append(said)


def _groups() -> list[str]:
    if not GlobalHydra.instance().is_initialized():
        return []
    return list(GlobalHydra.instance().config_loader().list_groups(""))


def _group_sweep(o: Override, groups: Sequence[str]) -> bool:
    return o.is_sweep_override() and o.is_discrete_sweep() and o.key_or_group in groups


def _first(domain: hparams.Domain) -> Any:
    return domain.low if isinstance(domain, hparams.Interval) else domain[0]
