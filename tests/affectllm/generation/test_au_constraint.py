"""AUGrounding: decoding can write only the AU numbers the evidence holds."""

import pytest
import torch

from affectllm.generation.au_constraint import AUGrounding, allowed_tokens, au_numbers, breaks_grounding, drop_open_reference
from affectllm.generation.guided import Batch, _continue
from affectllm.explanation.parse import cited_aus


def test_au_numbers_finds_references_and_chains():
    s = "AU6+12 and AU 25, not 7 or HAU3"
    assert [s[a:b] for a, b in au_numbers(s)] == ["6", "12", "25"]


@pytest.mark.parametrize("before,token,bad", [
    ("smile with AU", "2", True),         # AU2 is not in the evidence
    ("smile with AU", "1", False),        # could become AU12
    ("smile with AU1", " and", True),     # closes AU1: not allowed
    ("smile with AU1", "2", False),       # AU12
    ("smile with AU1", "25", True),       # AU125
    ("smile with AU12", ",", False),
    ("smile with AU12", "+2", True),      # AU12+2
    ("smile with AU12", "+6", False),
    ("smile with", " AU2", True),          # a token that writes the whole reference
    ("smile with", " AU6 is", False),
    ("it has 2", " cats", False),          # numbers outside references are free
])
def test_breaks_grounding(before, token, bad):
    assert breaks_grounding(before, token, {"6", "12"}) is bad


@pytest.mark.parametrize("text,kept", [
    ("- AU6 cheek raiser, intensity A: 1.00, AU2", "- AU6 cheek raiser, intensity A: 1.00"),  # cut by the budget
    ("- AU6 cheek raiser with AU", "- AU6 cheek raiser with"),
    ("- AU6 cheek raiser and AU6+2", "- AU6 cheek raiser and AU6"),
    ("- AU6 cheek raiser, AU25", "- AU6 cheek raiser, AU25"),  # complete and allowed
    ("- AU6 cheek raiser:", "- AU6 cheek raiser:"),
])
def test_a_reference_cut_short_by_the_budget_is_dropped(text, kept):
    assert drop_open_reference(text, ["AU6", "AU25"]) == kept
    assert drop_open_reference(text, None) == text


def test_mask_only_when_a_reference_is_open(tiny_tokenizer):
    tok = tiny_tokenizer
    assert allowed_tokens(tok, "the person looks happy", {"6"}) is None
    mask = allowed_tokens(tok, "cheek raiser AU", {"6", "12"})
    ids = lambda t: tok(t, add_special_tokens=False)["input_ids"]  # noqa: E731
    (six,), (two,), (one,) = ids("6"), ids("2"), ids("1")
    assert mask[six] and mask[one] and not mask[two]
    mask = allowed_tokens(tok, "cheek raiser AU1", {"12"})
    assert mask[two] and not mask[six]
    assert not mask[ids(" the")[0]]  # "AU1" may not end here


def test_processor_masks_only_grounded_rows(tiny_tokenizer):
    tok = tiny_tokenizer
    proc = AUGrounding(tok, ["lip corner AU", "lip corner AU"], [["AU12"], None])
    scores = torch.zeros(2, len(tok) + 3)  # models may pad their vocabulary
    out = proc(torch.zeros(2, 0, dtype=torch.long), scores.clone())
    (two,) = tok("2", add_special_tokens=False)["input_ids"]
    assert out[0, two] == float("-inf") and torch.isfinite(out[1]).all()
    assert torch.isfinite(out[0, len(tok):]).all()


def test_generation_cannot_write_an_au_outside_the_evidence(tiny_affect_factory):
    """A model pushed to write "AU2" writes an allowed AU instead once grounding is on."""
    model = tiny_affect_factory("llama").eval()
    tok = model.tokenizer
    (two,), (one,) = tok("2", add_special_tokens=False)["input_ids"], tok("1", add_special_tokens=False)["input_ids"]

    def prefer_two(module, args, out):
        out[..., two] += 50.0  # first choice everywhere: "2"; second: "1"
        out[..., one] += 40.0
        return out

    model.llm.get_output_embeddings().register_forward_hook(prefer_two)
    prompt = "<|im_start|>assistant\n<think>\nObservations:\n- raised cheek"
    free = Batch([prompt], [{}], [[]])
    grounded = Batch([prompt], [{}], [[]], [["AU12", "AU6"]])
    w_free, w_grounded = [" with AU"], [" with AU"]
    _continue(model, free, w_free, [0], 1, ("\n",), None)
    _continue(model, grounded, w_grounded, [0], 4, ("\n",), None)
    assert "AU2" in cited_aus(w_free[0])
    assert cited_aus(w_grounded[0]) == ["AU12"]  # "2" refused, "1" taken, then "2" completes AU12
