"""The benchmark's table: ratios of the items' raw figures, their targets and verdicts, and the settings summaries.

A verdict weighs every pairing of the repeats it has (epochs, passes, batches): PASS when all of them meet the
target, FAIL when none does, UNSURE when the spread between repeats straddles it.
"""

from __future__ import annotations

from items import DEFAULTS, EPOCH_ROUNDS, RECIPE

TARGETS = {"pipeline": 5.0, "frozen": 1.5, "last": 3.0, "recipe": 20.0, "rss_gib": 4.0}


def judge(ratios: list[float], target: float, at_least: bool = True) -> str:
    """PASS, FAIL or UNSURE for ``ratios``, the figure under each pairing of repeats."""
    met = [r >= target if at_least else r <= target for r in ratios]
    return "PASS" if all(met) else "FAIL" if not any(met) else "UNSURE"


def pairs(top: list[float], bottom: list[float]) -> list[float]:
    """Every ratio of one repeat of ``top`` to one of ``bottom``."""
    return [t / b for t in top for b in bottom]


def spread(ratios: list[float]) -> str:
    return f"repeats give {min(ratios):.2f}-{max(ratios):.2f}x" if len(ratios) > 1 else "one measurement"


def pipeline_rows(p: dict) -> list[dict]:
    a, e = p["augmented"], p["eval_view"]
    ratios = pairs(a["epochs_images_per_s"]["once"], a["epochs_images_per_s"]["every"])
    return [
        row(
            "1",
            "data pipeline img/s, training augmentation",
            f"{a['decoded_cache_images_per_s']:.0f} cache vs {a['decode_every_epoch_images_per_s']:.0f} decode",
            f"{a['ratio']:.1f}x",
            f">= {TARGETS['pipeline']:.0f}x",
            judge(ratios, TARGETS["pipeline"]),
            "warm",
            f"batch {p['batch_size']}, {p['image_size']} px, 0 loader workers, {EPOCH_ROUNDS} epochs each, "
            f"alternating ({spread(ratios)}); cache built once at {p['cache_build_images_per_s']:.0f} img/s "
            f"(cold), read back at {p['cache_load_images_per_s']:.0f} img/s",
        ),
        row(
            "1b",
            "data pipeline img/s, evaluation view",
            f"{e['decoded_cache_images_per_s']:.0f} cache vs {e['decode_every_epoch_images_per_s']:.0f} decode",
            f"{e['ratio']:.1f}x",
            "info",
            "n/a",
            "warm",
            "centre crop + normalise: what the frozen-feature pass reads",
        ),
        row(
            "1c",
            "default run's epochs: a loader of cached activations",
            f"{p['cached_activations_images_per_s']:.0f} img/s",
            "",
            "info",
            "n/a",
            "warm",
            "augmented views computed once; an epoch only reads them",
        ),
    ]


def frozen_rows(f: dict, dr: dict | None) -> list[dict]:
    c, w = f["fixed_features_cold"], f["fixed_features_warm_images"]
    ratios = [c["total_s"] / floor for floor in f["floor_s_each"]]
    result = judge(ratios, TARGETS["frozen"], at_least=False)
    if min(ratios) < 1:  # the pipeline does the floor's work and more: faster than it, the floor is not one
        result = "INVALID"
    rows = [
        row(
            "2",
            "frozen transfer, photos -> head (views 0) / floor",
            f"{c['total_s']:.1f} s vs {f['floor_s']:.1f} s",
            f"{c['total_s'] / f['floor_s']:.2f}x",
            f"<= {TARGETS['frozen']}x",
            result,
            "cold",
            f"decode {c['decode_s']:.1f} + features {c['features_s']:.1f} (with the engine's export) + head "
            f"{c['head_s']:.1f} s ({c['epochs']} epochs); floor = one pass of fruitlib's engine over the same "
            f"{f['images']} photos, prepared, before and after: "
            + " and ".join(f"{x:.1f}" for x in f["floor_s_each"])
            + f" s ({spread(ratios)})"
            + ("; the pipeline beat its floor, so the floor is not one" if result == "INVALID" else ""),
        ),
        row(
            "2b",
            "same, decoded photos already cached",
            f"{w['total_s']:.1f} s vs {f['floor_s']:.1f} s",
            f"{w['total_s'] / f['floor_s']:.2f}x",
            "info",
            "n/a",
            "warm photos",
            f"features {w['features_s']:.1f} + head {w['head_s']:.1f} s",
        ),
    ]
    if dr:
        passes, ratio = f["default_run_backbone_passes"], dr["wall_s"] / f["floor_s"]
        rows.append(
            row(
                "2c",
                "fruitlib's default run, end to end / floor",
                f"{dr['wall_s']:.1f} s vs {f['floor_s']:.1f} s",
                f"{ratio:.2f}x",
                "info",
                "n/a",
                "cold",
                f"item 5's `fruitlib train` (start-up, views={DEFAULTS.views}: {passes:.2f} backbone passes by "
                f"design, {dr['epochs']} epochs, plots): {ratio / passes:.2f}x the floor per pass",
            )
        )
    return rows


def last_rows(l_: dict) -> list[dict]:
    last, full = l_["last"], l_["full"]
    ratios = pairs(full["epoch_s_all"], last["epoch_s_all"])
    gap = 100 * (last["val_accuracy"] - full["val_accuracy"])
    return [
        row(
            "3",
            f"last stage on cached activations vs full, s/epoch ({l_['epochs']} ep)",
            f"{last['epoch_s']:.2f} s vs {full['epoch_s']:.1f} s",
            f"{full['epoch_s'] / last['epoch_s']:.1f}x",
            f">= {TARGETS['last']:.0f}x",
            judge(ratios, TARGETS["last"]),
            "cold activations",
            f"{spread(ratios)}; with the one-off caching ({last['prepare_s']:.1f} s): "
            f"{full['total_s'] / last['total_s']:.1f}x",
        ),
        row(
            "3b",
            f"val accuracy after those {l_['epochs']} epochs: last vs full",
            f"{last['val_accuracy']:.1%} vs {full['val_accuracy']:.1%}",
            f"{gap:+.1f} pts",
            "info",
            "n/a",
            "",
            f"same rates (head {l_['lr']:g}, stages {l_['backbone_lr']:g}), one seed, far from converged: not a "
            "verdict on either recipe (notebook 04 compares them on the test split)",
        ),
    ]


def recipe_rows(rc: dict, dr: dict) -> list[dict]:
    rate, batches = rc["images_per_s"], rc["batch_images_per_s"]
    caching = pairs(batches["cached"], batches["decoded"])
    whole = [(rc["n_train"] / r + rc["val_pass_s"]) / d for r in batches["cached"] for d in dr["epoch_s_all"]]
    target = dr["val_accuracy"]
    reached = next((p for p in rc["points"] if p["val_accuracy"] >= target), None)
    last = rc["points"][-1]
    if reached:
        ratio = reached["elapsed_s"] / dr["wall_s"]
        to_target, result = f"{ratio:.0f}x", judge([ratio], TARGETS["recipe"])
        how = f"the recipe reached {target:.1%} after {reached['elapsed_s']:.0f} s of training and validation"
    else:
        ratio = last["elapsed_s"] / dr["wall_s"]
        to_target = f">= {ratio:.1f}x"
        result = "PASS" if ratio >= TARGETS["recipe"] else "UNSURE"
        how = (
            f"the recipe was at {last['val_accuracy']:.1%} when stopped after {last['elapsed_s']:.0f} s, short of "
            f"{target:.1%}: a lower bound"
        )
    return [
        row(
            "4",
            "article recipe: photos decoded every batch vs once, s/epoch",
            f"{rc['n_train'] / rate['decoded']:.0f} s vs {rc['n_train'] / rate['cached']:.0f} s",
            f"{rate['cached'] / rate['decoded']:.2f}x",
            "info",
            "n/a",
            "none vs warm photos",
            f"whole network, {rc['image_size']} px, batches alternating between the two loaders "
            f"({spread(caching)}): caching decoded photos alone barely helps whole-network training",
        ),
        row(
            "4b",
            "whole network vs fruitlib's default head, s/epoch, both cached",
            f"{rc['cached_epoch_s']:.1f} s vs {dr['epoch_s']:.3f} s",
            f"{rc['cached_epoch_s'] / dr['epoch_s']:.0f}x",
            f">= {TARGETS['recipe']:.0f}x",
            judge(whole, TARGETS["recipe"]),
            "warm vs cold",
            f"freezing the stages, which lets their activations be cached ({spread(whole)}); an epoch = a pass over "
            f"the training photos + a validation pass",
        ),
        row(
            "4c",
            "time to the default's val accuracy: recipe / default run",
            f"{(reached or last)['elapsed_s']:.0f} s vs {dr['wall_s']:.0f} s",
            to_target,
            f">= {TARGETS['recipe']:.0f}x",
            result,
            "none vs cold",
            f"{how}; the default = the whole `fruitlib train` wall time, start-up included. The article's "
            f"{RECIPE['epochs']} epochs would take {rc['time_to_model_s'] / 60:.0f} min here (EXTRAPOLATED from "
            f"{rc['epochs_run']:.2f} epochs)",
        ),
        row(
            "4d",
            "val accuracy beside those times",
            f"{last['val_accuracy']:.1%} vs {dr['val_accuracy']:.1%}",
            "",
            "info",
            "n/a",
            "",
            f"recipe after {rc['epochs_run']:.2f} epochs; default after {dr['epochs']} head epochs",
        ),
    ]


def row(item: str, figure: str, measured: str, ratio: str, target: str, result: str, cache: str, note: str) -> dict:
    return {
        "item": item,
        "figure": figure,
        "measured": measured,
        "ratio": ratio,
        "target": target,
        "result": result,
        "cache": cache,
        "note": note,
    }


def table_rows(r: dict) -> list[dict]:
    """Every row the results ``r`` allow, in item order."""
    dr = r.get("default_run")
    rows = pipeline_rows(r["pipeline"]) if r.get("pipeline") else []
    rows += frozen_rows(r["frozen"], dr) if r.get("frozen") else []
    rows += last_rows(r["last"]) if r.get("last") else []
    rows += recipe_rows(r["recipe"], dr) if r.get("recipe") and dr else []
    if dr:
        rows.append(
            row(
                "5",
                "peak RSS of the default transfer run",
                f"{dr['peak_rss_gib']:.2f} GiB",
                "",
                f"<= {TARGETS['rss_gib']:.0f} GiB",
                judge([dr["peak_rss_gib"]], TARGETS["rss_gib"], False),
                "cold",
                "subprocess `python -m fruitlib train`, wait4 ru_maxrss",
            )
        )
    return rows


def print_table(rows: list[dict]) -> None:
    cols = ("item", "figure", "measured", "ratio", "target", "result", "cache")
    widths = {c: max([len(c)] + [len(str(r[c])) for r in rows]) for c in cols}
    line = "  ".join(c.ljust(widths[c]) for c in cols)
    print("\n" + line + "\n" + "-" * len(line))
    for r in rows:
        print("  ".join(str(r[c]).ljust(widths[c]) for c in cols))
        if r["note"]:
            print(" " * (widths["item"] + 2) + "  " + r["note"])


def settings_summary(s: dict) -> list[str]:
    lines = []
    best, mine = s["frozen_forward_best"], s["frozen_forward_fruitlib"]
    lines.append(
        f"PyTorch frozen forward, best: threads {best['threads']}, channels_last {best['channels_last']}, "
        f"batch {best['batch_size']}: {best['images_per_s']:.0f} img/s"
    )
    if mine:
        lines.append(
            f"PyTorch frozen forward, threads {mine['threads']}, channels_last on, batch 64: "
            f"{mine['images_per_s']:.0f} img/s ({mine['images_per_s'] / best['images_per_s']:.0%} of best)"
        )
    for key in ("threads", "channels_last", "batch_size"):
        by = {}
        for r in s["frozen_forward"]:
            by.setdefault(r[key], []).append(r["images_per_s"])
        lines.append(f"  {key}: " + ", ".join(f"{k} -> {sum(v) / len(v):.0f} img/s (mean)" for k, v in by.items()))
    g = s["grad_mode_images_per_s"]
    lines.append("grad mode for frozen stages: " + ", ".join(f"{k} {v:.0f}" for k, v in g.items()) + " img/s")
    tv = s["torchvision_v2_augment_images_per_s"]
    lines.append(
        "augmentation (no loader): "
        + ", ".join(
            f"{k}: crop per photo {v['crop']:.0f}, colour per batch {v['batch']:.0f}, both {v['both']:.0f}"
            for k, v in s["augment_images_per_s"].items()
        )
        + " img/s; the same with torchvision v2, photo by photo, "
        "at its best: " + ", ".join(f"{k} {v:.0f}" for k, v in tv.items()) + " img/s"
    )
    t = s["train_step_images_per_s"]
    lines.append(
        f"training step, whole network, float32, batch 32: channels_last {t['channels_last']:.0f}, "
        f"contiguous {t['contiguous']:.0f} img/s (fit uses channels_last)"
    )
    lines.append(
        "augmented loader (whole-network training input): "
        + ", ".join(f"{k} {v:.0f}" for k, v in s["augmented_loader_images_per_s"].items())
        + " img/s"
    )
    lines.append(
        "decode one by one (ImagePathDataset): "
        + ", ".join(f"{k} {v:.0f}" for k, v in s["decode_images_per_s"].items())
        + " img/s"
    )
    if "openmp_wait_policy" in s:
        w = s["openmp_wait_policy"]
        lines.append(
            "OpenMP wait policy (fresh processes, default threads): "
            + ", ".join(
                f"{k}: forward {w[k]['forward_images_per_s']:.0f}, "
                f"augmentation {w[k]['augment_images_per_s']:.0f} img/s"
                for k in ("default", "PASSIVE")
            )
        )
    return lines


def gpu_settings_summary(g: dict) -> list[str]:
    steps = g["train_step"]
    best = max(steps, key=lambda r: r["images_per_s"])
    mine = next(
        r for r in steps if r["bf16_autocast"] and r["channels_last"] and r["batch_size"] == DEFAULTS.batch_size
    )
    lines = [
        f"training step, best: bf16 {best['bf16_autocast']}, channels_last {best['channels_last']}, "
        f"batch {best['batch_size']}: {best['images_per_s']:.0f} img/s",
        f"training step, fruitlib's choice (bf16, channels_last, batch {DEFAULTS.batch_size}): "
        f"{mine['images_per_s']:.0f} img/s ({mine['images_per_s'] / best['images_per_s']:.0%} of best)",
    ]
    lines += [
        "  "
        + ", ".join(
            f"bf16 {r['bf16_autocast']}, cl {r['channels_last']}, batch {r['batch_size']}: {r['images_per_s']:.0f}"
            for r in steps
        )
    ]
    lines.append(
        "augmented photos to the GPU (224 px, 2nd epoch): "
        + ", ".join(
            f"{r['workers']} workers{' pinned' if r['pin_memory'] else ''} {r['images_per_s']:.0f}"
            for r in g["photo_loader"]
        )
        + f" img/s; fruitlib uses {g['fruitlib']['loader_workers']} workers, pinned"
    )
    return lines
