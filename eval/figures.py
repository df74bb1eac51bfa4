"""PNG figures of an eval folder (matplotlib, Agg backend: no display needed).

- ``confusion.png``: the chosen model's confusion matrix (counts; colour = share of the gold
  row), with the *unmapped* column for answers outside the taxonomy and failed items.
- ``per_class_f1.png``: per-class F1 of every system side by side.
- ``au_heatmap.png``: how often each perceived Action Unit is present, per gold emotion (share
  of that emotion's items whose main face shows the AU). Only written when faces were seen.

Deliberately not here: computing metrics (``eval.score``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def confusion_figure(block: dict, path: str | Path, title: str = "") -> Path:
    plt = _plt()
    rows = block["labels"]
    cols = block["confusion"]["columns"]
    cm = np.asarray(block["confusion"]["matrix"], dtype=float).reshape(len(rows), len(cols))
    share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * len(cols), 1.0 + 0.65 * len(rows)))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(rows)):
        for j in range(len(cols)):
            if cm[i, j]:
                ax.text(j, i, int(cm[i, j]), ha="center", va="center",
                        color="white" if share[i, j] > 0.5 else "black", fontsize=9)
    ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(title or f"{block.get('system')} (n={block.get('n')}, accuracy {block.get('accuracy', 0):.2f})",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def f1_figure(blocks: dict[str, dict], path: str | Path) -> Path:
    plt = _plt()
    labels = next(iter(blocks.values()))["labels"]
    names = list(blocks)
    width = 0.8 / max(len(names), 1)
    fig, ax = plt.subplots(figsize=(min(12.0, max(6.0, 1.2 + 0.25 * len(labels) * len(names))), 3.6))
    x = np.arange(len(labels))
    for k, name in enumerate(names):
        pc = blocks[name]["per_class"]
        ax.bar(x + (k - (len(names) - 1) / 2) * width, [pc[lab]["f1"] for lab in labels], width, label=name)
    ax.set_xticks(x, labels, rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("F1")
    ax.set_title("per-class F1")
    ax.legend(fontsize=8, ncol=min(len(names), 4))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def au_frequency(records: list[dict], labels: list[str]) -> tuple[list[str], list[str], np.ndarray, list[int]]:
    """(emotions, AUs, share [emotions x AUs], items per emotion) over items with a perceived face.

    An item counts for each of its gold labels; items whose line has no ``evidence_aus`` key or
    an error are skipped (nothing was perceived), items with an empty list count (no AU present).
    """
    seen = [r for r in records if r.get("gold") and "evidence_aus" in r and not r.get("error")]
    aus = sorted({a for r in seen for a in r["evidence_aus"]}, key=lambda a: int(a[2:]) if a[2:].isdigit() else 99)
    emotions = [lab for lab in labels if any(lab in r["gold"] for r in seen)]
    counts = np.zeros((len(emotions), len(aus)))
    n = [0] * len(emotions)
    for r in seen:
        for lab in r["gold"]:
            if lab in emotions:
                i = emotions.index(lab)
                n[i] += 1
                for a in r["evidence_aus"]:
                    counts[i, aus.index(a)] += 1
    share = counts / np.maximum(np.asarray(n, dtype=float)[:, None], 1)
    return emotions, aus, share, n


def au_heatmap(records: list[dict], labels: list[str], path: str | Path) -> Path | None:
    emotions, aus, share, n = au_frequency(records, labels)
    if not aus:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(1.5 + 0.5 * len(aus), 1.0 + 0.5 * len(emotions)))
    im = ax.imshow(share, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(aus)), aus, rotation=90)
    ax.set_yticks(range(len(emotions)), [f"{e} (n={k})" for e, k in zip(emotions, n)])
    ax.set_title("share of items with each AU present, per gold emotion", fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.03)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def write_figures(run_dir: str | Path, blocks: dict[str, dict], records: dict[str, list[dict]],
                  primary: str) -> dict[str, Path]:
    """Write the figures into ``run_dir/figures``; name -> path of each one written."""
    out = Path(run_dir) / "figures"
    out.mkdir(parents=True, exist_ok=True)
    figs = {"confusion": confusion_figure(blocks[primary], out / "confusion.png"),
            "per_class_f1": f1_figure(blocks, out / "per_class_f1.png")}
    # AU presence is the same perception for every system: take the first system that saw faces.
    for name in [primary, *blocks]:
        heat = au_heatmap(records[name], blocks[primary]["labels"], out / "au_heatmap.png")
        if heat is not None:
            figs["au_heatmap"] = heat
            break
    rel = reliability_figure(records[primary], out / "reliability.png")
    if rel is not None:
        figs["reliability"] = rel
    return figs


def reliability_figure(records: list[dict], path: Path) -> Path | None:
    """Reliability diagram (10 bins) of the single-label lines with probabilities; None without any."""
    from affectllm.decision.calibration import reliability_diagram
    from eval.metrics import top_confidences

    recs = [r for r in records if r.get("probabilities") and len(r.get("gold") or []) == 1]
    if not recs:
        return None
    confs, correct = top_confidences([r["probabilities"] for r in recs], [r["gold"][0] for r in recs])
    reliability_diagram(confs, correct, path)
    return path
