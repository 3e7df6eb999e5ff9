"""Pose-to-video (Chan et al. 2018) on the synthetic puppet, 64 px, CPU: quality and temporal tables.

    python benchmarks/pose2video.py --threads 1 --only quality --markdown docs/results.md
    python benchmarks/pose2video.py --threads 1 --only temporal

Parts (each through the ``puppet-dance`` recipe, the product's own code path):
  quality    the default recipe (temporal G, 2-scale PatchGAN + feature matching + 100 L1,
             keypoint jitter 0.75 px and 3% dropped points, smoothing window 11) at the
             calibration's step counts: trained to ``--short-steps`` (1164), scored, then
             resumed to ``--steps`` (2774) and scored again (a resume equals an
             uninterrupted run). PSNR / SSIM / foreground PSNR / flicker ratio on the
             held-out poses of the target, beside the background-only and
             nearest-training-frame baselines, and the transfer (the target rendered
             doing the source's dance) against the nearest frame. Then the trained model
             on the same held-out poses smoothed with other windows (1 = none), and on the
             clean poses. Copies the GIFs with ``--images``.
  temporal   the paper's temporal smoothing against single-frame training (temporal=false),
             ``--short-steps`` each, keypoint jitter on: flicker and PSNR. The temporal row
             is the quality part's short run when it has finished (same recipe and seed:
             ``OUT/pose2video/default/short-summary.json``; ``--wait-minutes`` waits for a
             quality part running beside it), else trained here.
  l1         the same U-Net on L1 alone (the calibration's "L1 only" row), ``--steps``.

The calibration figures (a plain U-Net of 1.8M parameters, L1 x100 + PatchGAN/LSGAN, batch
16, one CPU thread) are in docs/archive/benchmarks-notebook.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from PIL import Image, ImageSequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import run_parts

from counterfeit.gan.data.pose import pose_labels, smooth_poses
from counterfeit.gan.data.puppet import make_puppet_data
from counterfeit.gan.video import to_tensor_frames, video_scores
from counterfeit.recipes import load_recipe, run_recipe
from counterfeit.recipes.transfer import load_pose2video

CALIBRATION = (
    "| calibration (issue) | steps | PSNR | SSIM | fg-PSNR | flicker ratio |\n"
    "| --- | --- | --- | --- | --- | --- |\n"
    "| background only | - | 17.29 | 0.687 | 11.35 | 0 |\n"
    "| nearest training frame | - | 19.06 | 0.764 | 13.20 | 1.52 |\n"
    "| L1 only | 2774 | 26.79 | 0.928 | 20.84 | 0.87 |\n"
    "| L1 + PatchGAN | 1164 | 25.29 | 0.889 | 19.44 | 1.05 |\n\n"
    "Calibration transfer: nearest neighbour 18.19 dB, best model 21.20 dB.\n\n"
)
HEADER = (
    "| model | steps | PSNR | SSIM | fg-PSNR | flicker ratio | drift (dB) |\n"
    "| --- | --- | --- | --- | --- | --- | --- |\n"
)


def _run(args, name: str, overrides: list[str], resume: bool = False) -> dict:
    loaded = load_recipe(
        "puppet-dance",
        [
            *overrides,
            f"seed={args.seed}",
            "tracking.enabled=false",
            "train.progress=false",
            "device=cpu",
        ],
    )
    out = Path(args.out) / "pose2video" / name
    # The "full" part resumes the default run to more steps: a planned recipe change.
    return run_recipe(
        loaded, out=out, resume=resume, overwrite=not resume, allow_recipe_changes=resume
    )


def _row(label: str, steps: str, s: dict) -> str:
    drift = f"{s['drift_db']:+.2f}" if "drift_db" in s else "-"
    return (
        f"| {label} | {steps} | {s['psnr']:.2f} | {s['ssim']:.3f} | {s['fg_psnr']:.2f} | "
        f"{s['flicker_ratio']:.2f} | {drift} |\n"
    )


def _steps(summary: dict, name: str = "pose2video") -> str:
    return str(summary["train"][name]["steps"])


def quality(args: argparse.Namespace) -> str:
    """The default recipe at the calibration's step counts, beside the baselines."""
    overrides = [f"train.checkpoint_every={args.short_steps}", "evaluation.samples_every=500"]
    short = _run(args, "default", [*overrides, f"train.steps={args.short_steps}"])
    short_file = Path(args.out) / "pose2video" / "default" / "short-summary.json"
    short_file.write_text(json.dumps(short, default=str))
    full = _run(args, "default", [*overrides, f"train.steps={args.steps}"], resume=True)
    s = full["scores"]
    text = "### The default recipe (`puppet-dance`) at the calibration's step counts\n\n"
    text += CALIBRATION + HEADER
    text += _row("background only (median training frame)", "-", s["background only"])
    text += _row("nearest training frame (by pose)", "-", s["nearest training frame"])
    text += _row("pose2video, default recipe", _steps(short), short["scores"]["pose2video"])
    text += _row("pose2video, default recipe", _steps(full), s["pose2video"])
    t_short, t_full = short["transfer_scores"], full["transfer_scores"]
    text += (
        "\nTransfer (source dancer's motion, normalised; against the target rendered doing "
        "it): nearest training frame "
        f"{t_full['nearest training frame']['psnr']:.2f} dB / fg "
        f"{t_full['nearest training frame']['fg_psnr']:.2f}; pose2video "
        f"{t_short['pose2video']['psnr']:.2f} dB / fg {t_short['pose2video']['fg_psnr']:.2f} "
        f"at {_steps(short)} steps, {t_full['pose2video']['psnr']:.2f} dB / fg "
        f"{t_full['pose2video']['fg_psnr']:.2f} at {_steps(full)} steps (flicker ratio "
        f"{t_full['pose2video']['flicker_ratio']:.2f}).\n"
        f"Train time {full['train']['pose2video']['train_seconds']:.0f} s for the last "
        f"{int(_steps(full)) - int(_steps(short))} steps "
        f"({full['train']['pose2video']['steps_per_second']:.2f} steps/s), "
        f"{torch.get_num_threads()} torch thread(s). G "
        f"{full['architecture']['generator_parameters'] / 1e6:.2f}M parameters, D "
        f"{full['architecture']['discriminator_parameters'] / 1e6:.2f}M.\n"
    )
    text += _smoothing_sweep(full)
    if args.images:
        images = Path(args.images)
        images.mkdir(parents=True, exist_ok=True)
        for name in ("test", "transfer"):
            compact_gif(full["videos"][name], images / f"pose2video_{name}.gif")
        text += (
            "\n![held-out poses: pose | output | truth](images/pose2video_test.gif)\n"
            "![transfer: source | normalised pose | output | truth]"
            "(images/pose2video_transfer.gif)\n"
        )
    return text


def compact_gif(
    source: str | Path, target: Path, frames: int = 60, height: int = 128, colours: int = 128
) -> Path:
    """A docs-sized copy of a run's GIF: its first ``frames`` frames at ``height`` px,
    ``colours`` colours (the run's own GIF, every frame at full size, is 5-6 MB)."""
    with Image.open(source) as gif:
        duration = gif.info.get("duration", 66)
        kept = []
        for frame in ImageSequence.Iterator(gif):
            if len(kept) == frames:
                break
            frame = frame.convert("RGB")
            width = round(frame.width * height / frame.height)
            kept.append(frame.resize((width, height), Image.NEAREST).quantize(colours))
    kept[0].save(
        target, save_all=True, append_images=kept[1:], duration=duration, loop=0, optimize=True
    )
    return target


def _smoothing_sweep(summary: dict) -> str:
    """The trained model on the held-out poses smoothed with other windows, and on clean ones."""
    recipe = summary["resolved_recipe"]
    data = recipe["data"]
    p = make_puppet_data(
        data["image_size"],
        data["n_train"],
        data["n_test"],
        data["n_source"],
        seed=0,
        jitter_px=data["jitter_px"],
        drop_prob=data["drop_prob"],
    )
    model = load_pose2video(summary["train"]["pose2video"]["checkpoint"])
    truth = to_tensor_frames(p.test_frames)
    masks = torch.from_numpy(p.test_masks)
    default = recipe["poses"]["smoothing_window"]
    text = (
        "\nKeypoint smoothing at test time (the same trained model; held-out poses with "
        f"jitter {data['jitter_px']} px and {data['drop_prob']:.0%} dropped points):\n\n" + HEADER
    )
    windows = [
        (f"window {w}" + (" (default)" if w == default else ""), w) for w in (1, 5, 9, 11, 15)
    ]
    rows = [(label, smooth_poses(p.test_poses, w)) for label, w in windows]
    for label, poses in [*rows, ("clean poses (no detector noise)", p.test_clean_poses)]:
        labels = pose_labels(poses, data["image_size"]).float() / 255
        text += _row(label, "-", video_scores(model.generate(labels), truth, masks))
    return text


def temporal(args: argparse.Namespace) -> str:
    """Temporal smoothing (G on the previous frame, D on pairs) against single frames."""
    steps = args.short_steps
    common = [f"train.steps={steps}", f"train.checkpoint_every={steps}"]
    without = _run(args, "single-frame", [*common, "model.temporal=false"])
    short_file = Path(args.out) / "pose2video" / "default" / "short-summary.json"
    deadline = time.monotonic() + 60 * args.wait_minutes  # a quality part running beside
    while not short_file.is_file() and time.monotonic() < deadline:
        time.sleep(10)
    if short_file.is_file():
        with_t, source = json.loads(short_file.read_text()), f"the quality part's ({short_file})"
    else:
        with_t, source = _run(args, "temporal", common), "trained here"
    t, w = with_t["transfer_scores"]["pose2video"], without["transfer_scores"]["pose2video"]
    return (
        f"### Temporal smoothing against single frames, keypoint jitter on ({steps} steps)\n\n"
        + HEADER
        + _row(
            "temporal (the paper): G(x_t, y_{t-1}), D on pairs",
            str(steps),
            with_t["scores"]["pose2video"],
        )
        + _row("single frame: G(x_t), D on (x_t, y_t)", str(steps), without["scores"]["pose2video"])
        + f"\nTemporal row: {source}. Transfer PSNR / flicker ratio: temporal "
        f"{t['psnr']:.2f} / {t['flicker_ratio']:.2f}, single frame {w['psnr']:.2f} / "
        f"{w['flicker_ratio']:.2f}.\n"
    )


def l1(args: argparse.Namespace) -> str:
    """The same U-Net trained on L1 alone (no D): the calibration's "L1 only" row."""
    summary = _run(args, "l1-only", [f"train.steps={args.steps}", "model.gan=false"])
    return (
        f"### The same U-Net on L1 alone ({args.steps} steps)\n\n"
        + HEADER
        + _row("L1 only (model.gan=false)", _steps(summary), summary["scores"]["pose2video"])
    )


PARTS = {"quality": quality, "temporal": temporal, "l1": l1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=list(PARTS), action="append")
    parser.add_argument("--steps", type=int, default=2774)
    parser.add_argument("--short-steps", type=int, default=1164)
    parser.add_argument(
        "--wait-minutes",
        type=float,
        default=0.0,
        help="temporal: wait this long for a quality part running beside it",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    parser.add_argument("--markdown", type=Path, help="append the tables to this file")
    parser.add_argument("--images", type=Path, default=None, help="copy the GIFs here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    run_parts("Pose-to-video (issue 8)", args.only or list(PARTS), PARTS, args)


if __name__ == "__main__":
    main()
