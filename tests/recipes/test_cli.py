"""`counterfeit` end to end, as a user runs it: files, MLflow, errors, Ctrl-C + --resume."""

import argparse
import json
import os
import signal
from pathlib import Path

import pytest
import torch
from mlflow import MlflowClient

from counterfeit.gan.checkpoint import load_checkpoint
from counterfeit.gan.export import load_exported
from counterfeit.recipes.boundary import run_command
from counterfeit.recipes.cli import build_parser, main
from tests.cli_process import CliProcess, run_cli
from tests.conftest import TINY_DANN

pytestmark = pytest.mark.slow  # its file runs first: see conftest

# Long enough that a Ctrl-C sent after the first checkpoint lands inside training; with a
# weight average, so that resume and export are checked with it.
RESUMABLE = [
    *TINY_DANN,
    "train.steps=240",
    "train.checkpoint_every=20",
    "train.eval_every=120",
    "model.ema_decay=0.99",
]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, mlflow_uri):
    out = tmp_path_factory.mktemp("cli") / "straight"
    result = run_cli(
        "run",
        "digits-dann",
        "--out",
        str(out),
        *[f"--set={o}" for o in RESUMABLE],
        env={"MLFLOW_TRACKING_URI": mlflow_uri},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result


def test_run_writes_summary_plots_checkpoints_and_models(finished_run):
    out, result = finished_run
    summary = json.loads((out / "summary.json").read_text())
    for method in ("dann", "source-only"):
        for key in ("target_accuracy", "source_accuracy", "target_entropy", "proxy_a_distance"):
            assert 0 <= summary["metrics"][f"{method}/{key}"] <= 2.31
        for side in ("source", "target"):  # the live weights, beside the average's
            assert 0 <= summary["metrics"][f"{method}/last_iterate_{side}_accuracy"] <= 1
        assert (out / "checkpoints" / f"{method}.ckpt").is_file()
        assert (out / "plots" / f"confusion_{method}.png").stat().st_size > 1000
        warning = summary["models"][method]["warning"]  # chance is 0.1 for ten digits
        assert (warning is not None) == (summary["metrics"][f"{method}/source_accuracy"] < 0.2)
        assert warning is None or f"warning: {warning}" in result.stdout
    assert {"embedding.png", "domains.png", "accuracy_curves.png"} <= {
        p.name for p in (out / "plots").iterdir()
    }
    assert summary["seed"] == 0
    assert summary["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    assert summary["resolved_recipe"]["train"]["steps"] == 240
    assert {"torch", "mlflow", "python"} <= set(summary["versions"])
    assert summary["wall_time_seconds"] > 0
    assert "dann" in result.stdout and "source-only" in result.stdout
    assert summary["mlflow"]["run_id"] in result.stdout


def test_exported_model_reproduces_the_trained_classifier(finished_run):
    from counterfeit.adapt import DANN

    out, _ = finished_run
    state = load_checkpoint(out / "checkpoints" / "dann.ckpt")
    model = DANN((3, 28, 28), ema_decay=0.99)
    model.load_state_dict(state["method"])
    exported = load_exported(out / "models" / "dann.pt2")
    x = torch.rand(5, 3, 28, 28)
    assert torch.allclose(exported(x), model.eval()(x), atol=1e-5)  # the weight average
    live = model.label_predictor(model.features(x))
    assert not torch.allclose(exported(x), live, atol=1e-4)


def test_run_is_in_mlflow_with_metrics_params_and_artifacts(finished_run, mlflow_uri):
    out, _ = finished_run
    run_id = json.loads((out / "summary.json").read_text())["mlflow"]["run_id"]
    client = MlflowClient(tracking_uri=mlflow_uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["train.steps"] == "240"
    assert run.data.params["model.backbone"] == "ganin-mnist"
    summary = json.loads((out / "summary.json").read_text())
    assert run.data.metrics["dann/target_accuracy"] == pytest.approx(
        summary["metrics"]["dann/target_accuracy"]
    )
    history = client.get_metric_history(run_id, "dann/loss/class")
    assert len(history) == 240 // 5 and history[-1].step == 240
    assert len(client.get_metric_history(run_id, "source-only/eval/source_accuracy")) == 2
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"summary.json", "recipe.yaml", "plots", "models"} <= artifacts
    plots = {a.path for a in client.list_artifacts(run_id, "plots")}
    assert "plots/embedding.png" in plots


def test_ctrl_c_keeps_a_checkpoint_and_resume_equals_uninterrupted(
    finished_run, tmp_path, mlflow_uri
):
    straight, _ = finished_run
    out = tmp_path / "interrupted"
    args = ["run", "digits-dann", "--out", str(out), *[f"--set={o}" for o in RESUMABLE]]
    proc = CliProcess(*args, env={**os.environ, "MLFLOW_TRACKING_URI": mlflow_uri})
    checkpoint = out / "checkpoints" / "dann.ckpt"
    proc.wait_for_file(checkpoint)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr
    assert "--resume" in stderr and "checkpoint written" in stderr
    step = load_checkpoint(checkpoint)["step"]
    assert 20 <= step < 240

    again = run_cli(*args, env={"MLFLOW_TRACKING_URI": mlflow_uri})
    assert again.returncode == 2 and "--resume" in again.stderr

    resumed = run_cli(*args, "--resume", env={"MLFLOW_TRACKING_URI": mlflow_uri})
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a = json.loads((straight / "summary.json").read_text())
    b = json.loads((out / "summary.json").read_text())
    assert a["metrics"] == b["metrics"]
    for method in ("dann", "source-only"):
        sa = load_checkpoint(straight / "checkpoints" / f"{method}.ckpt")["method"]
        sb = load_checkpoint(out / "checkpoints" / f"{method}.ckpt")["method"]
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    # the resumed run continues the same MLflow run
    assert b["mlflow"]["run_id"] == json.loads((out / "run.json").read_text())["mlflow_run_id"]


def test_recipes_command_lists_builtins():
    result = run_cli("recipes")
    assert result.returncode == 0
    assert "digits-dann" in result.stdout and "[dann]" in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["run", "digits-dann", "--device", "cuda", "--set", "train.steps=1"],
            "CUDA is not available",
        ),
        (
            ["run", "digits-dann", "--set", "model.lr=1e12", *[f"--set={o}" for o in TINY_DANN]],
            "'loss' became NaN or infinite at step",
        ),
    ],
)
def test_bad_input_is_one_clear_message(args, message, tmp_path, capfd, mlflow_uri, monkeypatch):
    """What the fuzz catalogue (test_fuzz_cli.py) cannot hold: a device this machine lacks,
    and a run that diverges after it started."""
    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    assert main([*args, "--out", str(tmp_path / "out")]) == 2
    err = capfd.readouterr().err
    assert message in err
    assert "Traceback" not in err


def _fills_the_disk(args: argparse.Namespace) -> int:
    Path("/dev/full").write_text("x" * 100_000)  # every write to /dev/full fails: ENOSPC
    return 0


def _fails_unexpectedly(args: argparse.Namespace) -> int:
    return {}["no such key"]


def _interrupted(args: argparse.Namespace) -> int:
    raise KeyboardInterrupt


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_is_a_user_error_not_a_traceback(capfd):
    args = argparse.Namespace(out=None)
    assert run_command(_fills_the_disk, args, ["run", "x"]) == 2
    err = capfd.readouterr().err
    assert "No space left on device" in err and "Free some space" in err
    assert "Traceback" not in err


def test_an_internal_error_is_one_line_and_a_log(tmp_path, capfd):
    out = tmp_path / "run folder"
    out.mkdir()
    assert run_command(_fails_unexpectedly, argparse.Namespace(out=str(out)), ["run", "x"]) == 3
    err = capfd.readouterr().err
    log = out / "counterfeit-error.log"
    assert "counterfeit: internal error: KeyError: 'no such key'" in err
    assert str(log) in err and "--debug" in err and "Traceback" not in err
    text = log.read_text()
    assert text.startswith("counterfeit run x\n") and "Traceback" in text
    assert "_fails_unexpectedly" in text
    # no output folder yet: the log goes to the temporary folder, and the message says where
    assert run_command(_fails_unexpectedly, argparse.Namespace(out=None), ["run", "x"]) == 3
    (line,) = [x for x in capfd.readouterr().err.splitlines() if "traceback is in" in x]
    temporary = Path(line.split("traceback is in ")[1].split(" (--debug")[0])
    assert "Traceback" in temporary.read_text()
    temporary.unlink()
    # --debug prints the traceback as well
    assert run_command(_fails_unexpectedly, argparse.Namespace(out=None, debug=True)) == 3
    err = capfd.readouterr().err
    assert "Traceback" in err and "_fails_unexpectedly" in err
    Path(err.split("traceback is in ")[1].split(" (--debug")[0]).unlink()


def test_ctrl_c_outside_training_exits_130(capfd):
    assert run_command(_interrupted, argparse.Namespace()) == 130
    assert capfd.readouterr().err == "counterfeit: interrupted.\n"


def test_transfer_help_states_the_smoothing_default_it_uses():
    from counterfeit.gan.data.pose import DEFAULT_SMOOTHING_WINDOW

    (commands,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    text = " ".join(commands.choices["transfer"].format_help().split())
    assert f"default: the paper's window, {DEFAULT_SMOOTHING_WINDOW})" in text
