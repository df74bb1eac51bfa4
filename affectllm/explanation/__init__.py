"""The explanation wing: the rationale format (tags, headings, placeholders) in one place, the prompt
that asks for it, the one parser that reads it back, the evidence facts a rationale may claim, the
one verifier of it and the deterministic template rationale used when no generated one passes.

Deliberately not here: decoding (``affectllm.generation``), perception, and the label decision
(``affectllm.decision``).
"""
