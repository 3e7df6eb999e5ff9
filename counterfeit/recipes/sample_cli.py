"""The ``counterfeit sample`` command line (the work is in :mod:`counterfeit.recipes.sample`,
imported once the arguments are good)."""

from __future__ import annotations

import argparse

from counterfeit.recipes import preflight


def add_sample_command(commands) -> None:
    """``counterfeit sample --checkpoint CKPT [--class K] [--n 64] [--truncation T] --out PNG``."""
    sample = commands.add_parser(
        "sample",
        help="draw a grid of images from a trained BigGAN / DCGAN / InfoGAN / ProGAN / text-to-image "
        "checkpoint",
        description="Write --n images from a generator's checkpoint as one PNG grid (and a "
        "JSON beside it): BigGAN of --class (default: the classes in turn) from z truncated "
        "at --truncation; DCGAN, InfoGAN and ProGAN from their priors; a text-to-image GAN --n images of --text.",
    )
    sample.add_argument(
        "--checkpoint", required=True, help="e.g. runs/mnist-biggan/checkpoints/biggan.ckpt"
    )
    sample.add_argument("--class", dest="image_class", type=int, help="the class to draw")
    sample.add_argument("--n", type=int, default=64, help="images (default 64)")
    sample.add_argument("--truncation", type=float, help="BigGAN: |z| threshold, e.g. 0.7")
    sample.add_argument("--text", help='a text-to-image GAN: the caption, e.g. "a blue 3"')
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument(
        "--last-iterate", action="store_true", help="the trained G, not its weight average"
    )
    sample.add_argument("--device", default="cpu", help="auto, cpu, cuda or cuda:N")
    sample.add_argument("--out", default="samples.png", help="the PNG grid (default samples.png)")
    sample.set_defaults(handler=_sample)


def _sample(args: argparse.Namespace) -> int:
    from counterfeit.gan.errors import ConfigError

    if args.n < 1 or (args.truncation is not None and args.truncation <= 0):
        raise ConfigError("--n must be >= 1 and --truncation > 0.")
    if args.text is not None and not args.text.strip():
        raise ConfigError('--text is empty; give a caption, e.g. --text "a blue 3".')
    preflight.existing_checkpoint(args.checkpoint)
    out = preflight.writable_file(args.out)
    from counterfeit.recipes.sample import run_sample

    run_sample(
        args.checkpoint, out, args.n, args.image_class, args.truncation, args.seed,
        args.last_iterate, args.device, args.text,
    )  # fmt: skip
    return 0
