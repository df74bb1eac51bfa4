"""The public Python API at the package top: ``from affectllm import Explainer``, results to a DataFrame,
and the one front door from files and text to an Item."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import affectllm
from affectllm.errors import InputError
from affectllm.io.item import Item, to_item
from affectllm.perception.observations import AUObs, FaceObs, Observations


def test_package_top_is_lazy_and_names_the_api():
    # In a fresh interpreter: importing the package loads no torch; naming Explainer does.
    probe = ("import sys, affectllm; before = 'torch' in sys.modules; E = affectllm.Explainer; "
             "print(before, 'torch' in sys.modules, E.from_pretrained.__func__ is E.from_name.__func__, E.__module__)")
    assert subprocess.check_output([sys.executable, "-c", probe], text=True).split() == [
        "False", "True", "True", "affectllm.inference"]
    with pytest.raises(AttributeError):
        affectllm.Nothing  # noqa: B018


def test_explain_results_to_dict_and_frame(tiny_affect_factory):
    from affectllm import Explainer, results_to_frame

    ex = Explainer(tiny_affect_factory("llama").eval(), perception=None, max_new_tokens=12, guided=True)
    face = FaceObs(box=(0, 0, 50, 50), score=0.9, aus=[AUObs("AU12", 3.6, True), AUObs("AU6", 0.2, False)],
                   expression={"happy": 1.0}, embedding=torch.randn(8))
    results = ex.explain([Observations(file="smile.jpg", faces=[face]),
                          "They cancelled it. Unbelievable.",  # words, not a path
                          "missing.jpg"])
    assert [r.id for r in results] == ["smile.jpg", "text", "missing.jpg"]
    assert results[0].to_dict()["emotion"] == results[0].emotion is not None
    assert results[1].error is None and results[2].error and "missing.jpg" in results[2].error

    df = results_to_frame(results)
    labels = list(results[0].explanation.probabilities)
    assert list(df.columns) == ["id", "emotion", *labels, "AU06", "AU12", "error"]
    assert list(df["id"]) == ["smile.jpg", "text", "missing.jpg"]
    assert df.loc[0, "AU12"] == pytest.approx(3.6) and np.isnan(df.loc[1, "AU12"])
    assert df.loc[0, labels].sum() == pytest.approx(1.0, abs=1e-3)
    assert df.loc[0, "emotion"] == max(labels, key=lambda k: df.loc[0, k])
    assert df["error"].isna().tolist() == [True, True, False]


def test_front_door_routes_by_content_and_refuses_text_named_like_media(tmp_path):
    words = tmp_path / "note.txt"
    words.write_text("I am so happy today")
    assert to_item(str(words)).text == "I am so happy today"
    fake = tmp_path / "photo.jpg"
    fake.write_text("not a picture at all")
    with pytest.raises(InputError, match="photo.jpg.*named like an image"):
        to_item(str(fake))
    with pytest.raises(InputError, match="photo.jpg.*named like an image"):
        Item.from_path(fake)  # the CLI's path: the same check
    assert to_item(None, text="hello there").text == "hello there"
    assert to_item({"id": "x", "text": "hi"}) == Item(id="x", text="hi")
    with pytest.raises(InputError):
        to_item(str(tmp_path / "gone.wav"))  # a missing media name stays a path, not words
    with pytest.raises(InputError, match="neither a file nor text"):
        to_item(None)
