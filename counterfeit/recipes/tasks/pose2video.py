"""The ``pose2video`` task: motion transfer, "Everybody Dance Now" (Chan et al. 2018).

Trains :class:`gan.models.pose2video.Pose2Video` on one target person's video
(frames + keypoints) and transfers a source dancer's motion to that person:

1. keypoints as a detector saw them, smoothed over a window (the paper's
   keypoint smoothing, ``poses.smoothing_window``), drawn as stick figures;
2. the source's poses mapped onto the target's ankle line and scale (the
   paper's global pose normalisation, ``poses.normalize``);
3. G trained with temporal smoothing and a multi-scale D (see the model);
4. held-out poses of the target scored against the real frames (PSNR, SSIM,
   foreground PSNR, flicker ratio, drift over the sequence), beside two
   baselines that need no training: the nearest training frame by pose, and
   the static background; with ``compare_l1: true`` also the same G trained on
   L1 alone;
5. the transfer: on the built-in ``puppet`` data the target rendered doing the
   source's dance is known, so the transfer is scored too.

Data: ``puppet`` (:mod:`gan.data.puppet`, offline and synthetic) or a user's
``folder``: ``PATH/target/{frames,poses}`` and ``PATH/source/{frames,poses}``
(OpenPose ``*_keypoints.json`` per frame, matching frame names). Writes
``OUT/videos/test.gif`` (pose | output | truth), ``OUT/videos/transfer.gif``
(source | pose | output [| truth]), sample grids, ``OUT/reference_poses.npy``
(the target's smoothed training poses, which ``counterfeit transfer`` uses to
normalise new source poses) and ``OUT/checkpoints/pose2video.ckpt``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from counterfeit.gan.callbacks import Callback, SampleGridCallback
from counterfeit.gan.data.loaders import InfiniteLoader
from counterfeit.gan.data.pose import (
    DEFAULT_SMOOTHING_WINDOW,
    PoseFrameSequence,
    face_corners,
    fit_pose_normalizer,
    load_pose_video,
    pose_labels,
    smooth_poses,
)
from counterfeit.gan.data.puppet import make_puppet_data
from counterfeit.gan.errors import DataError
from counterfeit.gan.models.pose2video import Pose2Video
from counterfeit.gan.plots import save_image_grid
from counterfeit.gan.train import TrainResult
from counterfeit.gan.video import (
    psnr_frames,
    side_by_side,
    to_tensor_frames,
    video_scores,
    write_video,
)
from counterfeit.recipes.context import TaskOutput
from counterfeit.recipes.schema import RecipeBase, StrictModel, TrainConfig
from counterfeit.recipes.tasks.base import Task

PRESETS = {
    "paper": {"width": 64, "d_width": 64, "num_d": 3},
    "small": {"width": 16, "d_width": 32, "num_d": 2},
}


class PoseDataConfig(StrictModel):
    """The target's video and the source's motion: the synthetic ``puppet`` or folders."""

    source: Literal["puppet", "folder"] = "puppet"
    image_size: int = Field(64, ge=32, le=1024, description="frames are square, this side")
    n_train: int = Field(600, ge=16, description="puppet: target training frames")
    n_test: int = Field(150, ge=8, description="puppet: held-out target frames")
    n_source: int = Field(150, ge=8, description="puppet: source dancer frames")
    jitter_px: float = Field(0.75, ge=0, description="puppet: detector jitter (pixels)")
    drop_prob: float = Field(0.03, ge=0, lt=1, description="puppet: dropped keypoints")
    path: Path | None = Field(None, description="folder: holds target/ and source/")
    test_fraction: float = Field(0.2, gt=0, lt=1, description="folder: last frames held out")

    @model_validator(mode="after")
    def _consistent(self) -> PoseDataConfig:
        if self.source == "folder" and self.path is None:
            raise ValueError("data.path is required when data.source is 'folder'")
        if self.image_size & (self.image_size - 1):
            raise ValueError(f"data.image_size must be a power of two, got {self.image_size}")
        return self


class PoseProcessing(StrictModel):
    smoothing_window: int = Field(
        DEFAULT_SMOOTHING_WINDOW, ge=1, description="keypoint smoothing (odd; 1: off)"
    )
    normalize: bool = Field(True, description="global pose normalisation of the source")

    @model_validator(mode="after")
    def _odd(self) -> PoseProcessing:
        if self.smoothing_window % 2 == 0:
            raise ValueError("poses.smoothing_window must be odd (a centred window)")
        return self


class Pose2VideoModelConfig(StrictModel):
    """Model settings; None takes the preset's value (see gan.models.pose2video)."""

    preset: Literal["paper", "small"] = "small"
    width: int | None = Field(None, gt=0)
    d_width: int | None = Field(None, gt=0)
    num_d: int | None = Field(None, ge=1)
    d_layers: int | None = Field(None, ge=1)
    temporal: bool = True
    gan: bool = True
    l1_weight: float = Field(100.0, ge=0)
    fm_weight: float = Field(10.0, ge=0)
    gan_loss: Literal["least-squares", "non-saturating"] = "least-squares"
    face: bool = False
    face_fraction: float = Field(0.2, gt=0, lt=1)
    norm: Literal["instance", "batch"] = "instance"
    dropout: float = Field(0.0, ge=0, lt=1)
    lr: float = Field(2e-4, gt=0)
    betas: tuple[float, float] = (0.5, 0.999)


class Pose2VideoEvaluation(StrictModel):
    samples_every: int | None = Field(250, gt=0)
    n_grid: int = Field(8, ge=1, le=32)
    fps: int = Field(15, ge=1, le=60)
    gif_scale: int = Field(3, ge=1, le=8, description="enlarge GIF frames this many times")


class Pose2VideoRecipe(RecipeBase):
    """Train pose-to-video on a target, score held-out poses and the transfer, write GIFs."""

    task: Literal["pose2video"]
    data: PoseDataConfig = PoseDataConfig()
    poses: PoseProcessing = PoseProcessing()
    model: Pose2VideoModelConfig = Pose2VideoModelConfig()
    train: TrainConfig
    compare_l1: bool = Field(False, description="also train the same G on L1 alone")
    evaluation: Pose2VideoEvaluation = Pose2VideoEvaluation()


@dataclass
class MotionData:
    """Everything the task uses, as arrays: frames uint8 (T, H, W, 3), poses (T, 18, 3)."""

    name: str
    train_frames: np.ndarray
    train_poses: np.ndarray
    test_frames: np.ndarray
    test_poses: np.ndarray
    source_frames: np.ndarray
    source_poses: np.ndarray
    fps: int
    test_masks: np.ndarray | None = None
    transfer_truth: np.ndarray | None = None
    transfer_masks: np.ndarray | None = None


def load_motion_data(data: PoseDataConfig) -> MotionData:
    """The target's train/held-out frames and poses and the source's, as the recipe names."""
    if data.source == "puppet":
        p = make_puppet_data(
            data.image_size,
            data.n_train,
            data.n_test,
            data.n_source,
            seed=0,
            jitter_px=data.jitter_px,
            drop_prob=data.drop_prob,
        )
        return MotionData(
            "puppet",
            p.train_frames,
            p.train_poses,
            p.test_frames,
            p.test_poses,
            p.source_frames,
            p.source_poses,
            p.fps,
            p.test_masks,
            p.transfer_truth,
            p.transfer_masks,
        )
    assert data.path is not None
    root = data.path.expanduser()
    for part in ("target", "source"):
        if not (root / part).is_dir():
            raise DataError(
                f"{root} has no {part}/ folder: the layout is PATH/target/{{frames,poses}} and "
                "PATH/source/{frames,poses} (OpenPose JSON per frame)."
            )
    frames, poses = load_pose_video(root / "target", data.image_size)
    split = len(frames) - max(2, round(data.test_fraction * len(frames)))
    if split < 2:
        raise DataError(f"{root / 'target'} has {len(frames)} frames: too few to hold some out.")
    source_frames, source_poses = load_pose_video(root / "source", data.image_size)
    return MotionData(
        str(root),
        frames[:split],
        poses[:split],
        frames[split:],
        poses[split:],
        source_frames,
        source_poses,
        fps=15,
    )


def nearest_frames(query: np.ndarray, bank: np.ndarray, threshold: float = 0.05) -> np.ndarray:
    """For each query pose, the index of the bank pose closest in confident keypoints.

    Distance: mean squared pixel distance over the keypoints confident in both.
    """
    qc, bc = query[..., 2] > threshold, bank[..., 2] > threshold
    q, b = torch.from_numpy(query[..., :2]).double(), torch.from_numpy(bank[..., :2]).double()
    both = torch.from_numpy(qc)[:, None] & torch.from_numpy(bc)[None]  # (Q, B, K)
    dist = ((q[:, None] - b[None]) ** 2).sum(-1) * both
    mean = dist.sum(-1) / both.sum(-1).clamp_min(1)
    mean[both.sum(-1) == 0] = float("inf")
    return mean.argmin(1).numpy()


def build_method(recipe: Pose2VideoRecipe, gan: bool | None = None) -> Pose2Video:
    """The recipe's method (preset values where unset); ``gan=False``: the same G on L1 alone."""
    settings = recipe.model.model_dump(exclude={"preset"})
    for key, value in PRESETS[recipe.model.preset].items():
        if settings[key] is None:
            settings[key] = value
    if gan is not None:
        settings["gan"] = gan
    settings["face"] = settings["face"] and settings["gan"]  # the face stage is adversarial
    return Pose2Video(image_size=recipe.data.image_size, **settings)


@dataclass
class Prepared:
    """Processed poses (smoothed; the source's normalised), label images and face corners."""

    train_poses: np.ndarray
    test_poses: np.ndarray
    source_poses: np.ndarray
    train_labels: torch.Tensor
    test_labels: torch.Tensor
    source_labels: torch.Tensor
    train_faces: torch.Tensor | None
    test_faces: torch.Tensor | None
    source_faces: torch.Tensor | None


def prepare(recipe: Pose2VideoRecipe, data: MotionData, face_size: int | None) -> Prepared:
    """Smooth every pose sequence, normalise the source's, draw the stick figures."""
    size, window = recipe.data.image_size, recipe.poses.smoothing_window
    train = smooth_poses(data.train_poses, window)
    test = smooth_poses(data.test_poses, window)
    source = smooth_poses(data.source_poses, window)
    if recipe.poses.normalize:
        source = fit_pose_normalizer(source, train).apply(source)

    def faces(poses: np.ndarray) -> torch.Tensor | None:
        return None if face_size is None else face_corners(poses, size, face_size)

    return Prepared(
        train,
        test,
        source,
        pose_labels(train, size),
        pose_labels(test, size),
        pose_labels(source, size),
        faces(train),
        faces(test),
        faces(source),
    )


class Pose2VideoTask(Task):
    """Pose-to-video motion transfer (Chan et al. 2018): temporal G, multi-scale D, GIFs."""

    schema = Pose2VideoRecipe
    recipe: Pose2VideoRecipe

    def prepare(self) -> None:
        r = self.recipe
        self.motion = data = load_motion_data(r.data)
        self.ctx.print(
            f"{data.name}: {len(data.train_frames)} training frames of the target, "
            f"{len(data.test_frames)} held out, {len(data.source_frames)} source frames, "
            f"{r.data.image_size} px"
        )

    def method_names(self) -> list[str]:
        return ["pose2video", "l1-only"] if self.recipe.compare_l1 else ["pose2video"]

    def build(self, name: str) -> Pose2Video:
        if name == "l1-only":
            return build_method(self.recipe, gan=False)
        method = build_method(self.recipe)
        self._prepare_poses(method)
        info = method.describe()
        self.ctx.print(
            f"Pose2Video ({self.recipe.model.preset}): G "
            f"{info['generator_parameters'] / 1e6:.2f}M parameters, D "
            f"{info['discriminator_parameters'] / 1e6:.2f}M "
            f"({method.discriminator and len(method.discriminator.scales)} scales, "
            f"{info['receptive_field']} px patches), temporal={method.temporal}, "
            f"face={method.use_face}"
        )
        return method

    def _prepare_poses(self, method: Pose2Video) -> None:
        """The poses every method trains on (face crops at ``method``'s face size), and
        ``OUT/reference_poses.npy`` for ``counterfeit transfer``."""
        data = self.motion
        face_size = method.face_size if method.use_face else None
        self.poses = poses = prepare(self.recipe, data, face_size)
        if self.ctx.dist.is_main:
            self.ctx.out.mkdir(parents=True, exist_ok=True)
            np.save(self.ctx.out / "reference_poses.npy", poses.train_poses)
        frames = torch.from_numpy(np.ascontiguousarray(data.train_frames)).permute(0, 3, 1, 2)
        self.sequence = PoseFrameSequence(poses.train_labels, frames, poses.train_faces, data.name)

    def data(self, name: str, method: Pose2Video) -> InfiniteLoader:
        return self.loader(self.sequence, self.recipe.train.batch_size, self.recipe.seed)

    def callbacks(self, name: str, method: Pose2Video, data: Any) -> list[Callback]:
        poses, ev = self.poses, self.recipe.evaluation
        n = min(ev.n_grid, len(poses.test_labels))
        labels = poses.test_labels[:n].float() / 255
        faces = None if poses.test_faces is None else poses.test_faces[:n]

        def grid(m: Pose2Video) -> torch.Tensor:
            return torch.cat([labels, m.generate(labels, faces)])

        out, every = self.ctx.out / "samples", ev.samples_every or 0
        return [SampleGridCallback({name: (grid, n)}, every, out, self.ctx.tracker)]

    def report(self, results: dict[str, TrainResult]) -> TaskOutput:
        """Held-out and transfer scores beside the baselines that need no training; GIFs."""
        ctx, recipe, methods = self.ctx, self.recipe, self.methods
        data, prepared = self.motion, self.poses
        ev = recipe.evaluation
        test_truth = to_tensor_frames(data.test_frames)
        test_masks = None if data.test_masks is None else torch.from_numpy(data.test_masks)
        background = to_tensor_frames(np.median(data.train_frames, axis=0).astype(np.uint8)[None])
        test_labels = prepared.test_labels.float() / 255
        source_labels = prepared.source_labels.float() / 255
        rows: dict[str, dict[str, float]] = {}
        outputs: dict[str, torch.Tensor] = {}
        for name, method in methods.items():
            outputs[name] = method.generate(test_labels, prepared.test_faces)
            rows[name] = video_scores(outputs[name], test_truth, test_masks)
            rows[name]["drift_db"] = _drift(outputs[name], test_truth)
        nn_index = nearest_frames(prepared.test_poses, prepared.train_poses)
        rows["nearest training frame"] = video_scores(
            to_tensor_frames(data.train_frames[nn_index]), test_truth, test_masks
        )
        rows["background only"] = video_scores(
            background.expand(len(test_truth), -1, -1, -1), test_truth, test_masks
        )
        main = methods["pose2video"]
        transfer = main.generate(source_labels, prepared.source_faces)
        transfer_scores: dict[str, dict[str, float]] = {}
        transfer_truth = None
        if data.transfer_truth is not None:
            transfer_truth = to_tensor_frames(data.transfer_truth)
            masks = None if data.transfer_masks is None else torch.from_numpy(data.transfer_masks)
            transfer_scores["pose2video"] = video_scores(transfer, transfer_truth, masks)
            nn_source = nearest_frames(prepared.source_poses, prepared.train_poses)
            transfer_scores["nearest training frame"] = video_scores(
                to_tensor_frames(data.train_frames[nn_source]), transfer_truth, masks
            )

        metrics: dict[str, float] = {}
        for prefix, table in (("test", rows), ("transfer", transfer_scores)):
            for name, values in table.items():
                key = name.replace(" ", "_")
                metrics.update({f"{prefix}/{key}/{k}": v for k, v in values.items()})
        table = [("model", "PSNR", "SSIM", "fg-PSNR", "flicker ratio", "steps")]
        table += [_table_row(name, v, results.get(name)) for name, v in rows.items()]
        table += [_table_row(f"transfer: {n}", v, None) for n, v in transfer_scores.items()]
        videos = _write_videos(
            ctx,
            recipe,
            [test_labels, outputs["pose2video"], test_truth],
            [to_tensor_frames(data.source_frames), source_labels, transfer, transfer_truth],
        )
        path = save_image_grid(
            torch.cat(
                [
                    test_labels[: ev.n_grid],
                    outputs["pose2video"][: ev.n_grid],
                    test_truth[: ev.n_grid],
                ]
            ),
            ctx.out / "plots" / "test_grid.png",
            min(ev.n_grid, len(test_truth)),
        )
        ctx.log_file(path, "plots")
        details = {
            "scores": rows,
            "transfer_scores": transfer_scores,
            "data": data.name,
            "architecture": main.describe(),
            "preset": recipe.model.preset,
            "poses": {
                "smoothing_window": recipe.poses.smoothing_window,
                "normalize": recipe.poses.normalize,
                "jitter_px": recipe.data.jitter_px if recipe.data.source == "puppet" else None,
                "drop_prob": recipe.data.drop_prob if recipe.data.source == "puppet" else None,
            },
            "videos": videos,
            "notes": [
                "Generated recursively: each frame conditioned on the previous generated one "
                "(zeros before the first), as at test time in the paper.",
                "Perceptual loss: pixel L1 stands in for the paper's VGG19 loss (no weights offline).",
                "G: the pix2pix U-Net (the paper: pix2pixHD's global generator).",
            ],
            "train": self.train_records(results),
        }
        return TaskOutput(metrics, details, table)


def _drift(pred: torch.Tensor, truth: torch.Tensor) -> float:
    """PSNR of the last third minus the first third of a recursively generated video."""
    psnr = psnr_frames(pred, truth)
    third = max(1, len(psnr) // 3)
    return float(psnr[-third:].mean() - psnr[:third].mean())


def _table_row(name: str, values: dict[str, float], result) -> tuple[str, ...]:
    return (
        name,
        f"{values['psnr']:.2f}",
        f"{values['ssim']:.3f}",
        f"{values['fg_psnr']:.2f}" if "fg_psnr" in values else "-",
        f"{values['flicker_ratio']:.2f}",
        str(result.steps) if result else "-",
    )


def _write_videos(ctx, recipe, test: list, transfer: list) -> dict[str, str]:
    """``test.gif`` and ``transfer.gif``: the given videos side by side (None: left out)."""
    videos, ev = {}, recipe.evaluation
    for name, columns in (("test", test), ("transfer", transfer)):
        video = side_by_side(*(c for c in columns if c is not None))
        path = write_video(video, ctx.out / "videos" / f"{name}.gif", ev.fps, ev.gif_scale)
        ctx.log_file(path, "videos")
        videos[name] = str(path)
    return videos
