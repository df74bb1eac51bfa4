"""The calibrated decision wing: pool channel experts and the LLM into one calibrated label distribution.

``pool`` holds the formula, the guard and the JSON asset; ``fit`` fits it (train) and calibrates it
(dev); ``calibration`` measures it (ECE, p >= 0.99 share, reliability diagram). Nothing here runs a
model: callers pass each channel's label probabilities.
"""

from affectllm.decision.calibration import confidence_summary, expected_calibration_error, reliability_diagram
from affectllm.decision.pool import Decision, DecisionPool, load_pool

__all__ = ["Decision", "DecisionPool", "load_pool", "confidence_summary", "expected_calibration_error",
           "reliability_diagram"]
