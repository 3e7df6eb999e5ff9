"""The Fourier spectrum of an image: where GAN upsampling leaves its fingerprint.

Transposed convolutions and nearest-neighbour upsampling in a generator leave periodic
artefacts that show as peaks in the image's frequency spectrum (Frank et al., "Leveraging
Frequency Analysis for Deep Fake Image Recognition", ICML 2020; Durall et al., CVPR 2020).
:func:`log_spectrum` is the feature a spectrum detector reads: the log magnitude of each
channel's 2-D discrete Fourier transform, zero frequency moved to the centre.

Frank et al. use the DCT; the DFT's magnitude carries the same periodic peaks and is what
``torch.fft`` gives on every device (a stated deviation).
"""

from __future__ import annotations

import torch

from counterfeit.gan.errors import ShapeError

LOG_EPS = 1e-4


def log_spectrum(images: torch.Tensor) -> torch.Tensor:
    """``log(|F(x)| + 1e-4)`` per channel, centred (``fftshift``), of images (N, C, H, W)."""
    if images.ndim != 4:
        raise ShapeError(f"log_spectrum takes images (N, C, H, W); got {tuple(images.shape)}.")
    spectrum = torch.fft.fftshift(torch.fft.fft2(images.float()), dim=(-2, -1))
    return torch.log(spectrum.abs() + LOG_EPS)
