"""`counterfeit sweep`: members as processes, statistics over seeds, MLflow nesting, --resume
and the errors a user can cause (a failing member and SIGTERM: test_sweep_control.py)."""

import json
import re

import numpy as np
import pytest
from mlflow import MlflowClient
from scipy import stats

from counterfeit.gan.errors import ConfigError
from counterfeit.recipes import load_recipe
from counterfeit.recipes.sweep import sweep
from counterfeit.recipes.sweep.plan import parse_grid, parse_seeds
from tests.cli_process import run_cli
from tests.conftest import TINY_SWEEP

pytestmark = pytest.mark.slow  # its file runs first: see conftest

SEEDS = [0, 1]
GRID = {"model.lambda_max": ["0", "1"]}
SELECTING = [*TINY_SWEEP, "selection.every=2"]  # checkpoints at steps 2, 4 and 5, scored


def summaries(out):
    """member name -> its summary.json."""
    return {
        str(p.parent.relative_to(out)): json.loads(p.read_text())
        for p in sorted(out.glob("**/summary.json"))
    }


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory, mlflow_uri):
    out = tmp_path_factory.mktemp("sweep") / "out"
    result = run_cli(
        "sweep",
        "digits-dann",
        "--seeds",
        "0-1",
        "--grid",
        "model.lambda_max=0,1",
        "--workers",
        "2",
        "--threads-per-worker",
        "1",
        "--out",
        str(out),
        *[f"--set={o}" for o in SELECTING],
        env={"MLFLOW_TRACKING_URI": mlflow_uri},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out, result, json.loads((out / "sweep.json").read_text()), summaries(out)


def test_aggregate_equals_statistics_of_the_members_summaries(finished_sweep):
    out, result, record, members = finished_sweep
    names = [f"model.lambda_max={v}/seed-{s}" for v in (0, 1) for s in SEEDS]
    assert sorted(members) == sorted(names)
    assert record["status"] == "finished"
    assert [m["status"] for m in record["members"]] == ["finished"] * 4
    assert result.stdout.count("[sweep] start") == 4
    assert result.stdout.count("[sweep] finished") == 4
    for group in record["aggregate"]:
        slug = f"model.lambda_max={group['point']['model.lambda_max']}"
        by_seed = [members[f"{slug}/seed-{s}"]["metrics"] for s in SEEDS]
        assert set(group["metrics"]) == set(by_seed[0])
        for name, got in group["metrics"].items():
            values = np.array([m[name] for m in by_seed])
            assert got["n"] == 2
            assert got["mean"] == pytest.approx(values.mean())
            assert got["sd"] == pytest.approx(values.std(ddof=1))
            assert got["median"] == pytest.approx(np.median(values))
            assert (got["min"], got["max"]) == (values.min(), values.max())
            half = stats.t.ppf(0.975, 1) * values.std(ddof=1) / np.sqrt(2)
            assert got["ci95"] == pytest.approx([values.mean() - half, values.mean() + half])
        pair = next(p for p in group["paired"] if p["metric"] == "target_accuracy")
        assert (pair["a"], pair["b"], pair["seeds"]) == ("dann", "source-only", SEEDS)
        diffs = [m["dann/target_accuracy"] - m["source-only/target_accuracy"] for m in by_seed]
        assert pair["mean"] == pytest.approx(np.mean(diffs))
        assert pair["sd"] == pytest.approx(np.std(diffs, ddof=1))
    markdown = (out / "sweep.md").read_text()
    first = record["aggregate"][0]["metrics"]["dann/target_accuracy"]
    assert f"| dann/target_accuracy | 2 | {first['mean']:.4f} | {first['sd']:.4f} |" in markdown
    assert "| dann - source-only: target_accuracy | 2 |" in markdown
    assert {p.name for p in (out / "plots").iterdir()} == {
        "strips.png",
        "vs_model.lambda_max.png",
        "selection.png",
    }


def test_the_sweep_reports_what_each_validator_ships_across_grid_points(finished_sweep):
    out, _, record, members = finished_sweep
    report = record["selection"]
    labels = {f"model.lambda_max={v}/{m}" for v in (0, 1) for m in ("dann", "source-only")}
    assert set(report["models"]) == labels and report["seeds"] == SEEDS
    for label, row in report["models"].items():
        point, method = label.split("/")
        shipped = [
            members[f"{point}/seed-{s}"]["metrics"][f"{method}/target_accuracy"] for s in SEEDS
        ]
        assert row["shipped"] == pytest.approx(shipped)
        assert all(o >= f for o, f in zip(row["oracle"], row["final"], strict=True))
    # across grid points and methods, by hand: the checkpoint SND scores highest per seed
    for i, seed in enumerate(SEEDS):
        scored = [
            (c["scores"]["snd"], c["step"], c["target_accuracy"])
            for point in ("model.lambda_max=0", "model.lambda_max=1")
            for d in members[f"{point}/seed-{seed}"]["models"].values()
            for c in d["selection"]["checkpoints"]
        ]
        assert len(scored) == 12  # 2 grid points x 2 methods x 3 checkpoints
        best = max(scored)
        assert report["validators"]["snd"]["across"][i] == pytest.approx(best[2])
        gap = max(a for _, _, a in scored) - best[2]
        assert report["validators"]["snd"]["across_gap"][i] == pytest.approx(gap)
    assert "## Label-free selection" in (out / "sweep.md").read_text()


def test_mlflow_parent_holds_the_aggregate_and_every_member_is_its_child(
    finished_sweep, mlflow_uri
):
    _, _, record, members = finished_sweep
    client = MlflowClient(tracking_uri=mlflow_uri)
    parent = client.get_run(record["mlflow"]["parent_run_id"])
    assert parent.info.status == "FINISHED"
    assert parent.data.params["grid.model.lambda_max"] == "0,1"
    assert parent.data.params["seeds"] == "0,1"
    stats_0 = record["aggregate"][0]["metrics"]["dann/target_accuracy"]
    assert parent.data.metrics["model.lambda_max_0/dann/target_accuracy/mean"] == pytest.approx(
        stats_0["mean"]
    )
    assert parent.data.metrics["members_finished"] == 4
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    assert {c.info.run_id for c in children} == {s["mlflow"]["run_id"] for s in members.values()}
    assert all(c.info.status == "FINISHED" for c in children)
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} >= {
        "sweep.json",
        "sweep.md",
        "plots",
    }


def test_resume_runs_only_the_member_without_a_summary(finished_sweep, mlflow_uri):
    out, _, record, members = finished_sweep
    missing = "model.lambda_max=1/seed-0"
    (out / missing / "summary.json").unlink()
    kept = {n: (out / n / "summary.json").stat().st_mtime_ns for n in members if n != missing}

    result = sweep(
        "digits-dann",
        seeds=SEEDS,
        grid=GRID,
        overrides=SELECTING,
        workers=2,
        out=out,
        resume=True,
    )
    ran = {m.name: (m.ran, m.resumed, m.status) for m in result.members}
    assert ran.pop(missing) == (True, True, "finished")
    assert set(ran.values()) == {(False, False, "finished")}
    assert {n: (out / n / "summary.json").stat().st_mtime_ns for n in kept} == kept
    # it continued from its last checkpoint to the same numbers, in the same MLflow runs
    again = json.loads((out / missing / "summary.json").read_text())
    assert again["metrics"] == members[missing]["metrics"]
    assert again["mlflow"]["run_id"] == members[missing]["mlflow"]["run_id"]
    assert result.parent_run_id == record["mlflow"]["parent_run_id"]
    assert result.aggregate == record["aggregate"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"seeds": "0-x"}, "'0-x'"),
        ({"seeds": "3-1"}, "'3-1' runs backwards"),
        ({"seeds": "0,0"}, "seed 0 twice"),
        ({"grid": ["model.lambda_max"]}, "KEY=V1,V2"),
        ({"grid": ["model.lambda_mx=0,1"]}, "model.lambda_mx: unknown key"),
        ({"grid": ["model.lr=0.01,-1"]}, "grid point model.lr=-1"),
        ({"recipe": "digits-dan"}, "Did you mean 'digits-dann'"),
        ({"backend": "slurm"}, "unknown backend 'slurm'"),
    ],
)
def test_bad_input_raises_config_error_before_anything_is_created(
    tmp_path, mlflow_uri, kwargs, message
):
    client = MlflowClient(tracking_uri=mlflow_uri)
    before = len(client.search_runs([e.experiment_id for e in client.search_experiments()]))
    args = {"recipe": "digits-dann", "seeds": "0-1", "overrides": TINY_SWEEP, **kwargs}
    with pytest.raises(ConfigError, match=re.escape(message)) as error:
        sweep(args.pop("recipe"), out=tmp_path / "out", **args)
    assert "Traceback" not in str(error.value)
    assert not (tmp_path / "out").exists()
    assert len(client.search_runs([e.experiment_id for e in client.search_experiments()])) == before


def test_a_folder_holding_a_sweep_needs_resume(finished_sweep):
    with pytest.raises(ConfigError, match=r"already holds a sweep .*--resume"):
        sweep("digits-dann", seeds=SEEDS, grid=GRID, overrides=SELECTING, out=finished_sweep[0])


def test_seed_ranges_and_python_grid_values_reach_the_recipe_unchanged():
    assert parse_seeds("0-3,7") == [0, 1, 2, 3, 7]
    grid = parse_grid({"model.lr": [0.001, 1e-5], "methods": [["dann"], ["dann", "source-only"]]})
    assert grid == {"model.lr": ["0.001", "1.0e-05"], "methods": ["[dann]", "[dann, source-only]"]}
    recipe = load_recipe("digits-dann", [f"model.lr={grid['model.lr'][1]}"]).recipe
    assert recipe.model.lr == 1e-5
    recipe = load_recipe("digits-dann", [f"methods={grid['methods'][1]}"]).recipe
    assert recipe.methods == ["dann", "source-only"]
