"""eval.score on hand-made prediction files: hand-computed numbers, report, figures, CLI help."""

import argparse
import json

import pytest

from eval import cli as eval_cmd
from eval.figures import au_frequency
from eval.score import load_predictions, score, score_records


def rec(i, gold, pred, p=None, wf=True, cons=False, cited=(), ev=(), error=None, system="model"):
    probs = {} if p is None else {lab: (p if lab == pred else (1 - p) / 6) for lab in
                                  ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")}
    return {"id": f"x{i}", "system": system, "model": "m", "taxonomy": "ekman7", "gold": gold, "pred": pred,
            "probabilities": probs, "rationale": f"<think>{' '.join(['w'] * (i + 1))}</think>",
            "cited_aus": list(cited), "evidence_aus": list(ev), "well_formed": wf, "consistent": cons,
            "timings": {"llm_s": float(i)}, "error": error}


# gold / pred / top probability, worked by hand below.
RECORDS = [
    rec(1, ["anger"], "anger", 0.9, cons=True, cited=["AU4", "AU7"], ev=["AU4"]),
    rec(2, ["anger"], "happiness", 0.6),
    rec(3, ["happiness"], "happiness", 0.8, cons=True, cited=["AU12"], ev=["AU6", "AU12"]),
    rec(4, ["happiness"], "happiness", 0.7, wf=False, ev=["AU6", "AU12"]),
    rec(5, ["sadness"], None, wf=False, error="x5: generation failed"),
    rec(6, ["neutral"], "sadness", 0.5, cited=["AU15"]),
    rec(7, [], "anger", 0.9),  # unlabelled: left out of the label metrics
]


def test_single_label_numbers_match_hand_computation():
    b = score_records(RECORDS)
    assert (b["n"], b["n_records"], b["n_unlabelled"], b["n_errors"]) == (6, 7, 1, 1)
    assert b["accuracy"] == pytest.approx(3 / 6)
    # recall: anger 1/2, happiness 2/2, sadness 0/1, neutral 0/1 over the 4 classes present
    assert b["classes_scored"] == ["anger", "happiness", "sadness", "neutral"]
    assert b["uar"] == pytest.approx((0.5 + 1 + 0 + 0) / 4)
    # F1: anger 2*1*.5/1.5 = 2/3, happiness 2*(2/3)*1/(5/3) = 0.8, sadness 0, neutral 0
    assert b["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 4)
    assert b["weighted_f1"] == pytest.approx((2 / 3 * 2 + 0.8 * 2) / 6)
    assert b["macro_f1_all"] == pytest.approx((2 / 3 + 0.8) / 7)
    assert b["unmapped"] == 1  # the failed item
    assert b["predicted_counts"] == {"happiness": 3, "anger": 1, "unmapped": 1, "sadness": 1}
    cm = dict(zip(b["labels"], b["confusion"]["matrix"]))
    assert cm["anger"] == [1, 0, 0, 1, 0, 0, 0, 0] and cm["sadness"][-1] == 1 and cm["neutral"][4] == 1
    # ECE: 5 items with probabilities, each alone in its bin: |1-.9|+|0-.6|+|1-.8|+|1-.7|+|0-.5| over 5
    assert b["n_ece"] == 5 and b["ece"] == pytest.approx(1.7 / 5)
    e = b["explanation"]
    assert e["n"] == 7 and e["well_formed_rate"] == pytest.approx(5 / 7)
    assert e["consistency_rate"] == pytest.approx(2 / 7)
    g = e["grounding"]  # cited 4 AUs: AU4 shown, AU7 not, AU12 shown, AU15 not
    assert (g["n_cited"], g["n_grounded"], g["precision"], g["hallucination_rate"]) == (4, 2, 0.5, 0.5)
    assert b["timings_mean_s"]["llm_s"] == pytest.approx(4.0)


def test_multilabel_scores_the_subset_and_every_item():
    def ml(i, gold, pred):
        r = rec(i, gold, pred, 0.6)
        r.update(taxonomy="goemotions_ekman", probabilities={pred: 0.6, "neutral" if pred != "neutral" else "joy": 0.4})
        return r

    recs = [ml(1, ["joy", "surprise"], "surprise"), ml(2, ["anger"], "anger"), ml(3, ["sadness"], "joy"),
            ml(4, ["neutral", "joy"], "fear")]
    b = score_records(recs)
    assert b["single_label_subset"] and b["n"] == 2 and b["accuracy"] == 0.5
    m = b["multilabel"]
    assert m["n"] == 4 and m["hit_rate"] == 0.5
    # tp: surprise, anger; fp: joy (3), fear (4); fn: joy (1), sadness (3), neutral + joy (4)
    assert m["micro_f1"] == pytest.approx(4 / (4 + 2 + 4))
    # over labels seen in gold or predictions: anger 1, surprise 1, fear/joy/neutral/sadness 0
    assert m["macro_f1"] == pytest.approx(2 / 6)


def test_score_folder_writes_metrics_report_and_figures(tmp_path):
    (tmp_path / "baselines").mkdir()
    (tmp_path / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    maj = [{**r, "system": "majority", "pred": "happiness", "rationale": None} for r in RECORDS]
    for r in maj:
        r.pop("rationale")
    (tmp_path / "baselines" / "majority.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in maj) + '{"id": "x8", "gold": ["ang')  # torn last line
    m = score(tmp_path)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["accuracy"] == m["accuracy"] == pytest.approx(0.5) and saved["primary"] == "model"
    assert saved["baselines"]["majority"]["accuracy"] == pytest.approx(2 / 6)
    assert "explanation" not in saved["baselines"]["majority"]
    for name in ("confusion", "per_class_f1", "au_heatmap"):
        png = tmp_path / saved["figures"][name]
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 2000
    report = (tmp_path / "report.md").read_text()
    assert "| model | 6 | 0.500 | 0.375 |" in report and "| majority | 6 | 0.333 |" in report
    assert "](figures/confusion.png)" in report and "x5: generation failed" in report


def test_load_predictions_keeps_last_of_repeated_ids_and_rejects_inner_garbage(tmp_path):
    p = tmp_path / "p.jsonl"
    p.write_text(json.dumps(rec(1, ["anger"], "fear")) + "\n" + json.dumps(rec(1, ["anger"], "anger")) + "\n")
    assert [r["pred"] for r in load_predictions(p)] == ["anger"]
    p.write_text("{not json\n" + json.dumps(rec(1, ["anger"], "anger")) + "\n")
    with pytest.raises(ValueError, match="line 1"):
        load_predictions(p)


def test_au_frequency_counts_items_per_gold_emotion():
    emotions, aus, share, n = au_frequency(RECORDS, ["anger", "happiness", "sadness", "neutral"])
    # x5 failed (skipped); x7 unlabelled (skipped)
    assert emotions == ["anger", "happiness", "neutral"] and n == [2, 2, 1]
    assert aus == ["AU4", "AU6", "AU12"]
    assert share.tolist() == [[0.5, 0.0, 0.0], [0.0, 1.0, 1.0], [0.0, 0.0, 0.0]]


def test_cli_help_and_command_line(capsys):
    p = argparse.ArgumentParser(prog="affectllm eval")
    eval_cmd.add_arguments(p)
    with pytest.raises(SystemExit) as e:
        p.parse_args(["run", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--source" in out and "--baselines" in out and "--drop-modality" in out
    args = p.parse_args(["run", "--source", "goemotions", "--split", "dev", "--limit", "200", "--model", "base",
                         "--out", "eval/results/goemotions dev"])
    assert eval_cmd.command_line(args) == ("affectllm eval run --source goemotions --split dev --model base "
                                           "--limit 200 --out 'eval/results/goemotions dev'")
    args = p.parse_args(["run", "--source", "emodb", "--cpu-weights", "float32", "--out", "o"])
    assert eval_cmd.command_line(args) == "affectllm eval run --source emodb --cpu-weights float32 --out o"
    with pytest.raises(SystemExit):
        p.parse_args(["run", "--source", "emodb", "--cpu-weights", "int4", "--out", "o"])
    assert eval_cmd.run(p.parse_args(["score", "/nonexistent/run"])) == 2  # error message, not a traceback


def test_eval_is_an_affectllm_command(capsys):
    from affectllm.cli import main

    with pytest.raises(SystemExit) as e:
        main(["eval", "score", "--help"])
    assert e.value.code == 0 and "--no-figures" in capsys.readouterr().out
    assert main(["eval"]) == 2
