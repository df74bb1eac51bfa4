"""The decoding wing: section-guided generation, the AU-citation constraint, and the caches that
make it cheap (prompt, KV, batch and shared-prefix caches), kept with the decoder that owns them.

Deliberately not here: the model (``affectllm.model``) or the answer format (``affectllm.explanation``).
"""
