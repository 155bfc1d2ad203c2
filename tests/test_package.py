"""sweeper as a package: a wheel that works outside the repository, the console command, the
Python API, output that fits a terminal, modules free of import circles, and one Python version
across pyproject.toml's settings."""

from __future__ import annotations

import ast
import graphlib
import io
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from conftest import run_cli

import sweeper

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_runs_a_sweep_in_a_fresh_venv_outside_the_repository(
        tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                            "--no-build-isolation", "-q", "-w", str(wheels), str(ROOT)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = wheels.glob("keras_sweeper-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    # The dependencies (TensorFlow and the rest) come from this test's environment rather than
    # a download: a path line, so the editable install's own hooks there stay off. pip resolves
    # the wheel's requirements from its metadata against them, with no index to fall back on:
    # a requirement the metadata lacks fails at import below, one it has wrong fails here.
    site = subprocess.run([str(python), "-c", "import sysconfig; "
                           "print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-index",
                                str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr[-3000:]
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    where = subprocess.run([str(python), "-c", "import sweeper; print(sweeper.__file__)"],
                           cwd=work, capture_output=True, text=True, env=env)
    assert where.stdout.strip().startswith(site), where.stdout + where.stderr
    done = subprocess.run([str(venv / "bin" / "sweeper"), "-m", "optimizer=adam,sgd",
                           "model.units=8", "train.epochs=1", "sweep.name=wheel"], cwd=work,
                          capture_output=True, text=True, timeout=300,
                          env={**env, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert done.returncode == 0, done.stderr[-3000:]
    trials = sorted((work / "experiments" / "wheel" / "trials").glob("*/trial.json"))
    assert len(trials) == 2 and (work / "experiments" / "wheel" / "best" / "best.json").is_file()


def test_python_api_runs_a_sweep_and_reads_it_back(tmp_path: Path) -> None:
    out = io.StringIO()
    sys_stdout, sys.stdout = sys.stdout, out
    try:
        results = sweeper.sweep(["optimizer=adam,sgd", "model.units=8", "train.epochs=1"],
                                name="api", cwd=tmp_path)
    finally:
        sys.stdout = sys_stdout
    assert "leaderboard" in out.getvalue()  # the sweep's own output comes through
    assert results.sweep_dir == tmp_path / "experiments" / "api"
    assert list(results.leaderboard["rank"]) == [1, 2]
    best = results.best
    assert best is not None and best.trial_id == results.leaderboard["trial_id"][0]
    assert best.hparams["optimizer"] in ("adam", "sgd")
    assert results.best_model == tmp_path / "experiments" / "api" / "best" / "model.keras"
    again = sweeper.load(tmp_path / "experiments" / "api")
    assert again.leaderboard.equals(results.leaderboard)
    assert set(again.records()) == set(results.leaderboard["trial_id"])
    with pytest.raises(sweeper.SweeperError, match=r"^model.dropout=1.5: must be a number"):
        sweeper.sweep(["model.dropout=1.5"], cwd=tmp_path, quiet=True)


def test_console_command_is_python_m_sweeper(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("sweeper")
    done = subprocess.run([str(exe), "model.dropout=1.5"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr == "sweeper: error: model.dropout=1.5: must be a number in [0, 1)\n"


def test_end_of_sweep_table_fits_120_columns(grid_sweep: Path) -> None:
    from rich.console import Console

    from sweeper.results import leaderboard, table

    ranked, _ = leaderboard.leaderboard(grid_sweep / "experiments" / "grid")
    screen = io.StringIO()
    table.print_table(ranked, title="sweep grid", console=Console(file=screen, width=120))
    lines = screen.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 120 and "…" not in screen.getvalue()
    header = next(line for line in lines if "rank" in line)
    for column in ("trial", "status", "val_accuracy", "test acc", "test F1"):
        assert column in header
    for label in ranked["label"]:  # short labels: the varying hyperparameters only
        assert "train.epochs" not in label and "sweep.name" not in label
        assert label in screen.getvalue()


@pytest.mark.slow  # a long sweep; `pytest -m slow` runs it
def test_start_of_sweep_lists_only_what_varies(tmp_path: Path) -> None:
    done = run_cli("-m", "optimizer=adam,sgd", "model.units=8", "train.epochs=1",
                   "sweep.name=plan", f"paths.logs={tmp_path / 'logs'}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    said = done.stdout + done.stderr
    plan = [line.split(" : ", 1)[1] for line in said.splitlines() if "\t#" in line]
    assert plan == ["optimizer=adam", "optimizer=sgd"]
    assert "every trial: model.units=8 train.epochs=1" in said


def test_no_import_circles() -> None:
    # Every import counts, a function's too (deferring an import hides a circle, it does not
    # break it), except those under `if TYPE_CHECKING:`, which never run.
    files = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
             for top in ("sweeper", "hydra_plugins") for p in (ROOT / top).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text())
        typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                       and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
        names: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.update(f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in files
                             else node.module for a in node.names)
        graph[module] = {name for name in names if name in files} - {module}
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as e:
        pytest.fail(f"an import circle: {' -> '.join(e.args[1])}")


def test_pyproject_gives_one_python_version_and_the_package_version() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11 on
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    oldest = pyproject["project"]["requires-python"].removeprefix(">=")
    assert pyproject["tool"]["mypy"]["python_version"] == oldest
    assert pyproject["tool"]["ruff"]["target-version"] == "py" + oldest.replace(".", "")
    assert sweeper.__version__ == pyproject["project"]["version"]
