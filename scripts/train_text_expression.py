"""Fit the text expression classifier (``affectllm/assets/text_expression/``).

    OMP_NUM_THREADS=2 python scripts/train_text_expression.py --threads 2 [--candidates a,b,d] [--max-steps N]

Data: GoEmotions-Ekman (/work/shared/data/goemotions_ekman). A fixed, seeded 4,000-item slice of the
*single-label* train items is held out as the "decision" slice: no head is fitted on it (the decision
layer is fitted on it later, and must not see scores a head made on its own training items). The
heads train on the rest of train; multi-label items are kept as soft targets (mass 1/k on each of
their k labels; for sklearn, k rows weighted 1/k). Candidates are scored on the FULL dev split's
single-label items (Ekman 6 + neutral) by macro-F1; the test split is never read.

Candidates: (a) frozen all-MiniLM-L6-v2 mean-pooled embeddings + class-balanced logistic head;
(b) (a) + word TF-IDF features; (c) LoRA on the encoder's query/value + linear head (warm-started from
(a)'s head), class-balanced soft cross-entropy, batches formed by length; (d) the top (6 - L) encoder
layers fine-tuned (all their weights) + mean pooling + a linear head (warm-started from (a)'s), on the
frozen encoder's layer-L token states computed ONCE for every text and cached (fp16, under --out), so
no step runs or back-propagates through the bottom L layers; class-balanced soft cross-entropy, batches
by length, the epoch kept by dev macro-F1. Its scores are then joined with word TF-IDF in two ways,
each scored on dev: (d+tfidf blend) its logits + beta * the logits of a TF-IDF-only logistic head,
and (d+tfidf stack) one logistic head over [its pooled vector, TF-IDF] like (b); (d) + (b) log-prob
average is scored for reference only (it would need the frozen and the fine-tuned top layers both
at run time). Each candidate's C, beta or logit adjustment (tau * log prior added to the logits) is
chosen on dev, which makes dev numbers slightly optimistic. Frozen embeddings and the layer-L states
are cached under --out (runs/ is gitignored); the asset is not.

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
BETAS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)  # weight of the TF-IDF-only logits next to (d)'s (0.25 won a first grid: its edge)


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


def encoder_pass(texts: list[str], layers: list[int], out: Path, args) -> None:
    """One frozen-encoder pass over ``texts``: each text's layer-``L`` token states (fp16, unpadded,
    ``hidden_L{L}.npy`` rows ``offsets[i]:offsets[i+1]``) for each L in ``layers``, and the mean-pooled
    last layer (``frozen_embeddings.npz``, what (a)/(b) read). Skipped when the files are there."""
    import torch
    from tqdm import tqdm

    from affectllm.perception.text_expression import base_model_dir, load_encoder, mean_pool

    cache = out / "layer_cache"
    meta_path = cache / "meta.json"
    want = {"n": len(texts), "max_length": args.max_length, "layers": sorted(layers)}
    if meta_path.is_file() and json.loads(meta_path.read_text()) == want \
            and (out / "frozen_embeddings.npz").is_file():
        return
    tok, enc = load_encoder(base_model_dir())
    lengths = [len(x) for x in tok(texts, truncation=True, max_length=args.max_length)["input_ids"]]
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    cache.mkdir(parents=True, exist_ok=True)
    states = {L: np.lib.format.open_memmap(cache / f"hidden_L{L}.npy", mode="w+", dtype=np.float16,
                                           shape=(int(offsets[-1]), enc.config.hidden_size)) for L in layers}
    pooled = np.zeros((len(texts), enc.config.hidden_size), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: lengths[i])
    t0 = time.time()
    with torch.no_grad():
        for s in tqdm(range(0, len(order), 128), desc="frozen encoder pass (x128)"):
            idx = order[s:s + 128]
            b = tok([texts[i] for i in idx], padding=True, truncation=True, max_length=args.max_length,
                    return_tensors="pt")
            o = enc(**b, output_hidden_states=True)
            pooled[idx] = mean_pool(o.last_hidden_state, b["attention_mask"]).numpy()
            for L in layers:
                h = o.hidden_states[L].numpy()
                for j, i in enumerate(idx):
                    states[L][offsets[i]:offsets[i + 1]] = h[j, :lengths[i]]
    for m in states.values():
        m.flush()
    np.save(cache / "offsets.npy", offsets)
    np.savez(out / "frozen_embeddings.npz", X=pooled, n=len(texts))
    meta_path.write_text(json.dumps(want))
    print(f"encoder pass: {len(texts)} texts, {int(offsets[-1])} tokens, {time.time() - t0:.0f} s")


class LayerCache:
    """Cached layer-L token states of the texts (rows of the encoder pass), padded into batches."""

    def __init__(self, out: Path, layer: int):
        cache = out / "layer_cache"
        self.offsets = np.load(cache / "offsets.npy")
        self.states = np.load(cache / f"hidden_L{layer}.npy", mmap_mode="r")
        self.states = np.ascontiguousarray(self.states)  # into memory: steps read random rows
        self.lengths = np.diff(self.offsets)

    def batch(self, rows):
        import torch

        n = max(int(self.lengths[i]) for i in rows)
        h = np.zeros((len(rows), n, self.states.shape[1]), dtype=np.float32)
        mask = np.zeros((len(rows), n), dtype=np.int64)
        for j, i in enumerate(rows):
            k = int(self.lengths[i])
            h[j, :k] = self.states[self.offsets[i]:self.offsets[i] + k]
            mask[j, :k] = 1
        return torch.from_numpy(h), torch.from_numpy(mask)


class TopEncoder:
    """The encoder's layers L.. (deep copies, trainable) over cached layer-L states, mean-pooled."""

    def __init__(self, enc, layer: int):
        import copy

        import torch

        self.config, self.first = enc.config, layer
        self.layers = torch.nn.ModuleList(copy.deepcopy(enc.encoder.layer[layer:]))

    def pooled(self, h, mask):
        from transformers.masking_utils import create_bidirectional_mask

        from affectllm.perception.text_expression import mean_pool

        m = create_bidirectional_mask(config=self.config, inputs_embeds=h, attention_mask=mask)
        for layer in self.layers:
            h = layer(h, m)
        return mean_pool(h, mask)

    def state(self, fp16: bool = True) -> dict:
        """BertModel state-dict keys of the fine-tuned layers (fp16-rounded: what the asset holds)."""
        return {f"encoder.layer.{self.first + i}.{k}": (v.detach().half() if fp16 else v.detach().clone())
                for i, layer in enumerate(self.layers) for k, v in layer.state_dict().items()}

    def embed(self, cache: LayerCache, rows, batch: int = 128):
        import torch

        self.layers.eval()
        out = np.zeros((len(rows), self.config.hidden_size), dtype=np.float32)
        order = sorted(range(len(rows)), key=lambda j: cache.lengths[rows[j]])
        with torch.no_grad():
            for s in range(0, len(order), batch):
                js = order[s:s + batch]
                h, mask = cache.batch([rows[j] for j in js])
                out[js] = self.pooled(h, mask).numpy()
        return out


def length_batches(lengths, n_epochs: int, batch: int, rng) -> list[list[list[int]]]:
    """Per epoch: shuffle, sort within chunks of 50 batches by length, shuffle the batches."""
    epochs = []
    for _ in range(n_epochs):
        order = rng.permutation(len(lengths))
        bs = []
        for c in range(0, len(order), batch * 50):
            chunk = sorted(order[c:c + batch * 50], key=lambda i: lengths[i])
            bs += [chunk[s:s + batch] for s in range(0, len(chunk), batch)]
        epochs.append([bs[i] for i in rng.permutation(len(bs))])
    return epochs


def train_top(cache: LayerCache, fit_rows_idx, dev_rows_idx, targets, class_w, head_w, head_b,
              dev_gold, labels, log_prior, args):
    """(d): fine-tune layers L.. + head on cached layer-L states; the epoch with the best dev macro-F1
    (after its own tau) is kept, its layers rounded to fp16. Returns (TopEncoder, head W, b, info)."""
    import torch
    from tqdm import tqdm

    from affectllm.perception.text_expression import base_model_dir, load_encoder

    torch.manual_seed(args.seed)
    _, enc = load_encoder(base_model_dir())
    top = TopEncoder(enc, args.d_layer)
    head = torch.nn.Linear(enc.config.hidden_size, len(class_w))
    with torch.no_grad():
        head.weight.copy_(torch.as_tensor(head_w, dtype=torch.float32))
        head.bias.copy_(torch.as_tensor(head_b, dtype=torch.float32))
    opt = torch.optim.AdamW([{"params": list(top.layers.parameters()), "lr": args.d_lr},
                             {"params": list(head.parameters()), "lr": args.d_head_lr}], weight_decay=0.01)
    rng = np.random.default_rng(args.seed)
    epochs = length_batches(cache.lengths[fit_rows_idx], args.d_epochs, args.batch, rng)
    if args.max_steps:
        epochs = [e[:args.max_steps] for e in epochs]
    total = sum(len(e) for e in epochs)
    warm = max(1, total // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm))))
    cw = torch.as_tensor(class_w, dtype=torch.float32)
    T = torch.as_tensor(targets, dtype=torch.float32)
    per_epoch, best, step_times = [], None, []
    t0 = time.time()
    for ep, batches in enumerate(epochs, 1):
        top.layers.train()
        bar = tqdm(batches, desc=f"(d) epoch {ep} steps", mininterval=30)
        for step, b in enumerate(bar):
            ts = time.time()
            h, mask = cache.batch([fit_rows_idx[i] for i in b])
            logp = torch.log_softmax(head(top.pooled(h, mask)), -1)
            wt = T[b] * cw
            loss = -(wt * logp).sum() / wt.sum()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(list(top.layers.parameters()) + list(head.parameters()), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            step_times.append(time.time() - ts)
            if step % 50 == 0:
                bar.set_postfix(loss=f"{loss.item():.3f}", s_step=f"{np.mean(step_times[-50:]):.3f}")
        # Score this epoch as it would ship: layers rounded to fp16.
        state = top.state(fp16=True)
        live = top.state(fp16=False)
        for i, layer in enumerate(top.layers):
            layer.load_state_dict({k.split(".", 3)[3]: v.float() for k, v in state.items()
                                   if k.startswith(f"encoder.layer.{top.first + i}.")})
        P = top.embed(cache, dev_rows_idx)
        lg = P @ head.weight.detach().numpy().T + head.bias.detach().numpy()
        tau, f1, grid = pick_tau(lg, log_prior, dev_gold, labels)
        from eval.metrics import macro_f1
        f1_raw = macro_f1(dev_gold, [labels[i] for i in lg.argmax(1)], labels)
        per_epoch.append({"epoch": ep, "dev_macro_f1_tau0": round(f1_raw, 4), "tau": tau,
                          "dev_macro_f1": round(f1, 4), "seconds": round(time.time() - t0)})
        print(f"(d) epoch {ep}: dev macro-F1 {f1_raw:.4f} (tau 0), {f1:.4f} (tau {tau}); "
              f"{np.mean(step_times):.3f} s/step so far, {time.time() - t0:.0f} s", flush=True)
        if best is None or f1 > best[0]:
            best = (f1, ep, state, head.weight.detach().clone(), head.bias.detach().clone())
        for i, layer in enumerate(top.layers):  # keep training from the full-precision weights
            layer.load_state_dict({k.split(".", 3)[3]: v for k, v in live.items()
                                   if k.startswith(f"encoder.layer.{top.first + i}.")})
        out = Path(args.out) / "d_checkpoints"
        out.mkdir(parents=True, exist_ok=True)
        from safetensors.torch import save_file
        save_file({**state, "head.weight": head.weight.detach().clone(), "head.bias": head.bias.detach().clone()},
                  str(out / f"L{args.d_layer}_epoch{ep}.safetensors"))
    _, ep, state, hw, hb = best
    for i, layer in enumerate(top.layers):
        layer.load_state_dict({k.split(".", 3)[3]: v.float() for k, v in state.items()
                               if k.startswith(f"encoder.layer.{top.first + i}.")})
    info = {"layer": args.d_layer, "trained_layers": list(range(args.d_layer, enc.config.num_hidden_layers)),
            "epochs_run": len(epochs), "epoch_kept": ep, "steps": total, "batch": args.batch, "lr": args.d_lr,
            "head_lr": args.d_head_lr, "s_per_step": round(float(np.mean(step_times)), 3),
            "s_per_step_median": round(float(np.median(step_times)), 3), "per_epoch": per_epoch,
            "seconds": round(time.time() - t0)}
    return top, hw, hb, info


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
    ap.add_argument("--d-layer", type=int, default=4, help="(d): fine-tune the layers above this one (of 6)")
    ap.add_argument("--d-epochs", type=int, default=3)
    ap.add_argument("--d-lr", type=float, default=1e-4, help="(d): learning rate of the encoder layers")
    ap.add_argument("--d-head-lr", type=float, default=1e-3, help="(d): learning rate of the linear head")
    ap.add_argument("--cache-layers", default="", help="layers whose states the encoder pass caches "
                    "(comma list; default --d-layer)")
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
                                                      merge_lora, replace_layers)
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
    wanted = args.candidates.split(",")
    all_texts = [r["text"] for r in train] + [r["text"] for r in dev]
    if "d" in wanted:  # one frozen pass: layer-L states for (d) and the pooled last layer for (a)/(b)
        layers = sorted({args.d_layer, *(int(x) for x in args.cache_layers.split(",") if x)})
        encoder_pass(all_texts, layers, out, args)
    X = frozen_embeddings([r["text"] for r in train] + [r["text"] for r in dev], out / "frozen_embeddings.npz", args)
    Xtr, Xdev_all = X[:len(train)], X[len(train):]
    Xfit, Xdec, Xdev = Xtr[fit_idx], Xtr[dec_idx], Xdev_all[dev_idx]
    mean, scale = Xfit.mean(0), Xfit.std(0) + 1e-6
    report, heads = {}, {}

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

    if "b" in wanted or "d" in wanted:  # word TF-IDF uni/bigrams, fitted on the fit rows
        import scipy.sparse as sp
        from sklearn.feature_extraction.text import TfidfVectorizer

        vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, max_features=50000)
        Tf = vec.fit_transform([r["text"] for r in fit_rows])
        Tdev = vec.transform([r["text"] for r in dev_rows])
        tf = Tfidf(dict(vec.vocabulary_), torch.as_tensor(vec.idf_, dtype=torch.float32))
        check = [r["text"] for r in dev_rows[:300]]
        w_chk = np.random.default_rng(0).normal(size=(len(labels), len(vec.vocabulary_)))
        assert torch.allclose(tf.logits(check, torch.as_tensor(w_chk)),
                              torch.as_tensor(vec.transform(check) @ w_chk.T), atol=1e-4), \
            "module TF-IDF differs from sklearn's"
    lg_b = None
    if "b" in wanted:  # (b) (a) + TF-IDF word uni/bigrams, side by side in one logistic head.
        Zf = sp.hstack([sp.csr_matrix((Xfit - mean) / scale / math.sqrt(Xfit.shape[1])), Tf]).tocsr()
        Zd = sp.hstack([sp.csr_matrix((Xdev - mean) / scale / math.sqrt(Xfit.shape[1])), Tdev]).tocsr()
        f1_b, C_b, clf_b = max(((dev_f1(m, Zd), C, m) for C in (1.0, 3.0, 10.0)
                                for m in [fit_logreg(Zf, T, class_w, C, args.seed)]), key=lambda t: t[0])
        lg = clf_b.decision_function(Zd)
        tau, f1, grid = pick_tau(lg, log_prior, dev_gold, labels)
        d = Xfit.shape[1]
        W_e = clf_b.coef_[:, :d] / scale / math.sqrt(d)  # fold the standardisation: raw pooled vector in
        b_b = clf_b.intercept_ - W_e @ mean
        lg_b = lg
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

    if "d" in wanted:  # (d) top layers fine-tuned on cached layer-L states, then joined with TF-IDF.
        lc = LayerCache(out, args.d_layer)
        dev_cache_idx = [len(train) + i for i in dev_idx]
        top, hw, hb, info = train_top(lc, fit_idx, dev_cache_idx, T, class_w, W_a, b_a, dev_gold, labels,
                                      log_prior, args)
        state = top.state(fp16=True)
        hw, hb = hw.double().numpy(), hb.double().numpy()
        Pdev = top.embed(lc, dev_cache_idx).astype(np.float64)
        lg_d = Pdev @ hw.T + hb
        tau, f1, grid = pick_tau(lg_d, log_prior, dev_gold, labels)
        heads["d"] = {"weight": hw, "bias": hb + tau * log_prior, "tau": tau, "top": state, "fine_tune": info}
        report["d"] = {"tau": tau, "tau_grid_macro_f1": grid, "fine_tune": info,
                       "dev": metrics(softmax(lg_d + tau * log_prior), dev_gold, labels)}
        print(f"(d) layers {info['trained_layers']} epoch {info['epoch_kept']} tau={tau} "
              f"dev macro-F1 {report['d']['dev']['macro_f1']:.4f}", flush=True)

        # (d+tfidf blend): (d)'s logits + beta * a TF-IDF-only logistic head's; C, beta, tau on dev.
        f1_t, C_t, clf_t = max(((dev_f1(m, Tdev), C, m) for C in (1.0, 3.0, 10.0)
                                for m in [fit_logreg(Tf, T, class_w, C, args.seed)]), key=lambda t: t[0])
        lg_t = clf_t.decision_function(Tdev)
        blends = []
        for beta in BETAS:
            tau_, f1_, grid_ = pick_tau(lg_d + beta * lg_t, log_prior, dev_gold, labels)
            blends.append((f1_, beta, tau_, grid_))
        f1_bl, beta, tau_bl, grid_bl = max(blends, key=lambda t: t[0])
        lg = lg_d + beta * lg_t
        heads["d+tfidf blend"] = {"weight": np.hstack([hw, beta * clf_t.coef_]),
                                  "bias": hb + beta * clf_t.intercept_ + tau_bl * log_prior, "tau": tau_bl,
                                  "tfidf": tf, "top": state, "fine_tune": info, "beta": beta, "C_tfidf": C_t}
        report["d+tfidf blend"] = {
            "C_tfidf_only": C_t, "tfidf_only_dev_macro_f1": round(f1_t, 4), "beta": beta, "tau": tau_bl,
            "beta_grid_macro_f1": {str(b_): round(f_, 4) for f_, b_, _, _ in blends}, "tau_grid_macro_f1": grid_bl,
            "dev": metrics(softmax(lg + tau_bl * log_prior), dev_gold, labels)}
        print(f"(d+tfidf blend) C={C_t} beta={beta} tau={tau_bl} dev macro-F1 "
              f"{report['d+tfidf blend']['dev']['macro_f1']:.4f}", flush=True)

        # (d+tfidf stack): one logistic head over [(d)'s pooled vector, TF-IDF], like (b). Its pooled
        # vectors on the fit rows are in-sample (the layers trained on them), so it may lean on them.
        Pfit = top.embed(lc, fit_idx).astype(np.float64)
        m_d, s_d = Pfit.mean(0), Pfit.std(0) + 1e-6
        dd = Pfit.shape[1]
        Zf = sp.hstack([sp.csr_matrix((Pfit - m_d) / s_d / math.sqrt(dd)), Tf]).tocsr()
        Zd = sp.hstack([sp.csr_matrix((Pdev - m_d) / s_d / math.sqrt(dd)), Tdev]).tocsr()
        C_s = report["b"]["C"] if "b" in report else 3.0
        clf_s = fit_logreg(Zf, T, class_w, C_s, args.seed)
        lg = clf_s.decision_function(Zd)
        tau_s, f1_s, grid_s = pick_tau(lg, log_prior, dev_gold, labels)
        W_e = clf_s.coef_[:, :dd] / s_d / math.sqrt(dd)
        heads["d+tfidf stack"] = {"weight": np.hstack([W_e, clf_s.coef_[:, dd:]]),
                                  "bias": clf_s.intercept_ - W_e @ m_d + tau_s * log_prior, "tau": tau_s,
                                  "tfidf": tf, "top": state, "fine_tune": info, "C": C_s}
        report["d+tfidf stack"] = {"C": C_s, "tau": tau_s, "tau_grid_macro_f1": grid_s,
                                   "dev": metrics(softmax(lg + tau_s * log_prior), dev_gold, labels)}
        print(f"(d+tfidf stack) C={C_s} tau={tau_s} dev macro-F1 "
              f"{report['d+tfidf stack']['dev']['macro_f1']:.4f}", flush=True)

        if lg_b is not None:  # reference only: needs the frozen and the fine-tuned top layers both
            lp = 0.5 * (np.log(softmax(lg_d)) + np.log(softmax(lg_b)))
            tau_r, _, grid_r = pick_tau(lp, log_prior, dev_gold, labels)
            report["d+b logprob average (not shippable as is)"] = {
                "tau": tau_r, "tau_grid_macro_f1": grid_r,
                "dev": metrics(softmax(lp + tau_r * log_prior), dev_gold, labels)}
            print(f"(d+b average) tau={tau_r} dev macro-F1 "
                  f"{report['d+b logprob average (not shippable as is)']['dev']['macro_f1']:.4f}", flush=True)

    if "c" not in wanted and args.c_note:
        report["c"] = {"not_run": args.c_note}
    shippable = {k: report[k]["dev"]["macro_f1"] for k in heads}
    best_any = max((k for k in report if "dev" in report[k]), key=lambda k: report[k]["dev"]["macro_f1"])
    win = args.ship or max(shippable, key=shippable.get)
    h = heads[win]
    if "te" in h:
        te = h["te"]
        te.bias = torch.as_tensor(h["bias"], dtype=torch.float32)
    else:
        tok, enc = load_encoder(base_model_dir())
        if h.get("top"):
            replace_layers(enc, h["top"])
        te = TextExpression(tok, enc, labels, torch.as_tensor(h["weight"], dtype=torch.float32),
                            torch.as_tensor(h["bias"], dtype=torch.float32), args.max_length,
                            tfidf=h.get("tfidf"), top_layers=h.get("top") or {})
    te.weight = torch.as_tensor(h["weight"], dtype=torch.float32)
    cmd = "OMP_NUM_THREADS=2 python scripts/train_text_expression.py " + " ".join(sys.argv[1:])
    te.config = {"candidate": win, "base": base, "logit_adjustment_tau": h["tau"], "seed": args.seed,
                 "command": cmd.strip(), **({"lora": h["lora"]} if "lora" in h else {}),
                 **({"fine_tune": {k: v for k, v in h["fine_tune"].items() if k != "per_epoch"}}
                    if "fine_tune" in h else {}),
                 **{k: h[k] for k in ("beta", "C_tfidf") if k in h},
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
