"""Videos as tensors (T, 3, H, W) in [0, 1]: quality scores and files.

Scores for generated videos against the truth (pose-to-video, Chan et al. 2018):

* PSNR and SSIM per frame, averaged (torchmetrics' SSIM, Gaussian 11x11, sigma 1.5);
* foreground PSNR: the same squared error gated on the person's pixels (a
  static background alone scores high on whole-frame PSNR, so it hides how well
  the person is drawn), the masks dilated by ``dilate`` pixels so that a
  missing limb counts;
* flicker ratio: mean absolute frame-to-frame change of the output over that of
  the truth. 1 moves as much as the real video; below 1 is too still (or
  blurred), above 1 jitters.

Files: an animated GIF through Pillow, MP4 where imageio finds an ffmpeg writer,
and side-by-side strips (e.g. source | pose | output).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchmetrics.functional.image import structural_similarity_index_measure

from counterfeit.gan.errors import ConfigError, DataError


def _check_video(video: torch.Tensor, name: str) -> None:
    if video.ndim != 4 or video.shape[1] not in (1, 3) or not video.is_floating_point():
        raise DataError(f"{name} must be a float video (T, 1|3, H, W), got {tuple(video.shape)}.")


def _check_pair(pred: torch.Tensor, truth: torch.Tensor) -> None:
    _check_video(pred, "the generated video")
    _check_video(truth, "the true video")
    if pred.shape != truth.shape:
        raise DataError(
            f"the generated video {tuple(pred.shape)} and the truth {tuple(truth.shape)} differ."
        )


def psnr_frames(
    pred: torch.Tensor, truth: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """PSNR (dB) of each frame, on the pixels of ``mask`` (T, H, W) when given."""
    err = (pred.float() - truth.float()).pow(2).mean(1)  # (T, H, W)
    if mask is None:
        mse = err.flatten(1).mean(1)
    else:
        m = mask.float()
        mse = (err * m).flatten(1).sum(1) / m.flatten(1).sum(1).clamp_min(1)
    return 10 * torch.log10(1 / mse.clamp_min(1e-10))


def dilate(mask: torch.Tensor, pixels: int) -> torch.Tensor:
    """Masks (T, H, W) grown by ``pixels`` in every direction (a square structuring element)."""
    if pixels <= 0:
        return mask.bool()
    grown = F.max_pool2d(mask.float()[:, None], 2 * pixels + 1, stride=1, padding=pixels)
    return grown[:, 0] > 0


def flicker(video: torch.Tensor) -> float:
    """Mean absolute change between consecutive frames, in [0, 1] pixel units."""
    if len(video) < 2:
        return 0.0
    return float((video[1:].float() - video[:-1].float()).abs().mean())


def video_scores(
    pred: torch.Tensor,
    truth: torch.Tensor,
    masks: torch.Tensor | None = None,
    dilate_pixels: int = 2,
) -> dict[str, float]:
    """PSNR, SSIM, foreground PSNR (with ``masks``) and flicker ratio of ``pred`` vs ``truth``."""
    _check_pair(pred, truth)
    pred, truth = pred.float().cpu(), truth.float().cpu()
    scores = {
        "psnr": float(psnr_frames(pred, truth).mean()),
        "ssim": float(structural_similarity_index_measure(pred, truth, data_range=1.0)),
        "flicker": flicker(pred),
        "flicker_ratio": flicker(pred) / max(flicker(truth), 1e-8),
    }
    if masks is not None:
        if masks.shape != (pred.shape[0], *pred.shape[2:]):
            raise DataError(
                f"masks must be (T, H, W) = {(pred.shape[0], *pred.shape[2:])}, "
                f"got {tuple(masks.shape)}."
            )
        gate = dilate(masks.cpu(), dilate_pixels)
        scores["fg_psnr"] = float(psnr_frames(pred, truth, gate).mean())
    return scores


def to_tensor_frames(frames: np.ndarray) -> torch.Tensor:
    """uint8 frames ``(N, H, W, 3)`` as a float video ``(N, 3, H, W)`` in [0, 1]."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise DataError(f"frames must be uint8 (N, H, W, 3); got {frames.dtype} {frames.shape}.")
    frames = np.ascontiguousarray(frames)
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float().div_(255.0).contiguous()


def to_uint8_frames(video: torch.Tensor) -> np.ndarray:
    """(T, 3, H, W) in [0, 1] -> (T, H, W, 3) uint8 (grey videos become RGB)."""
    _check_video(video, "the video")
    video = video.detach().float().cpu().clamp(0, 1)
    if video.shape[1] == 1:
        video = video.expand(-1, 3, -1, -1)
    return (video.permute(0, 2, 3, 1) * 255).round().byte().numpy()


def side_by_side(*videos: torch.Tensor, gap: int = 2) -> torch.Tensor:
    """Videos of the same length and height, left to right with white gaps between."""
    if not videos:
        raise ConfigError("side_by_side needs at least one video.")
    length, height = len(videos[0]), videos[0].shape[2]
    for v in videos:
        _check_video(v, "each video")
        if len(v) != length or v.shape[2] != height:
            raise DataError(
                "side_by_side needs videos of the same length and height, got "
                f"{[tuple(x.shape) for x in videos]}."
            )
    parts = []
    for i, v in enumerate(videos):
        v = v.float().cpu()
        parts.append(v.expand(-1, 3, -1, -1) if v.shape[1] == 1 else v)
        if gap and i < len(videos) - 1:
            parts.append(torch.ones(length, 3, height, gap))
    return torch.cat(parts, 3)


def write_video(video: torch.Tensor, path: str | Path, fps: int = 15, scale: int = 1) -> Path:
    """Write ``video`` as an animated GIF (Pillow) or MP4 (imageio with ffmpeg), by suffix.

    ``scale`` enlarges each frame by nearest-neighbour (small frames are easier to see).
    """
    path = Path(path)
    if fps < 1 or scale < 1:
        raise ConfigError(f"fps and scale must be >= 1, got {fps} and {scale}.")
    frames = to_uint8_frames(video)
    if scale > 1:
        frames = frames.repeat(scale, axis=1).repeat(scale, axis=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".gif":
        images = [Image.fromarray(f) for f in frames]
        images[0].save(
            path,
            save_all=True,
            append_images=images[1:],
            duration=round(1000 / fps),
            loop=0,
            optimize=False,
        )
    elif suffix == ".mp4":
        try:
            import imageio.v2 as imageio
            import imageio_ffmpeg  # noqa: F401  (imageio's MP4 writer)
        except ImportError:
            raise ConfigError(
                f"cannot write {path}: MP4 needs imageio and imageio-ffmpeg "
                "(pip install imageio imageio-ffmpeg); a .gif works with Pillow alone."
            ) from None
        with imageio.get_writer(path, fps=fps, format="FFMPEG") as writer:
            for f in frames:
                writer.append_data(f)
    else:
        raise ConfigError(f"unknown video format '{path.suffix}' for {path}: use .gif or .mp4.")
    return path
