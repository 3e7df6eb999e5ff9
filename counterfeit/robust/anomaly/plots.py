"""Figures of an anomaly detector: ROC curves, score histograms (normal against anomalous,
with the deployment threshold), the highest-scored images beside their residual maps, and
AUROC per class of several detectors as a heat map.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.metrics import roc_auc_score, roc_curve


def roc_figure(scores: Mapping[str, tuple[torch.Tensor, torch.Tensor]]) -> plt.Figure:
    """One ROC curve per entry ``name -> (normal_scores, anomaly_scores)`` (anomalies
    positive), AUROC in the legend, chance as a dashed diagonal."""
    fig, ax = plt.subplots(figsize=(4.2, 4))
    for name, (normal, anomalous) in scores.items():
        truth = np.r_[np.zeros(len(normal)), np.ones(len(anomalous))]
        values = torch.cat([normal, anomalous]).double().numpy()
        false_alarm, detection, _ = roc_curve(truth, values)
        ax.plot(false_alarm, detection, label=f"{name} (AUROC {roc_auc_score(truth, values):.3f})")
    ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=0.8, label="chance")
    ax.set(xlabel="false-alarm rate (normal flagged)", ylabel="detection rate (anomalies)")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def score_histogram_figure(
    normal: torch.Tensor, anomalous: torch.Tensor, threshold: float | None = None
) -> plt.Figure:
    """Histograms of the scores of normal and anomalous images on shared bins, and the
    threshold (set on held-out normal images) as a vertical line."""
    fig, ax = plt.subplots(figsize=(5, 3))
    values = torch.cat([normal, anomalous]).double().numpy()
    bins = np.histogram_bin_edges(values, bins=40)
    ax.hist(normal.double().numpy(), bins, alpha=0.6, density=True, label="normal")
    ax.hist(anomalous.double().numpy(), bins, alpha=0.6, density=True, label="anomalous")
    if threshold is not None:
        ax.axvline(threshold, color="black", linestyle="--", label="threshold")
    ax.set(xlabel="anomaly score (higher = less normal)", ylabel="density")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def top_anomalies_figure(
    images: torch.Tensor, scores: torch.Tensor, residual_maps: torch.Tensor, n: int = 8
) -> plt.Figure:
    """The ``n`` highest-scored images (top row, score in the title) and their residual maps
    (bottom row), most anomalous first."""
    order = torch.argsort(scores, descending=True)[:n]
    fig, axes = plt.subplots(2, len(order), figsize=(1.3 * len(order), 2.9), squeeze=False)
    for column, index in enumerate(order.tolist()):
        image = images[index].float().clamp(0, 1).permute(1, 2, 0).squeeze(-1).numpy()
        axes[0, column].imshow(image, cmap="gray", vmin=0, vmax=1)
        axes[0, column].set_title(f"{float(scores[index]):.3g}", fontsize=8)
        axes[1, column].imshow(residual_maps[index, 0].numpy(), cmap="magma")
        for ax in axes[:, column]:
            ax.axis("off")
    axes[0, 0].text(-0.15, 0.5, "image", rotation=90, va="center", transform=axes[0, 0].transAxes)
    axes[1, 0].text(
        -0.15, 0.5, "residual", rotation=90, va="center", transform=axes[1, 0].transAxes
    )
    fig.tight_layout()
    return fig


def auroc_grid_figure(
    grid: Mapping[str, Mapping[Any, float]], xlabel: str = "class", ylabel: str = ""
) -> plt.Figure:
    """A heat map of AUROC, ``row -> {column: AUROC}`` (e.g. method -> class): each cell's
    value written in it, and each row's mean in its label. Numeric columns are sorted;
    others keep their first-seen order."""
    methods = list(grid)
    columns = list(dict.fromkeys(c for row in grid.values() for c in row))
    classes = sorted(columns) if all(isinstance(c, int) for c in columns) else columns
    values = np.array([[grid[m].get(c, np.nan) for c in classes] for m in methods])
    fig, ax = plt.subplots(figsize=(0.6 * len(classes) + 2.4, 0.45 * len(methods) + 1.2))
    image = ax.imshow(values, cmap="viridis", vmin=0.5, vmax=1.0, aspect="auto")
    for (row, column), value in np.ndenumerate(values):
        colour = "black" if value > 0.8 else "white"
        ax.text(column, row, f"{value:.2f}", ha="center", va="center", fontsize=7, color=colour)
    ax.set_xticks(range(len(classes)), [str(c) for c in classes])
    labels = [f"{m} ({np.nanmean(values[i]):.3f})" for i, m in enumerate(methods)]
    ax.set_yticks(range(len(methods)), labels)
    ax.set(xlabel=xlabel, ylabel=ylabel)
    fig.colorbar(image, ax=ax, label="AUROC")
    fig.tight_layout()
    return fig


def shift_auroc_figure(auroc: Mapping[str, Mapping[str, float]]) -> plt.Figure:
    """Horizontal bars of AUROC, ``detector -> {shift: AUROC}``: one group per shift (shifted
    inputs against clean ones), one bar per detector, chance (0.5) dashed."""
    detectors = list(auroc)
    shifts = list(dict.fromkeys(k for table in auroc.values() for k in table))
    height = 0.8 / max(1, len(detectors))
    fig, ax = plt.subplots(figsize=(6, 0.2 * len(shifts) * max(1, len(detectors)) ** 0.5 + 1.2))
    rows = np.arange(len(shifts))
    for i, detector in enumerate(detectors):
        values = [auroc[detector].get(shift, np.nan) for shift in shifts]
        ax.barh(rows + (i - (len(detectors) - 1) / 2) * height, values, height, label=detector)
    ax.axvline(0.5, color="grey", linestyle="--", linewidth=0.8)
    ax.set_yticks(rows, shifts)
    ax.invert_yaxis()
    ax.set(xlim=(0, 1), xlabel="AUROC, shifted vs clean test images")
    ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(detectors))
    fig.tight_layout()
    return fig
