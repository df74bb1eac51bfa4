"""`affectllm eval run` end to end on two real EmoDB dev clips with the real base model (slow)."""

import json

import pytest

from affectllm.cli import main

pytestmark = pytest.mark.slow


def test_eval_run_on_two_emodb_dev_clips(shared_data, tmp_path, capsys):
    out = tmp_path / "emodb"
    rc = main(["eval", "run", "--source", "emodb", "--split", "dev", "--limit", "2", "--model", "base",
               "--batch-size", "2", "--max-new-tokens", "48", "--quiet", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    m = json.loads((out / "metrics.json").read_text())
    assert m["n"] == 2 and m["n_errors"] == 0 and m["taxonomy"] == "emodb7"
    # EmoDB is speech: the voice classifier alone is a baseline beside the majority class
    assert set(m["baselines"]) == {"majority", "voice"} and m["run"]["prior_from"].startswith("the train split")
    for line in (out / "predictions.jsonl").read_text().splitlines():
        r = json.loads(line)
        assert r["id"].startswith("emodb/08") or r["id"].startswith("emodb/12")  # dev speakers only
        assert r["pred"] in r["probabilities"] and sum(r["probabilities"].values()) == pytest.approx(1, abs=1e-2)
        assert r["rationale"].startswith("<think>") and r["timings"]["llm_s"] > 0
    report = (out / "report.md").read_text()
    assert "affectllm eval run --source emodb --split dev --model base --limit 2" in report
    assert (out / "figures" / "confusion.png").is_file()
