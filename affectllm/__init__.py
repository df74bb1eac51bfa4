"""affectllm: explainable multimodal emotion reasoning that runs offline on a laptop CPU.

Front to back: ``io`` decodes and validates inputs (``io.item.to_item``: the one front door from
files and text to an ``Item``), ``perception`` turns them into ``Observations`` (AUs, expression
scores, prosody, transcript, feature tensors), ``explanation.prompt`` textualises them,
``model.AffectLLM`` splices projected features into a causal LLM with LoRA, ``generation`` writes
the rationale, and ``explanation.parse`` turns the text into an ``Explanation``. ``knowledge``
holds the FACS/EMFACS facts and taxonomies; ``inference.Explainer`` runs it all; ``batch``, ``ui``
and ``cli`` are thin layers over the Explainer.

Importing this package is cheap: heavy modules (torch, transformers, mediapipe) load lazily
inside the submodules that need them.
"""

__version__ = "0.1.0"

# The public Python API, imported on first use (``affectllm --help`` must not load torch):
#   from affectllm import Explainer, results_to_frame
#   explainer = Explainer.from_pretrained("affectllm-mini")
#   results = explainer.explain(["photo.jpg", "clip.wav", "They cancelled it. Unbelievable."])
_API = {"Explainer": "affectllm.inference", "ExplainResult": "affectllm.inference",
        "results_to_frame": "affectllm.inference", "Item": "affectllm.io.item"}
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'affectllm' has no attribute {name!r}")
