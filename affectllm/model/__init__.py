"""The model wing: :class:`AffectLLM` (LLM + LoRA + projectors), its projector builder, the
name -> model builder, CPU weight packing and one-pass label scoring.

Deliberately not here: decoding loops and caches (``affectllm.generation``) and base weight
files (``affectllm.weights``). Submodules are imported on use, so this package is cheap.
"""
