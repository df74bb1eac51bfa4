"""The calibrated decision: log-linear pooling of the channel experts and the LLM, with a guard.

Given, for one item, each present channel's label -> probability dict (face: FER scores, voice:
the voice classifier, text: the text classifier, llm: the LLM's own label scores, ...), the
decided distribution over the taxonomy's K labels is::

    z(y) = ( b_y + sum_{c present} w_c * lift_c(y) ) / T        p = softmax(z)        [K]

with ``lift_c(y) = log(n_c * p~_c(y))`` the channel's smoothed probability relative to chance over
the n_c labels it covers: p~_c = (1 - eps) * p_c + eps / n_c, after mapping the channel's label
names onto the taxonomy (``normalize_label``) and renormalising over the covered labels. What a
channel covers is fixed per channel in the pool (``coverage``, taken from the train rows when
fitting), not read off each item, so a sparse score dict cannot silently drop a label.

Why lift over chance rather than plain log p: a channel term may be shifted by a constant without
changing the pool, so the choice only matters for labels a channel does not cover (FER has no
boredom). Those get lift 0, exactly the lift of a covered label the channel rates at chance, so an
expert neither pushes an uncovered label down nor up; a missing channel is the same as a channel
covering nothing, so every present channel's term is the same whoever else is present.

The guard: unless some channel (other than those in ``guard_ignores``, by default the LLM, whose
stated confidence is known to be uncalibrated) puts more than ``confident_threshold`` on its top
label, the decision is tempered further (z / s, s >= 1, found by bisection) until its top
probability is at most ``guard_cap`` < 0.99. Tempering keeps the ranking of labels, so the guard
can only lower confidence, never change the answer.

Parameters: one weight per channel, one bias per label, one temperature (C + K + 1 numbers),
saved as a small JSON asset per taxonomy. Deliberately not here: fitting (``decision.fit``) and
calibration measures (``decision.calibration``).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from affectllm.knowledge.taxonomy import get_taxonomy, normalize_label

ASSET_DIR = Path(__file__).resolve().parent.parent / "assets" / "decision"
FORMAT = 1


@lru_cache(maxsize=4096)
def map_label(name: str, taxonomy: str) -> str | None:
    """A channel's label name ("happy", "Joy", "angry") as a label of ``taxonomy``, or None."""
    return normalize_label(name, taxonomy)


@dataclass(frozen=True)
class ChannelEvidence:
    """One channel's message for one item.

    ``lift``: [K] log(n_c * smoothed p) on covered labels, 0 elsewhere. ``top_p``: the channel's
    own probability of its top label, as stated (share of all the mass it gave, mapped or not).
    """

    lift: np.ndarray
    covered: np.ndarray  # [K] bool
    top_label: str | None
    top_p: float


def _mapped_mass(channel: str, scores: dict[str, float], taxonomy: str) -> tuple[np.ndarray, np.ndarray, float]:
    """(mass [K] per taxonomy label, named [K] bool, total mass incl. unmapped names) of one channel."""
    tax = get_taxonomy(taxonomy)
    mass = np.zeros(len(tax))
    named = np.zeros(len(tax), dtype=bool)
    total = 0.0
    for name, value in scores.items():
        v = float(value)
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"channel {channel!r}: score of {name!r} is {value!r}, not a probability")
        total += v
        label = map_label(str(name), tax.name)
        if label is not None:
            named[tax.index(label)] = True
            mass[tax.index(label)] += v  # "happy" and "joy" from one channel both count for happiness
    if total <= 0:
        raise ValueError(f"channel {channel!r}: its scores sum to {total}, so it states no probabilities")
    return mass, named, total


def channel_evidence(channel: str, scores: dict[str, float], taxonomy: str, smoothing: float,
                     covers: Sequence[str] | None = None) -> ChannelEvidence:
    """Map one channel's ``{label name: probability}`` onto ``taxonomy`` and turn it into lifts.

    ``covers``: the taxonomy labels this channel can name (fixed per channel, from the pool); a
    covered label missing from ``scores`` has probability 0. None: whatever ``scores`` names.
    A name that maps to no taxonomy label (FER "surprise" for EmoDB) keeps its mass out of the lifts;
    a name that maps to a label outside ``covers`` raises (the channel is not the one fitted).
    """
    tax = get_taxonomy(taxonomy)
    k = len(tax)
    mass, named, total = _mapped_mass(channel, scores, tax.name)
    covered = named.copy()
    if covers is not None:
        covered = np.zeros(k, dtype=bool)
        covered[[tax.index(y) for y in covers]] = True
        stray = named & ~covered
        if stray.any():
            raise ValueError(f"channel {channel!r}: label(s) {[tax.labels[i] for i in np.flatnonzero(stray)]} "
                             f"are not among the labels it was fitted with {list(covers)}")
    lift = np.zeros(k)
    n_cov = int(covered.sum())
    if n_cov == 0:
        return ChannelEvidence(lift, covered, None, 0.0)
    cov_mass = mass[covered].sum()
    # mass on labels outside the taxonomy is dropped: conditional on the answer being one of ours,
    # only the covered labels' shares matter
    q = mass[covered] / cov_mass if cov_mass > 0 else np.full(n_cov, 1.0 / n_cov)
    smoothed = (1.0 - smoothing) * q + smoothing / n_cov
    lift[covered] = np.log(n_cov * smoothed)
    top = int(np.flatnonzero(covered)[np.argmax(mass[covered])])  # first of equal maxima
    return ChannelEvidence(lift, covered, tax.labels[top], float(mass[top] / total))


def channel_distribution(channel: str, scores: dict[str, float], taxonomy: str) -> np.ndarray:
    """The channel's own probabilities on the taxonomy [K], unsmoothed: its "alone" baseline.

    Mapped names only, renormalised over them; labels it cannot name get 0.
    """
    mass, _, _ = _mapped_mass(channel, scores, taxonomy)
    if mass.sum() <= 0:
        raise ValueError(f"channel {channel!r}: no probability on any {get_taxonomy(taxonomy).name} label")
    return mass / mass.sum()


def guarded_softmax(z: np.ndarray, unlocked: np.ndarray, cap: float, iters: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Softmax of logits ``z`` [n x K]; rows not ``unlocked`` [n] are tempered to a top p <= ``cap``.

    Returns (probabilities [n x K], extra temperature s [n], 1 where the guard did nothing).
    """
    z = np.atleast_2d(np.asarray(z, dtype=np.float64))

    def soft(x: np.ndarray) -> np.ndarray:
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    p = soft(z)
    s = np.ones(z.shape[0])
    need = ~np.asarray(unlocked, dtype=bool) & (p.max(axis=1) > cap)
    if not need.any():
        return p, s
    zn = z[need]
    lo, hi = np.ones(len(zn)), np.full(len(zn), 2.0)
    while True:  # top p of z/s falls to 1/K < cap as s grows, so this ends
        over = soft(zn / hi[:, None]).max(axis=1) > cap
        if not over.any():
            break
        lo[over], hi[over] = hi[over], hi[over] * 2
    for _ in range(iters):  # bisection in log s; hi always keeps top p <= cap
        mid = np.sqrt(lo * hi)
        over = soft(zn / mid[:, None]).max(axis=1) > cap
        lo, hi = np.where(over, mid, lo), np.where(over, hi, mid)
    s[need] = hi
    p[need] = soft(zn / hi[:, None])
    return p, s


@dataclass
class Decision:
    """The pooled answer for one item.

    ``contributions[c]["log_support_for_answer"]`` is channel c's additive term in the answer's
    logit (w_c * lift_c(answer) / (T * s)); with ``bias_for_answer`` they sum to the answer's logit.
    """

    emotion: str
    probabilities: dict[str, float]  # taxonomy order
    contributions: dict[str, dict]
    channels_used: list[str]
    bias_for_answer: float
    guard_applied: bool
    effective_temperature: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class DecisionPool:
    """Fitted pooling parameters for one taxonomy (see module docstring for the formula)."""

    taxonomy: str
    weights: dict[str, float]  # channel -> w_c >= 0
    bias: dict[str, float]  # label -> b_y, every label of the taxonomy
    temperature: float = 1.0
    smoothing: float = 0.01  # eps: one channel can lower a label by at most w_c * log(1/eps)
    confident_threshold: float = 0.9  # a channel above this on its top label unlocks p >= guard_cap
    guard_cap: float = 0.985  # below the 0.99 with room for rounding in reports
    guard_ignores: tuple[str, ...] = ("llm",)
    fitted_on: dict[str, str] = field(default_factory=dict)  # parameter group -> what data fitted it
    # channel -> the taxonomy labels it can name (structure, not fitted); None: every label for all
    coverage: dict[str, list[str]] | None = None

    def __post_init__(self) -> None:
        tax = get_taxonomy(self.taxonomy)
        self.taxonomy = tax.name
        self.guard_ignores = tuple(self.guard_ignores)
        if set(self.bias) != set(tax.labels):
            raise ValueError(f"decision pool {tax.name}: bias labels {sorted(self.bias)} "
                             f"are not the taxonomy's {list(tax.labels)}")
        self.bias = {y: float(self.bias[y]) for y in tax.labels}
        self.weights = {c: float(w) for c, w in self.weights.items()}
        if any(w < 0 or not math.isfinite(w) for w in self.weights.values()):
            raise ValueError(f"decision pool {tax.name}: weights must be finite and >= 0, got {self.weights}")
        if not (self.temperature > 0 and math.isfinite(self.temperature)):
            raise ValueError(f"decision pool {tax.name}: temperature must be > 0, got {self.temperature}")
        if not 1.0 / len(tax) < self.guard_cap < 0.99:
            raise ValueError(f"decision pool {tax.name}: guard_cap must lie in (1/K, 0.99), got {self.guard_cap}")
        if self.coverage is None:
            self.coverage = {c: list(tax.labels) for c in self.weights}
        if set(self.coverage) != set(self.weights):
            raise ValueError(f"decision pool {tax.name}: coverage channels {sorted(self.coverage)} "
                             f"differ from weighted channels {sorted(self.weights)}")
        for c, labels in self.coverage.items():
            bad = [y for y in labels if y not in tax.labels]
            if bad or not labels:
                raise ValueError(f"decision pool {tax.name}: channel {c!r} coverage {labels} is empty "
                                 f"or names labels outside the taxonomy")
        self.coverage = {c: [y for y in tax.labels if y in self.coverage[c]] for c in self.weights}
        if not 0 < self.smoothing < 1:
            raise ValueError(f"decision pool {tax.name}: smoothing must lie in (0, 1), got {self.smoothing}")

    @property
    def labels(self) -> tuple[str, ...]:
        return get_taxonomy(self.taxonomy).labels

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(self.weights)

    @property
    def n_parameters(self) -> int:
        return len(self.weights) + len(self.bias) + 1

    # ---- evidence -> probabilities ---------------------------------------------------------------

    def evidence(self, channels: dict[str, dict[str, float]]) -> dict[str, ChannelEvidence]:
        """Each present channel's :class:`ChannelEvidence`; a channel the pool has no weight for raises."""
        unknown = sorted(set(channels) - set(self.weights))
        if unknown:
            raise ValueError(f"decision pool {self.taxonomy}: no fitted weight for channel(s) {unknown} "
                             f"(fitted channels: {list(self.weights)})")
        return {c: channel_evidence(c, channels[c], self.taxonomy, self.smoothing, self.coverage[c])
                for c in self.weights if c in channels}

    def lift_tensor(self, evidences: list[dict[str, ChannelEvidence]]) -> tuple[np.ndarray, np.ndarray]:
        """Stack items' evidence: (lifts [n x C x K], unlocked [n]); absent channels are all-zero rows."""
        lifts = np.zeros((len(evidences), len(self.weights), len(self.labels)))
        unlocked = np.zeros(len(evidences), dtype=bool)
        for i, ev in enumerate(evidences):
            for j, c in enumerate(self.weights):
                if c in ev:
                    lifts[i, j] = ev[c].lift
                    if c not in self.guard_ignores and ev[c].top_p > self.confident_threshold:
                        unlocked[i] = True
        return lifts, unlocked

    def logits(self, lifts: np.ndarray) -> np.ndarray:
        """z = (b + sum_c w_c lift_c) / T for lifts [n x C x K] -> [n x K]."""
        w = np.array([self.weights[c] for c in self.weights])
        b = np.array([self.bias[y] for y in self.labels])
        return (b[None, :] + np.einsum("nck,c->nk", lifts, w)) / self.temperature

    def probabilities(self, lifts: np.ndarray, unlocked: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Guarded probabilities [n x K] and the guard's extra temperature [n]."""
        return guarded_softmax(self.logits(lifts), unlocked, self.guard_cap)

    def decide(self, channels: dict[str, dict[str, float]]) -> Decision:
        """The decision for one item from its present channels' ``{label name: probability}`` dicts."""
        ev = self.evidence(channels)
        lifts, unlocked = self.lift_tensor([ev])
        p, s = self.probabilities(lifts, unlocked)
        p, s = p[0], float(s[0])
        k = int(np.argmax(p))
        answer = self.labels[k]
        scale = self.temperature * s
        contributions = {c: {"weight": self.weights[c], "top_label": e.top_label, "top_p": e.top_p,
                             "log_support_for_answer": float(self.weights[c] * e.lift[k] / scale)}
                         for c, e in ev.items()}
        return Decision(emotion=answer, probabilities={y: float(v) for y, v in zip(self.labels, p)},
                        contributions=contributions, channels_used=list(ev),
                        bias_for_answer=float(self.bias[answer] / scale), guard_applied=s > 1.0,
                        effective_temperature=scale)

    # ---- the asset -------------------------------------------------------------------------------

    def to_json(self) -> dict:
        d = asdict(self)
        d["guard_ignores"] = list(self.guard_ignores)
        return {"format": FORMAT, "labels": list(self.labels), **d}

    def save(self, path: str | Path | None = None) -> Path:
        path = Path(path) if path is not None else ASSET_DIR / f"{self.taxonomy}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        return path

    @classmethod
    def from_json(cls, data: dict, source: str = "<dict>") -> DecisionPool:
        if data.get("format") != FORMAT:
            raise ValueError(f"{source}: decision pool format {data.get('format')!r}, expected {FORMAT}")
        labels = list(get_taxonomy(data["taxonomy"]).labels)
        if data.get("labels") != labels:
            raise ValueError(f"{source}: labels {data.get('labels')} differ from taxonomy "
                             f"{data['taxonomy']}'s {labels}")
        fields = {k: v for k, v in data.items() if k not in ("format", "labels")}
        return cls(**fields)


def load_pool(taxonomy: str, path: str | Path | None = None) -> DecisionPool:
    """The saved pool for ``taxonomy`` (default ``affectllm/assets/decision/<taxonomy>.json``)."""
    name = get_taxonomy(taxonomy).name
    path = Path(path) if path is not None else ASSET_DIR / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no decision pool for taxonomy {name} at {path}; "
                                f"fit one with scripts/fit_decision.py")
    pool = DecisionPool.from_json(json.loads(path.read_text()), source=str(path))
    if pool.taxonomy != name:
        raise ValueError(f"{path}: holds a pool for {pool.taxonomy}, not {name}")
    return pool


def prior_pool(taxonomy: str) -> DecisionPool:
    """The unfitted pool for a taxonomy without an asset: every expert at weight 1 (its
    probabilities taken as given), the LLM at 0 (it must earn a say by fitting), no bias, T = 1."""
    name = get_taxonomy(taxonomy).name
    return DecisionPool(name, weights={"face": 1.0, "voice": 1.0, "text": 1.0, "llm": 0.0},
                        bias={y: 0.0 for y in get_taxonomy(name).labels},
                        fitted_on={"all": "nothing: prior (experts weight 1, llm 0), no asset for this taxonomy"})


@lru_cache(maxsize=16)
def pool_for(taxonomy: str) -> DecisionPool:
    """The shipped pool for ``taxonomy`` if one was fitted, else :func:`prior_pool` (cached)."""
    name = get_taxonomy(taxonomy).name
    return load_pool(name) if (ASSET_DIR / f"{name}.json").is_file() else prior_pool(name)
