"""Every CLI command against a catalogue of bad inputs: one named error, never a traceback.

Each :class:`Case` is a command line (tokens formatted with the paths of :func:`inputs`
and ``{out}``, a fresh output folder whose name holds a space), the exit status it must
end with (2: a user error, 3: an internal error), and the words its message must hold
(the culprit: a file, a key, a shape, a URI). Every case runs in-process through
``main()`` with the file descriptors captured (so torch's C++ log lines count too), and
the ``entry_point`` cases again through the installed ``counterfeit`` script. A failed
case must leave no output folder and no MLflow run behind. README: "Adding a bad-input
case".
"""

from __future__ import annotations

import argparse
import os
import shlex
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from torch import nn

from counterfeit.gan.models.pose2video import Pose2Video
from counterfeit.gan.models.srgan import SRGAN
from counterfeit.recipes.cli import build_parser, main
from tests.conftest import VENV_BIN, free_port

ROBUSTNESS = "robustness --data sklearn-digits --no-mlflow --n 8 --eps 0 --corruptions none"
PATCH = "patch --target 3 --data sklearn-digits --no-mlflow --steps 1 --n 8"
TINY = "--channels 1 --image-size 8 --out={out}"


@dataclass(frozen=True)
class Case:
    """One bad input and what the CLI must answer.

    Attributes:
        id: the test id.
        argv: the command line; each token is formatted with the input paths and ``out``.
        says: words the message must hold (the culprit and, where it helps, the remedy).
        exit: 2 for an error the user can fix, 3 for an internal error, 0 for input
            that must work.
        env: environment variables for the case.
        entry_point: run it through the installed script too.
        fast: answered before torch is imported: under 2 s through the script.
    """

    id: str
    argv: str
    says: tuple[str, ...] = ()
    exit: int = 2
    env: dict[str, str] = field(default_factory=dict)
    entry_point: bool = False
    fast: bool = False

    def args(self, inputs: dict[str, Path], out: Path) -> list[str]:
        return [token.format(**inputs, out=out) for token in shlex.split(self.argv)]


DEAD_URI = f"http://127.0.0.1:{free_port()}"  # nothing listens there

# fmt: off
CATALOGUE = [
    # -- run: recipe files and names ---------------------------------------------------------
    Case("run-missing-file", "run {dir}/nothere.yaml",
         ("recipe file not found", "nothere.yaml"), entry_point=True, fast=True),
    Case("run-unknown-name", "run digits-dan",
         ("unknown recipe 'digits-dan'", "Did you mean 'digits-dann'"),
         entry_point=True, fast=True),
    Case("run-folder-as-recipe", "run {dir}", ("is a folder",), fast=True),
    Case("run-empty-yaml", "run {empty_yaml}", ("empty.yaml", "YAML mapping"), fast=True),
    Case("run-truncated-yaml", "run {truncated_yaml}",
         ("cut.yaml", "not valid YAML", "line"), fast=True),
    Case("run-binary-yaml", "run {png_yaml}", ("image.yaml", "not a text file"), fast=True),
    Case("run-list-yaml", "run {list_yaml}", ("list.yaml", "YAML mapping", "got list"), fast=True),
    # -- run: --set keys, types and values ---------------------------------------------------
    Case("set-unknown-key", "run {recipe} --set evaluation.epz=[0]",
         ("evaluation.epz: unknown key", "did you mean 'evaluation.eps'")),
    Case("set-wrong-type", "run {recipe} --set evaluation.n=many", ("evaluation.n", "'many'")),
    Case("set-bad-value", "run {recipe} --set evaluation.n=-3",
         ("evaluation.n", "greater than 0", "-3")),
    Case("set-device-gpu", "run {recipe} --set device=gpu", ("device", "got 'gpu'")),
    Case("set-no-equals", "run {recipe} --set evaluation.n", ("--set expects KEY=VALUE",)),
    Case("set-into-a-value", "run {recipe} --set evaluation.n.x=1",
         ("'n' is a value, not a section",)),
    Case("set-unknown-task", "run {recipe} --set task=dance", ("unknown task 'dance'",)),
    Case("run-bad-device-flag", "run {recipe} --device gpu", ("device", "'gpu'")),
    Case("run-resume-nothing", "run {recipe} --resume --out={out}", ("nothing to resume",)),
    Case("run-missing-data-root", "run mnist-mnistm-dann --set tracking.enabled=false",
         ("data.root",)),
    Case("run-missing-model", "run {recipe} --set model={dir}/gone.pt2 --out={out}",
         ("model file not found", "gone.pt2")),
    Case("run-dead-tracking", "run {recipe} --set tracking.enabled=true --out={out}",
         (DEAD_URI, "MLFLOW_TRACKING_URI"), env={"MLFLOW_TRACKING_URI": DEAD_URI}),
    # -- output folders: a file on the way, a place nobody can write -------------------------
    Case("run-out-under-a-file", "run {recipe} --out={text}/sub",
         ("text.pt is a file, not a folder",), fast=True, entry_point=True),
    Case("run-out-in-proc", "run {recipe} --out=/proc/counterfeit/run",
         ("/proc", "not writable"), fast=True),
    Case("robustness-out-under-a-file", f"{ROBUSTNESS} --model {{ts8}} --out={{text}}/sub",
         ("text.pt is a file, not a folder",), fast=True),
    Case("robustness-out-in-proc", f"{ROBUSTNESS} --model {{ts8}} --out=/proc/counterfeit/x",
         ("/proc", "not writable"), fast=True),
    Case("sweep-out-under-a-file", "sweep {recipe} --out={text}/sub",
         ("text.pt is a file, not a folder",), fast=True),
    Case("translate-out-under-a-file",
         "translate --checkpoint {srgan} --data sklearn-digits --out={text}/sub",
         ("text.pt is a file",), fast=True),
    Case("upscale-out-under-a-file", "upscale --checkpoint {srgan} {png} --out={text}/sub",
         ("text.pt is a file",), fast=True),
    Case("transfer-out-under-a-file",
         "transfer --checkpoint {srgan} --poses {dir} --out={text}/sub/v.gif",
         ("text.pt is a file",), fast=True),
    Case("transfer-out-is-a-folder", "transfer --checkpoint {srgan} --poses {dir} --out={dir}",
         ("is a folder; give a file name",), fast=True),
    # -- robustness: model files -------------------------------------------------------------
    Case("robustness-missing-model", f"{ROBUSTNESS} --model {{dir}}/gone.pt2 --out={{out}}",
         ("model file not found", "gone.pt2"), entry_point=True, fast=True),
    Case("robustness-model-is-a-folder", f"{ROBUSTNESS} --model {{dir}} --out={{out}}",
         ("is a folder",), fast=True),
    Case("robustness-empty-model", f"{ROBUSTNESS} --model {{empty}} {TINY}",
         ("empty.pt is empty",)),
    Case("robustness-text-model", f"{ROBUSTNESS} --model {{text}} {TINY}",
         ("text.pt is not a model file", "text file")),
    Case("robustness-binary-junk", f"{ROBUSTNESS} --model {{junk}} {TINY}",
         ("junk.bin is not a model file", "neither a zip archive nor a pickle")),
    Case("robustness-truncated-model", f"{ROBUSTNESS} --model {{truncated}} {TINY}",
         ("truncated.pt", "truncated")),
    Case("robustness-pickled-model", f"{ROBUSTNESS} --model {{pickled}} {TINY}",
         ("pickled.pt", "--trust-pickle")),
    Case("robustness-state-dict-no-arch", f"{ROBUSTNESS} --model {{state_dict}} {TINY}",
         ("weights.pt", "--arch module:Class")),
    Case("robustness-bad-arch", f"{ROBUSTNESS} --model {{state_dict}} --arch nonsense {TINY}",
         ("--arch", "module:Class", "'nonsense'")),
    Case("robustness-wrong-shape",
         f"{ROBUSTNESS} --model {{ts32}} --channels 3 --image-size 28 --out={{out}}",
         ("ts32.pt expects 1x32x32", "the data gives 3x28x28", "--channels 1 --image-size 32"),
         entry_point=True),
    Case("robustness-no-shape", f"{ROBUSTNESS} --model {{ts8}} --out={{out}}",
         ("cannot tell which image shape", "ts8.pt", "--image-size")),
    Case("robustness-not-a-classifier", f"{ROBUSTNESS} --model {{ts_image}} {TINY}",
         ("identity.pt is not a classifier", "(2, 1, 8, 8)")),
    # -- robustness: data and settings -------------------------------------------------------
    Case("robustness-unknown-domain", "robustness --model {ts8} --data nowhere --out={out}",
         ("--data 'nowhere'", "neither a domain")),
    Case("robustness-missing-data-folder",
         "robustness --model {ts8} --data {dir}/no/images --out={out}",
         ("--data", "no/images", "does not exist"), fast=True),
    Case("robustness-missing-data-root",
         "robustness --model {ts8} --data mnist --data-root {dir}/nope --out={out}",
         ("--data-root", "nope"), fast=True),
    Case("robustness-corrupt-image", f"{ROBUSTNESS} --model {{ts8}} --data {{images}} {TINY}",
         ("broken.png",)),
    Case("robustness-empty-image-folder",
         f"{ROBUSTNESS} --model {{ts8}} --data {{no_images}} {TINY}",
         ("no images (.png", "no images or its class sub-folders")),
    Case("robustness-bad-eps", f"{ROBUSTNESS} --model {{ts8}} --eps 0,x --out={{out}}",
         ("--eps expects numbers", "'x'")),
    Case("robustness-eps-out-of-range", f"{ROBUSTNESS} --model {{ts8}} --eps 2 --out={{out}}",
         ("evaluation.eps", "[2.0]")),
    Case("robustness-unknown-attack",
         f"{ROBUSTNESS} --model {{ts8}} --attacks nosuch --out={{out}}", ("nosuch",)),
    Case("robustness-unknown-corruption",
         f"{ROBUSTNESS} --model {{ts8}} --corruptions fog --out={{out}}",
         ("unknown corruption(s) fog",)),
    Case("robustness-bad-normalize", f"{ROBUSTNESS} --model {{ts8}} --normalize 0.5 --out={{out}}",
         ("--normalize", "even count of numbers", "'0.5'")),
    Case("robustness-bad-n", f"{ROBUSTNESS} --model {{ts8}} --n 0 --out={{out}}",
         ("evaluation.n", "(got 0)")),
    Case("robustness-dead-tracking",
         f"{ROBUSTNESS.replace('--no-mlflow', '')} --model {{ts8}} {TINY}",
         (DEAD_URI, "MLFLOW_TRACKING_URI"), env={"MLFLOW_TRACKING_URI": DEAD_URI}),
    # -- patch -------------------------------------------------------------------------------
    Case("patch-missing-model", f"{PATCH} --model {{dir}}/gone.pt2 --out={{out}}",
         ("model file not found", "gone.pt2"), fast=True),
    Case("patch-text-model", f"{PATCH} --model {{text}} --out={{out}}",
         ("text.pt is not a model file",)),
    Case("patch-wrong-shape",
         f"{PATCH} --model {{ts32}} --channels 3 --image-size 28 --out={{out}}",
         ("ts32.pt expects 1x32x32", "3x28x28")),
    Case("patch-bad-scale", f"{PATCH} --model {{ts8}} --scale 1 --out={{out}}",
         ("--scale expects MIN,MAX", "'1'")),
    Case("patch-bad-areas", f"{PATCH} --model {{ts8}} --areas a,b --out={{out}}",
         ("--areas expects", "'a,b'")),
    Case("patch-area-out-of-range", f"{PATCH} --model {{ts8}} --area 2 --out={{out}}",
         ("patch.area", "2.0")),
    Case("patch-bad-shape", f"{PATCH} --model {{ts8}} --shape star --out={{out}}",
         ("invalid choice: 'star'",)),
    # -- translate, upscale, transfer: checkpoints and their inputs ---------------------------
    Case("translate-missing-checkpoint",
         "translate --checkpoint {dir}/gone.ckpt --data sklearn-digits --out={out}",
         ("checkpoint not found", "gone.ckpt"), entry_point=True, fast=True),
    Case("translate-text-checkpoint",
         "translate --checkpoint {text} --data sklearn-digits --out={out}",
         ("text.pt is not a checkpoint",)),
    Case("translate-truncated-checkpoint",
         "translate --checkpoint {truncated_ckpt} --data sklearn-digits --out={out}",
         ("cut.ckpt", "cut short")),
    Case("translate-wrong-kind", "translate --checkpoint {srgan} --data sklearn-digits --out={out}",
         ("srgan.ckpt holds a 'SRGAN' checkpoint", "PixelDA")),
    Case("upscale-missing-checkpoint", "upscale --checkpoint {dir}/gone.ckpt {png} --out={out}",
         ("checkpoint not found", "gone.ckpt"), fast=True),
    Case("upscale-missing-image", "upscale --checkpoint {srgan} {dir}/gone.png --out={out}",
         ("image not found", "gone.png"), fast=True),
    Case("upscale-text-image", "upscale --checkpoint {srgan} {text} --out={out}",
         ("cannot read", "text.pt", "as an image")),
    Case("upscale-tiny-image", "upscale --checkpoint {srgan} {tiny_png} --out={out}",
         ("tiny.png is 2x2 px",)),
    Case("upscale-wrong-kind", "upscale --checkpoint {state_dict} {png} --out={out}",
         ("weights.pt", "upscale needs an SRGAN")),
    # -- anomaly: detectors, their settings, their files ---------------------------------------
    Case("anomaly-fit-missing-data",
         "anomaly fit --data {dir}/none --normal 1 --method pca --out={out}",
         ("--data", "none does not exist"), fast=True),
    Case("anomaly-fit-unknown-method",
         "anomaly fit --data sklearn-digits --normal 1 --method anogann --out={out}",
         ("unknown anomaly detector 'anogann'", "f-anogan")),
    Case("anomaly-fit-bad-setting",
         "anomaly fit --data sklearn-digits --normal 1 --method f-anogan --set widht=8 --out={out}",
         ("f-anogan has no setting 'widht'", "width")),
    Case("anomaly-fit-no-normal-class",
         "anomaly fit --data sklearn-digits --method pca --out={out}",
         ("--normal",)),
    Case("anomaly-score-missing-checkpoint",
         "anomaly score --checkpoint {dir}/gone.pt {png} --out={out}",
         ("checkpoint not found", "gone.pt"), fast=True),
    Case("anomaly-score-wrong-kind", "anomaly score --checkpoint {srgan} {png} --out={out}",
         ("srgan.ckpt is not a saved anomaly detector", "SRGAN")),
    Case("anomaly-score-text-checkpoint", "anomaly score --checkpoint {text} {png} --out={out}",
         ("text.pt is not a checkpoint",)),
    # -- detect: real images, fake sources, detector files ------------------------------------
    Case("detect-fit-missing-fake",
         "detect fit --real sklearn-digits --fake {dir}/none.ckpt --steps 2 --out={out}",
         ("--fake", "none.ckpt", "no such checkpoint or folder")),
    Case("detect-fit-wrong-kind",
         "detect fit --real sklearn-digits --fake {srgan} --steps 2 --out={out}",
         ("holds a 'SRGAN' checkpoint", "ProGAN")),
    Case("detect-fit-unknown-real", "detect fit --real mnits --fake {srgan} --out={out}",
         ("--real 'mnits'",)),
    Case("detect-score-missing-checkpoint",
         "detect score --checkpoint {dir}/gone.pt {png} --out={out}",
         ("checkpoint not found", "gone.pt"), fast=True),
    Case("detect-score-wrong-kind", "detect score --checkpoint {srgan} {png} --out={out}",
         ("'SRGAN' checkpoint", "detect fit")),
    # -- sample: generator checkpoints --------------------------------------------------------
    Case("sample-missing-checkpoint", "sample --checkpoint {dir}/gone.ckpt --out={out}/g.png",
         ("checkpoint not found", "gone.ckpt"), fast=True),
    Case("sample-wrong-kind", "sample --checkpoint {srgan} --out={out}/g.png",
         ("srgan.ckpt holds a 'SRGAN' checkpoint", "BigGAN")),
    Case("sample-no-images", "sample --checkpoint {srgan} --n 0 --out={out}/g.png",
         ("--n must be >= 1",)),
    Case("transfer-missing-checkpoint",
         "transfer --checkpoint {dir}/gone.ckpt --poses {dir} --out={out}/v.gif",
         ("checkpoint not found",), fast=True),
    Case("transfer-missing-poses",
         "transfer --checkpoint {srgan} --poses {dir}/none --out={out}/v.gif",
         ("--poses", "none does not exist"), fast=True),
    Case("transfer-missing-reference",
         "transfer --checkpoint {srgan} --poses {dir} --reference-poses {dir}/r.npy "
         "--out={out}/v.gif",
         ("--reference-poses not found", "r.npy"), fast=True),
    Case("transfer-wrong-kind",
         "transfer --checkpoint {srgan} --poses {dir} --no-normalize --out={out}/v.gif",
         ("srgan.ckpt holds a 'SRGAN' checkpoint", "Pose2Video")),
    Case("transfer-no-reference", "transfer --checkpoint {srgan} --poses {dir} --out={out}/v.gif",
         ("no reference_poses.npy beside", "--reference-poses", "--no-normalize")),
    Case("transfer-text-reference",
         "transfer --checkpoint {srgan} --poses {dir} --reference-poses {text} --out={out}/v.gif",
         ("cannot read reference poses", "text.pt", "(T, 18, 3)")),
    Case("transfer-wrong-shape-reference",
         "transfer --checkpoint {srgan} --poses {dir} --reference-poses {flat_npy} "
         "--out={out}/v.gif",
         ("flat.npy must have shape (18, 3) per pose", "got (4, 5)")),
    Case("transfer-poses-without-frames",
         "transfer --checkpoint {pose2video} --poses {dir} --no-normalize --out={out}/v.gif",
         ("bad inputs has no frames/ sub-folder",)),
    # -- sweep -------------------------------------------------------------------------------
    Case("sweep-missing-recipe", "sweep {dir}/nothere.yaml --out={out}",
         ("recipe file not found",), fast=True),
    Case("sweep-bad-seeds", "sweep {recipe} --seeds a-b --out={out}", ("--seeds", "'a-b'")),
    Case("sweep-bad-grid", "sweep {recipe} --grid evaluation.n --out={out}",
         ("--grid", "evaluation.n")),
    Case("sweep-unknown-grid-key", "sweep {recipe} --grid evaluation.m=1,2 --out={out}",
         ("evaluation.m: unknown key",)),
    # -- tracking --------------------------------------------------------------------------
    Case("tracking-replay-missing-folder", "tracking replay {dir}/gone",
         ("RUN_DIR", "gone does not exist"), fast=True),
    Case("tracking-replay-nothing-kept", "tracking replay {dir}",
         ("no tracking buffer in", "bad inputs/tracking-buffer")),
    # -- an error no check catches: exit 3, the traceback in the output folder's log --------
    Case("internal-error",
         f"{ROBUSTNESS.replace('--eps 0', '--eps 0.1')} --model {{ts_grad_bomb}} {TINY}",
         ("internal error", "counterfeit-error.log", "--debug"), exit=3, entry_point=True),
]
# fmt: on


class GradBomb(nn.Module):
    """A classifier that answers without gradients and fails as soon as it is attacked."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.requires_grad:
            raise RuntimeError("the attacked model raised")
        return self.fc(x.flatten(1))


def _script(module: nn.Module, path: Path) -> Path:
    with pytest.warns(FutureWarning):  # torch.jit is deprecated, and still in use
        torch.jit.save(torch.jit.script(module.eval()), str(path))
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """Cheap bad (and good) inputs, in a folder whose name holds a space."""
    d = tmp_path_factory.mktemp("fuzz") / "bad inputs"
    d.mkdir()
    torch.manual_seed(0)
    ts8 = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    ts32 = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Flatten(), nn.Linear(2 * 32 * 32, 10))
    files = {
        "dir": d,
        "ts8": _script(ts8, d / "ts8.pt"),
        "ts32": _script(ts32, d / "ts32.pt"),
        "ts_image": _script(nn.Identity(), d / "identity.pt"),
        "ts_grad_bomb": _script(GradBomb(), d / "grad_bomb.pt"),
        "empty": d / "empty.pt",
        "text": d / "text.pt",
        "junk": d / "junk.bin",
        "truncated": d / "truncated.pt",
        "pickled": d / "pickled.pt",
        "state_dict": d / "weights.pt",
        "srgan": d / "srgan.ckpt",
        "pose2video": d / "pose2video.ckpt",
        "flat_npy": d / "flat.npy",
        "truncated_ckpt": d / "cut.ckpt",
        "png": d / "photo.png",
        "tiny_png": d / "tiny.png",
        "images": d / "images",
        "no_images": d / "no images",
        "empty_yaml": d / "empty.yaml",
        "truncated_yaml": d / "cut.yaml",
        "png_yaml": d / "image.yaml",
        "list_yaml": d / "list.yaml",
        "recipe": d / "tiny robustness.yaml",
    }
    files["empty"].write_bytes(b"")
    files["text"].write_text("hello, I am not a model\n")
    files["junk"].write_bytes(bytes(range(7, 64)))
    files["truncated"].write_bytes(files["ts8"].read_bytes()[:3000])
    torch.save(ts8, files["pickled"])
    torch.save(ts8.state_dict(), files["state_dict"])
    for path, method in [
        (files["srgan"], SRGAN(scale=2, blocks=1, width=8, d_width=8, crop_size=16)),
        (files["pose2video"], Pose2Video(image_size=32, width=4, d_width=4)),
    ]:
        state = {"method": method.state_dict(), "method_init": method.init_args()}
        torch.save({"method_class": type(method).__name__, **state}, path)
    files["truncated_ckpt"].write_bytes(files["srgan"].read_bytes()[:2000])
    np.save(files["flat_npy"], np.zeros((4, 5), np.float32))
    Image.fromarray(np.full((12, 12, 3), 128, np.uint8)).save(files["png"])
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(files["tiny_png"])
    for label in ("0", "1"):
        (files["images"] / label).mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(files["images"] / label / "a.png")
    (files["images"] / "1" / "broken.png").write_text("not an image")
    (files["no_images"] / "0").mkdir(parents=True)
    files["empty_yaml"].write_text("")
    files["truncated_yaml"].write_text("name: cut\ntask: [robustness\n")
    files["png_yaml"].write_bytes(files["png"].read_bytes())
    files["list_yaml"].write_text("- a\n- b\n")
    recipe = {
        "name": "tiny-robustness",
        "task": "robustness",
        "model": str(files["ts8"]),
        "data": {"dataset": {"name": "sklearn-digits"}, "image_size": 8, "channels": 1},
        "evaluation": {"n": 8, "eps": [0.0], "corruptions": "none"},
        "tracking": {"enabled": False},
    }
    files["recipe"].write_text(yaml.safe_dump(recipe))
    return files


def mlflow_runs(uri: str) -> int:
    """How many runs the session's SQLite MLflow store holds."""
    with sqlite3.connect(uri.removeprefix("sqlite:///")) as db:
        return db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]


@pytest.mark.parametrize("case", CATALOGUE, ids=lambda case: case.id)
def test_bad_input_is_one_named_error(case, inputs, tmp_path, capfd, monkeypatch, mlflow_uri):
    out = tmp_path / "out dir"
    for key, value in case.env.items():
        monkeypatch.setenv(key, value)
    runs = mlflow_runs(mlflow_uri)
    started = time.perf_counter()
    code = _main(case.args(inputs, out))
    elapsed = time.perf_counter() - started
    err = capfd.readouterr().err
    assert code == case.exit, err[-3000:]
    assert "Traceback" not in err
    for words in case.says:
        assert words in err, err[-3000:]
    if DEAD_URI in case.env.values():
        assert elapsed < 10, f"a dead tracking server took {elapsed:.1f} s to report"
    if case.exit == 3:
        log = out / "counterfeit-error.log"
        assert str(log) in err and "Traceback" in log.read_text()
        return
    assert mlflow_runs(mlflow_uri) == runs, "an MLflow run was created for invalid input"
    left = [p for p in (out, tmp_path / "runs") if p.exists()]
    assert not left, f"half-made output folder {left}"


def _main(argv: list[str]) -> int:
    """``main(argv)``; argparse's own errors (exit 2, usage) end in SystemExit."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize("case", [c for c in CATALOGUE if c.entry_point], ids=lambda case: case.id)
def test_the_installed_script_prints_no_traceback(case, inputs, tmp_path):
    out = tmp_path / "out dir"
    started = time.perf_counter()
    result = run_script(*case.args(inputs, out), env=case.env, timeout=300)
    elapsed = time.perf_counter() - started
    assert result.returncode == case.exit, result.stderr[-3000:]
    assert "Traceback" not in result.stderr + result.stdout
    for words in case.says:
        assert words in result.stderr
    if case.fast:
        assert elapsed < 2, f"{case.id} took {elapsed:.1f} s (torch imported before the check?)"


def test_fast_cases_are_answered_before_torch_is_imported(inputs, tmp_path):
    """Every ``fast`` case, in one interpreter that must not import torch."""
    fast = [case.args(inputs, tmp_path / "out dir") for case in CATALOGUE if case.fast]
    result = python(
        "import sys\n"
        "from counterfeit.recipes.cli import main\n"
        f"assert [main(argv) for argv in {fast!r}] == [2] * {len(fast)}\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.count("counterfeit: error:") == len(fast)


def test_help_and_recipes_answer_without_torch():
    result = python(
        "import sys\n"
        "from counterfeit.recipes.cli import main\n"
        "assert main(['recipes']) == 0\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "digits-dann" in result.stdout
    started = time.perf_counter()
    result = run_script("--help")
    assert result.returncode == 0 and "robustness" in result.stdout
    assert time.perf_counter() - started < 2


def run_script(*args: str, env: dict | None = None, timeout: int = 600):
    """The installed ``counterfeit`` console script, started from nothing."""
    return subprocess.run(
        [str(VENV_BIN / "counterfeit"), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


def python(script: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)


def test_paths_with_spaces_work(inputs, tmp_path):
    """A recipe file and output folders whose names hold spaces."""
    out = tmp_path / "my runs" / "tiny robustness"
    assert main(["run", str(inputs["recipe"]), f"--out={out}"]) == 0
    assert (out / "summary.json").is_file() and (out / "report.json").is_file()
    again = out.with_name("tiny robustness 2")
    command = Case("spaces", f"{ROBUSTNESS} --model {{ts8}} {TINY}", exit=0)
    assert main(command.args(inputs, again)) == 0
    assert (again / "report.json").is_file()


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_prints_the_traceback(where, inputs, tmp_path, capfd):
    (case,) = [c for c in CATALOGUE if c.id == "internal-error"]
    argv = case.args(inputs, tmp_path / "out")
    assert main(["--debug", *argv] if where == "before" else [*argv, "--debug"]) == 3
    err = capfd.readouterr().err
    assert "Traceback" in err and "the attacked model raised" in err


def test_every_command_is_in_the_catalogue():
    """A new command gets its bad-input cases too (``recipes`` takes no input)."""
    (commands,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    covered = {shlex.split(case.argv)[0] for case in CATALOGUE}
    assert set(commands.choices) - {"recipes"} <= covered


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through chmod")
@pytest.mark.parametrize("command", ["run {recipe}", f"{ROBUSTNESS} --model {{ts8}}"])
def test_read_only_output_folder(command, inputs, tmp_path, capfd):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        argv = Case("read-only", command).args(inputs, tmp_path)
        assert main([*argv, f"--out={locked / 'run'}"]) == 2
    finally:
        locked.chmod(0o700)
    err = capfd.readouterr().err
    assert str(locked) in err and "not writable" in err and "Traceback" not in err
    assert not (locked / "run").exists()
