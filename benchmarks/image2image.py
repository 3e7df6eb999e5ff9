"""Image-to-image GANs against their papers, and the Trainer's speed on each model's step.

    python benchmarks/image2image.py --threads 1                                  # everything
    python benchmarks/image2image.py --only srresnet --threads 1 --markdown docs/results.md

Parts (each lives in its own module, ``benchmarks/i2i_<model>.py``):
  srresnet        the photos-srgan recipe's small preset (4-block SRResNet, bicubic skip,
                  lr 2e-4, 64 px crops, batch 16): PSNR / SSIM on the Y channel of the held-out
                  astronaut and coffee photos (4-pixel border), beside bicubic; target: beat
                  bicubic within 20 minutes on 2 CPU cores.
  srgan           continues with the SRGAN phase and shows the perceptual trade-off (PSNR vs
                  sharpness) with image crops.
  cyclegan        synth2real-cyclegan: label preservation of translated synthetic digits read
                  by a classifier trained on the real domain (target >= 0.90), plain and with
                  CyCADA's semantic-consistency loss; FID-digits of translated vs real.
  pix2pix         edges2digits-pix2pix: L1 and SSIM on held-out pairs, Pix2Pix vs an L1-only
                  U-Net trained the same number of steps.
  speed           each model's step through gan.Trainer vs a hand-written loop (target >= 0.95).

All parts use only embedded data (photos from scikit-image / scikit-learn, the
embedded digits); ``--data-root`` is accepted for symmetry with the other scripts.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import i2i_cyclegan
import i2i_pix2pix
import i2i_srgan
import torch
from report import run_parts


def speed_part(args: argparse.Namespace) -> str:
    """The three models' Trainer-overhead tables, one after the other."""
    return "\n".join(module.speed(args) for module in (i2i_pix2pix, i2i_cyclegan, i2i_srgan))


PARTS = {
    "srresnet": i2i_srgan.srresnet,
    "srgan": i2i_srgan.srgan_tradeoff,
    "cyclegan": i2i_cyclegan.cyclegan,
    "pix2pix": i2i_pix2pix.pix2pix,
    "speed": speed_part,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", choices=list(PARTS), action="append")
    parser.add_argument("--steps", type=int, help="training steps (default: each part's own)")
    parser.add_argument("--data-root", type=Path, help="unused: every part uses embedded data")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/image2image"))
    parser.add_argument("--markdown", type=Path, help="append the tables to this file")
    parser.add_argument("--images", type=Path, default=Path("docs/images"), help="copy grids here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    run_parts("Image-to-image benchmark", args.only or list(PARTS), PARTS, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
