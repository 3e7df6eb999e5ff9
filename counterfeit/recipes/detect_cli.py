"""The ``counterfeit detect`` command line: ``fit`` a detector of generated images, ``score``
images with it (the work is in :mod:`counterfeit.recipes.detect_commands`, imported only
once the arguments are good)."""

from __future__ import annotations

import argparse

from counterfeit.recipes import preflight


def add_detect_command(commands) -> None:
    """``counterfeit detect fit|score``."""
    detect = commands.add_parser(
        "detect",
        help="train a detector of generated images, or score images with one",
        description="Catching counterfeits: `fit` trains a detector (a small CNN, or a linear "
        "model on the Fourier spectrum) on real images against fakes from GAN checkpoints "
        "or folders, with Blur+JPEG augmentation, and saves OUT/detector.pt; `score` gives "
        "each image's probability of being generated.",
    )
    actions = detect.add_subparsers(dest="action", required=True, metavar="ACTION")
    fit = actions.add_parser(
        "fit",
        help="train on real images against fakes; write OUT/detector.pt",
        description="Train a --kind detector on --real's train split against the --fake "
        "sources (GAN training checkpoints, drawn from; or folders of images), hold out "
        "--validation-fraction of both to set the threshold, and write OUT/detector.pt and "
        "OUT/fit.json with the validation AUROC and accuracy per source.",
    )
    fit.add_argument("--real", required=True, help="a domain name (e.g. mnist-small) or a folder")
    fit.add_argument(
        "--fake", required=True, action="append", metavar="CHECKPOINT_OR_FOLDER",
        help="a GAN checkpoint (DCGAN, InfoGAN, ProGAN, BigGAN) or a folder of fakes; repeatable",
    )  # fmt: skip
    fit.add_argument("--kind", choices=["cnn", "spectrum"], default="cnn")
    fit.add_argument("--steps", type=int, default=300)
    fit.add_argument("--batch-size", type=int, default=64)
    fit.add_argument("--lr", type=float, default=1e-3)
    fit.add_argument("--augment", type=float, default=0.5, help="P(blur) and P(JPEG), 0.5")
    fit.add_argument("--n-fake", type=int, default=2000, help="fakes drawn per checkpoint")
    fit.add_argument("--data-root", help="folder with dataset files (mnist, usps, ...)")
    fit.add_argument("--image-size", type=int, default=28, help="the real images' size")
    fit.add_argument("--channels", type=int, choices=[1, 3], default=1)
    fit.add_argument("--validation-fraction", type=float, default=0.2)
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--device", default="cpu", help="auto, cpu, cuda or cuda:N")
    fit.add_argument("--out", required=True, help="output folder")
    fit.add_argument("--overwrite", action="store_true", help="replace OUT/detector.pt")
    fit.set_defaults(handler=_fit)

    score = actions.add_parser(
        "score",
        help="score images with a saved detector; write OUT/scores.csv",
        description="Give each IMAGE (files, or folders searched recursively) its P(fake) "
        "under the detector `detect fit` saved: OUT/scores.csv (path, p_fake, flagged above "
        "the detector's validation threshold).",
    )
    score.add_argument("--checkpoint", required=True, help="e.g. runs/detect/detector.pt")
    score.add_argument("images", nargs="+", metavar="IMAGES", help="image files or folders")
    score.add_argument("--out", default="detect-scores", help="default: detect-scores")
    score.add_argument("--device", default="cpu", help="auto, cpu, cuda or cuda:N")
    score.add_argument(
        "--skip-unreadable", action="store_true", help="leave out files that are not images"
    )
    score.set_defaults(handler=_score)


def _fit(args: argparse.Namespace) -> int:
    from counterfeit.gan.errors import ConfigError

    if args.steps < 1 or args.batch_size < 1 or args.n_fake < 4:
        raise ConfigError("--steps and --batch-size must be positive and --n-fake at least 4.")
    if not 0 < args.validation_fraction < 1 or not 0 <= args.augment <= 1:
        raise ConfigError("--validation-fraction must be in (0, 1) and --augment in [0, 1].")
    if args.data_root is not None:
        preflight.existing_folder(args.data_root, "--data-root")
    out = preflight.writable_folder(args.out)
    if (out / "detector.pt").exists() and not args.overwrite:
        raise ConfigError(f"{out / 'detector.pt'} exists: pass --overwrite or another --out.")
    from counterfeit.recipes.detect_commands import run_detect_fit

    run_detect_fit(
        args.real, args.fake, out, kind=args.kind, steps=args.steps, batch_size=args.batch_size,
        lr=args.lr, augment=args.augment, n_fake=args.n_fake, data_root=args.data_root,
        image_size=args.image_size, channels=args.channels,
        validation_fraction=args.validation_fraction, seed=args.seed, device=args.device,
    )  # fmt: skip
    return 0


def _score(args: argparse.Namespace) -> int:
    preflight.existing_checkpoint(args.checkpoint)
    preflight.writable_folder(args.out)
    from counterfeit.recipes.detect_commands import run_detect_score

    run_detect_score(
        args.checkpoint, args.images, args.out, args.device, skip_unreadable=args.skip_unreadable
    )
    return 0
