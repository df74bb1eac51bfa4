"""Fit the text expression classifier (``affectllm/assets/text_expression/``).

    OMP_NUM_THREADS=2 python scripts/train_text_expression.py --threads 2 [--max-steps N]

Data: GoEmotions-Ekman (/work/shared/data/goemotions_ekman). A fixed, seeded 4,000-item slice of the
*single-label* train items is held out as the "decision" slice: no head is fitted on it (the decision
layer is fitted on it later, and must not see scores a head made on its own training items). The
heads train on the rest of train; multi-label items are kept as soft targets (mass 1/k on each of
their k labels; for sklearn, k rows weighted 1/k). Candidates are scored on the FULL dev split's
single-label items (Ekman 6 + neutral) by macro-F1; the test split is never read.

Candidates: (a) frozen all-MiniLM-L6-v2 mean-pooled embeddings + class-balanced logistic head;
(b) (a) + word TF-IDF features; (c) LoRA on the encoder's query/value + linear head (warm-started from
(a)'s head), class-balanced soft cross-entropy, batches formed by length. Each candidate's C or logit
adjustment (tau * log prior added to the logits) is chosen on dev, which makes dev numbers slightly
optimistic. Frozen embeddings are cached under --out (runs/ is gitignored); the asset is not.

Writes: the winner's asset + decision_ids.txt, runs/text_expression/scores.jsonl (the winner's
probabilities on the decision slice and dev), eval/results/text-expression-dev/{metrics.json,confusion.png}.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DATA = Path("/work/shared/data/goemotions_ekman")
TAUS = (-0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0, 1.5)  # 0.5 was the edge of a first grid


def read_split(path: Path, names: list[str]) -> list[dict]:
    """Rows {id, text, labels: [Ekman-7 names]} of one TSV (text, comma-separated ids, id)."""
    from affectllm.knowledge.taxonomy import normalize_label

    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        for text, ids, rid in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            labels = sorted({normalize_label(names[int(i)], "ekman7") for i in ids.split(",")})
            rows.append({"id": rid, "text": text, "labels": labels})
    return rows


def soft_targets(rows: list[dict], labels: list[str]) -> np.ndarray:
    t = np.zeros((len(rows), len(labels)))
    for i, r in enumerate(rows):
        for lab in r["labels"]:
            t[i, labels.index(lab)] = 1.0 / len(r["labels"])
    return t


def balanced_weights(targets: np.ndarray) -> np.ndarray:
    """sklearn's "balanced" weights over soft label mass: n / (k * mass_c)."""
    mass = targets.sum(0)
    return targets.shape[0] / (len(mass) * np.maximum(mass, 1e-9))


def expand(X, targets: np.ndarray, class_w: np.ndarray):
    """One row per (item, label) with weight share * class weight (soft targets for sklearn)."""
    import scipy.sparse as sp

    items, cls = np.nonzero(targets)
    w = targets[items, cls] * class_w[cls]
    Xe = X[items] if not sp.issparse(X) else X.tocsr()[items]
    return Xe, cls, w


def metrics(probs: np.ndarray, gold: list[str], labels: list[str]) -> dict:
    from eval.metrics import classification_report, expected_calibration_error

    pred = [labels[i] for i in probs.argmax(1)]
    rep = classification_report(gold, pred, labels)
    rep["ece_10"] = expected_calibration_error(probs, gold, labels, n_bins=10)
    return rep


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def pick_tau(logits: np.ndarray, log_prior: np.ndarray, gold: list[str], labels: list[str]):
    """(tau, dev macro-F1) of the best logit adjustment logits + tau * log prior, by dev macro-F1."""
    from eval.metrics import macro_f1

    scored = [(macro_f1(gold, [labels[i] for i in (logits + t * log_prior).argmax(1)], labels), t) for t in TAUS]
    best = max(scored)  # ties: the larger tau; irrelevant in practice
    return best[1], best[0], {str(t): round(f, 4) for f, t in scored}


def frozen_embeddings(texts: list[str], cache: Path, args) -> np.ndarray:
    import torch

    from affectllm.perception.text_expression import TextExpression, base_model_dir, load_encoder

    if cache.is_file():
        z = np.load(cache)
        if z["n"] == len(texts):
            return z["X"]
    tok, enc = load_encoder(base_model_dir())
    te = TextExpression(tok, enc, ["x"], torch.zeros(1, enc.config.hidden_size), torch.zeros(1), args.max_length)
    from tqdm import tqdm

    out = []
    for s in tqdm(range(0, len(texts), 2048), desc="frozen embeddings (x2048)"):
        out.append(te.embed(texts[s:s + 2048], batch_size=128).numpy())
    X = np.concatenate(out)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, X=X, n=len(texts))
    return X


def fit_logreg(X, targets, class_w, C, seed):
    from sklearn.linear_model import LogisticRegression

    Xe, y, w = expand(X, targets, class_w)
    return LogisticRegression(C=C, max_iter=3000, random_state=seed).fit(Xe, y, sample_weight=w)


def train_lora(train_rows, targets, class_w, head_w, head_b, args):
    """LoRA + head trained on ``train_rows``; returns (adapter tensors, scaling, head weight, bias, info)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from tqdm import tqdm

    from affectllm.perception.text_expression import base_model_dir, load_encoder, mean_pool

    torch.manual_seed(args.seed)
    tok, enc = load_encoder(base_model_dir())
    cfg = LoraConfig(r=args.lora_r, lora_alpha=2 * args.lora_r, lora_dropout=0.1, target_modules=["query", "value"])
    model = get_peft_model(enc, cfg)
    head = torch.nn.Linear(enc.config.hidden_size, len(class_w))
    with torch.no_grad():
        head.weight.copy_(torch.as_tensor(head_w, dtype=torch.float32))
        head.bias.copy_(torch.as_tensor(head_b, dtype=torch.float32))
    params = [p for p in model.parameters() if p.requires_grad] + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    # Batches by length: shuffle, sort within chunks of 50 batches, shuffle the batches (less padding).
    rng = np.random.default_rng(args.seed)
    batches = []
    for _ in range(args.epochs):
        order = rng.permutation(len(train_rows))
        for c in range(0, len(order), args.batch * 50):
            chunk = sorted(order[c:c + args.batch * 50], key=lambda i: len(train_rows[i]["text"]))
            batches += [chunk[s:s + args.batch] for s in range(0, len(chunk), args.batch)]
    batches = [batches[i] for i in rng.permutation(len(batches))]
    if args.max_steps:
        batches = batches[:args.max_steps]
    total, warm = len(batches), max(1, len(batches) // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm))))
    cw = torch.as_tensor(class_w, dtype=torch.float32)
    T = torch.as_tensor(targets, dtype=torch.float32)
    model.train()
    t0, bar = time.time(), tqdm(batches, desc="LoRA steps")
    for step, idx in enumerate(bar):
        b = tok([train_rows[i]["text"] for i in idx], padding=True, truncation=True,
                max_length=args.max_length, return_tensors="pt")
        hidden = model(**b).last_hidden_state
        logp = torch.log_softmax(head(mean_pool(hidden, b["attention_mask"])), -1)
        wt = T[idx] * cw
        loss = -(wt * logp).sum() / wt.sum()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        if step % 20 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    adapter = {}
    for name, mod in model.named_modules():
        if hasattr(mod, "lora_A") and "default" in getattr(mod, "lora_A", {}):
            base = name.replace("base_model.model.", "", 1)
            adapter[base + ".lora_A"] = mod.lora_A["default"].weight.detach().clone()
            adapter[base + ".lora_B"] = mod.lora_B["default"].weight.detach().clone()
    info = {"steps": total, "epochs": args.epochs, "batch": args.batch, "lr": args.lr, "lora_r": args.lora_r,
            "lora_alpha": 2 * args.lora_r, "target_modules": ["query", "value"], "seconds": round(time.time() - t0)}
    return adapter, 2.0, head.weight.detach().clone(), head.bias.detach().clone(), info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--candidates", default="a,b,c")
    ap.add_argument("--decision-size", type=int, default=4000)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--max-steps", type=int, default=0, help="cap LoRA steps (0: full epochs)")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--lora-r", type=int, default=8)
    ap.add_argument("--out", default=str(REPO / "runs" / "text_expression"))
    ap.add_argument("--asset", default=None, help="asset folder (default: the shipped one)")
    ap.add_argument("--c-note", default="", help="why candidate (c) was not run (written to metrics.json)")
    ap.add_argument("--ship", default="", help="ship this candidate instead of the best (smoke tests)")
    ap.add_argument("--limit", type=int, default=0, help="smoke test: first N train and dev rows only")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from affectllm.perception.text_expression import (ASSET_DIR, BASE_MODULE, BASE_PACKAGE, BASE_VERSION,
                                                      TextExpression, Tfidf, base_model_dir, load_encoder,
                                                      merge_lora)
    from affectllm.knowledge.taxonomy import EKMAN7

    labels = list(EKMAN7.labels)
    names = (DATA / "labels.txt").read_text().split()
    train, dev = read_split(DATA / "train.tsv", names), read_split(DATA / "dev.tsv", names)
    if args.limit:
        train, dev = train[:args.limit], dev[:args.limit]
    single = [i for i, r in enumerate(train) if len(r["labels"]) == 1]
    rng = np.random.default_rng(args.seed)
    held = set(rng.choice(single, size=args.decision_size, replace=False).tolist())
    fit_idx = [i for i in range(len(train)) if i not in held]
    dec_idx = sorted(held)
    dev_idx = [i for i, r in enumerate(dev) if len(r["labels"]) == 1]
    fit_rows, dec_rows, dev_rows = [train[i] for i in fit_idx], [train[i] for i in dec_idx], [dev[i] for i in dev_idx]
    dev_gold = [r["labels"][0] for r in dev_rows]
    T = soft_targets(fit_rows, labels)
    class_w = balanced_weights(T)
    log_prior = np.log(T.sum(0) / T.sum())
    print(f"fit {len(fit_rows)} (multi-label {sum(len(r['labels']) > 1 for r in fit_rows)}), "
          f"decision {len(dec_rows)}, dev single-label {len(dev_rows)}")

    out = Path(args.out)
    X = frozen_embeddings([r["text"] for r in train] + [r["text"] for r in dev], out / "frozen_embeddings.npz", args)
    Xtr, Xdev_all = X[:len(train)], X[len(train):]
    Xfit, Xdec, Xdev = Xtr[fit_idx], Xtr[dec_idx], Xdev_all[dev_idx]
    mean, scale = Xfit.mean(0), Xfit.std(0) + 1e-6
    report, heads = {}, {}
    wanted = args.candidates.split(",")

    from eval.metrics import macro_f1
    def dev_f1(clf, Xd):
        return macro_f1(dev_gold, [labels[i] for i in clf.predict(Xd)], labels)

    # (a) frozen embeddings + logistic head; C chosen on dev.
    best_a = max(((dev_f1(m, (Xdev - mean) / scale), C, m) for C in (0.1, 1.0)
                  for m in [fit_logreg((Xfit - mean) / scale, T, class_w, C, args.seed)]), key=lambda t: t[0])
    _, C_a, clf_a = best_a
    W_a = clf_a.coef_ / scale  # fold the standardisation into the head: raw pooled vector in
    b_a = clf_a.intercept_ - W_a @ mean
    if "a" in wanted:
        lg = Xdev @ W_a.T + b_a
        tau, f1, grid = pick_tau(lg, log_prior, dev_gold, labels)
        heads["a"] = {"weight": W_a, "bias": b_a + tau * log_prior, "adapter": {}, "tau": tau}
        report["a"] = {"C": C_a, "tau": tau, "tau_grid_macro_f1": grid,
                       "dev": metrics(softmax(lg + tau * log_prior), dev_gold, labels)}
        print(f"(a) C={C_a} tau={tau} dev macro-F1 {report['a']['dev']['macro_f1']:.4f}")

    if "b" in wanted:  # (b) (a) + TF-IDF word uni/bigrams, side by side in one logistic head.
        import scipy.sparse as sp
        from sklearn.feature_extraction.text import TfidfVectorizer

        vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, max_features=50000)
        Tf = vec.fit_transform([r["text"] for r in fit_rows])
        Tdev = vec.transform([r["text"] for r in dev_rows])
        Zf = sp.hstack([sp.csr_matrix((Xfit - mean) / scale / math.sqrt(Xfit.shape[1])), Tf]).tocsr()
        Zd = sp.hstack([sp.csr_matrix((Xdev - mean) / scale / math.sqrt(Xfit.shape[1])), Tdev]).tocsr()
        f1_b, C_b, clf_b = max(((dev_f1(m, Zd), C, m) for C in (1.0, 3.0, 10.0)
                                for m in [fit_logreg(Zf, T, class_w, C, args.seed)]), key=lambda t: t[0])
        lg = clf_b.decision_function(Zd)
        tau, f1, grid = pick_tau(lg, log_prior, dev_gold, labels)
        d = Xfit.shape[1]
        W_e = clf_b.coef_[:, :d] / scale / math.sqrt(d)  # fold the standardisation: raw pooled vector in
        b_b = clf_b.intercept_ - W_e @ mean
        tf = Tfidf(dict(vec.vocabulary_), torch.as_tensor(vec.idf_, dtype=torch.float32))
        check = [r["text"] for r in dev_rows[:300]]
        mine = tf.logits(check, torch.as_tensor(clf_b.coef_[:, d:]))
        ref = torch.as_tensor(vec.transform(check) @ clf_b.coef_[:, d:].T)
        assert torch.allclose(mine, ref, atol=1e-4), "module TF-IDF differs from sklearn's"
        heads["b"] = {"weight": np.hstack([W_e, clf_b.coef_[:, d:]]), "bias": b_b + tau * log_prior,
                      "adapter": {}, "tau": tau, "tfidf": tf}
        report["b"] = {"C": C_b, "tau": tau, "tau_grid_macro_f1": grid, "tfidf_features": len(vec.vocabulary_),
                       "dev": metrics(softmax(lg + tau * log_prior), dev_gold, labels)}
        print(f"(b) C={C_b} tau={tau} dev macro-F1 {report['b']['dev']['macro_f1']:.4f}")

    base = {"package": BASE_PACKAGE, "module": BASE_MODULE, "version": BASE_VERSION,
            "model": "sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0)"}
    if "c" in wanted:  # (c) LoRA fine-tune + linear head.
        adapter, scaling, hw, hb, info = train_lora(fit_rows, T, class_w, W_a, b_a, args)
        tok, enc = load_encoder(base_model_dir())
        merge_lora(enc, adapter, scaling)  # score exactly what load() will rebuild from the asset
        te = TextExpression(tok, enc, labels, hw, hb, args.max_length, adapter,
                            {"lora": {"scaling": scaling, **info}})
        lg = (te.embed([r["text"] for r in dev_rows], 64) @ hw.T + hb).double().numpy()
        tau, f1, grid = pick_tau(lg, log_prior, dev_gold, labels)
        heads["c"] = {"weight": hw.numpy(), "bias": hb.numpy() + tau * log_prior, "adapter": adapter,
                      "tau": tau, "lora": {"scaling": scaling, **info}, "te": te}
        report["c"] = {"tau": tau, "tau_grid_macro_f1": grid, "lora": info,
                       "dev": metrics(softmax(lg + tau * log_prior), dev_gold, labels)}
        print(f"(c) tau={tau} dev macro-F1 {report['c']['dev']['macro_f1']:.4f}")

    if "c" not in wanted and args.c_note:
        report["c"] = {"not_run": args.c_note}
    shippable = {k: report[k]["dev"]["macro_f1"] for k in heads}
    best_any = max(heads, key=lambda k: report[k]["dev"]["macro_f1"])
    win = args.ship or max(shippable, key=shippable.get)
    h = heads[win]
    if "te" in h:
        te = h["te"]
        te.bias = torch.as_tensor(h["bias"], dtype=torch.float32)
    else:
        tok, enc = load_encoder(base_model_dir())
        te = TextExpression(tok, enc, labels, torch.as_tensor(h["weight"], dtype=torch.float32),
                            torch.as_tensor(h["bias"], dtype=torch.float32), args.max_length,
                            tfidf=h.get("tfidf"))
    te.weight = torch.as_tensor(h["weight"], dtype=torch.float32)
    cmd = "OMP_NUM_THREADS=2 python scripts/train_text_expression.py " + " ".join(sys.argv[1:])
    te.config = {"candidate": win, "base": base, "logit_adjustment_tau": h["tau"], "seed": args.seed,
                 "command": cmd.strip(), **({"lora": h["lora"]} if "lora" in h else {}),
                 "dev_macro_f1": round(report[win]["dev"]["macro_f1"], 4)}
    asset = Path(args.asset) if args.asset else ASSET_DIR
    te.save(asset)
    (asset / "decision_ids.txt").write_text("".join(r["id"] + "\n" for r in dec_rows))

    # Score the shipped head through load(), the path the product uses, on the decision slice and dev.
    shipped = TextExpression.load(asset)
    rows_out = []
    for split, rows in (("decision", dec_rows), ("dev", dev_rows)):
        P = shipped.probs([r["text"] for r in rows], 64).numpy()
        rows_out += [{"id": r["id"], "split": split, "label": r["labels"][0],
                      "probs": {lab: round(float(p), 6) for lab, p in zip(labels, row)}} for r, row in zip(rows, P)]
        if split == "dev":
            final = metrics(P, dev_gold, labels)
    out.mkdir(parents=True, exist_ok=True)
    (out / "scores.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows_out))
    res = REPO / "eval" / "results" / "text-expression-dev"
    res.mkdir(parents=True, exist_ok=True)
    summary = {"winner": win, "best_overall": best_any, "dev_items": len(dev_rows), "split": "dev (single-label)",
               "final_shipped_dev": final, "candidates": report, "command": cmd.strip(),
               "decision_slice": {"size": len(dec_rows), "seed": args.seed}}
    (res / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
    from eval.figures import confusion_figure

    confusion_figure(dict(final, system=f"text expression ({win})"), res / "confusion.png")
    print(json.dumps({k: round(v["dev"]["macro_f1"], 4) for k, v in report.items() if "dev" in v}),
          f"winner {win}; shipped dev macro-F1 {final['macro_f1']:.4f} acc {final['accuracy']:.4f}")


if __name__ == "__main__":
    main()
