"""Check the whole configuration of a run or sweep before Hydra starts anything.

Every trial's configuration is composed (Hydra's compose API, the same config loader the run
uses) and validated against :mod:`sweeper.schema`. Bad input ends here with one line naming the
key and what is allowed, exit status 2, and nothing written.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra._internal.utils import get_args_parser
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import OverrideParseException
from omegaconf import DictConfig, OmegaConf, open_dict

from sweeper import data, schema, search
from sweeper.devices import RAY_LAUNCHERS, DeviceError, check_ray_room, plan_slots
from sweeper.overrides import sweep_arguments
from sweeper.record import config_difference, config_yaml
from sweeper.schema import CONFIG_DIR, CONFIG_NAME

EXIT_BAD_INPUT = 2
# Launchers whose trials start in another working directory (a Ray worker's, a SLURM job's).
REMOTE_LAUNCHERS = (*RAY_LAUNCHERS, ".SlurmLauncher")


def fail(message: str, status: int = EXIT_BAD_INPUT) -> NoReturn:
    """Print one line and exit; every sweeper command ends bad input this way."""
    print(f"sweeper: error: {message}", file=sys.stderr)
    sys.exit(status)


def check(argv: list[str]) -> list[str]:
    """Exit with one clear line if any trial ``argv`` describes could not run; else the
    arguments to run with (``argv``, with output paths made absolute for remote launchers)."""
    args = get_args_parser().parse_args(argv)
    if args.help or args.hydra_help or args.cfg or args.info or args.shell_completion:
        return argv  # Hydra's informational modes run nothing
    config_dir = str(Path(args.config_dir).resolve()) if args.config_dir else CONFIG_DIR
    remote: list[bool] = []
    try:
        for cfg in trial_configs(args.overrides, args.multirun, config_dir,
                                 args.config_name or CONFIG_NAME, remote):
            schema.validate(cfg)
            data.check(cfg.dataset, cfg.train)
    except (schema.ConfigError, data.DatasetError, DeviceError, search.SearchError) as e:
        fail(str(e))
    except Exception as e:  # Hydra and OmegaConf errors, reduced to their essence
        fail(one_line(e))
    return absolute_paths(argv, args.overrides) if any(remote) else argv


def absolute_paths(argv: list[str], overrides: list[str]) -> list[str]:
    """``argv`` with ``paths.experiments`` and ``paths.logs`` absolute. Trials run by a remote
    launcher (Ray, SLURM) start in another working directory: a relative path would put their
    records where the sweep never looks."""
    given = {o.split("=", 1)[0]: o for o in overrides if o.startswith(("paths.experiments=",
                                                                           "paths.logs="))}
    out = [a for a in argv if a not in given.values()]
    for key, default in (("paths.experiments", "experiments"), ("paths.logs", "logs")):
        value = given[key].split("=", 1)[1] if key in given else default
        out.append(f"{key}={Path(value).expanduser().absolute()}")
    return out


def trial_configs(overrides: list[str], multirun: bool, config_dir: str,
                  config_name: str, remote: list[bool] | None = None) -> Iterator[DictConfig]:
    """Compose the configuration of every trial the command line describes; ``remote`` gets
    True when the launcher runs trials away from this directory."""
    parser = OverridesParser.create()
    try:
        parsed = parser.parse_overrides(overrides)
    except OverrideParseException as e:
        raise ValueError(f"cannot parse overrides: {first_line(e.message)}") from e
    check_group_options(parsed, Path(config_dir))
    fixed = [str(o.input_line) for o in parsed if not o.is_sweep_override()]
    with initialize_config_dir(config_dir=config_dir, version_base="1.3", job_name="trial"):
        base = compose(config_name, overrides=fixed, return_hydra_config=True)
        multirun = multirun or str(base.hydra.mode) == "RunMode.MULTIRUN"
        swept = [o for o in parsed if o.is_sweep_override()]
        if swept and not multirun:
            raise ValueError(f"{swept[0].input_line}: a list of values needs -m (a sweep)")
        if multirun:
            check_launcher(base.hydra.launcher)
            if remote is not None:
                remote.append(str(base.hydra.launcher._target_).endswith(REMOTE_LAUNCHERS))
        for job in job_overrides(base, overrides, multirun, parser, config_dir):
            cfg = compose(config_name, overrides=job, return_hydra_config=True)
            check_earlier_run(cfg, multirun)
            with open_dict(cfg):
                del cfg["hydra"]
            yield cfg


def job_overrides(base: DictConfig, overrides: list[str], multirun: bool,
                  parser: OverridesParser, config_dir: str) -> list[list[str]]:
    """The overrides of each trial: the grid of Hydra's basic sweeper, the corners of the tuner
    sweeper's search space, or the run's own."""
    if not multirun:
        return [overrides]
    if search.is_tuner(base.hydra.sweeper):
        groups = [p.name for p in Path(config_dir).iterdir() if p.is_dir()]
        return search.preflight_jobs(base, overrides, groups)
    if not str(base.hydra.sweeper._target_).endswith("BasicSweeper"):
        # Other sweepers read their own search syntax and check it themselves.
        return [[str(o.input_line) for o in parser.parse_overrides(overrides)
                 if not o.is_sweep_override()]]
    batches = BasicSweeper.split_arguments(sweep_arguments(base.hydra.sweeper, overrides), None)
    jobs = [job for batch in batches for job in batch]
    if not jobs:
        raise ValueError("the sweep is empty: no combination of values to run")
    return jobs


def check_earlier_run(cfg: DictConfig, multirun: bool) -> None:
    """A trial folder from an earlier run must hold the same configuration, or be left alone."""
    h = cfg.hydra
    trial_dir = Path(str(h.sweep.dir)) / str(h.sweep.subdir) if multirun else Path(str(h.run.dir))
    saved = trial_dir / "config.yaml"
    if not saved.is_file():
        return
    task = OmegaConf.masked_copy(cfg, [str(k) for k in cfg if k != "hydra"])
    change = config_difference(saved.read_text(), config_yaml(task))
    if change:
        raise ValueError(f"trial {trial_dir.name} of sweep {cfg.sweep.name} ran with a different "
                         f"configuration ({change}); use another sweep.name, or delete "
                         f"{trial_dir}")


def check_launcher(launcher: DictConfig) -> None:
    """The pool launcher's devices must exist before a sweep is planned on them; a Ray cluster
    must answer, and have room for a trial."""
    target = str(launcher.get("_target_", ""))
    if target.endswith(RAY_LAUNCHERS):
        check_ray_room(launcher.ray)
    if target.endswith(".PoolLauncher"):
        plan_slots(launcher.devices, launcher.trials_per_device, launcher.devices_per_trial,
                   launcher.workers)


def check_group_options(parsed: list[Override], config_dir: Path) -> None:
    """Reject an option that a config group does not have, naming the options it has."""
    for o in parsed:
        group = config_dir / o.key_or_group
        # hydra/... groups also hold Hydra's and its plugins' options: Hydra checks those
        if o.package is not None or o.key_or_group.startswith("hydra/") or not group.is_dir():
            continue
        options = sorted(p.stem for p in group.glob("*.yaml"))
        if o.is_sweep_override() and not o.is_discrete_sweep():
            continue  # intervals: the tuner sweeper says what a group takes
        values = list(o.sweep_string_iterator()) if o.is_sweep_override() else [o.value()]
        for value in values:
            if value is not None and str(value) not in options:
                raise ValueError(f"{o.key_or_group}={value}: unknown option; choose one of "
                                 f"{', '.join(options)}")


def first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def one_line(error: BaseException) -> str:
    """The outer message of a Hydra or OmegaConf error and its root cause, on one line."""
    outer = first_line(str(error))
    root = error
    while root.__cause__ is not None:
        root = root.__cause__
    inner = first_line(getattr(root, "msg", None) or str(root))
    key = getattr(root, "full_key", None)
    if key:
        return f"{key}: {inner}"
    return outer if root is error or inner in outer else f"{outer}: {inner}"
