"""Moved to :mod:`affectllm.explanation.evidence_facts` (the verifier in the core needs it and the
core never imports ``data_engine``); this name stays so older imports keep working.

Deliberately nothing of its own: every name below is the core module's.
"""

from affectllm.explanation.evidence_facts import *  # noqa: F401,F403
from affectllm.explanation.evidence_facts import (  # noqa: F401  (names * leaves out or tests use)
    MARGIN, MIDDLE_WORDS, PARTIAL, RUNNER_UP_MIN, SILENT, SUPPORTS, CONFLICTS, TEXT_ONLY_NEUTRAL,
    Evidence, Word, analyse, channel_support, combined, descriptor_cues, matched_prototype_aus,
    missing_prototype_aus, overall, proto_emotion, runner_up, support)
