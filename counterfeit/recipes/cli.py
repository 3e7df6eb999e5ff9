"""The ``counterfeit`` command line.

    counterfeit run NAME_OR_PATH [--set key=value ...] [--out DIR] [--device auto|cpu|cuda]
                    [--seed N] [--resume [--allow-recipe-changes]] [--overwrite]
    counterfeit recipes
    counterfeit tracking replay RUN_DIR [--uri URI]
    counterfeit sweep NAME_OR_PATH [--seeds 0-9] [--grid key=v1,v2 ...] [--set key=value ...]
                    [--workers N] [--threads-per-worker T] [--out DIR] [--resume]
                    [--backend local|ray] [--address HOST:PORT]
    counterfeit translate --checkpoint CKPT --data NAME_OR_DIR --out DIR [--format png|npz]
    counterfeit upscale --checkpoint CKPT IMAGE... [--out DIR] [--device cpu]
    counterfeit transfer --checkpoint CKPT --poses DIR --out VIDEO.gif|mp4 [--smoothing 11]
                    [--no-normalize] [--reference-poses NPY] [--fps 15] [--scale 3]
    counterfeit robustness --model PATH --data NAME_OR_DIR [--eps 0,0.1,8/255] [--attacks fgsm,pgd]
                    [--norm Linf|L2] [--corruptions all|none|NAME,...] [--normalize MEAN,STD] [--arch module:Class]
                    [--trust-pickle] [--out DIR] ...
    counterfeit patch --model PATH --target CLASS --data NAME_OR_DIR [--area 0.2] [--shape circle]
                    [--steps 500] [--areas 0.05,0.1,0.2,0.3] [--normalize MEAN,STD] [--out DIR] ...
    counterfeit anomaly fit --data NAME_OR_DIR --normal CLASS --method f-anogan --out DIR
                    [--set key=value ...] [--false-alarm 0.05]
    counterfeit anomaly score --checkpoint DIR/detector.pt IMAGES... [--out DIR]
    counterfeit sample --checkpoint CKPT [--class 7] [--n 64] [--truncation 0.7] [--out grid.png]

Errors a user can cause are printed as one clear message (exit status 2); anything
else is an internal error, summed up in one line with the traceback in a log file (exit
status 3; ``--debug`` prints it); Ctrl-C during training writes a checkpoint and exits
with status 130 (see :mod:`counterfeit.recipes.boundary`). Arguments are checked before
torch is imported: ``--help``, ``recipes`` and a missing file answer at once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from counterfeit.recipes import preflight
from counterfeit.recipes.anomaly_cli import add_anomaly_command
from counterfeit.recipes.boundary import INTERRUPTED, run_command
from counterfeit.recipes.detect_cli import add_detect_command
from counterfeit.recipes.sample_cli import add_sample_command
from counterfeit.recipes.tracking_cli import add_tracking_command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="counterfeit",
        description="Synthetic-to-real adaptation, robustness and GANs for PyTorch.",
    )
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    commands = _Commands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))

    run = commands.add_parser("run", help="run a recipe end to end")
    run.add_argument(
        "recipe", help="a built-in recipe name (see `counterfeit recipes`) or a YAML path"
    )
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe value, e.g. --set train.steps=200 (repeatable)",
    )
    run.add_argument("--out", help="output folder (default: runs/RECIPE_NAME)")
    run.add_argument("--device", help="auto, cpu, cuda or cuda:N (overrides the recipe)")
    run.add_argument("--seed", type=int, help="random seed (overrides the recipe)")
    run.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its checkpoints"
    )
    run.add_argument("--overwrite", action="store_true", help="replace a previous run in --out")
    run.add_argument(
        "--allow-recipe-changes",
        action="store_true",
        help="with --resume: continue with a recipe that differs from the run's recipe.yaml",
    )
    run.set_defaults(handler=_run)

    recipes = commands.add_parser("recipes", help="list the built-in recipes")
    recipes.set_defaults(handler=_recipes)

    translate = commands.add_parser(
        "translate",
        help="write an adapted copy of a dataset with a trained generator (PixelDA)",
        description="Push a dataset through a trained generator and write the adapted images "
        "with their labels: OUT/CLASS/NNNNNN.png (an image-folder domain) or OUT/adapted.npz.",
    )
    translate.add_argument(
        "--checkpoint",
        required=True,
        help="a training checkpoint, e.g. runs/digits-pixelda/checkpoints/pixelda.ckpt",
    )
    translate.add_argument("--data", required=True, help="a domain name or a folder of images")
    translate.add_argument("--data-root", help="folder with dataset files (mnist, usps, ...)")
    translate.add_argument("--split", default="train", choices=["train", "test"])
    translate.add_argument("--out", required=True, help="output folder")
    translate.add_argument("--limit", type=int, help="translate at most this many images")
    translate.add_argument("--format", default="png", choices=["png", "npz"])
    translate.add_argument("--batch-size", type=int, default=256)
    translate.add_argument("--seed", type=int, default=0, help="seed of the generator's noise")
    translate.add_argument("--device", default="cpu", help="auto, cpu, cuda or cuda:N")
    translate.set_defaults(handler=_translate)

    upscale = commands.add_parser(
        "upscale",
        help="super-resolve images with a trained SRResNet / SRGAN checkpoint",
        description="Upscale each IMAGE by the checkpoint's factor (x4 for photos-srgan) and "
        "write OUT/STEM_xS.png.",
    )
    upscale.add_argument(
        "--checkpoint", required=True, help="e.g. runs/photos-srgan/checkpoints/srgan.ckpt"
    )
    upscale.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    upscale.add_argument("--out", default="upscaled", help="output folder (default: upscaled)")
    upscale.add_argument("--device", default="cpu", help="auto, cpu, cuda or cuda:N")
    upscale.set_defaults(handler=_upscale)

    transfer = commands.add_parser(
        "transfer",
        help="transfer a dancer's motion to the person a pose2video checkpoint was trained on",
        description="Read DIR/frames and DIR/poses (OpenPose JSON per frame), smooth and "
        "normalise the poses to the target's, and write the generated video and a "
        "side-by-side (source | pose | output).",
    )
    transfer.add_argument(
        "--checkpoint", required=True, help="e.g. runs/puppet-dance/checkpoints/pose2video.ckpt"
    )
    transfer.add_argument("--poses", required=True, help="folder with frames/ and poses/")
    transfer.add_argument("--out", required=True, help="the video: NAME.gif or NAME.mp4")
    transfer.add_argument(
        "--smoothing",
        type=int,
        help="keypoint window in frames (1: off; default: the paper's window, 11)",
    )
    transfer.add_argument(
        "--no-normalize", action="store_true", help="skip the global pose normalisation"
    )
    transfer.add_argument(
        "--reference-poses", help="the target's poses (.npy); default: the run's own"
    )
    transfer.add_argument("--fps", type=int, default=15)
    transfer.add_argument("--scale", type=int, default=3, help="enlarge frames this many times")
    transfer.add_argument("--device", default="cpu", help="auto, cpu, cuda or cuda:N")
    transfer.set_defaults(handler=_transfer)

    robustness = commands.add_parser(
        "robustness",
        help="evaluate a saved classifier under attacks and common corruptions",
        description="Clean accuracy, accuracy under attack at each eps (FGSM, BIM, PGD, "
        "APGD-CE, APGD-T, Square, AutoAttack with its stage table) and their per-image worst "
        "case, sanity flags (randomized model, masked gradients, ...), accuracy under common "
        "corruptions; written to OUT as report.json, report.md and plots/*.png, and logged "
        "to MLflow.",
    )
    _add_model_and_data_arguments(robustness)
    robustness.add_argument("--split", default="test", choices=["train", "test"])
    robustness.add_argument(
        "--eps",
        help="comma-separated budgets in pixel units, e.g. 0,0.1,8/255 (L-inf: in [0, 1]; "
        "L2: over the whole image)",
    )
    robustness.add_argument(
        "--norm", choices=["Linf", "L2"], help="the ball the attacks search (default Linf)"
    )
    robustness.add_argument(
        "--attacks",
        help="comma-separated: fgsm, bim, pgd, apgd-ce, apgd-t, square, autoattack "
        "(default fgsm,pgd); deepfool and cw are minimum-norm attacks (median perturbation)",
    )
    robustness.add_argument(
        "--corruptions", help="all (default), none, or comma-separated corruption names"
    )
    robustness.add_argument("--n", type=int, default=1000, help="images to evaluate (default 1000)")
    robustness.add_argument("--batch-size", type=int, default=256)
    robustness.add_argument("--out", help="output folder (default: runs/robustness-MODEL)")
    _add_run_arguments(robustness)
    robustness.set_defaults(handler=_robustness)
    _add_patch_command(commands)
    _add_sweep_command(commands)
    add_anomaly_command(commands)
    add_sample_command(commands)
    add_detect_command(commands)
    add_tracking_command(commands)
    return parser


DEBUG_HELP = "print the full traceback of an error"


class _Commands:
    """The sub-command registry, giving every command the common ``--debug`` flag."""

    def __init__(self, subparsers) -> None:
        self.subparsers = subparsers

    def add_parser(self, name: str, **kwargs) -> argparse.ArgumentParser:
        parser = self.subparsers.add_parser(name, **kwargs)
        # SUPPRESS: `counterfeit --debug run ...` is not reset by the sub-command's default.
        parser.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP
        )
        return parser


def _add_patch_command(commands) -> None:
    patch = commands.add_parser(
        "patch",
        help="train a universal adversarial patch toward a class and measure it",
        description="Train one adversarial patch (Brown et al. 2017) that makes --model predict "
        "--target wherever it is pasted (random location, scale, rotation), on the train split "
        "of --data; measure its targeted success on the test split beside a random-noise "
        "patch of the same size and across patch areas. Writes OUT/patch.png, OUT/patch.pt, "
        "OUT/patch.json and plots/*.png, and logs them to MLflow.",
    )
    _add_model_and_data_arguments(patch)
    patch.add_argument("--target", required=True, type=int, help="the class the patch aims at")
    patch.add_argument("--area", type=float, default=0.2, help="patch area, fraction of the image")
    patch.add_argument("--shape", default="circle", choices=["circle", "square"])
    patch.add_argument(
        "--scale", metavar="MIN,MAX", help="scale range of the patch's side (default 0.8,1.2)"
    )
    patch.add_argument("--rotation", type=float, help="largest rotation in degrees (default 22.5)")
    patch.add_argument("--steps", type=int, default=500, help="optimisation steps (default 500)")
    patch.add_argument("--batch-size", type=int, default=64, help="images per step (default 64)")
    patch.add_argument("--lr", type=float, help="learning rate (default 0.1, cosine-annealed)")
    patch.add_argument(
        "--loss",
        choices=["ce", "margin", "probability"],
        help="ce: the paper's log Pr(target) (default); probability: mean Pr(target), "
        "often stronger (try --lr 0.3)",
    )
    patch.add_argument("--areas", help="areas of the success curve, e.g. 0.05,0.1,0.2,0.3")
    patch.add_argument("--n", type=int, default=1000, help="test images measured (default 1000)")
    patch.add_argument("--out", help="output folder (default: runs/patch-MODEL-targetCLASS)")
    _add_run_arguments(patch)
    patch.set_defaults(handler=_patch)


def _add_sweep_command(commands) -> None:
    sweep = commands.add_parser(
        "sweep",
        help="run a recipe over seeds and a grid of settings, with statistics over seeds",
        description="Run RECIPE once per seed and grid point, each as its own `counterfeit "
        "run` process in OUT/GRIDPOINT/seed-S, WORKERS at a time; write OUT/sweep.json, "
        "OUT/sweep.md and OUT/plots/ (mean, sd, median, min/max, 95% t-interval per metric, "
        "paired method differences) and log them to one MLflow run with the members nested.",
    )
    sweep.add_argument("recipe", help="a built-in recipe name or a YAML path")
    sweep.add_argument("--seeds", default="0-4", help="e.g. 0-9 or 0,3,7 (default 0-4)")
    sweep.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="values of a recipe key to try, e.g. --grid model.lr=0.01,0.1 (repeatable: "
        "every combination)",
    )
    sweep.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe value in every member (repeatable)",
    )
    sweep.add_argument("--workers", type=int, help="members at once (default: cores // threads)")
    sweep.add_argument(
        "--threads-per-worker", type=int, default=1, help="threads of each member (default 1)"
    )
    sweep.add_argument("--out", help="output folder (default: runs/sweep-RECIPE_NAME)")
    sweep.add_argument(
        "--resume", action="store_true", help="run only the unfinished members of --out"
    )
    sweep.add_argument("--backend", default="local", choices=["local", "ray"])
    sweep.add_argument(
        "--address", help="Ray cluster: HOST:PORT of its head, ray://HOST:10001 or auto"
    )
    sweep.add_argument("--headline", metavar="METRIC", help="the metric printed per member")
    sweep.set_defaults(handler=_sweep)


def _sweep(args: argparse.Namespace) -> int:
    if args.out is not None:
        preflight.writable_folder(args.out)
    from counterfeit.recipes.sweep import SweepInterrupted, sweep

    try:
        result = sweep(
            args.recipe,
            seeds=args.seeds,
            grid=args.grid,
            overrides=args.overrides,
            workers=args.workers,
            threads_per_worker=args.threads_per_worker,
            out=args.out,
            resume=args.resume,
            backend=args.backend,
            address=args.address,
            headline=args.headline,
        )
    except SweepInterrupted as exc:
        print(f"counterfeit: {exc}", file=sys.stderr)
        return INTERRUPTED
    print(f"wrote {result.paths['sweep_md']} and {result.paths['sweep_json']}")
    if result.failed:
        print(
            f"counterfeit: {len(result.failed)} member(s) failed: "
            f"{', '.join(m.name for m in result.failed)} (errors in {result.paths['sweep_md']})",
            file=sys.stderr,
        )
        return 1
    return 0


def _add_model_and_data_arguments(parser: argparse.ArgumentParser) -> None:
    """The saved classifier and the images of the commands that attack a model."""
    parser.add_argument(
        "--model",
        required=True,
        help="a torch.export program (.pt2), a TorchScript file, or a state_dict with --arch",
    )
    parser.add_argument("--arch", help="module:Class of a state_dict's network")
    parser.add_argument(
        "--trust-pickle",
        action="store_true",
        help="allow a whole pickled model (loading it runs code from the file)",
    )
    parser.add_argument(
        "--normalize",
        metavar="MEAN,STD",
        help="the model expects (x - mean) / std: MEAN,STD or C means then C stds",
    )
    parser.add_argument(
        "--data", required=True, help="a domain name (e.g. mnist-small) or a folder CLASS/*.png"
    )
    parser.add_argument("--data-root", help="folder with dataset files (mnist, usps, ...)")
    parser.add_argument("--image-size", type=int, help="default: from a .pt2 model")
    parser.add_argument("--channels", type=int, choices=[1, 3], help="default: from a .pt2")


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Device, seed and output policy of the commands that build their own recipe."""
    parser.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--overwrite", action="store_true", help="replace a previous run")
    parser.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")


def _run(args: argparse.Namespace) -> int:
    from counterfeit.recipes.loader import load_recipe

    if args.out is not None:
        preflight.writable_folder(args.out)  # before the recipe loads: fail fast
    overrides = list(args.overrides)
    if args.device is not None:
        overrides.append(f"device={args.device}")
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    loaded = load_recipe(args.recipe, overrides)
    if args.out is None:
        args.out = str(Path("runs") / loaded.recipe.name)
        preflight.writable_folder(args.out)
    from counterfeit.recipes.run import run_recipe

    run_recipe(
        loaded,
        out=args.out,
        resume=args.resume,
        overwrite=args.overwrite,
        allow_recipe_changes=args.allow_recipe_changes,
    )
    return 0


def _upscale(args: argparse.Namespace) -> int:
    preflight.existing_checkpoint(args.checkpoint)
    for image in args.images:
        preflight.existing_file(image, "image")
    preflight.writable_folder(args.out)
    from counterfeit.recipes.upscale import run_upscale

    run_upscale(args.checkpoint, args.images, args.out, device=args.device)
    return 0


def _transfer(args: argparse.Namespace) -> int:
    preflight.existing_checkpoint(args.checkpoint)
    preflight.existing_folder(args.poses, "--poses")
    if args.reference_poses is not None:
        preflight.existing_file(args.reference_poses, "--reference-poses")
    preflight.writable_file(args.out)
    from counterfeit.gan.data.pose import DEFAULT_SMOOTHING_WINDOW
    from counterfeit.recipes.transfer import run_transfer

    meta = run_transfer(
        args.checkpoint,
        args.poses,
        args.out,
        reference_poses=args.reference_poses,
        smoothing_window=DEFAULT_SMOOTHING_WINDOW if args.smoothing is None else args.smoothing,
        normalize=not args.no_normalize,
        fps=args.fps,
        scale=args.scale,
        device=args.device,
    )
    print(f"wrote {', '.join(meta['written'])} ({meta['frames']} frames)")
    return 0


def _translate(args: argparse.Namespace) -> int:
    preflight.existing_checkpoint(args.checkpoint)
    preflight.writable_folder(args.out)
    from counterfeit.recipes.translate import run_translate

    run_translate(
        args.checkpoint,
        args.data,
        args.out,
        data_root=args.data_root,
        split=args.split,
        limit=args.limit,
        fmt=args.format,
        batch_size=args.batch_size,
        seed=args.seed,
        device=args.device,
    )
    return 0


def _recipes(args: argparse.Namespace) -> int:
    from counterfeit.recipes.loader import describe_builtin

    rows = describe_builtin()
    width = max(len(name) for name, _, _ in rows)
    for name, task, description in rows:
        print(f"{name.ljust(width)}  [{task}]  {description}")
    return 0


def _robustness(args: argparse.Namespace) -> int:
    _check_model_and_data(args)
    from counterfeit.recipes.commands import robustness_recipe

    return _run_built_recipe(args, "counterfeit robustness", robustness_recipe)


def _patch(args: argparse.Namespace) -> int:
    _check_model_and_data(args)
    from counterfeit.recipes.commands import patch_recipe

    return _run_built_recipe(args, "counterfeit patch", patch_recipe)


def _check_model_and_data(args: argparse.Namespace) -> None:
    """The files a model-attacking command names exist, and its --out can be written."""
    preflight.existing_model(args.model)
    if any(sep in args.data for sep in ("/", "\\", ".")):  # a path: domain names have none
        preflight.existing_folder(args.data, "--data")
    if args.data_root is not None:
        preflight.existing_folder(args.data_root, "--data-root")
    if args.out is not None:
        preflight.writable_folder(args.out)


def _run_built_recipe(
    args: argparse.Namespace, command: str, recipe_from_args: Callable[[argparse.Namespace], dict]
) -> int:
    """Run the recipe a command builds from its arguments, in --out (default runs/NAME)."""
    from counterfeit.recipes.loader import LoadedRecipe, validate
    from counterfeit.recipes.run import run_recipe

    raw = recipe_from_args(args)
    recipe = validate(raw, command)
    args.out = args.out or f"runs/{recipe.name}"
    preflight.writable_folder(args.out)
    run_recipe(LoadedRecipe(recipe, command, raw), out=args.out, overwrite=args.overwrite)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``counterfeit`` console script (exit status: see the module doc)."""
    try:
        args = build_parser().parse_args(argv)
    except KeyboardInterrupt:
        return INTERRUPTED
    return run_command(args.handler, args, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
