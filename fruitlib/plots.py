"""Figures the notebooks show and save: curves, confusion matrices, photo grids."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.ticker import MaxNLocator

from .files import checkout, writing


def save(fig: plt.Figure, name: str, folder: str | os.PathLike | None = None) -> Path:
    """Save ``fig`` as ``folder/name.png``, or ``name.jpg`` when it shows photos (a tenth of the size); return the path.

    ``folder`` defaults to the checkout's ``figures/`` (where the notebooks' figures live), or ``figures/`` in the
    working folder when fruitlib is an installed package. Names are stable, so re-runs replace the old figure.
    """
    photos = any(ax.images for ax in fig.axes)
    home = checkout()
    folder = Path(folder) if folder is not None else (home / "figures" if home else Path("figures"))
    path = folder / f"{name}.{'jpg' if photos else 'png'}"
    with writing(path, "the figure"):
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110, bbox_inches="tight", **({"pil_kwargs": {"quality": 85}} if photos else {}))
    return path


def show(fig: plt.Figure, alt: str, name: str | None = None, folder: str | os.PathLike | None = None) -> None:
    """Display ``fig`` once in the notebook with ``alt`` as its alternative text; save it first when ``name`` is given.

    ``alt`` is a sentence saying what the figure shows, for readers who cannot see it (screen readers, the course
    website, which shows the notebook's outputs). The figure shown is the file :func:`save` writes (PNG, or JPEG
    for photos); the figure is then closed, so the notebook does not show it a second time. Returns nothing, so a
    cell ending with it shows the figure and no path (nbval compares that).
    """
    from IPython.display import Image, display  # IPython comes with Jupyter; fruitlib's command line does without

    with tempfile.TemporaryDirectory() as scratch:
        path = save(fig, name or "figure", folder if name else scratch)
        shown = Image(data=path.read_bytes(), format=path.suffix[1:], alt=alt)
    plt.close(fig)
    display(shown)


def training_curves(histories: dict[str, pd.DataFrame], title: str = "") -> plt.Figure:
    """Loss and accuracy per epoch, training (dashed) and validation (solid), one colour per run.

    The legend sits below the two plots, where it hides no curve.
    """
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    for (name, h), colour in zip(histories.items(), sns.color_palette("tab10")):
        for ax, metric in ((ax_loss, "loss"), (ax_acc, "acc")):
            ax.plot(h["epoch"], h[f"train_{metric}"], "--", color=colour, label=f"{name} (train)")
            ax.plot(h["epoch"], h[f"val_{metric}"], "-o", color=colour, ms=3, label=f"{name} (validation)")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1.02))
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    fig.legend(
        *ax_acc.get_legend_handles_labels(), loc="outside lower center", ncol=min(3, 2 * len(histories)), fontsize=8
    )
    fig.suptitle(title)
    return fig


def confusion(matrix: np.ndarray | list, classes: list[str], title: str = "") -> plt.Figure:
    """Confusion matrix as a heatmap: rows are true classes, columns predictions."""
    matrix = np.asarray(matrix)
    size = 3 + 0.35 * len(classes)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    sns.heatmap(
        matrix,
        annot=len(classes) <= 25,
        fmt="d",
        cmap="Blues",
        cbar=False,
        square=True,
        xticklabels=classes,
        yticklabels=classes,
        ax=ax,
        annot_kws={"fontsize": 7},
    )
    ax.set(xlabel="predicted", ylabel="true", title=title or f"confusion matrix ({matrix.sum()} photos)")
    fig.tight_layout()
    return fig


def image_grid(
    images: torch.Tensor, titles: list[str], colours: list[str] | None = None, columns: int = 6
) -> plt.Figure:
    """uint8 ``N x 3 x H x W`` photos in a grid, each with a caption above it (e.g. "true / predicted").

    The layout engine makes room for every caption, so no caption runs over the photo above it.
    """
    rows = max(1, -(-len(images) // columns))
    lines = max((t.count("\n") + 1 for t in titles), default=1)
    fig, axes = plt.subplots(
        rows, columns, figsize=(2.1 * columns, (2.1 + 0.17 * lines) * rows), squeeze=False, layout="constrained"
    )
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, title, colour in zip(axes.flat, images, titles, colours or ["black"] * len(titles)):
        ax.imshow(image.permute(1, 2, 0).numpy())
        ax.set_title(title, fontsize=8, color=colour)
    return fig


def accuracy_vs_data(
    table: pd.DataFrame, baselines: dict[str, float] | None = None, ylabel: str = "accuracy"
) -> plt.Figure:
    """Accuracy against training photos per class, one line per kind of run: the mean over seeds, the band their
    range (columns: per_class, run, accuracy, one row per seed). A ``per_class`` of 0 means all the photos.
    ``baselines``: name and accuracy of each reference drawn as a dashed line (e.g. the commonest class).
    """
    if table["per_class"].isna().any():
        raise ValueError("per_class must be a number of photos, or 0 for all of them")
    sizes = sorted(table["per_class"].unique(), key=lambda n: n or np.inf)
    table = table.assign(position=table["per_class"].map({n: i for i, n in enumerate(sizes)}))
    fig, ax = plt.subplots(figsize=(6, 4))
    sns.lineplot(data=table, x="position", y="accuracy", hue="run", marker="o", errorbar=("pi", 100), ax=ax)
    for (name, level), style in zip((baselines or {}).items(), ("--", ":", "-.")):
        ax.axhline(level, color="grey", ls=style, lw=1, label=name)
    ax.legend(fontsize=8)
    ax.set_xticks(range(len(sizes)), labels=[str(n) if n else "all" for n in sizes])
    ax.set(xlabel="training photos per class (at most)", ylabel=ylabel, ylim=(0, 1))
    fig.tight_layout()
    return fig


def heatmap_grid(images: torch.Tensor, maps: torch.Tensor, titles: list[str], columns: int = 6) -> plt.Figure:
    """Photos (uint8 ``N x 3 x H x W``) with heat maps (``N x H x W`` in [0, 1]) laid over them."""
    fig = image_grid(images, titles, columns=columns)
    for ax, heat in zip(fig.axes, maps):
        ax.imshow(heat.numpy(), cmap="jet", alpha=0.45, extent=ax.images[0].get_extent())
    return fig
