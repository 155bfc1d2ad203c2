"""TensorBoard HParams: the sweep's experiment config, and each trial's session start and end.

The protos come from TensorBoard's own ``hparams`` plugin modules that do not import TensorFlow,
and the sweep-level config is written with TensorBoard's pure-Python record framing, so the parent
process (which must never touch an accelerator) can write it before any trial starts.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
from tensorboard.summary.writer.record_writer import RecordWriter

from sweeper.atomic import write_json
from sweeper.config.keys import is_hparam, key_of
from sweeper.config.objectives import COSTS

# Hyperparameters every trial records, named as on the command line: the option chosen in each
# group, every key of the chosen model, optimizer and schedule (the arguments of what they build),
# and these.
GROUPS = ("model", "optimizer", "schedule", "dataset", "augment")
OPTION_GROUPS = ("model", "optimizer", "schedule")
CORE_KEYS = ("train.epochs", "train.batch_size", "train.seed")
# Metrics the dashboard shows: the leaderboard's columns (column, display name). A trial writes
# each once, into its own run, with the value the leaderboard holds: the best epoch's for the
# per-epoch metrics (not the last epoch's, which is what the dashboard would show of a curve),
# the best checkpoint's test scores.
METRICS = (
    ("val_accuracy", "val accuracy (best epoch)"),
    ("val_loss", "val loss (best epoch)"),
    ("accuracy", "train accuracy (best epoch)"),
    ("loss", "train loss (best epoch)"),
    ("test_accuracy", "test accuracy"),
    ("test_loss", "test loss"),
    ("test_precision_macro", "test precision (macro)"),
    ("test_recall_macro", "test recall (macro)"),
    ("test_f1_macro", "test F1 (macro)"),
)
SWEEP_HPARAMS = "hparams.json"  # in the sweep folder: the domains the dashboard declares
# TensorBoard has no "stopped early": a pruned trial ended on purpose, with a checkpoint and test
# scores, and ranks with the completed ones, so it shows as a success (failure would put it with
# the crashes; unknown is what TensorBoard shows for a session whose end was never written).
# An infeasible trial (not trained: it breaks a constraint) did not succeed either.
STATUS = {"completed": api_pb2.STATUS_SUCCESS, "pruned": api_pb2.STATUS_SUCCESS,
          "failed": api_pb2.STATUS_FAILURE, "infeasible": api_pb2.STATUS_FAILURE,
          "running": api_pb2.STATUS_RUNNING}

Scalar = bool | int | float | str


@dataclass(frozen=True)
class Interval:
    """A continuous domain (a search space's ``interval(low, high)``)."""

    low: float
    high: float


Domain = list[Any] | Interval
_sequence = itertools.count()


def trial_hparams(cfg: DictConfig, overrides: Iterable[str],
                  choices: Mapping[str, Any]) -> dict[str, Scalar]:
    """The hyperparameters of one trial: the groups' choices (Hydra's ``hydra.runtime.choices``),
    the keys of the chosen options, the core keys, and every override."""
    values: dict[str, Scalar] = {g: str(choices[g]) for g in GROUPS if choices.get(g) is not None}
    keys = [f"{g}.{k}" for g in OPTION_GROUPS for k in (OmegaConf.select(cfg, g) or {})
            if k != "_target_"]
    keys += CORE_KEYS
    for override in overrides:
        key = key_of(override)
        if key not in GROUPS and key not in keys and is_hparam(key):
            keys.append(key)
    for key in keys:
        value = OmegaConf.select(cfg, key)
        if isinstance(value, bool | int | float | str):
            values[key] = value
        elif value is not None:
            plain = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
            values[key] = str(plain)
    return values


def _summary(tag: str, data: plugin_data_pb2.HParamsPluginData) -> summary_pb2.Summary:
    md = metadata.create_summary_metadata(data)
    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, metadata=md)])


def experiment_summary(domains: Mapping[str, Domain], extra: Sequence[str] = (),
                       costs: Sequence[str] = ()) -> summary_pb2.Summary:
    """The HParams experiment config: each hyperparameter with its domain, :data:`METRICS`, the
    ``extra`` metrics the trials add (``train.metrics``), at the best epoch, and the ``costs``
    they measure (:data:`~sweeper.config.objectives.COSTS`).

    An :class:`Interval` is an interval domain; a hyperparameter whose values are all numbers
    gets a discrete numeric domain; strings and booleans likewise in their own type.
    """
    infos = []
    for name, values in sorted(domains.items()):
        # TensorBoard shows the hyperparameters that differ first, and by default only those.
        info = api_pb2.HParamInfo(name=name, display_name=name, differs=differs(values))
        if isinstance(values, Interval):
            info.type = api_pb2.DATA_TYPE_FLOAT64
            info.domain_interval.min_value = values.low
            info.domain_interval.max_value = values.high
            infos.append(info)
            continue
        distinct = sorted(set(values), key=lambda v: (str(type(v)), v))
        if all(isinstance(v, bool) for v in distinct):
            info.type = api_pb2.DATA_TYPE_BOOL
            info.domain_discrete.extend(distinct)
        elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in distinct):
            info.type = api_pb2.DATA_TYPE_FLOAT64
            info.domain_discrete.extend(float(v) for v in distinct)
        else:
            info.type = api_pb2.DATA_TYPE_STRING
            info.domain_discrete.extend(str(v) for v in distinct)
        infos.append(info)
    metrics = [api_pb2.MetricInfo(name=api_pb2.MetricName(group="", tag=metric_tag(column)),
                                  display_name=shown) for column, shown in [
        *METRICS, *((f"val_{m}", f"val {m} (best epoch)") for m in extra),
        *((c, c.replace("_", " ")) for c in costs)]]
    experiment = api_pb2.Experiment(hparam_infos=infos, metric_infos=metrics,
                                    time_created_secs=time.time())
    data = plugin_data_pb2.HParamsPluginData(experiment=experiment)
    return _summary(metadata.EXPERIMENT_TAG, data)


def session_start_summary(hparams: Mapping[str, Scalar], group: str) -> summary_pb2.Summary:
    """The start of one trial's session: its hyperparameter values, under ``group`` (the name
    the dashboard shows for the trial; see :func:`group_name`)."""
    info = plugin_data_pb2.SessionStartInfo(group_name=group, start_time_secs=time.time())
    for name, value in hparams.items():
        if isinstance(value, bool):
            info.hparams[name].bool_value = value
        elif isinstance(value, int | float):
            info.hparams[name].number_value = value
        else:
            info.hparams[name].string_value = str(value)
    return _summary(metadata.SESSION_START_INFO_TAG,
                    plugin_data_pb2.HParamsPluginData(session_start_info=info))


def session_end_summary(status: str) -> summary_pb2.Summary:
    """The end of a session with a record's status (:data:`STATUS`)."""
    info = plugin_data_pb2.SessionEndInfo(status=STATUS[status], end_time_secs=time.time())
    return _summary(metadata.SESSION_END_INFO_TAG,
                    plugin_data_pb2.HParamsPluginData(session_end_info=info))


def write_summaries(logdir: Path, *summaries: summary_pb2.Summary, suffix: str = "",
                    steps: Sequence[int] = ()) -> Path:
    """Write ``summaries`` (at ``steps``, else step 0) to a new event file in ``logdir``,
    atomically, without TensorFlow.

    TensorBoard's own ``EventFileWriter`` opens files through ``tf.io.gfile`` and so imports
    TensorFlow when it is installed; its ``RecordWriter`` framing works on a plain file.
    """
    logdir.mkdir(parents=True, exist_ok=True)
    name = f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}"
    path = logdir / f"{name}.{next(_sequence)}{suffix}"
    events = [event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2")]
    events += [event_pb2.Event(wall_time=time.time(), step=step, summary=pb)
               for pb, step in itertools.zip_longest(summaries, steps, fillvalue=0)]
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        writer = RecordWriter(f)
        for event in events:
            writer.write(event.SerializeToString())
    os.replace(tmp, path)
    return path


def write_sweep_progress(logdir: Path, metric: str, best_so_far: Sequence[float]) -> None:
    """The sweep's own run (the logdir's root, beside its experiment config): the best value of
    the objective after each finished trial, so the search's progress is a curve beside the
    trials' own. Replaces the curve an earlier run of the sweep wrote."""
    from tensorboard.plugins.scalar.summary_v2 import scalar_pb

    earlier = list(logdir.glob("events.out.tfevents.*.progress"))
    summaries = [scalar_pb(f"sweep/best_{metric}", value) for value in best_so_far]
    write_summaries(logdir, *summaries, suffix=".progress",
                    steps=range(1, len(best_so_far) + 1))
    for path in earlier:
        path.unlink(missing_ok=True)


def metric_tag(column: str) -> str:
    """The TensorBoard tag of a leaderboard metric: ``best/val_accuracy`` for the best epoch's
    values (grouped apart from Keras's ``epoch_*`` curves), test scores as they are, what the
    model costs as ``cost/params``."""
    if column in COSTS:
        return f"cost/{column}"
    return column if column.startswith("test_") else f"best/{column}"


def differs(domain: Domain) -> bool:
    """Whether trials of the sweep can differ in this hyperparameter."""
    return isinstance(domain, Interval) or len(set(map(str, domain))) > 1


def write_experiment(logdir: Path, sweep_dir: Path, domains: Mapping[str, Domain],
                     extra: Sequence[str] = (), costs: Sequence[str] = ()) -> None:
    """Write the sweep's HParams experiment config at the root of its TensorBoard logdir, and
    the domains into the sweep folder, where each trial finds which hyperparameters differ."""
    write_summaries(logdir, experiment_summary(domains, extra, costs), suffix=".hparams")
    write_json(sweep_dir / SWEEP_HPARAMS, {
        name: {"interval": [d.low, d.high]} if isinstance(d, Interval) else {"values": list(d)}
        for name, d in sorted(domains.items())})


def group_name(trial_id: str, values: Mapping[str, Scalar], sweep_dir: Path,
               tuner_trial: str | None = None) -> str:
    """The name TensorBoard shows for a trial: the values of the hyperparameters that differ
    between the sweep's trials, in the dashboard's column order, so that the few characters its
    table has room for tell trials apart (the trial id when there is no sweep to compare with)."""
    try:
        domains = json.loads((sweep_dir / SWEEP_HPARAMS).read_text())
    except (OSError, ValueError):
        return trial_id
    varying = [name for name, d in sorted(domains.items())
               if differs(Interval(*d["interval"]) if "interval" in d else d.get("values", []))]
    shown = [_compact(values[name]) for name in varying if name in values]
    if tuner_trial is not None:
        shown.insert(0, f"#{tuner_trial}")
    return " · ".join(shown) or trial_id


def _compact(value: Scalar) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
