"""TensorBoard HParams: the sweep's experiment config, and each trial's session start and end.

The protos come from TensorBoard's own ``hparams`` plugin modules that do not import TensorFlow,
and the sweep-level config is written with TensorBoard's pure-Python record framing, so the parent
process (which must never touch an accelerator) can write it before any trial starts.
"""

from __future__ import annotations

import itertools
import os
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
from tensorboard.summary.writer.record_writer import RecordWriter

from sweeper.config.keys import is_hparam, key_of

# Hyperparameters every trial records, named as on the command line.
GROUPS = ("model", "optimizer", "dataset", "augment")
CORE_KEYS = ("model.units", "model.dropout", "optimizer.learning_rate", "train.epochs",
             "train.batch_size", "train.seed")
# Metrics the dashboard shows: (tag, run relative to the trial's run, display name).
METRICS = (
    ("epoch_accuracy", "validation", "val accuracy"),
    ("epoch_loss", "validation", "val loss"),
    ("epoch_accuracy", "train", "train accuracy"),
    ("epoch_loss", "train", "train loss"),
    ("test_accuracy", "", "test accuracy"),
    ("test_loss", "", "test loss"),
    ("test_f1_macro", "", "test F1 (macro)"),
)
STATUS = {"completed": api_pb2.STATUS_SUCCESS, "failed": api_pb2.STATUS_FAILURE,
          "running": api_pb2.STATUS_RUNNING}

Scalar = bool | int | float | str


@dataclass(frozen=True)
class Interval:
    """A continuous domain (a search space's ``interval(low, high)``)."""

    low: float
    high: float
_sequence = itertools.count()


def trial_hparams(cfg: DictConfig, overrides: Iterable[str]) -> dict[str, Scalar]:
    """The hyperparameters of one trial: the groups' choices, the core keys, and every override."""
    values: dict[str, Scalar] = {g: str(OmegaConf.select(cfg, f"{g}.name")) for g in GROUPS}
    keys = list(CORE_KEYS)
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


Domain = list[Any] | Interval


def experiment_summary(domains: Mapping[str, Domain]) -> summary_pb2.Summary:
    """The HParams experiment config: each hyperparameter with its domain, and :data:`METRICS`.

    An :class:`Interval` is an interval domain; a hyperparameter whose values are all numbers
    gets a discrete numeric domain; strings and booleans likewise in their own type.
    """
    infos = []
    for name, values in sorted(domains.items()):
        info = api_pb2.HParamInfo(name=name, display_name=name)
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
    metrics = [api_pb2.MetricInfo(name=api_pb2.MetricName(group=group, tag=tag), display_name=shown)
               for tag, group, shown in METRICS]
    experiment = api_pb2.Experiment(hparam_infos=infos, metric_infos=metrics,
                                    time_created_secs=time.time())
    data = plugin_data_pb2.HParamsPluginData(experiment=experiment)
    return _summary(metadata.EXPERIMENT_TAG, data)


def session_start_summary(hparams: Mapping[str, Scalar], trial_id: str) -> summary_pb2.Summary:
    """The start of one trial's session: its hyperparameter values, grouped under its id."""
    info = plugin_data_pb2.SessionStartInfo(group_name=trial_id, start_time_secs=time.time())
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
    """The end of a session with status ``completed``, ``failed`` or ``running``."""
    info = plugin_data_pb2.SessionEndInfo(status=STATUS[status], end_time_secs=time.time())
    return _summary(metadata.SESSION_END_INFO_TAG,
                    plugin_data_pb2.HParamsPluginData(session_end_info=info))


def write_summaries(logdir: Path, *summaries: summary_pb2.Summary, suffix: str = "") -> Path:
    """Write ``summaries`` to a new event file in ``logdir``, atomically, without TensorFlow.

    TensorBoard's own ``EventFileWriter`` opens files through ``tf.io.gfile`` and so imports
    TensorFlow when it is installed; its ``RecordWriter`` framing works on a plain file.
    """
    logdir.mkdir(parents=True, exist_ok=True)
    name = f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}"
    path = logdir / f"{name}.{next(_sequence)}{suffix}"
    events = [event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2")]
    events += [event_pb2.Event(wall_time=time.time(), step=0, summary=pb) for pb in summaries]
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        writer = RecordWriter(f)
        for event in events:
            writer.write(event.SerializeToString())
    os.replace(tmp, path)
    return path


def write_experiment(logdir: Path, domains: Mapping[str, Domain]) -> None:
    """Write the sweep's HParams experiment config at the root of its TensorBoard logdir."""
    write_summaries(logdir, experiment_summary(domains), suffix=".hparams")
