"""Pose-to-video motion transfer: "Everybody Dance Now" (Chan, Ginosar, Zhou and Efros,
ICCV 2019; arXiv:1808.07371, 2018).

A source dancer's poses become stick-figure label images ``x_t``
(:func:`gan.data.pose.render_stick_figure`) and a generator trained on one
target person's video turns them into frames of that person. Faithful to the
paper's objective (Sec. 3, Eq. 4 and the appendix):

* **Temporal smoothing** (Sec. 3.2): G sees the current label and the
  previous generated frame, ``y_t = G(x_t, y_{t-1})``; the first of the two
  consecutive frames a step generates gets a zero image, ``y_{t-1} =
  G(x_{t-1}, 0)``. D judges pairs of consecutive (label, frame) pairs,
  ``D(x_{t-1}, x_t, y_{t-1}, y_t)``, real against generated (``L_smooth``).
* **Multi-scale D with feature matching** (pix2pixHD, Wang et al. 2018, which
  the paper builds on): :class:`gan.nets.patchgan.MultiscalePatchGAN` with the
  least-squares GAN loss, and ``lambda_FM = 10`` feature matching.
* **Face GAN** (Sec. 3.3), optional: once the full-image stage is done, the
  main G is frozen and a small residual generator adds ``r = G_f(x_F, y_F)`` to
  the face crop ``y_F`` of the generated frame (``x_F``: the label's crop),
  trained against a face discriminator on ``(x_F, y_F)`` pairs. The crop is a
  fixed-size square centred on the face keypoints
  (:func:`gan.data.pose.face_box`); frames without a face skip it.
* **Staged training** scaled to the data: the full-image stage for the first
  ``1 - face_fraction`` of the steps, then the face stage.
* Adam 2e-4, betas (0.5, 0.999); weights from N(0, 0.02).

Deviations, each a setting:

* G is the U-Net of :mod:`gan.nets.unet` (the pix2pix generator) on
  ``cat(label, previous frame)`` rather than pix2pixHD's global ResNet
  generator: at 64-128 px it has the same interface at a fraction of the cost,
  and ``width=16`` is the 1.8M-parameter net the issue's calibration used.
* The paper's perceptual loss uses VGG19 features (``lambda_P = 10``); VGG
  weights cannot be downloaded here, so a pixel L1 term (pix2pix's
  ``lambda = 100``) stands in for it (``l1_weight``; 0 removes it).
* ``temporal=False`` drops the previous-frame input and trains frame by frame
  (the paper's single-frame ablation); ``gan=False`` trains G on the L1 term
  alone (the issue's "L1 only" baseline).

A step takes ``(label_{t-1}, label_t, frame_{t-1}, frame_t, face_box_{t-1},
face_box_t)`` from :class:`gan.data.pose.PoseFrameSequence`, images in [0, 1]; the networks
work in [-1, 1].
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from counterfeit.gan.data.pose import face_size_for
from counterfeit.gan.errors import ConfigError, DataError
from counterfeit.gan.losses import get_loss
from counterfeit.gan.method import StepContext, TrainingMethod, frozen
from counterfeit.gan.nets.patchgan import (
    MultiscalePatchGAN,
    feature_matching_loss,
    patchgan_layers_for,
)
from counterfeit.gan.nets.unet import UNetGenerator
from counterfeit.gan.runtime import follows_input_device, model_mode


def _crop(images: torch.Tensor, corners: torch.Tensor, size: int) -> torch.Tensor:
    return torch.stack(
        [img[:, y : y + size, x : x + size] for img, (x, y) in zip(images, corners.tolist())]
    )


class Pose2Video(TrainingMethod):
    """Everybody Dance Now as a TrainingMethod (see the module docstring).

    Args:
        image_size: frame side, a power of two >= 32.
        label_channels, channels: channels of the label images and of the frames.
        width, d_width: first-layer filters of G (U-Net) and of each D scale.
        num_d: scales of the multi-scale discriminator (pix2pixHD: 3; the paper's 512 px).
        d_layers: PatchGAN strided layers per scale (None: from the image size).
        temporal: condition G on the previous frame and D on consecutive pairs.
        gan: False trains G on the L1 term alone (no D: the "L1 only" baseline).
        l1_weight: weight of the pixel L1 term (100; the VGG perceptual loss's stand-in).
        fm_weight: weight of the feature-matching loss (10, the paper's lambda_FM).
        gan_loss: adversarial loss by name (``least-squares``: pix2pixHD's).
        face: add the face GAN stage (needs face keypoints; :func:`gan.data.pose.face_corners`).
        face_fraction: the last fraction of the steps that trains the face GAN only.
        norm: G's and D's normalisation (``instance``: pix2pixHD's; ``batch``: pix2pix's).
        dropout: G's decoder dropout (pix2pix: 0.5; 0 for a deterministic video).
        lr, betas: Adam's settings (2e-4, (0.5, 0.999)).
    """

    progress_metrics = ("d_loss", "g_gan", "g_l1")

    def __init__(
        self,
        image_size: int = 64,
        label_channels: int = 3,
        channels: int = 3,
        width: int = 64,
        d_width: int = 64,
        num_d: int = 2,
        d_layers: int | None = None,
        temporal: bool = True,
        gan: bool = True,
        l1_weight: float = 100.0,
        fm_weight: float = 10.0,
        gan_loss: str = "least-squares",
        face: bool = False,
        face_fraction: float = 0.2,
        norm: str = "instance",
        dropout: float = 0.0,
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
    ) -> None:
        super().__init__()
        if image_size < 32 or image_size & (image_size - 1):
            raise ConfigError(f"image_size must be a power of two >= 32, got {image_size}.")
        if lr <= 0 or l1_weight < 0 or fm_weight < 0:
            raise ConfigError("pose2video needs lr > 0, l1_weight >= 0 and fm_weight >= 0.")
        if not gan and (face or l1_weight == 0):
            raise ConfigError("gan=False trains on L1 alone: it needs l1_weight > 0 and no face.")
        if face and not 0 < face_fraction < 1:
            raise ConfigError(f"face_fraction must be in (0, 1), got {face_fraction}.")
        self.loss = get_loss(gan_loss)
        if self.loss.clip_value or self.loss.gp_weight:
            raise ConfigError(
                f"'{gan_loss}' needs a critic constraint; use least-squares (pix2pixHD) or "
                "non-saturating."
            )
        self.save_hyperparameters()
        self.image_size, self.channels, self.label_channels = image_size, channels, label_channels
        self.temporal, self.use_gan, self.use_face = temporal, gan, face
        self.l1_weight, self.fm_weight, self.face_fraction = l1_weight, fm_weight, face_fraction
        self.lr, self.betas = lr, tuple(betas)
        g_in = label_channels + (channels if temporal else 0)
        self.generator = UNetGenerator(g_in, channels, image_size, width, norm, dropout)
        self.discriminator: MultiscalePatchGAN | None = None
        self.d_layers = d_layers if d_layers is not None else patchgan_layers_for(image_size)
        if gan:
            pair = label_channels + channels
            self.discriminator = MultiscalePatchGAN(
                pair * (2 if temporal else 1), num_d, d_width, self.d_layers, norm
            )
        self.face_size = face_size_for(image_size)
        self.face_generator: UNetGenerator | None = None
        self.face_discriminator: MultiscalePatchGAN | None = None
        if face:
            self.face_generator = UNetGenerator(
                label_channels + channels, channels, self.face_size, width, norm, 0.0
            )
            self.face_discriminator = MultiscalePatchGAN(
                label_channels + channels, 1, d_width, patchgan_layers_for(self.face_size), norm
            )
        if not gan:
            self.progress_metrics = ("g_l1",)

    def describe(self) -> dict[str, Any]:
        """Parameter counts and the discriminator's patch size, for summaries."""

        def count(m: nn.Module | None) -> int:
            return 0 if m is None else sum(p.numel() for p in m.parameters())

        return {
            "generator_parameters": count(self.generator),
            "discriminator_parameters": count(self.discriminator),
            "face_parameters": count(self.face_generator) + count(self.face_discriminator),
            "receptive_field": (
                self.discriminator.scales[0].receptive_field if self.discriminator else None
            ),
        }

    # -- inference -------------------------------------------------------------------------

    def frame(self, label: torch.Tensor, previous: torch.Tensor | None) -> torch.Tensor:
        """One frame in [-1, 1] from a label and the previous frame, both in [-1, 1]."""
        if self.temporal:
            if previous is None:
                previous = label.new_zeros(label.shape[0], self.channels, *label.shape[2:])
            label = torch.cat([label, previous], 1)
        return self.generator(label)

    def enhance_face(
        self, label: torch.Tensor, frame: torch.Tensor, corners: torch.Tensor
    ) -> torch.Tensor:
        """The frame with the face generator's residual added to each face crop ([-1, 1])."""
        if self.face_generator is None:
            return frame
        has = corners[:, 0] >= 0
        if not bool(has.any()):
            return frame
        size, corners = self.face_size, corners[has]
        x_f, y_f = _crop(label[has], corners, size), _crop(frame[has], corners, size)
        better = (y_f + self.face_generator(torch.cat([x_f, y_f], 1))).clamp(-1, 1)
        out = frame.clone()
        rows = has.nonzero().flatten().tolist()
        for crop, i, (x, y) in zip(better, rows, corners.tolist(), strict=True):
            out[i, :, y : y + size, x : x + size] = crop
        return out

    @torch.no_grad()
    @follows_input_device
    def generate(
        self, labels: torch.Tensor, faces: torch.Tensor | None = None, batch: int = 64
    ) -> torch.Tensor:
        """Frames in [0, 1] for a label sequence (T, C, H, W) in [0, 1], recursively.

        Each frame is conditioned on the previous generated one (zeros before the
        first), as at test time in the paper. Labels on any device; the frames come
        back on the labels' device.
        """
        if labels.ndim != 4 or labels.shape[1] != self.label_channels:
            raise DataError(
                f"labels must be (T, {self.label_channels}, H, W), got {tuple(labels.shape)}."
            )
        with model_mode(self, False):
            x = labels.float() * 2 - 1
            out = []
            if self.temporal:
                previous = None
                for t in range(len(x)):
                    y = self.frame(x[t : t + 1], previous)
                    if faces is not None:
                        y = self.enhance_face(x[t : t + 1], y, faces[t : t + 1])
                    out.append(y)
                    previous = y
            else:
                for s in range(0, len(x), batch):
                    y = self.frame(x[s : s + batch], None)
                    if faces is not None:
                        y = self.enhance_face(x[s : s + batch], y, faces[s : s + batch])
                    out.append(y)
            return ((torch.cat(out) + 1) / 2).clamp(0, 1)

    # -- training --------------------------------------------------------------------------

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        def adam(module: nn.Module) -> torch.optim.Optimizer:
            return torch.optim.Adam(module.parameters(), lr=self.lr, betas=self.betas)

        optimizers = {"g": adam(self.generator)}
        if self.discriminator is not None:
            optimizers["d"] = adam(self.discriminator)
        if self.face_generator is not None and self.face_discriminator is not None:
            optimizers["g_face"] = adam(self.face_generator)
            optimizers["d_face"] = adam(self.face_discriminator)
        return optimizers

    def in_face_stage(self, progress: float) -> bool:
        """True in the last ``face_fraction`` of the run (the main G is then frozen)."""
        return self.use_face and progress >= 1 - self.face_fraction

    def train_step(self, batch: Any, ctx: StepContext) -> dict[str, torch.Tensor]:
        if not isinstance(batch, (tuple, list)) or len(batch) != 6:
            raise DataError(
                "a pose2video batch is (label_prev, label, frame_prev, frame, face_prev, face) "
                "from PoseFrameSequence."
            )
        x0, x1, y0, y1 = (b * 2 - 1 for b in batch[:4])
        faces = batch[5]
        if self.in_face_stage(ctx.progress):
            return self._face_step(x0, x1, y1, faces, ctx)
        return self._frame_step(x0, x1, y0, y1, ctx)

    def _generate_pair(
        self, x0: torch.Tensor, x1: torch.Tensor
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        if not self.temporal:
            return None, self.frame(x1, None)
        g0 = self.frame(x0, None)  # y_{t-1} = G(x_{t-1}, 0)
        return g0, self.frame(x1, g0)  # y_t = G(x_t, y_{t-1})

    def _d_input(
        self, x0: torch.Tensor, x1: torch.Tensor, y0: torch.Tensor | None, y1: torch.Tensor
    ) -> torch.Tensor:
        if not self.temporal:
            return torch.cat([x1, y1], 1)
        return torch.cat([x0, x1, y0, y1], 1)

    def _frame_step(
        self,
        x0: torch.Tensor,
        x1: torch.Tensor,
        y0: torch.Tensor,
        y1: torch.Tensor,
        ctx: StepContext,
    ) -> dict[str, torch.Tensor]:
        d, opt_g = self.discriminator, ctx.optimizers["g"]
        with ctx.autocast():
            g0, g1 = self._generate_pair(x0, x1)
        metrics: dict[str, torch.Tensor] = {}
        if d is not None:
            opt_d = ctx.optimizers["d"]
            with ctx.autocast():
                fake = d(
                    self._d_input(x0, x1, g0.detach() if g0 is not None else None, g1.detach())
                )
                real = d(self._d_input(x0, x1, y0, y1))
                d_loss = sum(
                    0.5 * self.loss.d(r[-1], f[-1]) for r, f in zip(real, fake, strict=True)
                )
            opt_d.zero_grad(set_to_none=True)
            ctx.backward(d_loss)
            ctx.optimizer_step(opt_d)
            metrics["d_loss"] = d_loss.detach()
        with frozen(d):
            with ctx.autocast():
                l1 = F.l1_loss(g1, y1) + (F.l1_loss(g0, y0) if g0 is not None else 0)
                g_loss = self.l1_weight * l1
                if d is not None:
                    fake = d(self._d_input(x0, x1, g0, g1))
                    real = d(self._d_input(x0, x1, y0, y1))
                    g_gan = sum(self.loss.g(f[-1]) for f in fake)
                    fm = feature_matching_loss(fake, real)
                    g_loss = g_loss + g_gan + self.fm_weight * fm
            opt_g.zero_grad(set_to_none=True)
            ctx.backward(g_loss)
            ctx.optimizer_step(opt_g)
        if d is not None:
            metrics.update(g_gan=g_gan.detach(), g_fm=fm.detach())
        # L1 in [0, 1] pixel units, per generated frame.
        metrics["g_l1"] = l1.detach() / (4 if self.temporal else 2)
        metrics["g_loss"] = g_loss.detach()
        return metrics

    def _face_step(
        self,
        x0: torch.Tensor,
        x1: torch.Tensor,
        y1: torch.Tensor,
        faces: torch.Tensor,
        ctx: StepContext,
    ) -> dict[str, torch.Tensor]:
        has = faces[:, 0] >= 0
        if not bool(has.any()):
            return {}
        g_f, d_f = self.face_generator, self.face_discriminator
        assert g_f is not None and d_f is not None
        with torch.no_grad():  # the main generator is frozen in this stage
            _, frame = self._generate_pair(x0, x1)
        size, corners = self.face_size, faces[has]
        x_f = _crop(x1[has], corners, size)
        y_f = _crop(frame[has], corners, size)
        real_f = _crop(y1[has], corners, size)
        opt_g, opt_d = ctx.optimizers["g_face"], ctx.optimizers["d_face"]
        with ctx.autocast():
            better = y_f + g_f(torch.cat([x_f, y_f], 1))
            fake = d_f(torch.cat([x_f, better.detach()], 1))
            real = d_f(torch.cat([x_f, real_f], 1))
            d_loss = 0.5 * self.loss.d(real[0][-1], fake[0][-1])
        opt_d.zero_grad(set_to_none=True)
        ctx.backward(d_loss)
        ctx.optimizer_step(opt_d)
        with frozen(d_f):
            with ctx.autocast():
                fake = d_f(torch.cat([x_f, better], 1))
                l1 = F.l1_loss(better, real_f)
                g_loss = self.loss.g(fake[0][-1]) + self.l1_weight * l1
            opt_g.zero_grad(set_to_none=True)
            ctx.backward(g_loss)
            ctx.optimizer_step(opt_g)
        return {"face_d_loss": d_loss.detach(), "face_l1": l1.detach() / 2}
