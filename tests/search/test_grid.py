"""hydra/sweeper=grid: Hydra's grid at any size — checked from its corners, resumed without
launching what is done."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import records, run_cli

from sweeper.config.identity import override_dirname, trial_id
from sweeper.config.keys import excluded_from_id

GRID = ["model.units=" + ",".join(map(str, range(8, 18))),
        "model.dropout=" + ",".join(f"0.{i}" for i in range(10)),
        "train.batch_size=" + ",".join(map(str, range(16, 26))),
        "optimizer=adam,sgd", "train.epochs=1"]


def test_a_large_grid_is_checked_from_its_corners_not_trial_by_trial() -> None:
    from sweeper.preflight import trial_configs

    configs = [(c.model.units, c.model.dropout, c.train.batch_size, c.optimizer._target_)
               for c in trial_configs(GRID, True, None, "config")]
    # 2,000 trials: both optimizers composed, then every other value of each key checked.
    assert len(configs) == 2 + 9 * 3
    assert {c[3] for c in configs} == {"keras.optimizers.Adam", "keras.optimizers.SGD"}
    assert {c[0] for c in configs} == set(range(8, 18))
    assert {c[2] for c in configs} == set(range(16, 26))


@pytest.mark.parametrize("bad, message", [
    ("model.dropout=0.1,0.2,1.5", "model.dropout=1.5: must be a number in [0, 1)"),
    ("train.batch_size=16,abc", "train.batch_size=abc: Value 'abc' of type 'str'"),
    ("train.batch_size=16,5000", "train.batch_size=5000: larger than the 1149 training examples"),
])
def test_a_bad_value_anywhere_in_a_large_grid_is_refused_before_any_work(
        tmp_path: Path, bad: str, message: str) -> None:
    done = run_cli("-m", *GRID, bad, cwd=tmp_path)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("sweeper: error: ") and message in line, line
    assert list(tmp_path.iterdir()) == []


def test_the_sweep_process_finds_trial_folders_as_hydra_names_them() -> None:
    from hydra import compose, initialize_config_module

    exclude = ["sweep.name", "paths.experiments", "paths.logs", "search", "tuner.bracket",
               "tuner.round", "sweep.retry_failed", "dataset.cache_dir"]
    job = ["train.epochs=1", "optimizer=sgd", "sweep.name=x", "model.units=16",
           "+search=seed", "dataset.image_size=[12,12]"]
    with initialize_config_module(config_module="sweeper.conf", version_base="1.3"):
        cfg = compose("config", overrides=job, return_hydra_config=True)
    assert override_dirname(job, exclude) == cfg.hydra.job.override_dirname


def test_resuming_a_finished_sweep_launches_nothing(grid_sweep: Path, tmp_path: Path) -> None:
    cwd = Path(shutil.copytree(grid_sweep, tmp_path / "copy"))
    sweep = cwd / "experiments" / "grid"
    before = {r["trial_id"]: r["finished_at"] for r in records(sweep)}
    workers = sorted((sweep / "workers").iterdir())
    done = run_cli("-m", "optimizer=adam,sgd", "model.units=8,16", "train.epochs=1",
                   "sweep.name=grid", cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    said = done.stdout + done.stderr
    assert "grid: 4 of 4 trials finished in an earlier run of the sweep; 0 to run" in said
    assert "pool:" not in said  # no worker was started
    assert sorted((sweep / "workers").iterdir()) == workers
    assert {r["trial_id"]: r["finished_at"] for r in records(sweep)} == before
    assert json.loads((sweep / "sweep.json").read_text())["problems"] == []


def test_one_configuration_spelled_two_ways_is_one_trial(grid_sweep: Path,
                                                         tmp_path: Path) -> None:
    # adam is the default optimizer and 0.001 its default learning rate: the same 2 trials.
    cwd = Path(shutil.copytree(grid_sweep, tmp_path / "copy"))
    done = run_cli("-m", "optimizer=adam", "optimizer.learning_rate=1e-3", "model.units=8,16",
                   "train.epochs=1", "sweep.name=grid", cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "grid: 2 of 2 trials finished in an earlier run of the sweep; 0 to run" in \
        done.stdout + done.stderr
    assert len(list((cwd / "experiments" / "grid" / "trials").iterdir())) == 4


@pytest.mark.slow  # a long sweep; `pytest -m slow` runs it
def test_a_sweep_whose_folders_name_every_override_is_still_found(grid_sweep: Path,
                                                                  tmp_path: Path) -> None:
    # Folders named after every override, default values included (as earlier versions did).
    cwd = Path(shutil.copytree(grid_sweep, tmp_path / "copy"))
    trials = cwd / "experiments" / "grid" / "trials"
    legacy = []
    for record in records(trials.parent):
        name = trial_id(override_dirname(record["overrides"], excluded_from_id()))
        if name != record["trial_id"]:  # optimizer=adam, the default, is in the name
            (trials / record["trial_id"]).rename(trials / name)
            (trials / name / "trial.json").write_text(json.dumps({**record, "trial_id": name}))
            legacy.append(name)
    assert len(legacy) == 2
    done = run_cli("-m", "optimizer=adam,sgd", "model.units=8,16", "train.epochs=1",
                   "sweep.name=grid", cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "grid: 4 of 4 trials finished in an earlier run of the sweep; 0 to run" in \
        done.stdout + done.stderr
    again = run_cli("optimizer=adam", "model.units=8", "train.epochs=1", "sweep.name=grid",
                    cwd=cwd)  # the trial itself finds its folder too
    assert again.returncode == 0 and "completed earlier, skipped" in again.stdout + again.stderr
    assert set(legacy) <= {p.name for p in trials.iterdir()} and len(list(trials.iterdir())) == 4


def test_resume_quotes_the_folder_and_name_it_replays(grid_sweep: Path, tmp_path: Path) -> None:
    # A folder and a name the tool accepts (quoted on the command line) must replay as the same
    # folder and name: a space, a non-ASCII letter, a comma (Hydra's list separator).
    from sweeper import preflight, resume
    from sweeper.config.overrides import quoted

    sweep = tmp_path / "exp dir" / "é" / "r,s"
    sweep.mkdir(parents=True)
    shutil.copy(grid_sweep / "experiments" / "grid" / "multirun.yaml", sweep)
    argv = resume.command_line(sweep, [])
    assert f"sweep.name={quoted('r,s')}" in argv
    plan = preflight.check(argv)  # what the command would run: the same sweep, not two
    assert plan.multirun and plan.sweep_dir is not None
    assert plan.sweep_dir.resolve() == sweep.resolve()
