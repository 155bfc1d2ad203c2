"""The pruners' rules on synthetic histories (no TensorFlow), and the record of a pruned trial."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from sweeper.record import SCHEMA, Objective, Pruned, Status, TrialRecord
from sweeper.search.pruners import Asha, Curve, Median, judge

NAN = math.nan


def curve(*values: float, first: int = 1) -> Curve:
    return Curve(tuple(values), first)


# -- ASHA ---------------------------------------------------------------------------------------

def test_rungs_are_grace_period_times_powers_of_the_factor_before_the_last_epoch() -> None:
    assert Asha(1, 3).rungs(12) == [1, 3, 9]
    assert Asha(1, 3).rungs(9) == [1, 3]  # the last epoch is no rung: nothing left to save
    assert Asha(2, 2).rungs(20) == [2, 4, 8, 16]
    assert Asha(5, 3).rungs(5) == []


def test_a_hopeless_trial_stops_at_its_first_rung_and_a_good_one_never() -> None:
    asha = Asha(1, 3)
    good = curve(0.62, 0.81, 0.90, 0.93)
    hopeless = curve(0.09)
    assert asha.judge(hopeless, [good], "val_accuracy", "max", 12) == Pruned(
        "asha", 1, "val_accuracy 0.09 < 0.62, the top 1 of 2 trials at rung 1 (epoch 1)", 1)
    for epoch in range(1, 5):  # alone at each rung, then ahead of the hopeless one
        mine = curve(*good.values[:epoch])
        assert asha.judge(mine, [], "val_accuracy", "max", 12) is None
        assert asha.judge(mine, [hopeless], "val_accuracy", "max", 12) is None


def test_only_the_top_one_over_eta_of_the_trials_at_a_rung_go_on() -> None:
    asha = Asha(1, 3)
    peers = [curve(v) for v in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)]  # 9 at the rung: top 3
    assert asha.judge(curve(0.75), peers, "val_accuracy", "max", 12) is None  # 2nd
    assert asha.judge(curve(0.65), peers, "val_accuracy", "max", 12) is None  # 3rd
    stopped = asha.judge(curve(0.55), peers, "val_accuracy", "max", 12)  # 4th
    assert stopped is not None
    assert stopped.reason == "val_accuracy 0.55 < 0.6, the top 3 of 9 trials at rung 1 (epoch 1)"


def test_a_trial_is_judged_only_at_its_rungs_on_its_best_so_far() -> None:
    asha = Asha(1, 3)
    leader = curve(0.5, 0.6, 0.7)
    assert asha.judge(curve(0.1, 0.2), [leader], "val_accuracy", "max", 12) is None  # no rung
    # At rung 2 (epoch 3) the best so far counts, for the trial and its peers alike.
    assert asha.judge(curve(0.2, 0.75, 0.5), [leader], "val_accuracy", "max", 12) is None
    stopped = asha.judge(curve(0.2, 0.3, 0.65), [leader], "val_accuracy", "max", 12)
    assert stopped is not None and (stopped.epoch, stopped.rung) == (3, 2)


def test_peers_count_at_a_rung_only_once_they_have_reached_it() -> None:
    short = curve(0.9)  # one epoch so far: not at rung 2 (epoch 3) yet
    assert Asha(1, 3).judge(curve(0.1, 0.1, 0.1), [short], "val_accuracy", "max", 12) is None


def test_ties_go_on() -> None:
    assert Asha(1, 3).judge(curve(0.5), [curve(0.5)], "val_accuracy", "max", 12) is None
    assert Median(1, 1).judge(curve(0.5, 0.5), [curve(0.1, 0.5)], "val_accuracy", "max",
                              12) is None


def test_min_mode_stops_the_higher_loss() -> None:
    stopped = Asha(1, 2).judge(curve(2.3), [curve(0.4)], "val_loss", "min", 12)
    assert stopped is not None and stopped.reason.startswith("val_loss 2.3 > 0.4, the top 1 of 2")
    assert Asha(1, 2).judge(curve(0.3), [curve(0.4)], "val_loss", "min", 12) is None


def test_a_value_that_is_not_a_number_loses_and_beats_no_one() -> None:
    asha = Asha(1, 3)
    stopped = asha.judge(curve(NAN), [], "val_loss", "min", 12)
    assert stopped is not None and stopped.reason == "val_loss nan at rung 1 (epoch 1)"
    assert asha.judge(curve(NAN), [curve(0.4)], "val_loss", "min", 12) is not None
    assert asha.judge(curve(0.9), [curve(NAN), curve(NAN)], "val_loss", "min", 12) is None


def test_a_warm_started_trial_brings_its_inherited_epochs_but_counts_as_a_peer_only_after() -> None:
    parent = curve(0.3, 0.4, 0.5)
    child = curve(0.3, 0.4, 0.5, 0.8, 0.85, 0.9, first=4)  # continues the parent after epoch 3
    peers = [parent, curve(0.1), curve(0.05)]
    # At epoch 1 the child is no peer (its parent is counted already): this trial is second of
    # four, in the top half; were the parent counted twice, it would be third of five.
    assert Asha(1, 2).judge(curve(0.2), [*peers, child], "val_accuracy", "max", 12) is None
    assert Asha(1, 2).judge(curve(0.2), [*peers, curve(*child.values)], "val_accuracy", "max",
                            12) is not None
    assert Curve.of(_record("c", [0.2, 0.3], warm_start=2), "val_accuracy").first == 3
    # Its own inherited history is real: a warm-started trial at rung 3 (epoch 9) is judged on
    # its best since epoch 1.
    inherited = curve(0.95, *[0.5] * 8, first=4)
    assert Asha(1, 3).judge(inherited, [curve(*[0.9] * 9)], "val_accuracy", "max", 12) is None


# -- median -------------------------------------------------------------------------------------

def test_median_stops_a_best_so_far_below_the_others_median_at_the_same_epoch() -> None:
    median = Median(min_epochs=2, min_trials=3)
    others = [curve(0.5, 0.70), curve(0.6, 0.78), curve(0.7, 0.90), curve(0.2)]
    stopped = median.judge(curve(0.30, 0.41), others, "val_accuracy", "max", 12)
    assert stopped == Pruned("median", 2,
                             "val_accuracy 0.41 < median 0.78 at epoch 2 of 3 trials")
    # Its best so far, not its last value, is what is compared.
    assert median.judge(curve(0.80, 0.41), others, "val_accuracy", "max", 12) is None


def test_median_waits_for_min_epochs_and_min_trials_and_spares_the_last_epoch() -> None:
    others = [curve(0.9, 0.9, 0.9)] * 3
    assert Median(2, 3).judge(curve(0.1), others, "val_accuracy", "max", 12) is None
    assert Median(2, 4).judge(curve(0.1, 0.1), others, "val_accuracy", "max", 12) is None
    assert Median(2, 3).judge(curve(0.1, 0.1), others, "val_accuracy", "max", 12) is not None
    assert Median(2, 3).judge(curve(0.1, 0.1), others, "val_accuracy", "max", 2) is None


def test_median_ignores_values_that_are_not_numbers_and_stops_a_trial_without_one() -> None:
    others = [curve(0.9, NAN), curve(0.9, 0.6), curve(0.9, 0.7), curve(0.9, 0.8)]
    stopped = Median(1, 3).judge(curve(0.1, 0.65), others, "val_accuracy", "max", 12)
    assert stopped is not None and stopped.reason.endswith("median 0.7 at epoch 2 of 3 trials")
    assert Median(1, 3).judge(curve(NAN, NAN), others, "val_loss", "min", 12) is not None


# -- the sweep folder ---------------------------------------------------------------------------

def _record(trial_id: str, values: list[float], status: Status = Status.RUNNING,
            warm_start: int = 0, metric: str = "val_accuracy", units: int | None = None,
            repeat: int = 0) -> TrialRecord:
    record = TrialRecord(sweep="s", trial_id=trial_id, objective=Objective(metric, "max"),
                         status=status, repeat=repeat)
    if units is not None:  # a configuration of a sweep with repeats
        record.overrides = [f"model.units={units}", *([f"sweep.repeat={repeat}"] if repeat
                                                      else [])]
    for value in values:
        record.epoch_done({metric: value, "val_loss": 1.0})
    if warm_start:
        record.warm_start = {"trial": "parent", "initial_epoch": warm_start}
    return record


def test_a_trial_is_judged_against_every_other_record_of_its_sweep(tmp_path: Path) -> None:
    trials = tmp_path / "trials"
    for record in (_record("a", [0.7, 0.8], Status.COMPLETED), _record("b", [0.6], Status.FAILED),
                   _record("c", [0.65], Status.PRUNED)):
        (trials / record.trial_id).mkdir(parents=True)
        record.write(trials / record.trial_id)
    (trials / "unreadable").mkdir()
    (trials / "unreadable" / "trial.json").write_text("{")
    (trials / "not-started").mkdir()
    mine = _record("me", [0.62])
    (trials / "me").mkdir()
    mine.write(trials / "me")
    # 4 trials at rung 1 (epoch 1) with reduction factor 2: the top 2 go on; 0.62 is third.
    stopped = judge(Asha(1, 2), mine, trials, 12)
    assert stopped is not None
    assert stopped.reason == "val_accuracy 0.62 < 0.65, the top 2 of 4 trials at rung 1 (epoch 1)"
    assert judge(Asha(1, 2), _record("me", [0.66]), trials, 12) is None


def _write(trials: Path, *records: TrialRecord) -> None:
    for record in records:
        (trials / record.trial_id).mkdir(parents=True, exist_ok=True)
        record.write(trials / record.trial_id)


def test_repeats_are_judged_on_their_configurations_mean(tmp_path: Path) -> None:
    trials = tmp_path / "trials"
    # Three other configurations, two repeats each, at rung 1 (epoch 1): means 0.8, 0.74, 0.6.
    for units, (a, b) in ((16, (0.82, 0.78)), (32, (0.78, 0.70)), (64, (0.55, 0.65))):
        _write(trials, _record(f"u{units}-0", [a, a], Status.COMPLETED, units=units),
               _record(f"u{units}-1", [b, b], Status.COMPLETED, units=units, repeat=1))
    # Repeat 0 of units=8 was poor (0.5); repeat 1 alone (0.9) would be the best of all, but
    # the configuration's mean (0.7) ranks third of four, and reduction factor 2 keeps two.
    _write(trials, _record("u8-0", [0.5], Status.RUNNING, units=8))
    stopped = judge(Asha(1, 2), _record("u8-1", [0.9], units=8, repeat=1), trials, 4)
    assert stopped is not None and stopped.rung == 1
    assert stopped.reason == ("val_accuracy 0.7 < 0.74, the top 2 of 4 trials at rung 1 (epoch 1)"
                              " (the mean of its configuration's 2 repeats)")
    assert judge(Asha(1, 2), _record("u99", [0.9], units=99), trials, 4) is None  # alone: 0.9


def test_a_configurations_repeats_are_stopped_together_at_the_same_rung(tmp_path: Path) -> None:
    trials = tmp_path / "trials"
    for units, value in ((16, 0.8), (32, 0.75), (64, 0.7)):
        _write(trials, _record(f"u{units}-0", [value] * 4, Status.COMPLETED, units=units))
    first = _record("u8-0", [0.5, 0.5], units=8)
    verdict = judge(Asha(2, 2), first, trials, 8)  # rungs at epochs 2 and 4
    assert verdict is not None and (verdict.epoch, verdict.rung) == (2, 2 // 2)
    first.prune(verdict)
    _write(trials, first)
    # Its second repeat, far better on its own, goes on before that epoch and stops at it.
    second = _record("u8-1", [0.95], units=8, repeat=1)
    assert judge(Asha(2, 2), second, trials, 8) is None
    second.epoch_done({"val_accuracy": 0.95, "val_loss": 1.0})
    together = judge(Asha(2, 2), second, trials, 8)
    assert together is not None and (together.epoch, together.rung) == (verdict.epoch,
                                                                         verdict.rung)
    assert together.reason.startswith(verdict.reason) and "repeat 0" in together.reason


# -- the record ---------------------------------------------------------------------------------

def test_a_pruned_record_says_when_and_why_and_reads_back(tmp_path: Path) -> None:
    record = _record("t", [0.3, 0.4])
    why = Pruned("asha", 2, "val_accuracy 0.4 < 0.8, the top 1 of 3 trials at rung 2 (epoch 2)", 2)
    record.prune(why)
    record.complete(2, {"test_accuracy": 0.41})
    assert record.status is Status.PRUNED and record.status.scored and record.finished
    record.write(tmp_path)
    data = json.loads((tmp_path / "trial.json").read_text())
    assert data["status"] == "pruned" and data["schema"] == SCHEMA == 3
    assert data["pruned"] == {"rule": "asha", "epoch": 2, "rung": 2, "reason": why.reason}
    assert data["objective"]["value"] == 0.4 and data["metrics"]["test_accuracy"] == 0.41
    assert TrialRecord.load(tmp_path) == record


def test_a_schema_1_record_reads_as_today_and_is_written_as_schema_2() -> None:
    old = {"schema": 1, "sweep": "s", "trial_id": "t", "status": "completed",
           "overrides": ["model.units=32"], "hparams": {"model.units": 32},
           "objective": {"name": "val_accuracy", "mode": "max", "value": 0.93},
           "metrics": {"val_accuracy": 0.93}, "best_epoch": 4, "epochs_completed": 5,
           "history": [{"val_accuracy": 0.93}] * 5}
    record = TrialRecord.from_dict(old)
    assert record.status is Status.COMPLETED and record.pruned is None
    written = record.to_dict()
    assert written["schema"] == SCHEMA and "pruned" not in written
    assert {k: written[k] for k in old if k != "schema"} == {k: v for k, v in old.items()
                                                              if k != "schema"}


@pytest.mark.parametrize("bad", ["late", {"rule": "asha"}])
def test_a_pruned_field_no_sweeper_wrote_is_refused(bad: object) -> None:
    from sweeper.record import RecordError

    with pytest.raises(RecordError):
        TrialRecord.from_dict({"sweep": "s", "trial_id": "t", "status": "pruned", "pruned": bad,
                               "objective": {"name": "val_accuracy", "mode": "max"}})
