"""The explanation wing: the rationale format (tags, headings, placeholders) in one place, the
prompt that asks for it and the one parser that reads it back.

Deliberately not here: decoding (``affectllm.generation``) or perception.
"""
