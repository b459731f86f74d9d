"""Figures the notebooks show and save: curves, confusion matrices, photo grids."""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch


def save(fig: plt.Figure, name: str, folder: str | os.PathLike = "../figures") -> None:
    """Save ``fig`` as ``folder/name.png``, or ``name.jpg`` when it shows photos (a tenth of the size).

    Names are stable, so re-runs replace the old figure. Returns nothing, so a notebook cell ending with it
    shows the figure and no path (nbval compares that).
    """
    photos = any(ax.images for ax in fig.axes)
    path = Path(folder) / f"{name}.{'jpg' if photos else 'png'}"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight", **({"pil_kwargs": {"quality": 85}} if photos else {}))


def training_curves(histories: dict[str, pd.DataFrame], title: str = "") -> plt.Figure:
    """Loss and accuracy per epoch, training (dashed) and validation (solid), one colour per run."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for (name, h), colour in zip(histories.items(), sns.color_palette("tab10")):
        for ax, metric in ((ax_loss, "loss"), (ax_acc, "acc")):
            ax.plot(h["epoch"], h[f"train_{metric}"], "--", color=colour, label=f"{name} (train)")
            ax.plot(h["epoch"], h[f"val_{metric}"], "-o", color=colour, ms=3, label=f"{name} (validation)")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1.02))
    ax_acc.legend(fontsize=8, loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def confusion(matrix: np.ndarray | list, classes: list[str], title: str = "") -> plt.Figure:
    """Confusion matrix as a heatmap: rows are true classes, columns predictions."""
    matrix = np.asarray(matrix)
    size = 3 + 0.35 * len(classes)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    sns.heatmap(matrix, annot=len(classes) <= 25, fmt="d", cmap="Blues", cbar=False, square=True,
                xticklabels=classes, yticklabels=classes, ax=ax, annot_kws={"fontsize": 7})
    ax.set(xlabel="predicted", ylabel="true", title=title or f"confusion matrix ({matrix.sum()} photos)")
    fig.tight_layout()
    return fig


def image_grid(images: torch.Tensor, titles: list[str], colours: list[str] | None = None,
               columns: int = 6) -> plt.Figure:
    """uint8 ``N x 3 x H x W`` photos in a grid, each with a title (e.g. "true / predicted")."""
    rows = max(1, -(-len(images) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(2.1 * columns, 2.3 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, title, colour in zip(axes.flat, images, titles, colours or ["black"] * len(titles)):
        ax.imshow(image.permute(1, 2, 0).numpy())
        ax.set_title(title, fontsize=8, color=colour)
    fig.tight_layout()
    return fig


def accuracy_vs_data(table: pd.DataFrame) -> plt.Figure:
    """Validation accuracy against training photos per class, one line per run kind (columns: per_class, run, accuracy)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    sns.lineplot(data=table, x="per_class", y="accuracy", hue="run", marker="o", ax=ax)
    ax.set(xscale="log", xlabel="training photos per class (at most)", ylabel="validation accuracy", ylim=(0, 1))
    ax.set_xticks(sorted(table["per_class"].unique()), labels=[str(v) for v in sorted(table["per_class"].unique())])
    fig.tight_layout()
    return fig


def heatmap_grid(images: torch.Tensor, maps: torch.Tensor, titles: list[str], columns: int = 6) -> plt.Figure:
    """Photos (uint8 ``N x 3 x H x W``) with heat maps (``N x H x W`` in [0, 1]) laid over them."""
    fig = image_grid(images, titles, columns=columns)
    for ax, heat in zip(fig.axes, maps):
        ax.imshow(heat.numpy(), cmap="jet", alpha=0.45, extent=ax.images[0].get_extent())
    return fig
