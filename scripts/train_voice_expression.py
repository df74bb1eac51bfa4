"""Fit the voice expression classifier (``affectllm/assets/voice_expression.safetensors``).

    python scripts/train_voice_expression.py [--oof runs/data/voice_oof.json]

Data: EmoDB *train* speakers only (03 09 10 11; dev speakers 08 12 are scored, never fitted).
Features: the mean frame of one Whisper encoder layer per clip. Candidates: the output of the
pipeline's own tiny.en encoder (what the audio projector reads), and the outputs of blocks 1-3 and
of the whole encoder of the multilingual Whisper base (EmoDB is German; intermediate layers keep
more of the voice and less of the words).
Model selection without the dev speakers: the features and the inverse regularisation C are chosen
by leave-one-speaker-out UAR (mean per-class recall) over the train speakers; the chosen pair is
then fitted on all of them. Every candidate's LOSO and dev numbers go into the report.

``--dev-scores`` writes the fitted classifier's scores of the dev clips (the decision layer's dev
rows). ``--oof`` also writes each train clip's *out-of-fold* scores (from the model fitted without its
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

# (Whisper model, layer): None is the encoder's output, k the output of encoder block k.
CANDIDATES = (("whisper-tiny.en", None), ("whisper-base", 1), ("whisper-base", 2), ("whisper-base", 3),
              ("whisper-base", None))
C_GRID = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)


def features(samples) -> dict[tuple, np.ndarray]:
    """Candidate -> pooled features [n x d] of ``samples``, decoded as the pipeline decodes audio."""
    from tqdm import tqdm

    from affectllm.io import decode_audio
    from affectllm.perception.audio import SR, AudioPerceiver

    audio = AudioPerceiver(voice_model=None)
    by_model: dict[str, list] = {}
    for name, layer in CANDIDATES:
        by_model.setdefault(name, []).append(layer)
    rows: dict[tuple, list] = {c: [] for c in CANDIDATES}
    for s in tqdm(samples, desc="whisper features", unit="clip"):
        wav, _ = decode_audio(s.media["audio"], sr=SR)
        for name, layers in by_model.items():
            for layer, x in audio.layer_features(wav, name, layers).items():
                rows[(name, layer)].append(pooled(x))
    return {c: np.stack(v) for c, v in rows.items()}


def uar(gold: list[str], pred: list[str]) -> float:
    return float(np.mean([np.mean([p == g for p, g2 in zip(pred, gold) if g2 == g]) for g in sorted(set(gold))]))


def loso(X, y, speakers, labels, C, encoder, layer) -> tuple[float, dict[int, dict[str, float]]]:
    """Leave-one-speaker-out UAR and each row's out-of-fold scores."""
    oof = {}
    for spk in sorted(set(speakers)):
        held = [i for i, s in enumerate(speakers) if s == spk]
        rest = [i for i, s in enumerate(speakers) if s != spk]
        m = fit(X[rest], [y[i] for i in rest], labels, encoder, C, layer=layer)
        for i in held:
            oof[i] = m.scores(X[i][None])
    return uar(y, [max(oof[i], key=oof[i].get) for i in range(len(y))]), oof


def name(c: tuple) -> str:
    return f"{c[0]} {'encoder output' if c[1] is None else f'block {c[1]}'}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ASSET), help="classifier file (default: the shipped asset)")
    ap.add_argument("--oof", default=None, metavar="JSON", help="write out-of-fold scores of the train clips")
    ap.add_argument("--dev-scores", default=None, metavar="JSON", help="write the fitted classifier's dev scores")
    ap.add_argument("--report", default=str(REPO / "eval/results/voice-expression-dev"), metavar="DIR")
    args = ap.parse_args(argv)

    from data_engine.sources import open_source
    from eval.figures import confusion_figure
    from eval.metrics import classification_report

    samples = [s for s in open_source("emodb") if s.labels]
    train = [s for s in samples if s.split == "train"]
    dev = [s for s in samples if s.split == "dev"]
    labels = list(dict.fromkeys(lab for s in samples for lab in s.labels[:1]))
    Ftr, Fdv = features(train), features(dev)
    ytr, ydv = [s.labels[0] for s in train], [s.labels[0] for s in dev]
    spk = [s.speaker for s in train]

    grid = {(c, C): loso(Ftr[c], ytr, spk, labels, C, *c) for c in CANDIDATES for C in C_GRID}
    # ties: the candidate listed first (the cheaper features), then the stronger regularisation
    best_c, best = max(grid, key=lambda k: (round(grid[k][0], 6), -CANDIDATES.index(k[0]), -k[1]))
    dev_of = {}
    for (c, C) in grid:  # every candidate's dev numbers, reported only (choice made above)
        m = fit(Ftr[c], ytr, labels, *c[:1], C, layer=c[1])
        dev_of[(c, C)] = classification_report(ydv, [max(p, key=p.get) for p in (m.scores(x[None]) for x in Fdv[c])],
                                               m.labels)
    model = fit(Ftr[best_c], ytr, labels, best_c[0], best, layer=best_c[1],
                info={"data": f"EmoDB train speakers {' '.join(sorted(set(spk)))} ({len(train)} clips)",
                      "features": f"mean {name(best_c)} frame", "loso_uar": round(grid[(best_c, best)][0], 4)})
    dev_probs = [model.scores(x[None]) for x in Fdv[best_c]]
    rep = classification_report(ydv, [max(p, key=p.get) for p in dev_probs], model.labels)
    model.info["dev_accuracy"] = round(rep["accuracy"], 4)
    model.info["dev_uar"] = round(rep["uar"], 4)
    model.save(args.out)
    VoiceExpression.load(args.out)  # the written file reads back

    if args.oof:
        atomic_write_json(args.oof, {train[i].id: {k: round(v, 4) for k, v in p.items()}
                                     for i, p in sorted(grid[(best_c, best)][1].items())})
    if args.dev_scores:
        atomic_write_json(args.dev_scores, {s.id: {k: round(v, 4) for k, v in p.items()}
                                            for s, p in zip(dev, dev_probs)})
    out = Path(args.report)
    out.mkdir(parents=True, exist_ok=True)
    block = dict(rep, system=f"voice classifier ({name(best_c)}, C={best})")
    confusion_figure(block, out / "confusion.png")
    lines = ["# Voice expression classifier: EmoDB dev speakers 08 + 12", "",
             "Command: `python scripts/train_voice_expression.py --oof runs/decision/voice_oof.json "
             "--dev-scores runs/decision/voice_dev.json`", "",
             f"- fitted on {model.info['data']}; features: {model.info['features']}",
             "- features and C chosen by leave-one-speaker-out UAR over the train speakers (dev never used "
             "to choose; its columns are shown for the record):", ""]
    lines += ["| features | C | LOSO UAR | dev accuracy | dev UAR |", "|---|---|---|---|---|"]
    lines += [f"| {name(c)} | {C} | {grid[(c, C)][0]:.3f} | {dev_of[(c, C)]['accuracy']:.3f} | "
              f"{dev_of[(c, C)]['uar']:.3f} |" + (" **chosen**" if (c, C) == (best_c, best) else "")
              for (c, C) in grid]
    lines += ["", f"Dev (n={rep['n']}): accuracy **{rep['accuracy']:.3f}**, UAR {rep['uar']:.3f}, "
                  f"macro F1 {rep['macro_f1']:.3f}", "", "| class | support | F1 | precision | recall |",
              "|---|---|---|---|---|"]
    for lab, c in rep["per_class"].items():
        lines.append(f"| {lab} | {c['support']} | {c['f1']:.3f} | {c['precision']:.3f} | {c['recall']:.3f} |")
    lines += ["", "![confusion](confusion.png)", ""]
    atomic_write_text(out / "report.md", "\n".join(lines))
    print(f"{name(best_c)}, C={best} (LOSO UAR {grid[(best_c, best)][0]:.3f}); dev accuracy {rep['accuracy']:.3f}, macro F1 "
          f"{rep['macro_f1']:.3f} -> {args.out}, {out / 'report.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
