"""`affectllm demo` says, under each rationale, who wrote it: the model (verified) or the template, and why."""

from __future__ import annotations

import argparse

from _tiny_model import tiny_model_dir  # noqa: F401 - fixture


def test_demo_says_who_wrote_each_rationale(tiny_model_dir, tmp_path, monkeypatch, capsys):  # noqa: F811
    from affectllm.commands import demo

    monkeypatch.setattr(demo, "demo_inputs", lambda data: [{"id": "text (gold: anger)", "text": demo.DEMO_TEXT}])
    monkeypatch.setattr("affectllm.paths.data_root", lambda required=False: None)
    code = demo.run(argparse.Namespace(model=str(tiny_model_dir), out=str(tmp_path), skip_doctor=True))
    out = capsys.readouterr().out
    assert code == 0 and (tmp_path / "explanations.jsonl").is_file()
    # a random tiny model's drafts fail the verifier: the demo names the flags and shows the template
    assert "draft(s) failed the verifier:" in out and "the evidence template is shown" in out
