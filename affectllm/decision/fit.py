"""Fitting a :class:`DecisionPool`: weights and biases on train, one temperature on dev, subsets chosen on dev.

Rows are dicts ``{"id", "label", "channels": {channel: {label name: probability}}}`` (one JSON
object per line on disk). ``label`` is one taxonomy label, or a list of them for multi-label gold
(GoEmotions): the answer counts as right when it is any of them and the likelihood of the gold is
the summed probability of the gold set.

The objective is the summed negative log-likelihood of the gold plus an L2 pull toward a prior:
w_c -> 1 for channel experts (a product of calibrated posteriors is the naive-Bayes pool, the
natural start), w_llm -> 0 (the LLM reads the experts' outputs in its prompt, so its evidence
double-counts theirs, and its stated confidence is uncalibrated: it must earn its weight on data),
b -> 0. Weights stay >= 0 through w = softplus(u). Summing (not averaging) the NLL makes ``l2`` a
fixed number of pseudo-observations, so the data outweigh the prior as rows grow. L-BFGS in
float64 from a fixed start with no sampling, so two fits give identical parameters.

Deliberately not here: the pooling formula and the guard (``decision.pool``) and accuracy/F1/UAR
beyond what choosing a subset needs (``eval.metrics``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from affectllm.decision.calibration import confidence_summary
from affectllm.decision.pool import DecisionPool, guarded_softmax, map_label
from affectllm.knowledge.taxonomy import get_taxonomy

LLM_CHANNEL = "llm"


def load_rows(path: str | Path) -> list[dict]:
    """Rows from a JSONL file; a line that is not a row with id, label and channels raises."""
    rows = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        if not isinstance(row, dict) or not {"id", "label", "channels"} <= set(row):
            raise ValueError(f"{path}:{n}: a row needs id, label and channels")
        rows.append(row)
    return rows


def gold_mask(rows: Sequence[dict], taxonomy: str) -> np.ndarray:
    """[n x K] bool: the gold label(s) of each row; a label outside the taxonomy raises, naming the row."""
    tax = get_taxonomy(taxonomy)
    mask = np.zeros((len(rows), len(tax)), dtype=bool)
    for i, row in enumerate(rows):
        golds = row["label"] if isinstance(row["label"], (list, tuple)) else [row["label"]]
        for g in golds:
            label = g if g in tax.labels else map_label(str(g), tax.name)
            if label is None:
                raise ValueError(f"row {row.get('id')!r}: gold label {g!r} is not a {tax.name} label")
            mask[i, tax.index(label)] = True
        if not mask[i].any():
            raise ValueError(f"row {row.get('id')!r}: no gold label")
    return mask


def default_prior(channels: Iterable[str]) -> dict[str, float]:
    """Prior weight of each channel: 0 for the LLM, 1 for every expert (see module docstring)."""
    return {c: 0.0 if c == LLM_CHANNEL else 1.0 for c in channels}


def derive_coverage(rows: Sequence[dict], channels: Sequence[str], taxonomy: str) -> dict[str, list[str]]:
    """Per channel, the taxonomy labels its names map to in any row; a channel never present raises."""
    tax = get_taxonomy(taxonomy)
    seen: dict[str, set[str]] = {c: set() for c in channels}
    for row in rows:
        for c, scores in row["channels"].items():
            if c in seen:
                seen[c].update(y for y in (map_label(str(n), tax.name) for n in scores) if y is not None)
    empty = [c for c, labels in seen.items() if not labels]
    if empty:
        raise ValueError(f"channel(s) {empty} name no {tax.name} label in any of {len(rows)} rows: "
                         f"nothing to fit their weight on")
    return {c: [y for y in tax.labels if y in seen[c]] for c in channels}


def _template(rows: Sequence[dict], taxonomy: str, channels: Sequence[str], **pool_options) -> DecisionPool:
    tax = get_taxonomy(taxonomy)
    pool_options.setdefault("coverage", derive_coverage(rows, channels, tax.name))
    return DecisionPool(tax.name, {c: 1.0 for c in channels}, {y: 0.0 for y in tax.labels}, **pool_options)


def prepare(pool: DecisionPool, rows: Sequence[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(lifts [n x C x K], unlocked [n]) of rows, keeping only the pool's channels."""
    evidences = []
    for row in rows:
        try:
            evidences.append(pool.evidence({c: s for c, s in row["channels"].items() if c in pool.weights}))
        except ValueError as e:
            raise ValueError(f"row {row.get('id')!r}: {e}") from None
    return pool.lift_tensor(evidences)


def _inv_softplus(w: float) -> float:
    return w + math.log(-math.expm1(-w))


def fit_pool(rows: Sequence[dict], taxonomy: str, channels: Sequence[str], l2: float = 1.0, seed: int = 0,
             prior: dict[str, float] | None = None, source: str = "train", max_iter: int = 500,
             **pool_options) -> DecisionPool:
    """Fit weights and per-label biases by penalised maximum likelihood on ``rows`` (T stays 1).

    ``pool_options`` (smoothing, confident_threshold, guard_cap, guard_ignores, coverage) pass to the
    pool; coverage defaults to what the rows show (:func:`derive_coverage`).
    ``seed`` seeds torch for form's sake: nothing here samples, so the fit is deterministic anyway.
    """
    if not rows:
        raise ValueError(f"fit_pool: no {source} rows")
    channels = list(channels)
    template = _template(rows, taxonomy, channels, **pool_options)
    prior = {**default_prior(channels), **(prior or {})}
    lifts, _ = prepare(template, rows)  # the guard is a decide-time policy, not part of the likelihood
    gold = gold_mask(rows, template.taxonomy)
    torch.manual_seed(seed)
    x = torch.from_numpy(lifts)  # [n x C x K] float64
    g = torch.from_numpy(gold)
    w0 = torch.tensor([prior[c] for c in channels], dtype=torch.float64)
    # start at the prior (a zero prior starts at 0.05: softplus never reaches 0 exactly)
    u = torch.tensor([_inv_softplus(max(prior[c], 0.05)) for c in channels], dtype=torch.float64,
                     requires_grad=True)
    b = torch.zeros(len(template.labels), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([u, b], lr=1.0, max_iter=max_iter, history_size=20, tolerance_grad=1e-9,
                            tolerance_change=1e-12, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        w = torch.nn.functional.softplus(u)
        logp = torch.log_softmax(b + torch.einsum("nck,c->nk", x, w), dim=1)
        nll = -torch.logsumexp(logp.masked_fill(~g, -math.inf), dim=1).sum()
        loss = nll + l2 * (((w - w0) ** 2).sum() + (b ** 2).sum())
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        w = torch.nn.functional.softplus(u).tolist()
        bias = (b - b.mean()).tolist()  # softmax ignores a shared shift; centring makes the asset readable
    what = f"{source} ({len(rows)} rows), channels {channels}, L2 {l2} toward prior {prior}"
    return replace(template, weights=dict(zip(channels, w)), bias=dict(zip(template.labels, bias)),
                   fitted_on={"weights": what, "bias": what, "temperature": "not calibrated (1.0)"})


def _nll(p: np.ndarray, gold: np.ndarray) -> float:
    return float(-np.log(np.maximum((p * gold).sum(axis=1), 1e-300)).mean())


def calibrate_temperature(pool: DecisionPool, dev_rows: Sequence[dict], source: str = "dev") -> DecisionPool:
    """A copy of ``pool`` with the one temperature that minimises guarded NLL on ``dev_rows``.

    A log-spaced grid over T in [0.05, 20] then golden-section search between the best point's
    neighbours: deterministic, and it scores exactly what :meth:`DecisionPool.decide` outputs.
    """
    if not dev_rows:
        raise ValueError(f"calibrate_temperature: no {source} rows")
    lifts, unlocked = prepare(pool, dev_rows)
    gold = gold_mask(dev_rows, pool.taxonomy)
    z1 = replace(pool, temperature=1.0).logits(lifts)

    def loss(log_t: float) -> float:
        p, _ = guarded_softmax(z1 / math.exp(log_t), unlocked, pool.guard_cap)
        return _nll(p, gold)

    grid = np.linspace(math.log(0.05), math.log(20.0), 61)
    values = [loss(t) for t in grid]
    i = int(np.argmin(values))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(40):
        a, c = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        if loss(a) <= loss(c):
            hi = c
        else:
            lo = a
    best = min([(values[i], grid[i]), (loss((lo + hi) / 2), (lo + hi) / 2)])[1]
    fitted_on = {**pool.fitted_on, "temperature": f"{source} ({len(dev_rows)} rows), guarded NLL"}
    return replace(pool, temperature=float(math.exp(best)), fitted_on=fitted_on)


def evaluate(pool: DecisionPool, rows: Sequence[dict], n_bins: int = 10) -> dict:
    """{nll, accuracy, ece, share/acc at p >= 0.99, n, predictions, confidences, correct} of the pool on rows."""
    lifts, unlocked = prepare(pool, rows)
    gold = gold_mask(rows, pool.taxonomy)
    p, _ = pool.probabilities(lifts, unlocked)
    top = p.argmax(axis=1)
    correct = gold[np.arange(len(rows)), top]
    conf = p.max(axis=1)
    return {"nll": _nll(p, gold), "accuracy": float(correct.mean()),
            **confidence_summary(conf, correct, n_bins),
            "predictions": [pool.labels[k] for k in top], "confidences": conf.tolist(),
            "correct": correct.tolist()}


def compare_channel_subsets(train_rows: Sequence[dict], dev_rows: Sequence[dict], taxonomy: str,
                            subsets: Sequence[Sequence[str]], l2: float = 1.0, seed: int = 0,
                            **fit_options) -> list[dict]:
    """For each channel subset: fit on train, calibrate T on dev, score on dev.

    Returns ``[{"channels", "pool", "dev": evaluate(...)}]`` in the order given; :func:`pick_on_dev`
    chooses one. Dev scores share the rows that set T (one parameter), as the issue prescribes.
    """
    out = []
    for subset in subsets:
        pool = fit_pool(train_rows, taxonomy, list(subset), l2=l2, seed=seed, **fit_options)
        pool = calibrate_temperature(pool, dev_rows)
        out.append({"channels": list(subset), "pool": pool, "dev": evaluate(pool, dev_rows)})
    return out


def pick_on_dev(results: Sequence[dict], key: str = "nll") -> dict:
    """The result with the lowest dev ``key`` (NLL: a proper score, so it rewards calibration and accuracy)."""
    if not results:
        raise ValueError("pick_on_dev: no candidates")
    return min(results, key=lambda r: r["dev"][key])


def choose_confident_threshold(pool: DecisionPool, rows: Sequence[dict], target: float = 0.97,
                               grid: Sequence[float] = (0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 0.995)) -> DecisionPool:
    """The lowest guard threshold whose answers at p >= 0.99 are right at least ``target`` of the
    time on ``rows`` (train rows: the guard is a parameter like any other). Where none reaches it,
    the highest of the grid; the choice is recorded in ``fitted_on``."""
    gold = [r["label"] for r in rows]
    chosen, seen = grid[-1], []
    for t in grid:
        p = replace(pool, confident_threshold=t)
        hits = [p.decide(r["channels"]) for r in rows]
        sure = [d.emotion == g for d, g in zip(hits, gold) if max(d.probabilities.values()) >= 0.99]
        acc = sum(sure) / len(sure) if sure else 1.0
        seen.append(f"{t}: {sum(sure)}/{len(sure)}")
        if acc >= target:
            chosen = t
            break
    why = (f"confident_threshold {chosen}: lowest of {list(grid)} whose p >= 0.99 answers are >= {target} right "
           f"on {len(rows)} train rows ({'; '.join(seen)})")
    return replace(pool, confident_threshold=chosen, fitted_on={**pool.fitted_on, "confident_threshold": why})
