"""sweep.constraints, sweep.objectives and sweep.measure as the sweep process reads them."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from sweeper.config.objectives import COSTS, Constraint, constraint, goals, quote_constraints
from sweeper.errors import ConfigError

METRICS = ("val_accuracy", "val_loss", "accuracy", "loss", "val_auc")


def _sweep(**keys: object) -> object:
    return OmegaConf.create({"metric": "val_accuracy", "mode": "max", **keys})


def test_a_constraint_reads_as_written_and_says_what_it_breaks() -> None:
    c = constraint("params<=200000", METRICS)
    assert c == Constraint("params", "<=", 200000.0) and str(c) == "params<=200000"
    assert c.holds(200000) and not c.holds(200001) and c.when == "build"
    assert constraint(" latency_ms < 5 ", METRICS).when == "tflite"
    assert constraint("val_auc>=0.9", METRICS).when == "trained"  # known after training
    g = goals(_sweep(constraints=["params<=1000", "tflite_mb<=1"]), METRICS)
    assert g.tflite  # a TensorFlow Lite constraint measures TensorFlow Lite
    assert g.broken({"params": 1500}, ["build"]) == "params=1,500 breaks params<=1000"
    assert g.broken({"params": 900, "tflite_mb": 2.5}, ["build"]) is None  # not known yet
    assert g.broken({"params": 900, "tflite_mb": 2.5}, ["tflite"]) == \
        "tflite_mb=2.5 breaks tflite_mb<=1"


def test_objectives_take_each_ones_natural_mode_and_the_first_is_the_sweeps() -> None:
    g = goals(_sweep(objectives=["val_accuracy:max", "latency_ms", "throughput"]), METRICS)
    assert g.objectives == (("val_accuracy", "max"), ("latency_ms", "min"),
                            ("throughput", "max"))
    assert g.tflite and g.promote == "first"
    assert not goals(_sweep(objectives=["val_accuracy", "params"]), METRICS).tflite
    with pytest.raises(ConfigError, match="named twice"):
        goals(_sweep(objectives=["val_accuracy", "val_accuracy:max"]), METRICS)
    assert goals(_sweep(measure=["tflite"]), METRICS).tflite
    assert set(COSTS) >= {"params", "flops", "tflite_mb", "latency_ms", "keras_mb"}


def test_constraints_as_a_shell_gives_them_are_quoted_for_hydras_grammar() -> None:
    assert quote_constraints("sweep.constraints=[tflite_mb<=1,params<=2e5]") == \
        "sweep.constraints=['tflite_mb<=1','params<=2e5']"
    assert quote_constraints("sweep.constraints=['a<=1']") == "sweep.constraints=['a<=1']"
    assert quote_constraints("sweep.objectives=[a:max]") == "sweep.objectives=[a:max]"
    assert quote_constraints("sweep.constraints=[]") == "sweep.constraints=[]"
