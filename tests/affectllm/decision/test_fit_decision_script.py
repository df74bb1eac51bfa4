"""scripts/fit_decision.py end to end on synthetic EmoDB-like rows: asset, report, baselines."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
from decision_synthetic import FER_NAMES, peaked

from affectllm.decision.pool import load_pool
from affectllm.knowledge.taxonomy import get_taxonomy

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "fit_decision.py"
EMODB = get_taxonomy("emodb7").labels


def rows(n: int, seed: int) -> list[dict]:
    """Voice informative, face (FER names, no boredom) weakly so, llm always certain and often wrong."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        g = int(rng.integers(7))
        voice = peaked(rng, 7, g if rng.random() < 0.8 else int(rng.integers(7)), 3.0)
        fer_hot = FER_NAMES.index({"anger": "angry", "happiness": "happy", "sadness": "sad"}.get(EMODB[g], "neutral"))
        face = peaked(rng, 7, fer_hot if rng.random() < 0.5 else int(rng.integers(7)), 1.5)
        llm_label = EMODB[g] if rng.random() < 0.5 else EMODB[int(rng.integers(7))]
        ch = {"voice": dict(zip(EMODB, voice.tolist())), "llm": {y: float(y == llm_label) for y in EMODB}}
        if i % 3:  # a third of the items have no face
            ch["face"] = dict(zip(FER_NAMES, face.tolist()))
        out.append({"id": f"{seed}-{i}", "label": EMODB[g], "channels": ch})
    return out


def test_fit_decision_script_writes_asset_and_report(tmp_path, capsys):
    for name, data in (("train", rows(300, 5)), ("dev", rows(200, 6))):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in data))
    spec = importlib.util.spec_from_file_location("fit_decision", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--taxonomy", "emodb7", "--train", str(tmp_path / "train.jsonl"), "--dev",
                     str(tmp_path / "dev.jsonl"), "--out", str(tmp_path / "emodb7.json"),
                     "--report-dir", str(tmp_path / "report")]) == 0
    pool = load_pool("emodb7", tmp_path / "emodb7.json")
    assert set(pool.weights) == {"face", "voice", "llm"}  # dropped channels stay, at weight 0
    assert pool.weights["voice"] > pool.weights["face"]
    assert "boredom" not in pool.coverage["face"]
    assert {"weights", "bias", "temperature", "channels"} <= set(pool.fitted_on)
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())["systems"]
    assert {"voice alone (raw)", "face alone (raw)", "llm alone (raw)", "pooled: face+voice+llm",
            "pooled: face+voice"} <= set(metrics)
    assert metrics["face alone (raw)"]["n"] == 133  # only the dev rows that have a face
    raw_llm, pooled = metrics["llm alone (raw)"], metrics["pooled: face+voice+llm"]
    assert raw_llm["share_p_ge_0.99"] == 1.0 and raw_llm["ece"] > 0.3  # the certain, wrong baseline
    assert pooled["ece"] < raw_llm["ece"] and pooled["accuracy"] > raw_llm["accuracy"]
    assert (tmp_path / "report" / "reliability.png").stat().st_size > 5000
    report = (tmp_path / "report" / "report.md").read_text()
    assert "| voice alone (raw) |" in report and "Chosen on dev NLL" in report
    assert "pooled: face+voice+llm" in capsys.readouterr().out
