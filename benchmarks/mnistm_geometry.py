"""Where MNIST-M's digits sit: zoom of the MNIST digit that best matches each MNIST-M image.

    python benchmarks/mnistm_geometry.py --data-root ../shared/datasets

MNIST-M's test images are MNIST's test digits (same order, 9,001 of them) blended
with photo patches at 32 px. This places each MNIST digit zero-padded to 32 px,
zooms it about the centre by each factor, and correlates its edge map with the
MNIST-M image's (both blurred alike, so interpolation blur does not favour any
zoom). The peak says how the 32 px images were made: zoom 1.0 means MNIST padded
by 2 (crop them to 28, or pad MNIST to 32); 32/28 = 1.143 would mean resized.

A second table asks whether the blended digit was binarised. Each MNIST-M pixel
is |patch - digit|. Next to a pixel in the digit's core (MNIST grey >= 250, so
MNIST-M = 255 - patch there), the neighbouring pixel's value is predicted under
each hypothesis from the same (smooth) patch: binarised at > 0 (every inked
pixel full: 255 - patch) or grey (|patch - MNIST grey|). The hypothesis with the
smaller error is how the digit was blended.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms.functional import gaussian_blur

ZOOMS = (0.875, 0.9, 0.95, 1.0, 1.02, 1.05, 1.1, 1.143, 1.2)


def edges(images: torch.Tensor) -> torch.Tensor:
    """Gradient magnitude of blurred images, flattened and centred per image."""
    x = gaussian_blur(images, 7, 1.2)
    dx = x[..., 1:, :-1] - x[..., :-1, :-1]
    dy = x[..., :-1, 1:] - x[..., :-1, :-1]
    e = (dx.square() + dy.square()).sum(1).sqrt().flatten(1)
    return e - e.mean(1, keepdim=True)


def zoom(images: torch.Tensor, factor: float) -> torch.Tensor:
    theta = torch.tensor([[1 / factor, 0.0, 0.0], [0.0, 1 / factor, 0.0]])
    theta = theta.expand(images.shape[0], 2, 3)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, align_corners=False)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--n", type=int, default=1000, help="test images compared")
    args = parser.parse_args(argv)
    mnist = np.load(args.data_root / "mnist.npz")
    mnistm = np.load(args.data_root / "mnistm.npz")
    if not np.array_equal(mnist["y_test"][: args.n], mnistm["y_test"][: args.n]):
        raise SystemExit("MNIST-M's test labels do not follow MNIST's: cannot pair the images.")
    target = torch.tensor(mnistm["x_test"][: args.n]).permute(0, 3, 1, 2).float() / 255
    digits = torch.tensor(mnist["x_test"][: args.n]).float()[:, None] / 255
    padded = F.pad(digits, (2, 2, 2, 2))
    e_target = edges(target)
    print("| zoom of MNIST padded to 32 | edge correlation with MNIST-M |\n| --- | --- |")
    for factor in ZOOMS:
        e = edges(zoom(padded, factor))
        corr = (e * e_target).sum(1) / (e.norm(dim=1) * e_target.norm(dim=1) + 1e-9)
        print(f"| {factor:.3f} | {corr.mean().item():.3f} |")
    binarisation_table(padded[:, 0] * 255, target * 255)
    return 0


def binarisation_table(digit: torch.Tensor, target: torch.Tensor) -> None:
    """Mean error of each blending hypothesis for core pixels' right-hand neighbours."""
    core, right = digit[..., :-1] >= 250, digit[..., 1:]
    patch = 255 - target[..., :-1]  # at core pixels, MNIST-M = 255 - patch (both hypotheses)
    seen = target[..., 1:]
    print(
        "\n| neighbour's MNIST grey | pixels | error if binarised at > 0 | error if grey |\n"
        "| --- | --- | --- | --- |"
    )
    for low, high in ((250, 256), (150, 250), (60, 150), (1, 60), (0, 1)):
        sel = (core & (right >= low) & (right < high))[:, None].expand_as(seen)
        level = right[:, None].expand_as(seen)[sel]
        binary = torch.where(level > 0, 255 - patch[sel], patch[sel])
        grey = (patch[sel] - level).abs()
        print(
            f"| {low}-{high - 1} | {int(sel.sum()) // 3} | {(binary - seen[sel]).abs().mean():.1f} "
            f"| {(grey - seen[sel]).abs().mean():.1f} |"
        )


if __name__ == "__main__":
    raise SystemExit(main())
