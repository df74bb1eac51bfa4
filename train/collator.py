"""SFT batches for AffectLLM: chat records -> token ids, answer-only labels and encoder features.

For each record (see ``train.records``):

1. The chat template renders the prompt (every message before the last assistant turn, with the
   generation prompt) and the full conversation; the answer is the text the full rendering adds
   after the prompt (the assistant content plus the template's end-of-turn, so the model learns to
   stop). Prompt and answer are tokenised separately, so the label mask is exact at the seam.
2. ``<face>``/``<audio>``/``<image>`` placeholders in the prompt are expanded to each projector's
   token count by ``AffectLLM.expand_placeholders``; a placeholder of a modality the model has no
   projector for is dropped (its text evidence, if any, stays), with one warning.
3. Labels are -100 on the system/user turns, the template's tokens and the placeholders: loss
   only on the assistant's answer.
4. Features come from the FeatureCache by key (``record["features"][m]``), or are given inline as
   tensors (tests, in-memory use): ``[n x d]`` tokens for one item (``[d]`` means one token).
   Items of a modality are stacked in batch order into ``features[m]`` ``[k x n_max x d]`` with
   ``feature_masks[m]`` ``[k x n_max]`` (True = real token) when their lengths differ.
5. Right padding (training); sequences longer than ``max_length`` lose the end of the answer. A
   record that cannot be used (prompt alone too long, feature missing from the cache) is dropped
   from its batch with a warning and the batch goes on; a batch with no usable record raises.

Deliberately not here: generation prompts for GRPO/inference (left padded, no labels) and the
splice itself (``AffectLLM.embed_inputs``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from affectllm.errors import InputError
from affectllm.explanation.format import PLACEHOLDERS

log = logging.getLogger(__name__)
IGNORE_INDEX = -100


class AffectCollator:
    """``collator(rows) -> {"input_ids", "attention_mask", "labels", "features", "feature_masks"}``.

    ``rows`` are records (dicts) or dataset rows ``{"record": "<record as JSON>"}``. Shapes:
    input_ids / attention_mask / labels ``[b x s]``; features[m] ``[k_m x n x d_m]``.
    """

    def __init__(self, model, feature_cache=None, max_length: int | None = None,
                 pad_to_multiple_of: int | None = None):
        self.tokenizer = model.tokenizer
        self.expand = model.expand_placeholders  # the model's API: it knows each projector's count
        self.soft = set(model.projectors.keys())
        self.cache = feature_cache
        self.max_length = max_length
        self.pad_to_multiple_of = pad_to_multiple_of
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else self.tokenizer.eos_token_id
        self._warned: set[str] = set()

    # -- one record ------------------------------------------------------------------------
    def _warn_once(self, key: str, msg: str, *args) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(msg, *args)

    def _texts(self, rec: dict) -> tuple[str, str]:
        """(prompt text, answer text) from the chat template."""
        msgs = [{"role": m["role"], "content": m["content"]} for m in rec["messages"]]
        if not msgs or msgs[-1]["role"] != "assistant":
            raise InputError(rec.get("id", "?"), "an SFT record must end with the assistant's answer")
        tpl = self.tokenizer.apply_chat_template
        prompt = tpl(msgs[:-1], tokenize=False, add_generation_prompt=True)
        full = tpl(msgs, tokenize=False)
        if full.startswith(prompt):
            answer = full[len(prompt):]
        else:  # templates that rewrite earlier text (e.g. strip <think> of past turns)
            self._warn_once("template", "chat template does not extend the prompt; answer = content + eos")
            answer = msgs[-1]["content"] + (self.tokenizer.eos_token or "")
        return prompt, answer

    def _feature(self, rec: dict, m: str) -> torch.Tensor:
        """[n x d] float tensor for modality ``m`` of ``rec``."""
        ref = (rec.get("features") or {}).get(m)
        if isinstance(ref, torch.Tensor):
            x = ref
        elif isinstance(ref, str):
            if self.cache is None:
                raise InputError(rec.get("id", "?"), f"{m} feature key given but no FeatureCache configured")
            hit = self.cache.load(ref)
            if hit is None:
                raise InputError(rec.get("id", "?"), f"{m} features {ref!r} are not in the feature cache "
                                 f"({self.cache.root}); run the data engine's feature step first")
            tensors, _ = hit
            if m not in tensors:
                raise InputError(rec.get("id", "?"), f"cache entry {ref!r} has no {m!r} tensor ({sorted(tensors)})")
            x = tensors[m]
        else:
            raise InputError(rec.get("id", "?"), f"the prompt has a {PLACEHOLDERS[m]} placeholder but no {m} features")
        x = x.detach().float()
        if x.dim() == 1:
            x = x[None]
        if x.dim() != 2 or x.shape[0] == 0:
            raise InputError(rec.get("id", "?"), f"{m} features must be [n x d], got {tuple(x.shape)}")
        return x

    def encode(self, rec: dict) -> dict[str, Any]:
        """One record -> ``{"input_ids": [s], "labels": [s], "features": {m: [n x d]}}`` (lists/tensors)."""
        prompt, answer = self._texts(rec)
        present = [m for m in PLACEHOLDERS if PLACEHOLDERS[m] in prompt]
        feats: dict[str, torch.Tensor] = {}
        for m in present:
            if m not in self.soft:
                self._warn_once(f"drop:{m}", "dropping %s placeholders: the model has no %s projector", m, m)
                prompt = prompt.replace(PLACEHOLDERS[m], "")
                continue
            if prompt.count(PLACEHOLDERS[m]) != 1:
                raise InputError(rec.get("id", "?"), f"expected one {PLACEHOLDERS[m]} per record, "
                                 f"found {prompt.count(PLACEHOLDERS[m])}")
            feats[m] = self._feature(rec, m)
        prompt = self.expand(prompt, modalities=list(feats))
        tok = self.tokenizer
        p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
        a_ids = tok(answer, add_special_tokens=False)["input_ids"]
        if self.max_length is not None:
            if len(p_ids) >= self.max_length:
                raise InputError(rec.get("id", "?"), f"prompt is {len(p_ids)} tokens, max_length is {self.max_length}")
            a_ids = a_ids[: self.max_length - len(p_ids)]
        if not a_ids:
            raise InputError(rec.get("id", "?"), "empty answer after tokenisation")
        return {"input_ids": p_ids + a_ids, "labels": [IGNORE_INDEX] * len(p_ids) + list(a_ids), "features": feats}

    # -- a batch ---------------------------------------------------------------------------
    @staticmethod
    def _record(row: Mapping) -> dict:
        if "messages" in row:
            return dict(row)
        if "record" in row:
            return json.loads(row["record"]) if isinstance(row["record"], str) else dict(row["record"])
        raise InputError(str(row.get("id", "?")), "a row is a record or {'record': <JSON>}")

    def __call__(self, rows: Sequence[Mapping]) -> dict[str, Any]:
        encoded = []
        for row in rows:
            rec = self._record(row)
            try:
                encoded.append(self.encode(rec))
            except InputError as e:
                log.warning("skipping record: %s", e)
        if not encoded:
            raise InputError("batch", f"none of its {len(rows)} records could be used (see warnings)")
        return self.pad(encoded)

    def pad(self, encoded: Sequence[dict]) -> dict[str, Any]:
        longest = max(len(e["input_ids"]) for e in encoded)
        if self.pad_to_multiple_of:
            k = self.pad_to_multiple_of
            longest = (longest + k - 1) // k * k
        b = len(encoded)
        ids = torch.full((b, longest), self.pad_id, dtype=torch.long)
        labels = torch.full((b, longest), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((b, longest), dtype=torch.long)
        for i, e in enumerate(encoded):
            n = len(e["input_ids"])
            ids[i, :n] = torch.tensor(e["input_ids"])
            labels[i, :n] = torch.tensor(e["labels"])
            mask[i, :n] = 1
        batch: dict[str, Any] = {"input_ids": ids, "attention_mask": mask, "labels": labels}
        features, masks = stack_features([e["features"] for e in encoded])
        if features:
            batch["features"] = features
        if masks:
            batch["feature_masks"] = masks
        return batch


def stack_features(items: Sequence[Mapping[str, torch.Tensor]]) -> tuple[dict, dict]:
    """Per-record ``{m: [n x d]}`` -> ``features[m]`` ``[k x n_max x d]`` in record order, and
    ``feature_masks[m]`` ``[k x n_max]`` for the modalities whose item lengths differ."""
    features, masks = {}, {}
    for m in PLACEHOLDERS:
        xs = [it[m] for it in items if m in it]
        if not xs:
            continue
        dims = {x.shape[-1] for x in xs}
        if len(dims) > 1:
            raise InputError(m, f"feature widths differ within the batch: {sorted(dims)}")
        n_max = max(x.shape[0] for x in xs)
        out = xs[0].new_zeros((len(xs), n_max, xs[0].shape[-1]))
        mk = torch.zeros((len(xs), n_max), dtype=torch.bool)
        for i, x in enumerate(xs):
            out[i, : x.shape[0]] = x
            mk[i, : x.shape[0]] = True
        features[m] = out
        if not bool(mk.all()):
            masks[m] = mk
    return features, masks
