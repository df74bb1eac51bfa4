"""The rationale format, spelled once: tags, part headings, placeholders and the fixed pieces of text.

An answer reads ``<think>`` / ``Observations:`` (bullets) / ``Interpretation:`` / ``Conclusion:``
/ ``</think>`` / ``<answer>label</answer>``; evidence reaches the LLM as ``<face>``/``<audio>``/
``<image>`` placeholders that the model expands into soft tokens. The prompt, the parser, guided
decoding, the model, the verifier and the UI all import these names instead of writing the
strings again, so a change of format is a change here.

Deliberately not here: reading the format back (``explanation.parse``) or asking for it
(``explanation.prompt``).
"""

from __future__ import annotations

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
TAGS = ("think", "answer")  # tag names, for the parser's case-insensitive matching

PARTS = ("observations", "interpretation", "conclusion")  # the three labelled parts, in order
HEADINGS = {"observations": "Observations:", "interpretation": "Interpretation:", "conclusion": "Conclusion:"}

# One placeholder per soft-token modality; AffectLLM expands each into that modality's tokens.
PLACEHOLDERS = {"face": "<face>", "audio": "<audio>", "image": "<image>"}

# Generation starts inside the first bullet (pre-filled like the SFT targets) ...
RESPONSE_PREFIX = f"{THINK_OPEN}\n{HEADINGS['observations']}\n-"
# ... and the label is scored (never generated) after the closed rationale.
ANSWER_PREFIX = f"\n{THINK_CLOSE}\n{ANSWER_OPEN}"
ANSWER_SUFFIX = ANSWER_CLOSE


def compose(cues: list[str], interpretation: str, conclusion: str, answer: str) -> str:
    """The full answer text of the format for its parts (no checks: ``parse.format_explanation`` checks)."""
    body = "\n".join([HEADINGS["observations"], *[f"- {c}" for c in cues],
                      f"{HEADINGS['interpretation']} {interpretation}", f"{HEADINGS['conclusion']} {conclusion}"])
    return f"{THINK_OPEN}\n{body}\n{THINK_CLOSE}\n{ANSWER_OPEN}{answer}{ANSWER_CLOSE}"
