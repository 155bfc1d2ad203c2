"""Check the whole configuration of a run or sweep before Hydra starts anything.

Every trial's configuration is composed (Hydra's compose API, the same config loader the run
uses) and validated (:mod:`sweeper.config.checks`, :func:`sweeper.trial.data.check`); once all
are valid, the files they need are downloaded, once (:func:`sweeper.trial.data.fetch`). Bad input
ends here with one :class:`~sweeper.errors.SweeperError` naming the key and what is allowed, and
nothing written.

A private Hydra name is used, for want of a public one (hydra-core is bounded below 1.4):
``hydra._internal.utils.get_args_parser`` reads the command line exactly as ``@hydra.main``
will.
"""

from __future__ import annotations

import contextlib
import copy
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir, initialize_config_module
from hydra._internal.utils import get_args_parser
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException, OverrideParseException
from omegaconf import DictConfig, OmegaConf, open_dict

from sweeper import downloads
from sweeper.config import checks, targets
from sweeper.config.identity import config_difference, config_yaml
from sweeper.config.keys import Role, is_bookkeeping, key_of, with_role
from sweeper.config.objectives import quote_constraints
from sweeper.config.overrides import quoted, sweep_arguments
from sweeper.config.schema import CONFIG_MODULE, CONFIG_NAME, PathsConfig, register
from sweeper.errors import ConfigError, SweeperError, first_line
from sweeper.launch import kinds
from sweeper.search import grid, plan, settings
from sweeper.trial import backbones, data


@dataclass
class Plan:
    """What the command will run: the arguments for Hydra, the sweep's folder (None in a mode
    that runs nothing), and whether it is a sweep (``-m``) or one trial."""

    argv: list[str]
    sweep_dir: Path | None = None
    multirun: bool = False


def check(argv: list[str]) -> Plan:
    """Raise :class:`SweeperError` if any trial ``argv`` describes could not run; else what to
    run: ``argv`` with the sweep's name pinned (a timestamp resolves once, here) and output paths
    made absolute for remote launchers."""
    argv = [quote_constraints(a) for a in argv]  # sweep.constraints=[params<=1000]
    args = get_args_parser().parse_args(argv)
    modes = [args.run, args.multirun, args.cfg, args.info, args.shell_completion]
    if sum(bool(mode) for mode in modes) > 1:
        raise ConfigError("only one of --run, --multirun (-m), --cfg, --info and "
                          "--shell-completion can be given")
    if args.help or args.hydra_help or args.cfg or args.info or args.shell_completion:
        return Plan(argv)  # Hydra's informational modes run nothing
    config_dir = str(Path(args.config_dir).resolve()) if args.config_dir else None
    found: dict[str, Any] = {}
    data_checked: set[str] = set()
    try:
        configs = list(trial_configs(args.overrides, args.multirun, config_dir,
                                     args.config_name or CONFIG_NAME, found))
        targets.read(configs)  # every target's signature at once: one child process at most
        for cfg in configs:
            checks.validate(cfg)
            backbones.check(cfg.model)
        # Files are fetched once, here, before any trial (not by N workers at once), and only
        # when every configuration is valid.
        data.fetch(cfg.dataset for cfg in configs)
        downloads.ensure([w for w in map(backbones.weights_download, (c.model for c in configs))
                          if w is not None], downloads.keras_home(), "model.weights")
        for cfg in configs:
            # The data is checked once per dataset and batch (a folder's images are read).
            key = OmegaConf.to_yaml(cfg.dataset) + f"{cfg.train.batch_size} " \
                f"{cfg.train.validation_split}"
            if key not in data_checked:
                data.check(cfg.dataset, cfg.train)
                data_checked.add(key)
    except SweeperError:
        raise
    except Exception as e:  # Hydra and OmegaConf errors, reduced to their essence
        raise ConfigError(one_line(e)) from e
    if not any(key_of(o) == "sweep.name" for o in args.overrides):
        argv = [*argv, f"sweep.name={found['sweep_name']}"]
    if found["remote"]:
        argv = absolute_paths(argv, args.overrides)
    return Plan(argv, found["sweep_dir"], found["multirun"])


def absolute_paths(argv: list[str], overrides: list[str]) -> list[str]:
    """``argv`` with every folder key absolute. Trials run by a remote launcher (Ray, SLURM)
    start in another working directory: a relative path would put their records where the sweep
    never looks."""
    folders = with_role(Role.PATH)
    given = {key_of(o): o for o in overrides if key_of(o) in folders}
    out = [a for a in argv if a not in given.values()]
    defaults = OmegaConf.create({"paths": OmegaConf.structured(PathsConfig)})
    for key in folders:
        value = given[key].split("=", 1)[1] if key in given else OmegaConf.select(defaults, key)
        out.append(f"{key}={Path(value).expanduser().absolute()}")
    return out


def trial_configs(overrides: list[str], multirun: bool, config_dir: str | None,
                  config_name: str, found: dict[str, Any] | None = None) -> Iterator[DictConfig]:
    """Compose the configuration of every trial the command line describes (``config_dir``:
    the user's own config folder, else sweeper's). ``found`` gets what the command will do:
    ``multirun``, the ``sweep_name`` and ``sweep_dir``, and ``remote`` (whether the launcher
    runs trials away from this directory)."""
    parser = OverridesParser.create()
    parsed = [parse(parser, line) for line in overrides]
    fixed = [str(o.input_line) for o in parsed if not o.is_sweep_override()]
    register()
    initialize = initialize_config_dir(config_dir=config_dir, version_base="1.3",
                                       job_name="trial") if config_dir else \
        initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3",
                                 job_name="trial")
    with initialize:
        check_group_options(parsed)
        check_additions(parsed)
        base = compose(config_name, overrides=fixed, return_hydra_config=True)
        multirun = multirun or str(base.hydra.mode) == "RunMode.MULTIRUN"
        swept = [o for o in parsed if o.is_sweep_override()]
        if swept and not multirun:
            raise ConfigError(f"{swept[0].input_line}: a list of values needs -m (a sweep)")
        for o in swept:  # trials that differ only there would share one folder
            if is_bookkeeping(o.key_or_group) and not o.key_or_group.startswith("hydra"):
                raise ConfigError(f"{o.input_line}: {o.key_or_group} takes one value per sweep "
                                  "(it is not part of a trial's id); run a sweep for each, "
                                  "each with its own sweep.name")
        if multirun:
            kinds.check(base.hydra.launcher)
        if found is not None:
            found.update(multirun=multirun, sweep_name=str(base.sweep.name),
                         sweep_dir=Path(str(base.paths.experiments)) / str(base.sweep.name),
                         remote=multirun and kinds.is_remote(base.hydra.launcher))
        jobs, values = job_overrides(base, overrides, multirun, parser)
        first = None
        for job in jobs:
            cfg = compose(config_name, overrides=job, return_hydra_config=True)
            check_earlier_run(cfg, multirun)
            with open_dict(cfg):
                del cfg["hydra"]
            first = first or cfg
            yield cfg
        for value in values:  # the grid's other values, each checked on the first trial
            with grid.applied(first, value) as cfg:
                yield copy.deepcopy(cfg)
        for combination in grid.together(values, checks.CROSS_KEYS):  # and read together
            assert first is not None  # a grid with values to check composed its first trial
            with contextlib.ExitStack() as stack:
                for value in combination:
                    stack.enter_context(grid.applied(first, value))
                yield copy.deepcopy(first)


def parse(parser: OverridesParser, line: str) -> Override:
    """One override, or one line naming it and what is wrong with it (not the parser's list of
    grammar tokens)."""
    try:
        return parser.parse_override(line)
    except (OverrideParseException, HydraException) as e:
        root: BaseException = e
        while root.__cause__ is not None and str(root.__cause__).strip() not in ("", "None"):
            root = root.__cause__
        lexer = re.search(r"LexerNoViableAltException\('(.*?)'\)", str(root))
        key, _, value = line.partition("=")
        if lexer and value:  # a character the unquoted grammar has no place for (é, a space)
            raise ConfigError(f"cannot parse overrides: {line}: {lexer.group(1)!r} needs quotes; "
                              f"write {key}={quoted(value)} (in a shell, in double quotes "
                              f"around it all)") from e
        reason = re.sub(r"\s*expecting \{.*?\}", "", first_line(str(root)))
        reason = reason.replace("mismatched input '<EOF>'", "it ends where a value should follow")
        raise ConfigError(f"cannot parse overrides: {line}: {reason}") from e


def check_additions(parsed: list[Override]) -> None:
    """``+key=value`` adds a key the configuration does not have: only config groups (a search
    preset: ``+search=seed``) and the arguments of a model, optimizer or schedule
    (``+model.depth=4`` for your builder; checked against its signature) may be added; anything
    else is a typo (``+train.epoch=3``) that would otherwise be carried along, unused, into the
    trial's id."""
    groups = set(config_groups())
    arguments = tuple(f"{g.name}." for g in targets.GROUPS)
    for o in parsed:
        if (o.is_add() or o.is_force_add()) and o.key_or_group not in groups and \
                not o.key_or_group.startswith(("hydra", *arguments)):
            raise ConfigError(f"{o.input_line}: {o.key_or_group} is no key of sweeper's "
                              "configuration (+ adds only config groups, like +search=seed, and "
                              "arguments of the model, optimizer or schedule; see `sweeper "
                              "--help` for the keys)")


def config_groups() -> list[str]:
    """The config groups of the composed configuration's search path (inside ``initialize``)."""
    return list(GlobalHydra.instance().config_loader().list_groups(""))


def job_overrides(base: DictConfig, overrides: list[str], multirun: bool,
                  parser: OverridesParser) -> tuple[list[list[str]], list[grid.Value]]:
    """The overrides of the trials to compose, and the values to check on the first of them:
    the corners of a grid (every combination of swept group options; every other value), the
    corners of the tuner sweeper's search space, or the run's own."""
    if not multirun:
        return [overrides], []
    if settings.is_tuner(base.hydra.sweeper):
        return plan.preflight_jobs(base, overrides, config_groups()), []
    if not settings.is_grid(base.hydra.sweeper):
        # Other sweepers read their own search syntax and check it themselves.
        return [[str(o.input_line) for o in parser.parse_overrides(overrides)
                 if not o.is_sweep_override()]], []
    return grid.corners(sweep_arguments(base.hydra.sweeper, overrides), config_groups())


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
        raise ConfigError(f"trial {trial_dir.name} of sweep {cfg.sweep.name} ran with a "
                          f"different configuration ({change}); use another sweep.name, or "
                          f"delete {trial_dir}")


PLUGIN_GROUPS = {"hydra/launcher", "hydra/sweeper"}  # Hydra's groups a user picks an option of


def check_group_options(parsed: list[Override]) -> None:
    """Reject an option that a config group does not have, naming the options it has."""
    loader = GlobalHydra.instance().config_loader()
    groups = set(loader.list_groups(""))
    for o in parsed:
        if o.package is not None or o.key_or_group not in groups | PLUGIN_GROUPS:
            continue
        if o.is_sweep_override() and not o.is_discrete_sweep():
            continue  # intervals: the tuner sweeper says what a group takes
        options = sorted(loader.get_group_options(o.key_or_group))
        values = list(o.sweep_string_iterator()) if o.is_sweep_override() else [o.value()]
        for value in values:
            if value is not None and str(value) not in options:
                raise ConfigError(f"{o.key_or_group}={value}: unknown option; choose one of "
                                  f"{', '.join(options)}")


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
