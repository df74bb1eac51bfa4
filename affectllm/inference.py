"""The single inference entry point: ``Explainer(model).explain(inputs, ...)``.

Used by the CLI (``affectllm explain``), the batch job, eval and the UI; ``from affectllm import
Explainer`` is the public Python API (``results_to_frame`` gives a DataFrame). For each input it
perceives (cached), builds the prompt (``explanation.prompt``), writes the rationale with section-guided
generation and scores the taxonomy's labels in one batched pass (``generation.guided``), then parses the
result with the project's one parser (``explanation.parse.parse``).

An Explainer owns its model for inference: unless ``merge_lora=False`` it folds the LoRA deltas
into the base weights and, on CPU, stores the linear weights as ``cpu_weights`` (default: the
model config's ``llm.cpu_weights``, float16; ``affectllm.model.cpu_packing``), after which the model
can no longer be trained or saved.

Guards: text evidence is cut to ``io.text.MAX_TEXT_CHARS``; prompts over ``config.llm.max_prompt_tokens``
are refused for that item; each generate call has a time limit. A failing item gets a result
with ``error`` set and the batch goes on.

Deliberately not here: decoding, encoders (``perception``), answer parsing (``explanation.parse``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch

from affectllm.errors import InputError
from affectllm.io.text import MAX_TEXT_CHARS
from affectllm.perception.observations import Observations
from affectllm.explanation.answer import Answer, decide, needs_llm, settle
from affectllm.explanation.parse import Explanation, parse
from affectllm.io.item import Item, to_item
from affectllm.perception.pipeline import Perception
from affectllm.explanation.format import ANSWER_PREFIX, ANSWER_SUFFIX, RESPONSE_PREFIX
from affectllm.explanation.prompt import build_messages, render_prompt, soft_modalities, wants_text



@dataclass
class ExplainResult:
    """One input's answer: the parsed explanation plus the evidence and what it cost."""

    id: str
    explanation: Explanation | None
    observations: Observations | None
    timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None  # set when the item could not be explained at all
    warnings: list[str] = field(default_factory=list)  # partial problems (one modality failed, text cut)
    answer: Answer | None = None  # the decision, the LLM's own label and the rationale's verification

    @property
    def emotion(self) -> str | None:
        return self.explanation.emotion if self.explanation else None

    def au_intensities(self, evidence: dict | None = None) -> dict[str, float]:
        """AU -> FACS-like intensity (0-5) of the main face ({} without one). ``evidence``: this
        result's ``to_dict()["evidence"]`` when the caller already has it."""
        if evidence is None:
            evidence = self.observations.to_dict() if self.observations else {}
        faces = (evidence or {}).get("faces") or []
        return {a["au"]: a["intensity"] for a in faces[0]["aus"]} if faces else {}

    def to_dict(self) -> dict:
        ex, obs, ans = self.explanation, self.observations, self.answer
        return {
            "id": self.id,
            "emotion": ex.emotion if ex else None,
            "probabilities": {k: round(v, 4) for k, v in ex.probabilities.items()} if ex else {},
            "rationale": ex.text if ex else None,
            "observations_part": ex.observations if ex else None,
            "interpretation": ex.interpretation if ex else None,
            "conclusion": ex.conclusion if ex else None,
            "cues": ex.cues if ex else [],
            "cited_aus": ex.cited_aus if ex else [],
            "evidence_aus": obs.evidence_aus() if obs else [],
            "well_formed": bool(ex.well_formed) if ex else False,
            "consistent": bool(ex.consistent) if ex else False,
            "rationale_source": ans.rationale_source if ans else None,
            "rationale_flags": ans.flags if ans else [],
            "rejected_rationales": ans.rejected if ans else [],
            "llm_emotion": ans.llm_emotion if ans else None,
            "llm_probabilities": {k: round(v, 4) for k, v in ans.llm_probabilities.items()} if ans else {},
            "decision": ans.decision_dict() if ans else None,
            "evidence": obs.to_dict() if obs else None,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "warnings": self.warnings,
            "error": self.error,
        }


def _present(obs: Observations) -> set[str]:
    """The modalities an item's evidence has: face (a face or a video), audio, text."""
    present = {"face": obs.main_face is not None or obs.video is not None,
               "audio": obs.audio is not None, "text": bool(obs.text)}
    return {m for m, yes in present.items() if yes}


def results_to_frame(results: Sequence[ExplainResult]):
    """A pandas DataFrame of many results, one row per input (as py-feat's ``Fex`` gives its users).

    Columns: ``id``, ``emotion``, one probability column per label (the label's name, in
    taxonomy order as first seen), one intensity column per AU seen on a main face (``AU01``,
    ``AU12``, ...; NaN where that input shows no face or no such AU), and ``error``.
    """
    import pandas as pd

    rows, labels, aus = [], {}, set()
    for r in results:
        probs = r.explanation.probabilities if r.explanation else {}
        au = {f"AU{int(k[2:]):02d}": v for k, v in r.au_intensities().items()}
        labels.update(dict.fromkeys(probs))
        aus |= set(au)
        rows.append({"id": r.id, "emotion": r.emotion, **probs, **au, "error": r.error})
    columns = ["id", "emotion", *labels, *sorted(aus), "error"]
    return pd.DataFrame(rows, columns=columns)


def evidence_anchors(obs: Observations, evidence: dict, max_aus: int = 4) -> list[str]:
    """What each guided Observations bullet starts with: the strongest present AUs, then the
    voice and the words. Anchors come only from perceived evidence, so a guided rationale cites
    no AU the face does not show."""
    out = []
    face = obs.main_face
    if face is not None and wants_text(evidence, "face"):
        for a in sorted(face.present_aus, key=lambda a: -a.intensity)[:max_aus]:
            out.append(f"{a.au} {a.name}, intensity {a.letter}:")
    if obs.audio is not None and wants_text(evidence, "audio"):
        if obs.audio.descriptors:
            out.append("Voice:")
        if obs.audio.transcript:
            out.append("Words spoken:")
    if obs.text:
        out.append("Words:")
    return out


def citable_aus(obs: Observations) -> list[str]:
    """The AUs a rationale about ``obs`` may write (decoding forbids the rest): those present on
    the main face, and for a video those its AU summary reports. Text or voice alone: none."""
    aus = set(obs.evidence_aus())
    if obs.video is not None:
        aus |= set(obs.video.au_summary)
    return sorted(aus, key=lambda a: int(a[2:]))


def _as_item(x, text: str | None = None) -> Item | Observations:
    return x if isinstance(x, Observations) else to_item(x, text=text)


class Explainer:
    """Explains emotions with an :class:`AffectLLM` (see module docstring)."""

    def __init__(self, model, perception: Perception | None = None, taxonomy: str | None = None,
                 max_new_tokens: int | None = None, batch_size: int = 8, max_time_s: float | None = 180.0,
                 seed: int = 0, hints: bool = True, guided: bool | None = None, merge_lora: bool = True,
                 cpu_weights: str | None = None, text_expert=None, candidates: int = 3,
                 template_modalities: list[str] | None = None):
        self.model = model
        # Rationales per item at most: the greedy one, then, for items whose greedy rationale fails
        # the verifier, candidates - 1 sampled ones (one batch) before the template is shown.
        if candidates < 1:
            raise ValueError(f"candidates must be at least 1, got {candidates}")
        self.candidates = candidates
        # The text channel's classifier (perception.text_expression): None loads the shipped one
        # on first use, False runs without a text channel, or pass a loaded TextExpression.
        self._text_expert = text_expert
        self.config = model.config
        self.taxonomy = taxonomy or self.config.prompting.taxonomy
        # modalities explained by the template without drafts (None: the model's config; [] drafts all)
        self.template_modalities = set(self.config.prompting.template_modalities if template_modalities is None
                                       else template_modalities)
        self.evidence = {m: c.evidence for m, c in self.config.encoders.items() if c.enabled}
        self.perception = perception or Perception()
        # None: the model's own budget (config llm.max_new_tokens: long enough for the rationales it was trained on)
        self.max_new_tokens = max_new_tokens or self.config.llm.max_new_tokens
        self.batch_size = batch_size
        self.max_time_s = max_time_s
        self.seed = seed
        self.hints = hints
        # Guided (evidence-anchored) decoding for models never taught the format: an LLM
        # without LoRA is the untrained base. Trained models write their rationale freely.
        self.guided = (not self.config.lora.enabled) if guided is None else guided
        self._force_guided = guided is not None  # an explicit choice applies to every item
        if merge_lora and not model.training:
            model.merge_lora()  # no adapter matmuls per generated token
            # Half the bytes read per generated token on CPU (affectllm.model.cpu_packing); no-op on CUDA.
            model.pack_for_cpu(cpu_weights or self.config.llm.cpu_weights)

    @classmethod
    def from_name(cls, name: str | None = None, **kw) -> Explainer:
        """An Explainer over the model a user names (``affectllm-mini``, ``base``, a saved folder,
        a transformers LM; None: the default), see ``affectllm.model.builder``."""
        from affectllm.model.builder import load_model

        return cls(load_model(name), **kw)

    from_pretrained = from_name  # the name Hugging Face users reach for first

    @property
    def text_expert(self):
        """The text expression classifier (loaded on first use), or None when disabled."""
        if self._text_expert is None:
            from affectllm.perception.text_expression import shipped

            self._text_expert = shipped()
        return self._text_expert or None

    # -- public API ---------------------------------------------------------------------------
    def explain(self, inputs, question: str | None = None, history: list[dict] | None = None,
                stream: bool = False, text: str | None = None):
        """Explain one input (returns :class:`ExplainResult`) or a list (returns a list).

        An input is a file path, an :class:`Item`, a dict of Item fields, or ready
        :class:`Observations`. ``text`` attaches words to a single path. ``history`` holds the
        earlier turns of a conversation about the same input (follow-ups need no re-upload).
        ``stream=True`` (single input) returns an iterator of text pieces ending with the result.
        """
        if isinstance(inputs, (list, tuple)):
            return self.explain_many(inputs, question=question, history=history)
        try:
            item = _as_item(inputs, text)
        except InputError as e:
            res = ExplainResult(str(inputs), None, None, error=str(e))
            return iter([res]) if stream else res
        if stream:
            return self._stream(item, question, history)
        return self.explain_many([item], question=question, history=history)[0]

    def explain_many(self, inputs: Sequence, question: str | None = None,
                     history: list[dict] | None = None) -> list[ExplainResult]:
        results = []
        for start in range(0, len(inputs), self.batch_size):
            chunk, early = [], {}
            for j, x in enumerate(inputs[start:start + self.batch_size]):
                try:
                    chunk.append(_as_item(x))
                except InputError as e:  # unreadable before perception: that item's error row
                    early[j] = ExplainResult(str(x), None, None, error=str(e))
            done = iter(self._explain_chunk(chunk, question, history) if chunk else [])
            results += [early[j] if j in early else next(done) for j in range(len(chunk) + len(early))]
        return results

    def perceive(self, item) -> tuple[Observations, float]:
        t0 = time.perf_counter()
        if isinstance(item, Observations):
            return item, 0.0
        return self.perception.perceive(item), time.perf_counter() - t0

    # -- internals ---------------------------------------------------------------------------
    def _prepare(self, item, question, history, decide_first: bool = True) -> tuple[ExplainResult, tuple | None]:
        """Perceive and build the prompt; returns the result shell and (prompt, features) or None.
        ``decide_first=False``: the prompt without the decided answer (the LLM's own view)."""
        res = self._perceived(item)
        self._annotate_texts([res])
        return self._prompt(res, question, history, decide_first)

    def _perceived(self, item) -> ExplainResult:
        """The result shell with the item's Observations (``error`` set when there are none)."""
        item_id = item.file if isinstance(item, Observations) else item.id
        try:
            obs, t_perc = self.perceive(item)
        except InputError as e:
            return ExplainResult(str(item_id), None, None, error=str(e))
        res = ExplainResult(str(item_id or obs.file or "item"), None, obs, timings={"perception_s": t_perc})
        res.warnings = list(obs.errors)
        if isinstance(item, Observations):  # ready Observations skipped the Item's gate and sanitiser
            from affectllm.perception.gate import gate

            g = gate(obs, None, res.id)
            obs = res.observations = g.obs_kept
            res.warnings += g.warnings
            if g.error:
                res.error = g.error
                return res
            if obs.text and len(obs.text) > MAX_TEXT_CHARS:
                res.warnings.append(f"{res.id}: text of {len(obs.text):,} characters cut to {MAX_TEXT_CHARS:,}")
                obs.text = obs.text[:MAX_TEXT_CHARS]
        return res

    def _annotate_texts(self, results: list[ExplainResult]) -> None:
        """The text classifier's scores and driving words for every text of a chunk, in one batch."""
        todo = [r for r in results if r.error is None and r.observations is not None and r.observations.text
                and not r.observations.text_expression]
        if not todo or self.text_expert is None:
            return
        from affectllm.perception.text_expression import annotate_many

        t0 = time.perf_counter()
        for r, skipped in zip(todo, annotate_many([r.observations for r in todo], self.text_expert)):
            if skipped:  # letterless text: no text channel
                r.warnings.append(f"{r.id}: {skipped}")
            r.timings["text_classifier_s"] = (time.perf_counter() - t0) / len(todo)

    def _prompt(self, res: ExplainResult, question, history,
                decide_first: bool = True) -> tuple[ExplainResult, tuple | None]:
        """The decision (when it needs no LLM) and the prompt of a perceived item, or None."""
        if res.error is not None:
            return res, None
        obs = res.observations
        if not (obs.faces or obs.audio or obs.text or obs.video or obs.image):
            res.error = "; ".join(obs.errors) or f"{res.id}: no face, voice or text to explain"
            return res, None
        decided = None
        if decide_first and not needs_llm(self.taxonomy):  # the experts decide now; the prompt asks for a rationale of it
            try:
                decided = decide(obs, None, self.taxonomy)
            except Exception as e:  # noqa: BLE001 - this item gets the error, the batch goes on
                res.error = f"{res.id}: deciding the answer failed: {type(e).__name__}: {e}"
                return res, None
            obs = decided.obs
        soft = [m for m in soft_modalities(obs, self.evidence) if m in self.model.projectors]
        messages = build_messages(obs, taxonomy=self.taxonomy, evidence=self.evidence, question=question,
                                  history=history, hints=self.hints,
                                  decided=(decided.label, decided.probability) if decided else None)
        prompt = self.model.expand_placeholders(render_prompt(self.model.tokenizer, messages), soft)
        n_tok = len(self.model.tokenizer(prompt, add_special_tokens=False)["input_ids"])
        if n_tok > self.config.llm.max_prompt_tokens:
            res.error = (f"{res.id}: prompt of {n_tok} tokens exceeds the limit of "
                         f"{self.config.llm.max_prompt_tokens} (shorten the text or the conversation)")
            return res, None
        feats = {}
        for m in soft:
            x = {"face": lambda: obs.main_face.embedding, "audio": lambda: obs.audio.features,
                 "image": lambda: obs.image.features}[m]()
            feats[m] = torch.as_tensor(x).float().reshape(-1, x.shape[-1])  # [n x d]
        return res, (prompt, feats, evidence_anchors(obs, self.evidence), citable_aus(obs), decided)

    @staticmethod
    def _batch(ready: list[tuple]):
        from affectllm.generation.guided import Batch

        return Batch([r[0] for r in ready], [r[1] for r in ready], [r[2] for r in ready], [r[3] for r in ready])

    def _guided_for(self, obs: Observations | None) -> bool:
        """Guided decoding for this item: the model's default, or forced on when the item's
        evidence includes a modality the adapters were never trained on."""
        if self.guided or self._force_guided or obs is None:
            return self.guided
        return any(m in self.config.prompting.guided_modalities for m in _present(obs))

    def _template_only(self, obs: Observations | None, question, history) -> bool:
        """The item is explained by the template without drafts: a first turn (a question such as
        "what emotion is this?" included: the drafts it would get fail all the same) whose
        modalities are all in the model's ``prompting.template_modalities``. A follow-up in a
        conversation (``history``) goes to the LLM."""
        present = _present(obs) if obs is not None else set()
        return not history and bool(present) and present <= self.template_modalities

    def _template(self, res: ExplainResult, decided) -> None:
        self._settle(res, [], None, decided)
        res.warnings.append(f"{res.id}: this model drafts no rationale for "
                            f"{'+'.join(sorted(_present(res.observations)))} input (its drafts rarely pass the "
                            "verifier; prompting.template_modalities): the evidence template is shown")

    def _explain_chunk(self, chunk, question, history) -> list[ExplainResult]:
        perceived = [self._perceived(it) for it in chunk]
        self._annotate_texts(perceived)
        prepared = [self._prompt(r, question, history) for r in perceived]
        groups: dict[bool, list[int]] = {}
        for i, (r, p) in enumerate(prepared):
            if p is not None and self._template_only(r.observations, question, history):
                self._template(r, p[4])
            elif p is not None:
                groups.setdefault(self._guided_for(r.observations), []).append(i)
        for guided, idx in groups.items():
            self._generate_group([prepared[i] for i in idx], guided)
        return [r for r, _ in prepared]

    def _generate_group(self, todo, guided: bool) -> None:
        from affectllm.generation.batch_cache import BatchCache
        from affectllm.generation.guided import generate_rationales, score_labels
        from affectllm.generation.prompt_cache import PromptCache
        from affectllm.knowledge.taxonomy import get_taxonomy

        if todo:
            batch = self._batch([p for _, p in todo])
            labels = get_taxonomy(self.taxonomy).labels
            # One prompt: its calls share the prefix. A batch: scoring reuses the last generate call.
            cache = PromptCache() if len(todo) == 1 else BatchCache()
            torch.manual_seed(self.seed)
            t0 = time.perf_counter()
            try:
                rationales = generate_rationales(self.model, batch, self.max_new_tokens, self.max_time_s,
                                                 guided=guided, cache=cache)
                t_gen = time.perf_counter() - t0
                probs = score_labels(self.model, batch, rationales, labels, cache=cache)
            except Exception as e:  # noqa: BLE001 - the chunk's items get the error, the job goes on
                for r, _ in todo:
                    r.error = f"{r.id}: generation failed: {type(e).__name__}: {e}"
                return
            llm = [{lab: float(p) for lab, p in zip(labels, probs[i])} for i in range(len(todo))]
            for i, (res, prep) in enumerate(todo):
                try:
                    self._settle(res, [rationales[i]], llm[i], prep[4])
                except Exception as e:  # noqa: BLE001 - this item gets the error, the batch goes on
                    res.error = f"{res.id}: deciding the answer failed: {type(e).__name__}: {e}"
            self._retry_failed(todo, rationales, llm, guided)
            t_total = time.perf_counter() - t0
            for res, _ in todo:
                res.timings.update(generation_s=t_gen / len(todo), llm_s=t_total / len(todo),
                                   batch_llm_s=t_total)

    def _retry_failed(self, todo, rationales: list[str], llm: list[dict], guided: bool) -> None:
        """Items whose greedy rationale failed the verifier get ``candidates - 1`` sampled ones, all
        failing items' rows in one batch; each row samples from its own seed
        (``generation.row_sampling``), so an item gets the same draws alone or in any batch. The
        best verified candidate is shown, else the template."""
        from affectllm.generation.guided import generate_rationales

        k = self.candidates - 1
        retry = [i for i, (res, _) in enumerate(todo)
                 if k and res.error is None and res.answer is not None and res.answer.rationale_source != "model"]
        if not retry:
            return
        rows = [todo[i][1] for i in retry for _ in range(k)]
        seeds = [self.seed + 1 + r for _ in retry for r in range(k)]
        try:
            drawn = generate_rationales(self.model, self._batch(rows), self.max_new_tokens, self.max_time_s,
                                        guided=guided, seeds=seeds)
        except Exception as e:  # noqa: BLE001 - the greedy verdicts (templates) stand; say why
            for i in retry:
                todo[i][0].warnings.append(f"{todo[i][0].id}: further candidates failed: {type(e).__name__}: {e}")
            return
        for n, i in enumerate(retry):
            res, prep = todo[i]
            try:
                self._settle(res, [rationales[i]] + drawn[n * k:(n + 1) * k], llm[i], prep[4])
            except Exception as e:  # noqa: BLE001 - this item keeps its greedy verdict; say why
                res.warnings.append(f"{res.id}: further candidates failed: {type(e).__name__}: {e}")

    def _settle(self, res: ExplainResult, rationales: list[str], llm_probs: dict[str, float], decided=None) -> None:
        """Decide the label (unless ``decided`` before generation), keep the rationale only if it
        passes the verifier (else the template), and parse what is shown (``explanation.answer.settle``)."""
        t0 = time.perf_counter()
        ans = settle(res.id, res.observations, rationales, llm_probs, self.taxonomy, seed=self.seed,
                     decided=decided)
        ex = parse(ans.text, self.taxonomy)
        ex.probabilities = dict(ans.probabilities)
        res.explanation, res.answer = ex, ans
        res.timings["settle_s"] = time.perf_counter() - t0

    def _stream(self, item, question, history) -> Iterator[str | ExplainResult]:
        from affectllm.generation.guided import score_labels, stream_rationale
        from affectllm.generation.prompt_cache import PromptCache
        from affectllm.knowledge.taxonomy import get_taxonomy

        res, prep = self._prepare(item, question, history)
        if prep is None:
            yield res
            return
        if self._template_only(res.observations, question, history):
            self._template(res, prep[4])
            yield res.explanation.text
            yield res
            return
        batch = self._batch([prep])
        labels = get_taxonomy(self.taxonomy).labels
        torch.manual_seed(self.seed)
        t0 = time.perf_counter()
        yield RESPONSE_PREFIX
        rationale, cache = "", PromptCache()
        for piece in stream_rationale(self.model, batch, self.max_new_tokens, self.max_time_s,
                                      guided=self._guided_for(res.observations), cache=cache):
            rationale += piece
            yield piece
        probs = score_labels(self.model, batch, [rationale], labels, cache=cache)[0]
        llm = {lab: float(p) for lab, p in zip(labels, probs)}
        self._settle(res, [rationale], llm, prep[4])
        self._retry_failed([(res, prep)], [rationale], [llm], self._guided_for(res.observations))
        # The streamed text was the model's draft; the result holds the verified one (or the
        # template, with rationale_source saying so), whose answer tag ends the stream.
        yield ANSWER_PREFIX + res.emotion + ANSWER_SUFFIX
        res.timings["llm_s"] = time.perf_counter() - t0
        yield res
