"""The perception wing: frozen encoders (face AUs and expression, voice prosody and words, image
features) that turn an Item into Observations, their dataclasses, caches and calibration.

Deliberately not here: decoding files (``affectllm.io``) or anything the LLM does.
"""
