"""Figures people would rather look at than read: image grids, confusion
matrices, feature embeddings, training curves and validator scores against accuracy.
Matplotlib (Agg backend) and torchvision's ``make_grid``; every function returns a
figure or writes a PNG.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

TSNE_ONE_THREAD_POINTS = 5000


def save_image_grid(images: torch.Tensor, path: str | Path, nrow: int = 10) -> Path:
    """Write images (N, C, H, W) in [0, 1] as one PNG grid."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    from torchvision.utils import save_image  # imported here: torchvision takes seconds to load

    save_image(images.detach().float().clamp(0, 1).cpu(), path, nrow=nrow, padding=2)
    return path


def labelled_grid_figure(
    images: torch.Tensor,
    titles: Sequence[str],
    ncols: int = 10,
    suptitle: str | None = None,
    title_colours: Sequence[str] | None = None,
) -> plt.Figure:
    """A grid of images with a small title over each (e.g. ``pred 3 / true 5``)."""
    n = len(images)
    nrows = max(1, -(-n // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.2 * ncols, 1.35 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        image = images[i].detach().float().clamp(0, 1).cpu().numpy()
        if image.shape[0] == 1:
            ax.imshow(image[0], cmap="gray", vmin=0, vmax=1)
        else:
            ax.imshow(image.transpose(1, 2, 0))
        colour = title_colours[i] if title_colours else "black"
        ax.set_title(titles[i], fontsize=7, color=colour)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def confusion_matrix_figure(
    y_true: np.ndarray, y_pred: np.ndarray, num_classes: int, title: str
) -> plt.Figure:
    """Row-normalised confusion matrix with counts, via scikit-learn."""
    from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix

    matrix = confusion_matrix(y_true, y_pred, labels=list(range(num_classes)))
    fig, ax = plt.subplots(figsize=(6, 5.2))
    ConfusionMatrixDisplay(matrix, display_labels=list(range(num_classes))).plot(
        ax=ax, cmap="Blues", colorbar=False, values_format="d"
    )
    accuracy = np.trace(matrix) / max(matrix.sum(), 1)
    ax.set_title(f"{title}\naccuracy {accuracy:.3f} on {matrix.sum()} images")
    fig.tight_layout()
    return fig


def embedding_figure(
    panels: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
    method: str = "tsne",
    seed: int = 0,
) -> plt.Figure:
    """2-D embeddings of source vs target features, one panel per model.

    Args:
        panels: ``title -> (source_features, source_labels, target_features, target_labels)``.
        method: ``"tsne"`` (scikit-learn TSNE) or ``"pca"``.

    t-SNE of up to :data:`TSNE_ONE_THREAD_POINTS` points runs on one OpenMP thread: as fast
    as several on so few points, and immune to the stalls of OpenMP threads that wait for a
    busy core (240 points: 1 s on one thread, 30-60 s on two beside a busy core).
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 5), squeeze=False)
    for ax, (title, (fs, ys, ft, yt)) in zip(axes[0], panels.items()):
        features = np.concatenate([fs, ft]).astype(np.float32)
        if method == "tsne":
            perplexity = min(30.0, max(2.0, (len(features) - 1) / 3))
            tsne = TSNE(2, init="pca", perplexity=perplexity, random_state=seed)
            threads = 1 if len(features) <= TSNE_ONE_THREAD_POINTS else None
            with threadpool_limits(limits=threads, user_api="openmp"):
                points = tsne.fit_transform(features)
        else:
            points = PCA(2, random_state=seed).fit_transform(features)
        ps, pt = points[: len(fs)], points[len(fs) :]
        ax.scatter(
            ps[:, 0], ps[:, 1], c=ys, cmap="tab10", marker="o", s=9, alpha=0.7, vmin=0, vmax=9
        )
        ax.scatter(
            pt[:, 0], pt[:, 1], c=yt, cmap="tab10", marker="x", s=11, alpha=0.7, vmin=0, vmax=9
        )
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [
        plt.Line2D([], [], marker="o", ls="", color="grey", label="source"),
        plt.Line2D([], [], marker="x", ls="", color="grey", label="target"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=2, frameon=False)
    fig.suptitle(f"{method.upper()} of features (colour = class)")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def curves_figure(
    series: Mapping[str, Sequence[tuple[int, float]]], title: str, ylabel: str = ""
) -> plt.Figure:
    """Line plot of ``name -> [(step, value), ...]``."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, points in series.items():
        if points:
            steps, values = zip(*points)
            ax.plot(steps, values, marker="o", ms=3, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def validator_scatter_figure(
    points: Mapping[str, Mapping[str, Sequence[tuple[float, float]]]],
    correlations: Mapping[str, float],
    title: str,
) -> plt.Figure:
    """One panel per validator: its score (x) against target accuracy (y) per checkpoint.

    ``points[validator][group]`` lists ``(score, accuracy)`` pairs, one colour per group
    (a method); ``correlations[validator]`` (Spearman's rho) goes into the panel's title.
    """
    names = list(points)
    columns = min(4, len(names))
    rows = -(-len(names) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.9 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        for group, pairs in points[name].items():
            if pairs:
                x, y = zip(*pairs)
                ax.scatter(x, y, s=12, alpha=0.8, label=group)
        rho = correlations.get(name, float("nan"))
        ax.set_title(f"{name} (rho {rho:.2f})", fontsize=9)
        ax.set_xlabel("score", fontsize=8)
        ax.set_ylabel("target accuracy", fontsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def truncation_figure(curve: Mapping[str, Mapping[str, float]]) -> plt.Figure:
    """The truncation curve (Brock et al. 2019, Fig. 4): each score against the threshold
    psi, one panel per score; the untruncated value (key ``none``) as a dashed line."""
    thresholds = [k for k in curve if k != "none"]
    metrics = list(next(iter(curve.values())))
    figure, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        ax.plot([float(k) for k in thresholds], [curve[k][metric] for k in thresholds], "o-")
        if "none" in curve:
            ax.axhline(curve["none"][metric], color="grey", ls="--", label="no truncation")
            ax.legend(fontsize=7)
        ax.set_xlabel("truncation psi")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
    figure.tight_layout()
    return figure
