"""Checks every training record against its evidence before it is written: no record is kept on trust.

``verify(record, obs) -> list[str]`` returns the reasons a record fails (empty list: it passes).
Each reason starts with a category (``format:``, ``label:``, ``au:``, ``intensity:``, ``prosody:``,
``modality:``, ``classifier:``, ``number:``, ``time:``, ``quote:``, ``confidence:``, ``record:``) so build
reports can count them, then the core flag code in brackets.

The rationale itself is judged by the one verifier, :func:`affectllm.explanation.verify.verify`
(the same checks eval, rewards and inference use: AU and intensity claims, prosody, modality,
classifier claims, numbers, video times, quotes, cut or empty sections, parts that name another emotion).
What stays here is what only a training record has:

- format: the assistant turn starts with ``prompting.RESPONSE_PREFIX``;
- label: the answer and the conclusion name the gold label (after synonym mapping), or for a record
  written for the decided answer (``record["answer"]``) that answer, with confidence words checked
  against its ``probability``;
- record: the stored observations, message roles, ``evidence_aus`` and labels are consistent.

Deliberately not here: the rationale checks (``affectllm.explanation``) and writing or repairing
records (``cot``, ``teacher``).
"""

from __future__ import annotations

from affectllm.explanation.claims import au_claims, evidence_prosody  # noqa: F401  (re-exported for tests)
from affectllm.explanation.verify import verify as verify_rationale
from affectllm.knowledge.facs import au_key
from affectllm.perception.observations import Observations, observations_from_dict
from affectllm.explanation.parse import parse
from affectllm.explanation.format import RESPONSE_PREFIX
from affectllm.knowledge.taxonomy import get_taxonomy, normalize_label

# Core flag code -> the report category records have always been counted under.
CATEGORY = {"malformed": "format", "empty_section": "format", "cut_section": "format",
            "conclusion_mismatch": "label", "interpretation_mismatch": "label", "invented_au": "au",
            "wrong_au_meaning": "au",
            "wrong_intensity": "intensity", "false_prosody": "prosody", "wrong_modality": "modality",
            "false_agreement": "classifier", "invented_number": "number", "wrong_label_score": "number",
            "invented_time": "time", "misquoted_text": "quote", "confidence_mismatch": "confidence"}


def verify_text(text: str, obs: Observations, labels: list[str], taxonomy=None, probability: float | None = None,
                classifiers: dict | None = None) -> list[str]:
    """Reasons why an assistant text fails against ``obs`` and ``labels`` (empty: passes): the gold
    labels, or for a record written for a decided answer that answer (``probability``: its
    probability, against which confidence words are checked)."""
    tax = get_taxonomy(taxonomy)
    if not isinstance(text, str) or not text.startswith(RESPONSE_PREFIX):
        return [f"format: assistant text does not start with {RESPONSE_PREFIX!r}"]
    reasons: list[str] = []
    ex = parse(text, tax)
    gold = [normalize_label(lab, tax) or lab for lab in labels]
    if not gold or gold[0] not in tax.labels:
        return [f"label: gold label {labels[:1]} is not in taxonomy {tax.name}"]
    if ex.emotion != gold[0]:
        reasons.append(f"label: answer is {ex.emotion!r}, gold is {gold[0]!r}")
    if ex.conclusion_emotion != gold[0]:
        reasons.append(f"label: conclusion names {ex.conclusion_emotion!r}, gold is {gold[0]!r}")
    if tax.multi_label and set(ex.emotions) != set(gold):
        reasons.append(f"label: answer lists {ex.emotions}, gold is {gold}")
    verdict = verify_rationale(text, obs, probability=probability, taxonomy=tax, classifiers=classifiers)
    return reasons + [f"{CATEGORY.get(f.code, f.code)}: [{f.code}] {f.detail}" for f in verdict.flags]


def record_observations(record: dict) -> Observations:
    """The Observations stored in a record (``record["observations"]``, a ``to_dict()``)."""
    if not isinstance(record.get("observations"), dict):
        raise ValueError(f"{record.get('id')}: record carries no observations")
    return observations_from_dict(record["observations"])


def verify(record: dict, obs: Observations | None = None) -> list[str]:
    """Reasons why an SFT record fails (empty list: it passes); ``obs`` defaults to the stored ones."""
    try:
        obs = obs if obs is not None else record_observations(record)
    except (ValueError, KeyError, TypeError) as e:
        return [f"record: {e}"]
    messages = record.get("messages") or []
    if len(messages) < 3 or [m.get("role") for m in messages[:2]] != ["system", "user"] \
            or messages[-1].get("role") != "assistant":
        return ["record: messages must be system, user, ..., assistant"]
    reasons = []
    have, want = record.get("evidence_aus"), (obs.evidence_aus() if obs.main_face is not None else None)
    if (have is None) != (want is None) or sorted(have or [], key=au_key) != sorted(want or [], key=au_key):
        reasons.append(f"record: evidence_aus {have} differ from the observations {want}")
    labels = record.get("labels") or ([record["label"]] if record.get("label") else [])
    if record.get("label") and labels and labels[0] != record["label"]:
        reasons.append("record: label is not the first of labels")
    if record.get("answer"):  # written for the decided answer, not the gold label
        return reasons + verify_text(messages[-1].get("content", ""), obs, [record["answer"]], record.get("taxonomy"),
                                     record.get("probability"), _classifiers(obs))
    return reasons + verify_text(messages[-1].get("content", ""), obs, labels, record.get("taxonomy"))


def _classifiers(obs: Observations) -> dict | None:
    return {"text": dict(obs.text_expression)} if obs.text_expression else None


def category(reason: str) -> str:
    """The category of a reason string ("au: ..." -> "au")."""
    return reason.split(":", 1)[0] if ":" in reason else "other"
