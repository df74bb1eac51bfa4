"""Real weights: the untrained base explains the demo faces with grounded AUs, and the shipped
affectllm-mini is the default model, loads as a plain peft adapter, and answers in format."""

import json

import pytest

pytestmark = pytest.mark.slow

FACES = ["happy-baby.jpeg", "surprised.jpeg", "angry.jpg", "sad-baby.jpeg", "neutral.jpeg"]


@pytest.fixture(scope="module")
def base_results(shared_data):
    from affectllm.inference import Explainer

    ex = Explainer.from_name("base", max_new_tokens=64)
    return ex.explain([str(shared_data / "faces_demo" / f) for f in FACES])


def test_base_explains_happy_baby_citing_detected_aus(base_results):
    d = base_results[0].to_dict()
    assert d["error"] is None and d["well_formed"], d["rationale"]
    assert d["cited_aus"], "the Observations cite no AU"
    assert set(d["cited_aus"]) <= set(d["evidence_aus"])


def test_hallucinated_au_count_on_demo_faces(base_results, capsys):
    cited = hallucinated = 0
    for r in base_results:
        d = r.to_dict()
        assert d["error"] is None
        cited += len(d["cited_aus"])
        hallucinated += len(set(d["cited_aus"]) - set(d["evidence_aus"]))
    with capsys.disabled():
        print(f"\n[demo faces] AUs cited: {cited}, cited but absent from the evidence: {hallucinated}")
    assert cited >= len(FACES)
    assert hallucinated == 0  # anchors start each bullet on a perceived AU; AUGrounding forbids the rest


def test_affectllm_mini_is_default_and_a_plain_peft_adapter():
    from peft import PeftModel

    from affectllm.model.builder import SHIPPED, default_model_name
    from affectllm.weights import load_llm

    assert default_model_name() == "affectllm-mini"
    folder = SHIPPED["affectllm-mini"]
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["llm"]["name"] == "smollm2-135m-instruct"
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    assert size < 50e6
    base, _ = load_llm()
    peft_model = PeftModel.from_pretrained(base, str(folder / "adapter"))
    assert any("lora_A" in n for n, _ in peft_model.named_parameters())


def test_affectllm_mini_explains_text():
    from affectllm.inference import Explainer
    from affectllm.perception.observations import Observations

    ex = Explainer.from_name(None, max_new_tokens=160)
    assert not ex.guided  # trained adapters write their own rationale
    r = ex.explain(Observations(text="I can't believe they cancelled it an hour before. So unfair!"))
    d = r.to_dict()
    assert d["error"] is None and d["emotion"] in d["probabilities"]
    assert d["rationale"].startswith("<think>") and "</think>" in d["rationale"]


def test_affectllm_mini_batched_equals_one_by_one(shared_data):
    """A batch of 8 shares its prompt start (affectllm.generation.shared_prefix) and gives the rationales the
    items get alone. Measured on the first 32 of the seeded GoEmotions dev items: 32/32 equal; the
    old left-padded layout gave 14/32. One miss is allowed for a float-rounding tie elsewhere."""
    from affectllm.inference import Explainer
    from affectllm.perception.observations import Observations
    from eval.runner import load_samples

    texts = [s.text for s in load_samples("goemotions", split="dev", limit=200)[0][:8]]
    ex = Explainer.from_name(None, max_new_tokens=160, taxonomy="goemotions_ekman")
    together = ex.explain([Observations(text=t) for t in texts])
    alone = [ex.explain(Observations(text=t)) for t in texts]
    same = [a.to_dict()["rationale"] == b.to_dict()["rationale"] and a.emotion == b.emotion
            for a, b in zip(together, alone)]
    assert sum(same) >= 7, same
