"""Do the geometric AUs hold on people they were not calibrated on? Leave-identities-out pair wins.

    nice -n 19 python benchmarks/au_pairs_london.py [--data ../shared/data] [--folds 5] \
        [--out benchmarks/results/au_pairs_london.md]

The Face Research Lab London Set (shared data, CC BY 4.0) has a neutral and a smiling photo of
each of 30 people. Identities are split into ``--folds`` folds (sorted ids, id i in fold i mod k).
Per fold, the calibration ``scripts/calibrate_au.py`` does on all 30 is redone on the *other*
folds' neutral photos only (Procrustes-mean reference shape, mean and sd of every measure), and
each held-out person's two photos are frontalised against that reference and scored. A pair is
a *win* for an AU when the smiling photo scores strictly higher than the neutral one; ties count
as misses. Reported per AU, over the 30 held-out pairs:

- ``_s``: the continuous, unclipped score (``perception.au_score``), which the frame table
  ranks with;
- ``_r``: the clipped 0-5 intensity (ties at 0 below the rest threshold are misses);
- the expression classifier's P(happy) on the same photos, as the reference the issue names.

Only numbers are written; no photo leaves the shared folder. Landmarks come from
``FaceMesher`` (both BlazeFace models + crop mesh: the still-image path), largest face.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SD_FLOOR = 0.004  # as scripts/calibrate_au.py


def photo_landmarks(root: Path):
    """[(identity, smile kind, neutral lm [478 x 3], smiling lm, neutral crop, smiling crop)] pixels."""
    from PIL import Image

    from affectllm.perception.align import eye_aligned_crop
    from affectllm.perception.mesh import FaceMesher

    mesher = FaceMesher()
    rows = list(csv.DictReader(open(root / "labels.csv")))
    by_id: dict[str, dict] = {}
    for r in rows:
        img = np.asarray(Image.open(root / r["file"]).convert("RGB"))
        dets = mesher.detect(img)
        if not dets:
            raise RuntimeError(f"{r['file']}: no face found")
        lm = mesher.mesh(img, dets[0].box)
        if lm is None:
            raise RuntimeError(f"{r['file']}: mesh failed")
        d = by_id.setdefault(r["identity"], {})
        key = "neutral" if r["label"] == "neutral" else "smiling"
        d[key] = (lm, eye_aligned_crop(img, lm))
        if key == "smiling":
            d["kind"] = r["smile"]
    mesher.close()
    return [(i, d.get("kind", ""), d["neutral"][0], d["smiling"][0], d["neutral"][1], d["smiling"][1])
            for i, d in sorted(by_id.items()) if "neutral" in d and "smiling" in d]


def calibrate(neutral_lms: list[np.ndarray]):
    """(reference shape, measure stats) from neutral landmarks, as scripts/calibrate_au.py does."""
    from affectllm.perception.au import MEASURE_NAMES, raw_measures
    from affectllm.perception.calibration import procrustes_mean
    from affectllm.perception.geometry import frontalize

    ref = procrustes_mean(neutral_lms)
    ms = [raw_measures(frontalize(lm, ref).points) for lm in neutral_lms]
    stats = {}
    for k in MEASURE_NAMES:
        v = np.array([m[k] for m in ms])
        stats[k] = {"mean": float(v.mean()), "sd": max(float(v.std(ddof=1)), SD_FLOOR)}
    return ref, stats


def evaluate(pairs, folds: int):
    """Per held-out pair: {"id", "kind", "s": (neutral, smiling) score dicts, "r": intensity dicts}."""
    from affectllm.perception.au import au_intensities, raw_measures
    from affectllm.perception.au_score import au_scores
    from affectllm.perception.geometry import frontalize

    out = []
    for k in range(folds):
        test = [p for i, p in enumerate(pairs) if i % folds == k]
        train = [p for i, p in enumerate(pairs) if i % folds != k]
        ref, stats = calibrate([p[2] for p in train])
        for ident, kind, lm_n, lm_s, _, _ in test:
            mn, msm = raw_measures(frontalize(lm_n, ref).points), raw_measures(frontalize(lm_s, ref).points)
            out.append({"id": ident, "kind": kind, "fold": k,
                        "s": (au_scores(mn, stats), au_scores(msm, stats)),
                        "r": (au_intensities(mn, stats), au_intensities(msm, stats))})
    return out


def happy_probs(pairs):
    from affectllm.perception.align import Expression

    ex = Expression()
    probs, _ = ex.run([c for p in pairs for c in (p[4], p[5])])
    happy = ex.labels.index("happy")
    return [(float(probs[2 * i, happy]), float(probs[2 * i + 1, happy])) for i in range(len(pairs))]


def main(argv=None) -> int:
    from affectllm.knowledge.facs import PRESENCE_THRESHOLD
    from affectllm.paths import data_root
    from affectllm.perception.au import AU_ORDER

    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results/au_pairs_london.md")
    args = ap.parse_args(argv)
    root = (args.data or data_root() or Path("../shared/data")) / "faces_london"
    if not (root / "labels.csv").is_file():
        print(f"error: {root}/labels.csv not found (pass --data)", file=sys.stderr)
        return 2
    pairs = photo_landmarks(root)
    res = evaluate(pairs, args.folds)
    hp = happy_probs(pairs)
    n = len(res)
    lines = [f"# London leave-identities-out AU pair wins ({args.folds} folds, {n} held-out pairs)", "",
             "Win: smiling photo strictly above the neutral one (ties are misses).", "",
             "| AU | wins `_s` (unclipped) | wins `_r` (0-5) | ties `_r` | mean `_s` neutral | mean `_s` smiling"
             " | `_c` present neutral | `_c` present smiling |",
             "|---|---|---|---|---|---|---|---|"]
    for au in AU_ORDER:
        ws = sum(r["s"][1][au] > r["s"][0][au] for r in res)
        wr = sum(r["r"][1][au] > r["r"][0][au] for r in res)
        tr = sum(r["r"][1][au] == r["r"][0][au] for r in res)
        mn = np.mean([r["s"][0][au] for r in res])
        msm = np.mean([r["s"][1][au] for r in res])
        cn = sum(r["r"][0][au] >= PRESENCE_THRESHOLD for r in res)
        cs = sum(r["r"][1][au] >= PRESENCE_THRESHOLD for r in res)
        lines.append(f"| {au} | {ws}/{n} ({100 * ws / n:.0f}%) | {wr}/{n} ({100 * wr / n:.0f}%) | {tr} | {mn:.2f}"
                     f" | {msm:.2f} | {cn}/{n} | {cs}/{n} |")
    wh = sum(s > ne for ne, s in hp)
    lines += ["", f"Expression classifier P(happy), same photos: {wh}/{len(hp)} ({100 * wh / len(hp):.0f}%) wins.", "",
              "Per smile kind (AU12 `_s` / AU6 `_s` wins):", ""]
    for kind in sorted({r["kind"] for r in res}):
        rr = [r for r in res if r["kind"] == kind]
        w12 = sum(r["s"][1]["AU12"] > r["s"][0]["AU12"] for r in rr)
        w6 = sum(r["s"][1]["AU6"] > r["s"][0]["AU6"] for r in rr)
        lines.append(f"- {kind or 'unlabelled'}: AU12 {w12}/{len(rr)}, AU6 {w6}/{len(rr)}")
    missed = [r["id"] for r in res if not r["s"][1]["AU12"] > r["s"][0]["AU12"]]
    lines += ["", f"AU12 `_s` misses (identity): {', '.join(missed) or 'none'}"]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
