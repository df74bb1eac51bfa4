"""Fit the voice expression classifier (``affectllm/assets/voice_expression.safetensors``).

    python scripts/train_voice_expression.py [--oof runs/data/voice_oof.json]

Data: EmoDB *train* speakers only (03 09 10 11; dev speakers 08 12 are scored, never fitted).
Features: the mean Whisper tiny.en encoder frame of each clip (the pipeline's own encoder).
Model selection without the dev speakers: the inverse regularisation C is chosen by
leave-one-speaker-out accuracy over the train speakers; the chosen C is then fitted on all of them.

``--oof`` also writes each train clip's *out-of-fold* scores (from the model fitted without its
speaker). ``affectllm data build --voice-scores`` puts those in the training records, so the LLM
learns how far to trust the classifier on voices it has not heard, not on voices it was fitted to
(where it is always right). The report and confusion figure go to eval/results/voice-expression-dev/.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from affectllm.io.files import atomic_write_json, atomic_write_text  # noqa: E402
from affectllm.perception.voice_expression import ASSET, VoiceExpression, fit, pooled  # noqa: E402

ENCODER = "whisper-tiny.en"
C_GRID = (0.003, 0.01, 0.03, 0.1, 0.3)


def features(samples) -> np.ndarray:
    from tqdm import tqdm

    from affectllm.io.item import Item
    from affectllm.perception.pipeline import Perception

    perception = Perception(modalities=("audio",), whisper_name=ENCODER, transcribe=False, voice_model=None)
    rows = []
    for s in tqdm(samples, desc="whisper features", unit="clip"):
        obs = perception.perceive(Item(id=s.id, audio=s.media["audio"]))
        if obs.audio is None or obs.audio.features is None:
            raise SystemExit(f"{s.id}: no audio features ({'; '.join(obs.errors) or 'unknown reason'})")
        rows.append(pooled(obs.audio.features))
    return np.stack(rows)


def loso(X, y, speakers, labels, C) -> tuple[float, dict[int, dict[str, float]]]:
    """Leave-one-speaker-out accuracy and each row's out-of-fold scores."""
    oof, hits = {}, []
    for spk in sorted(set(speakers)):
        held = [i for i, s in enumerate(speakers) if s == spk]
        rest = [i for i, s in enumerate(speakers) if s != spk]
        m = fit(X[rest], [y[i] for i in rest], labels, ENCODER, C)
        for i in held:
            oof[i] = m.scores(X[i][None])
            hits.append(max(oof[i], key=oof[i].get) == y[i])
    return float(np.mean(hits)), oof


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ASSET), help="classifier file (default: the shipped asset)")
    ap.add_argument("--oof", default=None, metavar="JSON", help="write out-of-fold scores of the train clips")
    ap.add_argument("--report", default=str(REPO / "eval/results/voice-expression-dev"), metavar="DIR")
    args = ap.parse_args(argv)

    from data_engine.sources import open_source
    from eval.figures import confusion_figure
    from eval.metrics import classification_report

    samples = [s for s in open_source("emodb") if s.labels]
    train = [s for s in samples if s.split == "train"]
    dev = [s for s in samples if s.split == "dev"]
    labels = list(dict.fromkeys(lab for s in samples for lab in s.labels[:1]))
    Xtr, Xdv = features(train), features(dev)
    ytr, ydv = [s.labels[0] for s in train], [s.labels[0] for s in dev]
    spk = [s.speaker for s in train]

    grid = {C: loso(Xtr, ytr, spk, labels, C) for C in C_GRID}
    best = max(C_GRID, key=lambda c: (grid[c][0], -c))  # ties: the stronger regularisation
    model = fit(Xtr, ytr, labels, ENCODER, best,
                info={"data": f"EmoDB train speakers {' '.join(sorted(set(spk)))} ({len(train)} clips)",
                      "features": f"mean {ENCODER} encoder frame", "loso_accuracy": round(grid[best][0], 4)})
    pred = [max(p, key=p.get) for p in (model.scores(x[None]) for x in Xdv)]
    rep = classification_report(ydv, pred, model.labels)
    model.info["dev_accuracy"] = round(rep["accuracy"], 4)
    model.save(args.out)
    VoiceExpression.load(args.out)  # the written file reads back

    if args.oof:
        atomic_write_json(args.oof, {train[i].id: {k: round(v, 4) for k, v in p.items()}
                                     for i, p in sorted(grid[best][1].items())})
    out = Path(args.report)
    out.mkdir(parents=True, exist_ok=True)
    block = dict(rep, system=f"voice classifier (C={best})")
    confusion_figure(block, out / "confusion.png")
    lines = ["# Voice expression classifier: EmoDB dev speakers 08 + 12", "",
             "Command: `python scripts/train_voice_expression.py --oof runs/data/voice_oof.json`", "",
             f"- fitted on {model.info['data']}; features: {model.info['features']}",
             "- C chosen by leave-one-speaker-out accuracy over the train speakers (dev never used to choose):", ""]
    lines += ["| C | LOSO accuracy |", "|---|---|"] + [f"| {c} | {grid[c][0]:.3f} |" for c in C_GRID]
    lines += ["", f"Dev (n={rep['n']}): accuracy **{rep['accuracy']:.3f}**, UAR {rep['uar']:.3f}, "
                  f"macro F1 {rep['macro_f1']:.3f}", "", "| class | support | F1 | precision | recall |",
              "|---|---|---|---|---|"]
    for lab, c in rep["per_class"].items():
        lines.append(f"| {lab} | {c['support']} | {c['f1']:.3f} | {c['precision']:.3f} | {c['recall']:.3f} |")
    lines += ["", "![confusion](confusion.png)", ""]
    atomic_write_text(out / "report.md", "\n".join(lines))
    print(f"C={best} (LOSO {grid[best][0]:.3f}); dev accuracy {rep['accuracy']:.3f}, macro F1 "
          f"{rep['macro_f1']:.3f} -> {args.out}, {out / 'report.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
