"""The ``counterfeit anomaly`` command line: ``fit`` a detector on normal images, ``score``
images with it (the work is in :mod:`counterfeit.recipes.anomaly_commands`, imported only
once the arguments are good)."""

from __future__ import annotations

import argparse

from counterfeit.recipes import preflight

METHODS = "pca, knn, autoencoder, anogan, f-anogan, ganomaly"


def add_anomaly_command(commands) -> None:
    """``counterfeit anomaly fit|score``."""
    anomaly = commands.add_parser(
        "anomaly",
        help="fit an anomaly detector on normal images, or score images with one",
        description="Anomaly detection: `fit` learns normal images only (PCA, kNN, an "
        "autoencoder, AnoGAN, f-AnoGAN or GANomaly), sets its threshold on held-out normal "
        "images and saves OUT/detector.pt; `score` flags images it does not find normal.",
    )
    actions = anomaly.add_subparsers(dest="action", required=True, metavar="ACTION")

    fit = actions.add_parser(
        "fit",
        help="learn the normal images of a dataset; write OUT/detector.pt",
        description="Fit --method on the --normal class(es) of --data's train split, hold out "
        "--validation-fraction of them to set the threshold at --false-alarm, and write "
        "OUT/detector.pt, OUT/fit.json and OUT/scores.png. With a built-in domain, also the "
        "AUROC of the normal class against the others on its test split.",
    )
    fit.add_argument(
        "--data", required=True, help="a domain name (e.g. mnist-small) or a folder CLASS/*.png"
    )
    fit.add_argument("--data-root", help="folder with dataset files (mnist, usps, ...)")
    fit.add_argument(
        "--normal",
        help="the normal class(es), comma-separated: numbers or class folder names "
        "(omit for a flat folder of normal images)",
    )
    fit.add_argument("--method", default="f-anogan", help=f"one of {METHODS} (default f-anogan)")
    fit.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a detector setting, e.g. --set gan_steps=5000 (default: the mnist-anomaly "
        "recipe's CPU budget; repeatable)",
    )
    fit.add_argument("--image-size", type=int, default=28, help="images are resized to this")
    fit.add_argument("--channels", type=int, choices=[1, 3], default=1)
    fit.add_argument("--false-alarm", type=float, default=0.05, help="default 0.05")
    fit.add_argument("--validation-fraction", type=float, default=0.1, help="default 0.1")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--device", default="cpu", help="auto, cpu, cuda or cuda:N")
    fit.add_argument("--out", required=True, help="output folder")
    fit.add_argument("--overwrite", action="store_true", help="replace OUT/detector.pt")
    fit.set_defaults(handler=_fit)

    score = actions.add_parser(
        "score",
        help="score images with a saved detector; write OUT/scores.csv and residual maps",
        description="Score each IMAGE (files, or folders searched recursively) with the "
        "detector `anomaly fit` saved: OUT/scores.csv (path, score, flagged above the "
        "detector's threshold), OUT/maps/*.png (residual maps, for detectors that rebuild "
        "images) and OUT/top_anomalies.png.",
    )
    score.add_argument("--checkpoint", required=True, help="e.g. runs/anomaly-7/detector.pt")
    score.add_argument("images", nargs="+", metavar="IMAGES", help="image files or folders")
    score.add_argument("--out", default="anomaly-scores", help="default: anomaly-scores")
    score.add_argument("--device", default="cpu", help="auto, cpu, cuda or cuda:N")
    score.add_argument(
        "--skip-unreadable", action="store_true", help="leave out files that are not images"
    )
    score.set_defaults(handler=_score)


def _fit(args: argparse.Namespace) -> int:
    from counterfeit.gan.errors import ConfigError

    if not 0 < args.false_alarm < 1 or not 0 < args.validation_fraction < 1:
        raise ConfigError("--false-alarm and --validation-fraction must be in (0, 1).")
    if any(sep in args.data for sep in ("/", "\\", ".")):  # a path: domain names have none
        preflight.existing_folder(args.data, "--data")
    if args.data_root is not None:
        preflight.existing_folder(args.data_root, "--data-root")
    out = preflight.writable_folder(args.out)
    if (out / "detector.pt").exists() and not args.overwrite:
        raise ConfigError(f"{out / 'detector.pt'} exists: pass --overwrite or another --out.")
    from counterfeit.recipes.anomaly_commands import run_anomaly_fit
    from counterfeit.recipes.loader import apply_overrides

    run_anomaly_fit(
        args.data,
        args.method,
        out,
        normal=[n.strip() for n in args.normal.split(",")] if args.normal else None,
        settings=apply_overrides({}, args.settings),
        data_root=args.data_root,
        image_size=args.image_size,
        channels=args.channels,
        false_alarm=args.false_alarm,
        validation_fraction=args.validation_fraction,
        seed=args.seed,
        device=args.device,
    )
    return 0


def _score(args: argparse.Namespace) -> int:
    preflight.existing_checkpoint(args.checkpoint)
    preflight.writable_folder(args.out)
    from counterfeit.recipes.anomaly_commands import run_anomaly_score

    run_anomaly_score(
        args.checkpoint, args.images, args.out, args.device, skip_unreadable=args.skip_unreadable
    )
    return 0
