"""Looking before training: class counts, photo sizes and colours, frozen features, near-duplicates, leakage.

Helpers for notebooks 01 (concepts) and 03 (data exploration). Photos come decoded from
:mod:`fruitlib.cache`; features are the pooled outputs of a frozen backbone (``cache.cached_activations``);
the classifiers on top of them are small scikit-learn models, so every experiment here runs in seconds.
"""

from __future__ import annotations

import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from PIL import Image
from scipy.sparse.csgraph import connected_components
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.manifold import TSNE
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict, train_test_split
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .augment import view_for
from .cache import cached_activations
from .data import Catalog
from .evaluate import top_k
from .models import FruitNet, build_model
from .plots import image_grid
from .seeding import seeded
from .weights import resnet_weights_enum

# ----------------------------------------------------------------------------- the photos themselves


def class_counts(catalog: Catalog) -> pd.DataFrame:
    """Photos per class and split, largest class first, with a ``total`` and a ``share`` of all photos."""
    table = pd.crosstab(catalog.table["class_name"], catalog.table["split"].replace("", "unsplit"))
    table = table.reindex(columns=[s for s in ("train", "val", "test", "unsplit") if s in table.columns])
    table["total"] = table.sum(axis=1)
    table["share"] = (table["total"] / table["total"].sum()).round(3)
    table.index.name, table.columns.name = "class", None
    return table.sort_values(["total", "class"], ascending=[False, True], kind="stable")


def image_sizes(paths: list[str | os.PathLike]) -> pd.DataFrame:
    """Width and height of each photo, read from the file header only (nothing is decoded)."""

    def size(path: str | os.PathLike) -> tuple[int, int]:
        with Image.open(path) as image:
            return image.size

    return pd.DataFrame([size(p) for p in paths], columns=["width", "height"])


def colour_stats(images: torch.Tensor, labels: torch.Tensor, classes: list[str]) -> pd.DataFrame:
    """Per-class mean red, green, blue, brightness and saturation (0-1) of uint8 ``N x 3 x H x W`` photos."""
    x = images.float() / 255
    high, low = x.max(dim=1).values, x.min(dim=1).values
    per_photo = pd.DataFrame(
        {
            "red": x[:, 0].mean((1, 2)),
            "green": x[:, 1].mean((1, 2)),
            "blue": x[:, 2].mean((1, 2)),
            "brightness": high.mean((1, 2)),  # HSV value
            "saturation": ((high - low) / high.clamp_min(1e-6)).mean((1, 2)),  # HSV saturation
            "class": [classes[i] for i in labels.tolist()],
        }
    )
    return per_photo.groupby("class").mean().round(3)


def colour_histograms(images: torch.Tensor, bins: int = 4) -> np.ndarray:
    """``N x bins**3`` joint RGB histograms (shares of pixels): a colour-only description of each photo."""
    q = (images.long() * bins // 256).flatten(2)
    cell = (q[:, 0] * bins + q[:, 1]) * bins + q[:, 2]
    counts = torch.zeros(len(images), bins**3).scatter_add_(1, cell, torch.ones(cell.shape))
    return (counts / cell.shape[1]).numpy()


def per_class_indices(labels: torch.Tensor | np.ndarray, per_class: int, seed: int = 0) -> list[int]:
    """Up to ``per_class`` random photo indices of each class, grouped by class."""
    labels, rng = np.asarray(labels), np.random.default_rng(seed)
    chosen = []
    for c in np.unique(labels):
        where = np.flatnonzero(labels == c)
        chosen += sorted(rng.choice(where, min(per_class, len(where)), replace=False).tolist())
    return chosen


# ----------------------------------------------------------------------------- features


def pooled_features(
    model: FruitNet, images: torch.Tensor, device: torch.device | str = "cpu", progress: bool = False
) -> np.ndarray:
    """``N x C`` float32 pooled features of the whole frozen backbone, computed on ``device``, cached on disk."""
    x = cached_activations(model.to(device), images, len(model.stages), device=device, progress=progress)
    return x.flatten(1).float().numpy()


@torch.no_grad()
def random_twin(model: FruitNet, images: torch.Tensor, seed: int = 0, calibrate: int = 256) -> FruitNet:
    """The same backbone with random weights (seeded), batch-norm statistics measured on ``calibrate`` photos.

    Uncalibrated, a random deep net in eval mode passes almost nothing through: activations shrink layer
    after layer and eval-mode batch norm does not rescale them. Calibration never sees a label.
    """
    spec = model.spec
    with seeded(seed):  # its random weights; the caller's random numbers are left as they were
        twin = build_model(spec.classes, spec.backbone, pretrained=False, mode="frozen", image_size=spec.image_size)
    for norm in (m for m in twin.stages.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)):
        norm.reset_running_stats()
        norm.momentum = None  # a plain average over the calibration batches
    view = view_for(spec)
    pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:calibrate]
    twin.stages.train()
    for start in range(0, len(pick), 64):
        twin.features(view.batch(images[pick[start : start + 64]]))
    return twin.eval()


def imagenet_fruit() -> list[str]:
    """The ten fruit among ImageNet's 1000 classes (Granny Smith ... pomegranate)."""
    return resnet_weights_enum("resnet50").meta["categories"][948:958]


def imagenet_guesses(model: FruitNet, paths: list[str], true_classes: list[str], k: int = 5) -> pd.DataFrame:
    """An ImageNet classifier's ``k`` best guesses for each photo, beside the photo's real class."""
    guesses = top_k(model, paths, k)
    return pd.DataFrame(
        {
            "class": true_classes,
            "top-1": [g[0][0] for g in guesses],
            "p(top-1)": [round(g[0][1], 2) for g in guesses],
            f"top-{k}": [", ".join(name for name, _ in g) for g in guesses],
        }
    )


def knn_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, k: int = 5) -> float:
    """Accuracy of a k-nearest-neighbour vote (cosine distance): do same-class photos lie close together?"""
    knn = KNeighborsClassifier(k, metric="cosine").fit(train_x, train_y)
    return float(np.mean(knn.predict(test_x) == np.asarray(test_y)))


def probe(train_x: np.ndarray, train_y: np.ndarray, sample_weight: np.ndarray | None = None):
    """A linear probe: standardised features, multinomial logistic regression (a fixed feature extractor's head)."""
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300))
    return model.fit(train_x, train_y, logisticregression__sample_weight=sample_weight)


def probe_accuracy(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    sample_weight: np.ndarray | None = None,
) -> float:
    """Held-out accuracy of :func:`probe`."""
    return float(probe(train_x, train_y, sample_weight).score(test_x, test_y))


def project_2d(x: np.ndarray, method: str = "tsne", seed: int = 0) -> np.ndarray:
    """``N x 2`` coordinates: PCA, or t-SNE on the first 50 principal components (settings tuned for speed)."""
    reduced = PCA(min(50, *x.shape), random_state=seed).fit_transform(StandardScaler().fit_transform(x))
    if method == "pca":
        return reduced[:, :2]
    if method != "tsne":
        raise ValueError(f"method must be 'pca' or 'tsne', not '{method}'")
    return TSNE(2, init="pca", perplexity=30, max_iter=500, angle=0.8, random_state=seed).fit_transform(reduced)


# ----------------------------------------------------------------------------- near-duplicates and leakage


def nearest(query: np.ndarray, reference: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """For each query row, the index of its most cosine-similar reference row and that similarity.

    Without ``reference``, each row's nearest *other* row of ``query`` itself.
    """
    alone = reference is None
    search = NearestNeighbors(n_neighbors=2 if alone else 1, metric="cosine").fit(query if alone else reference)
    distance, index = search.kneighbors(query)
    rows = np.arange(len(query))
    pick = (index[:, 0] == rows).astype(int) if alone else 0  # skip the row itself (unless an exact twin came first)
    return index[rows, pick], 1 - distance[rows, pick]


def random_split(labels: np.ndarray, held_out: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a stratified random split (like the article's plain random split, it ignores bursts of photos)."""
    keep, held = train_test_split(np.arange(len(labels)), test_size=held_out, random_state=seed, stratify=labels)
    return np.sort(keep), np.sort(held)


def split_check(
    train_x: np.ndarray, train_y: np.ndarray, held_x: np.ndarray, held_y: np.ndarray, threshold: float = 0.9
) -> dict:
    """How close held-out photos are to training photos, and what a linear probe scores on them."""
    _, similarity = nearest(held_x, train_x)
    return {
        "train photos": len(train_y),
        "held-out photos": len(held_y),
        "near-duplicate share": float(np.mean(similarity >= threshold)),
        "median similarity": float(np.median(similarity)),
        "probe accuracy": probe_accuracy(train_x, train_y, held_x, held_y),
    }


def bursts(x: np.ndarray, threshold: float = 0.9) -> np.ndarray:
    """A burst number per photo: photos linked by a chain of near-duplicate pairs (cosine >= threshold) share one."""
    pairs = NearestNeighbors(radius=1 - threshold, metric="cosine").fit(x).radius_neighbors_graph(x)
    _, burst = connected_components(pairs, directed=False)
    return burst


def grouped_split(
    labels: np.ndarray, groups: np.ndarray, held_out: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a stratified split that keeps every group (burst) on one side: one of ``round(1 / held_out)``
    folds, so ``held_out`` is met only as closely as the groups allow (a big group makes its fold bigger)."""
    folds = StratifiedGroupKFold(round(1 / held_out), shuffle=True, random_state=seed)
    keep, held = next(folds.split(np.zeros(len(labels)), labels, groups))
    return np.sort(keep), np.sort(held)


def leakage(
    train_x: np.ndarray,
    train_y: np.ndarray,
    others: dict[str, tuple[np.ndarray, np.ndarray]],
    threshold: float = 0.9,
    seed: int = 0,
) -> pd.DataFrame:
    """The same probe on several splits: a random 80/20 and a burst-grouped split of the training photos, and the
    training photos against each official split in ``others`` (name: (features, labels)).

    Random against grouped measures the leak alone (same photos, same days); grouped against official adds
    whatever else differs between the official splits.
    """
    rows = {}
    for name, (keep, held) in {
        "random 80/20 of train": random_split(train_y, 0.2, seed),
        "burst-grouped split of train": grouped_split(train_y, bursts(train_x, threshold), 0.2, seed),
    }.items():
        rows[name] = split_check(train_x[keep], train_y[keep], train_x[held], train_y[held], threshold)
    for name, (x, y) in others.items():
        rows[f"official train -> {name}"] = split_check(train_x, train_y, x, y, threshold)
    return pd.DataFrame(rows).T


# ----------------------------------------------------------------------------- instance re-weighting


def importance_weights(source_x: np.ndarray, target_x: np.ndarray, clip: float = 10.0) -> tuple[np.ndarray, float]:
    """Weights p(target|x) / p(source|x) for the source photos, from a domain classifier, and its AUC.

    Probabilities are cross-validated (each photo scored by a classifier that did not see it), scaled by
    the domain sizes, clipped to ``clip`` and normalised to mean 1. AUC 0.5: the domains look alike.
    """
    x = np.concatenate([source_x, target_x])
    domain = np.r_[np.zeros(len(source_x)), np.ones(len(target_x))]
    classifier = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=1000))
    p = cross_val_predict(classifier, x, domain, cv=5, method="predict_proba")[:, 1]
    auc = float(roc_auc_score(domain, p))
    ratio = p[: len(source_x)] / np.clip(1 - p[: len(source_x)], 1e-6, None) * len(source_x) / len(target_x)
    weights = np.clip(ratio, None, clip)
    return weights / weights.mean(), auc


def effective_size(weights: np.ndarray) -> float:
    """Kish's effective sample size: how many equally weighted photos the weights are worth."""
    return float(weights.sum() ** 2 / (weights**2).sum())


# ----------------------------------------------------------------------------- figures


def counts_figure(counts: pd.DataFrame) -> plt.Figure:
    """Stacked bars of photos per class and split, largest class first."""
    splits = [c for c in counts.columns if c not in ("total", "share")]
    fig, ax = plt.subplots(figsize=(10, 3.8))
    counts[splits].plot.bar(stacked=True, ax=ax, width=0.8, color=sns.color_palette("tab10"))
    ax.set(xlabel="", ylabel="photos", title=f"photos per class ({counts['total'].sum()} photos)")
    ax.tick_params(axis="x", labelrotation=60)
    fig.tight_layout()
    return fig


def colour_figure(stats: pd.DataFrame) -> plt.Figure:
    """Each class's mean colour as a swatch, with its mean brightness and saturation."""
    stats = stats.sort_values("saturation")
    fig, (ax_swatch, ax_bars) = plt.subplots(
        1, 2, figsize=(10, 0.3 * len(stats) + 1.2), sharey=True, gridspec_kw={"width_ratios": [1, 4]}
    )
    ax_swatch.imshow(stats[["red", "green", "blue"]].to_numpy()[:, None, :], aspect="auto")
    ax_swatch.set(yticks=range(len(stats)), yticklabels=stats.index, xticks=[], title="mean colour")
    y = np.arange(len(stats))
    ax_bars.barh(y - 0.2, stats["brightness"], 0.4, label="brightness (HSV value)", color="tab:gray")
    ax_bars.barh(y + 0.2, stats["saturation"], 0.4, label="saturation", color="tab:orange")
    ax_bars.set(xlim=(0, 1), title="mean brightness and saturation")
    ax_bars.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def projection_figure(
    points: dict[str, np.ndarray],
    labels: np.ndarray,
    classes: list[str],
    scores: dict[str, float] | None = None,
    k: int = 5,
) -> plt.Figure:
    """Side-by-side 2-D scatter plots of several feature sets of the same photos, coloured by class."""
    fig, axes = plt.subplots(1, len(points), figsize=(5.5 * len(points) + 2, 5), squeeze=False)
    palette = sns.color_palette("tab20", len(classes))
    for ax, (name, xy) in zip(axes[0], points.items()):
        for c, colour in enumerate(palette):
            mine = np.asarray(labels) == c
            ax.scatter(xy[mine, 0], xy[mine, 1], s=7, color=colour, label=classes[c])
        score = f"\n{k}-NN accuracy on held-out photos: {scores[name]:.0%}" if scores else ""
        ax.set(xticks=[], yticks=[], title=f"{name}{score}")
    axes[0, -1].legend(fontsize=7, markerscale=2, loc="center left", bbox_to_anchor=(1, 0.5))
    fig.tight_layout()
    return fig


def similarity_figure(similarities: dict[str, np.ndarray], threshold: float) -> plt.Figure:
    """Histograms of each held-out photo's similarity to its nearest training photo, one per split."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    bins = np.linspace(min(s.min() for s in similarities.values()), 1, 40)
    for name, s in similarities.items():
        ax.hist(s, bins=bins, density=True, alpha=0.55, label=name)
    ax.axvline(threshold, color="black", ls="--", lw=1, label=f"near-duplicate threshold {threshold}")
    ax.set(xlabel="cosine similarity to the nearest training photo", ylabel="density")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def pairs_figure(
    left: torch.Tensor, right: torch.Tensor, titles: list[tuple[str, str]], pairs_per_row: int = 3
) -> plt.Figure:
    """Pairs of uint8 photos side by side (``left[i]`` next to ``right[i]``), via :func:`plots.image_grid`."""
    images = torch.stack([im for pair in zip(left, right) for im in pair])
    return image_grid(images, [t for pair in titles for t in pair], columns=2 * pairs_per_row)
