"""The explanation wing: what a rationale may claim (evidence facts) and the one verifier of it.

Deliberately empty of re-exports: import ``affectllm.explanation.verify`` or
``affectllm.explanation.evidence_facts`` directly.
"""
