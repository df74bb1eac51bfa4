"""Section-guided generation: the rationale is written part by part, the label is scored.

A 135M LLM cannot be trusted to keep a three-part format on its own, so generation is steered
the way guidance-style decoders do it: the model writes *inside* each labelled part
(Observations, then Interpretation, then Conclusion), each part stops at the next heading or a
token budget, and the heading of the next part is written for it. The answer is then not
generated at all: every label of the taxonomy is scored after ``</think><answer>`` in one
batched forward pass (``AffectLLM.label_logprobs``), which gives both the answer (argmax) and a
probability over the taxonomy.

Deliberately not here: perception, prompt building or parsing (``inference`` glues them).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import torch
from transformers import LogitsProcessorList, StoppingCriteriaList, StopStringCriteria

from affectllm.generation.au_constraint import AUGrounding, drop_open_reference
from affectllm.explanation.format import ANSWER_OPEN, ANSWER_PREFIX, HEADINGS, THINK_CLOSE
from affectllm.generation.batch_cache import BatchCache
from affectllm.generation.kv_cache import GrowingCache
from affectllm.generation.prompt_cache import PromptCache
from affectllm.generation.row_sampling import RowSampler
from affectllm.generation.shared_prefix import start_shared

# (heading written for the model, stop strings ending this part, share of the token budget)
# Headings stop a part with or without their colon; the conclusion is one line.
_OBS, _INT, _CON = (HEADINGS[p] for p in ("observations", "interpretation", "conclusion"))
SECTIONS = (
    ("", ("\n" + _INT[:-1], "\n" + _CON[:-1], THINK_CLOSE, ANSWER_OPEN, "\n\n"), 0.5),  # heading is in the prompt
    ("\n" + _INT, ("\n" + _CON[:-1], _CON, THINK_CLOSE, ANSWER_OPEN, "\n" + _OBS[:-1],
                   "\n" + _INT[:-1], "\n\n"), 0.3),
    ("\n" + _CON, ("\n", THINK_CLOSE, ANSWER_OPEN), 0.2),
)
# Stop strings that would end generation at a leading newline are applied only when cutting.
_CUT_ONLY = {"\n"}


@dataclass
class Batch:
    """Prompts (chat-templated, placeholders expanded) with each prompt's features."""

    prompts: list[str]
    item_features: list[dict[str, torch.Tensor]]  # per prompt: modality -> [n x d] encoder tokens
    anchors: list[list[str]] | None = None  # per prompt: evidence each Observations bullet starts with
    citable_aus: list[list[str] | None] | None = None  # per prompt: the only AUs it may write (None: any)

    def features(self, idx: list[int] | None = None) -> tuple[dict, dict]:
        """Stacked ``(features, feature_masks)`` for prompts ``idx`` (default all): [k x n x d], [k x n]."""
        idx = range(len(self.prompts)) if idx is None else idx
        feats, masks = {}, {}
        for m in ("face", "audio", "image"):
            items = [self.item_features[i][m] for i in idx if m in self.item_features[i]]
            if not items:
                continue
            n = max(x.shape[0] for x in items)
            x = torch.zeros(len(items), n, items[0].shape[-1])
            mask = torch.zeros(len(items), n, dtype=torch.bool)
            for j, t in enumerate(items):
                x[j, :t.shape[0]] = t
                mask[j, :t.shape[0]] = True
            feats[m], masks[m] = x, mask
        return feats, masks


def _cut(text: str, stops: tuple[str, ...]) -> str:
    """Text up to the first stop string that follows some content (leading blanks never stop)."""
    lead = len(text) - len(text.lstrip())
    end = len(text)
    for s in stops:
        i = text.find(s, lead)
        if 0 <= i < end:
            end = i
    return text[:end].rstrip()


def _tokenize(model, prompts: list[str]):
    tok = model.tokenizer
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    dev = model.llm.get_input_embeddings().weight.device
    return enc["input_ids"].to(dev), enc["attention_mask"].to(dev)


@lru_cache(maxsize=16)
def _stop_criterion(tokenizer, stops: tuple[str, ...]) -> StopStringCriteria:
    """transformers' stop-string criterion, built once per stop list: ``generate(stop_strings=...)``
    rebuilds it on every call (~0.1-0.2 s over a 49k vocabulary; guided decoding calls generate
    six times per item). It keeps no state between calls."""
    return StopStringCriteria(tokenizer, list(stops))


# extra candidates (``seeds``): temperature and nucleus of each row's own draws (generation.row_sampling)
SAMPLING = {"temperature": 0.8, "top_p": 0.95}


def _gen_kwargs(model, budget: int, stops, max_time: float | None, lead_ok: bool = False) -> dict:
    """Greedy decoding kwargs (sampling is a processor, :func:`_processors`). ``lead_ok``: the part
    may start with a newline, so a bare newline does not stop generation (the cut applies it after
    the first content)."""
    hf_stops = tuple(s for s in stops if not (lead_ok and s in _CUT_ONLY))
    kw = dict(max_new_tokens=max(1, budget), do_sample=False, repetition_penalty=1.1)
    if hf_stops:
        kw["stopping_criteria"] = StoppingCriteriaList([_stop_criterion(model.tokenizer, hf_stops)])
    if max_time:
        kw["max_time"] = max_time
    return kw


def _processors(model, batch: Batch, idx: list[int], written: list[str], seeds: list[int] | None,
                call: int) -> dict:
    """Logits processors for prompts ``idx``: the AU grounding (no AU outside the evidence), then,
    when ``seeds`` are given, each row's own sampling (last: it adds the noise greedy search reads)."""
    procs = []
    if batch.citable_aus is not None:
        procs.append(AUGrounding(model.tokenizer, [batch.prompts[i] + written[i] for i in idx],
                                 [batch.citable_aus[i] for i in idx]))
    if seeds is not None:
        procs.append(RowSampler([seeds[i] for i in idx], call=call, **SAMPLING))
    return {"logits_processor": LogitsProcessorList(procs)} if procs else {}


def _ungrounded_tail_dropped(batch: Batch, i: int, text: str) -> str:
    if batch.citable_aus is None:
        return text
    return drop_open_reference(text, batch.citable_aus[i])


def _continue(model, batch: Batch, written: list[str], idx: list[int], budget: int, stops, max_time,
              lead_ok: bool = False, cache: PromptCache | None = None, seeds: list[int] | None = None,
              call: int = 0) -> None:
    """Let the model continue ``written[i]`` for prompts ``idx`` (in place), cut at ``stops``.
    ``cache``: a :class:`PromptCache` to reuse (one-prompt batches only); ``seeds``: sample each
    row with its own seed (``call``: this call's place in the rationale) instead of greedily."""
    if not idx:
        return
    feats, masks = batch.features(idx)
    ids, mask = _tokenize(model, [batch.prompts[i] + written[i] for i in idx])
    kw = _gen_kwargs(model, budget, stops, max_time, lead_ok)
    kw.update(_processors(model, batch, idx, written, seeds, call))
    whole = isinstance(cache, BatchCache) and len(idx) == len(batch.prompts)
    if isinstance(cache, PromptCache):
        kw.update(cache.reuse(ids))
    else:  # a batch runs its rows' common prompt start once (affectllm.generation.shared_prefix)
        ids, mask, kw["past_key_values"] = start_shared(model, ids, mask)
        if whole:
            cache.start(kw["past_key_values"])
    out = model.generate(ids, mask, features=feats, feature_masks=masks, **kw)
    if isinstance(cache, PromptCache):
        cache.update(ids, out)
    elif whole:
        cache.record(ids, mask, out)
    elif cache is not None:
        cache.drop()
    for i, t in zip(idx, model.tokenizer.batch_decode(out, skip_special_tokens=True)):
        written[i] = _ungrounded_tail_dropped(batch, i, written[i] + _cut(t, stops))


MAX_ANCHORS = 5  # bullets the guided Observations part may have


def bullet_budget(max_new_tokens: int) -> int:
    """Tokens one guided bullet may add: a fixed share, so a prompt's output never depends on
    what else is in its batch (batched == one-by-one)."""
    return max(6, int(max_new_tokens * SECTIONS[0][2]) // 4)


def generate_rationales(model, batch: Batch, max_new_tokens: int = 96, max_time: float | None = None,
                        guided: bool = True, cache: PromptCache | BatchCache | None = None,
                        seeds: list[int] | None = None) -> list[str]:
    """The rationale of each prompt: the text after the prompt's ``Observations:\n-``.

    ``seeds``: one per prompt: draw with :data:`SAMPLING`, each row from its own seed, instead of
    greedily (further candidates; a row draws the same alone or in any batch).
    ``guided``: each Observations bullet begins with one evidence anchor (``batch.anchors``) and
    the model completes the line; Interpretation and Conclusion headings are written for it.
    Otherwise the model writes the whole rationale and stops at ``</think>``. ``cache``: reuse
    keys/values across the calls (:class:`PromptCache`, one-prompt batches) or keep the last
    call's for the scoring (:class:`BatchCache`); pass it on to :func:`score_labels`.
    """
    n = len(batch.prompts)
    if isinstance(cache, PromptCache) and n != 1:
        raise ValueError("a PromptCache serves one-prompt batches only (a BatchCache serves batches)")
    if seeds is not None and len(seeds) != n:
        raise ValueError(f"{len(seeds)} seeds for {n} prompts")
    written = ["" for _ in range(n)]
    if not guided:
        _continue(model, batch, written, list(range(n)), max_new_tokens, (THINK_CLOSE, ANSWER_OPEN), max_time,
                  cache=cache, seeds=seeds)
        return written
    # each call's index is fixed by its place in a rationale (bullet k, the free part, a section),
    # not by the batch, so sampled rows draw alike in any batch
    anchors = [a[:MAX_ANCHORS] for a in (batch.anchors or [[] for _ in range(n)])]
    obs_budget = int(max_new_tokens * SECTIONS[0][2])
    rounds = max((len(a) for a in anchors), default=0)
    per_bullet = bullet_budget(max_new_tokens)
    for k in range(rounds):
        idx = [i for i in range(n) if k < len(anchors[i])]
        for i in idx:
            written[i] += (" " if k == 0 else "\n- ") + anchors[i][k]
        _continue(model, batch, written, idx, per_bullet, ("\n",) + SECTIONS[0][1], max_time, cache=cache,
                  seeds=seeds, call=k)
    free = [i for i in range(n) if not anchors[i]]
    _continue(model, batch, written, free, obs_budget, SECTIONS[0][1], max_time, cache=cache, seeds=seeds,
              call=MAX_ANCHORS)
    for j, (heading, stops, share) in enumerate(SECTIONS[1:]):
        written = [w + heading for w in written]
        _continue(model, batch, written, list(range(n)), int(max_new_tokens * share), stops, max_time,
                  lead_ok=True, cache=cache, seeds=seeds, call=MAX_ANCHORS + 1 + j)
    return written


def stream_rationale(model, batch: Batch, max_new_tokens: int = 96, max_time: float | None = None,
                     guided: bool = True, cache: PromptCache | None = None) -> Iterator[str]:
    """Yield the rationale of a one-prompt batch piece by piece, as each step is written.
    ``cache``: a :class:`PromptCache` reused across the steps (then by :func:`score_labels`).

    Token-level streaming inside a step uses transformers' ``TextIteratorStreamer``.
    """
    from transformers import TextIteratorStreamer

    if len(batch.prompts) != 1:
        raise ValueError("streaming takes exactly one prompt")
    steps: list[tuple[str, tuple, int]] = []  # (text written for the model, stops, budget)
    if guided:
        anchors = (batch.anchors or [[]])[0][:MAX_ANCHORS]
        obs_budget = int(max_new_tokens * SECTIONS[0][2])
        per = bullet_budget(max_new_tokens)
        steps += [((" " if k == 0 else "\n- ") + a, ("\n",) + SECTIONS[0][1], per) for k, a in enumerate(anchors)]
        if not anchors:
            steps.append(("", SECTIONS[0][1], obs_budget))
        steps += [(h, st, int(max_new_tokens * sh)) for h, st, sh in SECTIONS[1:]]
    else:
        steps.append(("", (THINK_CLOSE, ANSWER_OPEN), max_new_tokens))
    feats, masks = batch.features()
    written = ""
    for forced, stops, budget in steps:
        written += forced
        if forced:
            yield forced
        ids, mask = _tokenize(model, [batch.prompts[0] + written])
        streamer = TextIteratorStreamer(model.tokenizer, skip_prompt=False, skip_special_tokens=True)
        kw = _gen_kwargs(model, budget, stops, max_time, lead_ok=forced.startswith("\n"))
        kw.update(_processors(model, batch, [0], [written], None, 0))
        kw.update(cache.reuse(ids) if cache is not None else {"past_key_values": GrowingCache()})
        errors: list[BaseException] = []

        def work():
            try:
                out = model.generate(ids, mask, features=feats, feature_masks=masks, streamer=streamer, **kw)
                if cache is not None:
                    cache.update(ids, out)
            except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread below
                errors.append(e)
                streamer.end()

        t = threading.Thread(target=work, daemon=True)
        t.start()
        raw, shown = "", 0
        for piece in streamer:
            raw += piece
            part = _cut(raw, stops)
            if len(part) > shown:
                yield part[shown:]
                shown = len(part)
        t.join()
        if errors:
            raise errors[0]
        written = _ungrounded_tail_dropped(batch, 0, written + _cut(raw, stops))


def surface_forms(label: str) -> list[str]:
    """Spellings of one label whose probabilities add up to the label's probability.

    BPE splits a bare lower-case word after ``>`` oddly (``happiness`` -> ``h`` + ``appiness``)
    while ``anger`` is one token, so scoring only the canonical spelling would favour labels
    that happen to be single tokens. Summing over spellings removes that bias for an untrained
    model; a trained model puts its mass on the canonical form, which is what it is taught.
    """
    return list(dict.fromkeys([label, " " + label, label.capitalize()]))


def score_labels(model, batch: Batch, rationales: list[str], labels: tuple[str, ...],
                 cache: PromptCache | BatchCache | None = None) -> torch.Tensor:
    """[b x L] probabilities of each label after each rationale, one forward pass.
    ``cache``: the :class:`PromptCache` (one prompt) or :class:`BatchCache` the rationales were
    generated with (used up here)."""
    from affectllm.model.label_scores import encode_labels

    forms = [surface_forms(lab) for lab in labels]
    flat = [f for fs in forms for f in fs]
    ids, mask = _tokenize(model, [p + r + ANSWER_PREFIX for p, r in zip(batch.prompts, rationales)])
    feats, masks = batch.features()
    past = None
    if isinstance(cache, PromptCache):
        past = cache.reuse(ids)["past_key_values"]
    elif cache is not None:
        lay = cache.layout(ids, mask, model.tokenizer.pad_token_id, set(model.placeholder_ids.values()))
        if lay is not None:
            (ids, mask), past = lay, cache.cache
    logp = model.label_logprobs(ids, mask, encode_labels(model.tokenizer, flat),
                                features=feats, feature_masks=masks, past_key_values=past).float()
    if isinstance(cache, PromptCache):
        cache.cache = cache.ids = None  # extended with the label tokens: not reusable
    elif cache is not None:
        cache.drop()
    per_label, i = [], 0
    for fs in forms:  # log p(label) = logsumexp over its spellings
        per_label.append(torch.logsumexp(logp[:, i:i + len(fs)], dim=-1))
        i += len(fs)
    return torch.stack(per_label, -1).softmax(-1).cpu()
