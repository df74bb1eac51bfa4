"""ui.attribution: the LLM's own label scores with each channel dropped, from prompts without the decision."""

from __future__ import annotations

from affectllm.inference import Explainer
from affectllm.perception.observations import AUObs, FaceObs, Observations
from affectllm.ui.attribution import attribute


def test_attribution_scores_prompts_that_do_not_carry_the_decided_answer(tiny_affect_factory, monkeypatch):
    import affectllm.generation.guided as guided

    ex = Explainer(tiny_affect_factory("llama").eval(), max_new_tokens=8)
    face = FaceObs(box=(0, 0, 50, 50), score=0.9, aus=[AUObs("AU12", 3.0, True)], expression={"happy": 0.9,
                                                                                                 "neutral": 0.1})
    obs = Observations(file="a.jpg", faces=[face], text="What a lovely surprise, thank you!")
    seen = []
    real = guided.score_labels
    monkeypatch.setattr(guided, "score_labels", lambda m, batch, *a, **k: seen.extend(batch.prompts) or real(m, batch, *a, **k))
    out = attribute(ex, obs, "happiness")
    assert set(out["p_without"]) == {"face", "words"} and len(seen) == 3
    assert not any("Decided answer" in p for p in seen)  # the LLM would only echo it
    _, prep = ex._prepare(obs, None, None)
    assert "Decided answer" in prep[0]  # what explain() itself asks the LLM
