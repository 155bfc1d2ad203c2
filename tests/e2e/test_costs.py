"""What a trained model costs, constraints and a Pareto front, on one real sweep read by every
test here: four MLP widths on digits, objectives validation accuracy and TensorFlow Lite latency,
a parameter limit (known before training) and a TensorFlow Lite size limit (known after)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import records, run_cli
from helpers.board import STATUSES, post, tensorboard

from sweeper.config.objectives import COSTS, TFLITE
from sweeper.hparams import metric_tag
from sweeper.results import leaderboard, pareto

UNITS = (16, 64, 256, 2048)
CONSTRAINTS = "sweep.constraints=[params<=100000,tflite_mb<=0.05]"


def _params(units: int) -> int:  # 8x8 digits: Dense(units) on 64 inputs, then Dense(10)
    return 64 * units + units + units * 10 + 10


@pytest.fixture(scope="module")
def cost_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cwd = tmp_path_factory.mktemp("costs")
    done = run_cli("-m", "model=mlp", f"model.units={','.join(map(str, UNITS))}",
                   "train.epochs=3", "sweep.name=cost", "hydra.launcher.live=false",
                   "sweep.objectives=[val_accuracy:max,latency_ms:min]", CONSTRAINTS, cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]  # an infeasible trial is no failure
    (cwd / "out.txt").write_text(done.stdout + done.stderr)
    return cwd


def _by_units(cwd: Path) -> dict[int, dict]:
    return {r["hparams"]["model.units"]: r for r in records(cwd / "experiments" / "cost")}


def test_every_trained_trial_records_what_its_model_costs(cost_sweep: Path) -> None:
    trials = _by_units(cost_sweep)
    for units in (16, 64, 256):
        cost = trials[units]["cost"]
        assert set(cost) == set(COSTS) - {"gpu_peak_mb"}, units  # no GPU here
        assert cost["params"] == cost["trainable_params"] == _params(units)
        matmuls = 2 * (64 * units + units * 10)  # a multiply-add counts 2
        # and a few per value for rescaling, biases, activations
        assert matmuls <= cost["flops"] <= matmuls + 4 * (64 + units + 10) + 100
        assert cost["tflite_quant_mb"] < cost["tflite_mb"] < cost["saved_model_mb"]
        assert cost["tflite_mb"] > _params(units) * 4 / 1e6  # float32 weights at least
        assert 0 < cost["latency_ms"] < 50 and cost["latency_spread_ms"] >= 0
        assert cost["throughput"] > 0 and cost["epoch_s"] > 0 and cost["peak_rss_mb"] > 100
        assert trials[units]["timings"]["cost_s"] > 0
        assert trials[units]["metrics"]["val_accuracy"] > 0.5  # it learned


def test_a_constraint_known_before_training_rules_the_trial_out_in_seconds(
        cost_sweep: Path) -> None:
    ruled_out = _by_units(cost_sweep)[2048]
    assert ruled_out["status"] == "infeasible" and ruled_out["epochs_completed"] == 0
    assert ruled_out["infeasible"] == f"params={_params(2048):,} breaks params<=100000"
    assert ruled_out["duration_s"] < 2
    trial_dir = cost_sweep / "experiments" / "cost" / "trials" / ruled_out["trial_id"]
    assert not (trial_dir / "checkpoints" / "best.keras").exists()
    assert "infeasible" in (cost_sweep / "out.txt").read_text()


def test_the_leaderboard_ranks_the_feasible_marks_the_front_and_promotes_within_limits(
        cost_sweep: Path) -> None:
    sweep = cost_sweep / "experiments" / "cost"
    table = pd.read_csv(sweep / leaderboard.LEADERBOARD_CSV)
    table["units"] = table["hp.model.units"]
    rows = table.set_index("units")
    # 256 units trains, then breaks the size limit: listed with why, never ranked.
    assert rows.loc[256, "infeasible"].startswith("tflite_mb=") and pd.isna(rows.loc[256, "rank"])
    assert set(table.loc[table["rank"].notna(), "units"]) == {16, 64}
    front = table[table["front"]]
    ranked = table[table["pareto_rank"].notna()]
    for _, row in ranked.iterrows():  # the front: what no other ranked trial dominates
        dominated = any(o["objective"] >= row["objective"] and o["latency_ms"] <= row["latency_ms"]
                        and (o["objective"], o["latency_ms"]) != (row["objective"],
                                                                  row["latency_ms"])
                        for _, o in ranked.iterrows())
        assert bool(row["front"]) is not dominated
    assert (sweep / pareto.PARETO_PNG).stat().st_size > 0
    best = json.loads((sweep / "best" / "best.json").read_text())
    assert best["trial_id"] in set(front["trial_id"])
    assert best["trial_id"] == table.loc[table["rank"] == 1, "trial_id"].item()
    assert best["cost"]["tflite_mb"] <= 0.05 and best["cost"]["params"] <= 100000
    assert "the Pareto front's best val_accuracy" in best["front"]["why"]
    assert "the Pareto front's best val_accuracy" in (cost_sweep / "out.txt").read_text()


def test_the_exported_tflite_is_the_size_recorded_and_as_fast(cost_sweep: Path) -> None:
    sweep = cost_sweep / "experiments" / "cost"
    done = run_cli(str(sweep), "--format", "tflite", "--out", str(cost_sweep / "tfl"),
                   module="sweeper.export", cwd=cost_sweep)
    assert done.returncode == 0, done.stderr[-2000:]
    best = json.loads((sweep / "best" / "best.json").read_text())
    exported = cost_sweep / "tfl" / "model.tflite"
    assert exported.stat().st_size == round(best["cost"]["tflite_mb"] * 1e6)  # exactly
    fresh = subprocess.run([sys.executable, "-m", "sweeper.trial.cost", str(exported)],
                           capture_output=True, text=True, timeout=120, check=True)
    again = json.loads(fresh.stdout.strip().splitlines()[-1])
    # Microseconds on a tiny model; the close agreement is checked on the slow sweep of models.
    assert 0.25 < again["latency_ms"] / best["cost"]["latency_ms"] < 4


def test_the_dashboard_lists_each_cost_with_the_leaderboards_value(cost_sweep: Path) -> None:
    table = pd.read_csv(cost_sweep / "experiments" / "cost" / leaderboard.LEADERBOARD_CSV)
    with tensorboard(cost_sweep / "logs" / "cost") as url:
        experiment = post(f"{url}/data/plugin/hparams/experiment", {"experimentName": ""})
        tags = {m["name"]["tag"] for m in experiment["metricInfos"]}
        assert {metric_tag(c) for c, (_, _, when) in COSTS.items() if c != "gpu_peak_mb"} <= tags
        groups = post(f"{url}/data/plugin/hparams/session_groups", {
            "experimentName": "", "allowedStatuses": STATUSES, "colParams": [],
            "startIndex": 0, "sliceSize": 100})["sessionGroups"]
    shown = {Path(g["sessions"][0]["name"]).name: {m["name"]["tag"]: m["value"]
                                                   for m in g["metricValues"]} for g in groups}
    trained = table[table["status"] == "completed"]
    assert len(trained) == 3
    for _, row in trained.iterrows():
        for cost in ("params", "flops", "latency_ms", "tflite_mb", "keras_mb"):
            assert shown[row["trial_id"]][metric_tag(cost)] == pytest.approx(row[cost],
                                                                             rel=1e-6)
    assert TFLITE == "tflite"


def test_the_report_lists_the_front(cost_sweep: Path) -> None:
    sweep = cost_sweep / "experiments" / "cost"
    done = run_cli(str(sweep), "--pareto", "--format", "csv", module="sweeper.report",
                   cwd=cost_sweep)
    assert done.returncode == 0, done.stderr[-2000:]
    listed = pd.read_csv(__import__("io").StringIO(done.stdout))
    table = pd.read_csv(sweep / leaderboard.LEADERBOARD_CSV)
    assert set(listed["trial_id"]) == set(table.loc[table["front"], "trial_id"])


def test_the_search_is_told_of_an_infeasible_trial_and_goes_on(tmp_path: Path) -> None:
    done = run_cli("-m", "hydra/sweeper=tuner", "hydra.sweeper.max_trials=3",
                   "model.units=choice(8,16,2048)", "train.epochs=1", "sweep.name=t",
                   "hydra.launcher.live=false", "sweep.constraints=[params<=100000]",
                   cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    told = [json.loads(p.read_text()) for p in
            (tmp_path / "experiments" / "t" / "tuner").glob("trial_*/trial.json")]
    assert len(told) == 3
    ruled_out = [t for t in told if t["hyperparameters"]["values"]["model.units"] == 2048]
    assert len(ruled_out) == 1 and ruled_out[0]["message"].startswith("infeasible: params=")
    scores = [t["score"] for t in told if t is not ruled_out[0] and t["score"] is not None]
    # Told as bad as the worst trial before it, or, with none before it, no score at all.
    assert ruled_out[0]["status"] in ("COMPLETED", "INVALID")
    if ruled_out[0]["status"] == "COMPLETED":
        assert ruled_out[0]["score"] <= max(scores)


@pytest.mark.slow
def test_four_classic_models_under_a_size_limit_promote_one_whose_export_matches(
        tmp_path: Path) -> None:
    """The whole story on the built-in models: every trial costed, the front marked and drawn,
    the promoted model within the limit, its .tflite the recorded size, its latency measured
    again in another process within 25% of the record."""
    done = run_cli("-m", "model=mlp,cnn,lenet5,vgg16", "sweep.name=zoo",
                   "sweep.objectives=[val_accuracy:max,latency_ms:min]",
                   "sweep.constraints=[tflite_mb<=1]", "hydra.launcher.live=false",
                   cwd=tmp_path, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    sweep = tmp_path / "experiments" / "zoo"
    table = pd.read_csv(sweep / leaderboard.LEADERBOARD_CSV)
    assert len(table) == 4 and table["latency_ms"].notna().all() and table["flops"].notna().all()
    assert table["front"].any() and (sweep / pareto.PARETO_PNG).stat().st_size > 0
    best = json.loads((sweep / "best" / "best.json").read_text())
    assert best["cost"]["tflite_mb"] <= 1 and best["metrics"]["val_accuracy"] > 0.9
    out = tmp_path / "tfl"
    assert run_cli(str(sweep), "--format", "tflite", "--out", str(out), module="sweeper.export",
                   cwd=tmp_path).returncode == 0
    assert (out / "model.tflite").stat().st_size == round(best["cost"]["tflite_mb"] * 1e6)
    fresh = subprocess.run([sys.executable, "-m", "sweeper.trial.cost", str(out / "model.tflite")],
                           capture_output=True, text=True, timeout=120, check=True)
    again = json.loads(fresh.stdout.strip().splitlines()[-1])["latency_ms"]
    assert abs(again - best["cost"]["latency_ms"]) <= 0.25 * best["cost"]["latency_ms"]
