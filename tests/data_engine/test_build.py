"""build(): records, report, splits, features, and resuming after a hard kill (no loss, no duplicates).

Perception is replaced by ``tests/data_fakes.fake_perceive`` (a test double: the product path's
default is the real pipeline).
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from affectllm.errors import InputError
from affectllm.io import jsonl
from data_engine.build import build, subset
from data_engine.sample import Sample
from data_engine.verify import verify

from data_fakes import fake_perceive, make_manifest  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
FILES = ("sft.jsonl", "rl.jsonl", "rejected.jsonl", "report.json")


@pytest.fixture
def src(tmp_path):
    d = tmp_path / "src"
    d.mkdir()
    return make_manifest(d)


def test_build_writes_verified_records_rl_prompts_and_a_report(src, tmp_path):
    out = tmp_path / "out"
    rep = build([src], out, perceive=fake_perceive, hf=False, progress=False)
    sft, rl, rej = (list(jsonl.read(out / f)) for f in ("sft.jsonl", "rl.jsonl", "rejected.jsonl"))
    assert len(sft) == rep["records"] == 28 and len(rej) == rep["rejected"] == 1
    assert rej[0]["id"] == "manifest/unlabelled" and rej[0]["stage"] == "label"
    for r in sft:
        assert verify(r) == [], r["id"]  # re-verifiable from the stored observations alone
        assert r["messages"][-1]["content"].startswith("<think>\nObservations:")
        assert r["taxonomy"] == "ekman7" and r["label"] == r["labels"][0]
    assert [r["id"] for r in rl] == [r["id"] for r in sft]
    assert all([m["role"] for m in r["messages"]] == ["system", "user"] for r in rl)
    # speaker-disjoint splits
    splits = {}
    for r in sft:
        splits.setdefault(r["speaker"], set()).add(r["split"])
    assert all(len(s) == 1 for s in splits.values()) and {"train", "dev"} <= set().union(*splits.values())
    # the report
    assert sum(sum(v.values()) for v in rep["by_label_split"].values()) == 28
    assert rep["au_frequency"] and len(rep["examples"]) == 3
    assert rep["rejections"]["by_category"] == {"label/label": 1}
    (s,) = rep["sources"]
    assert s["split_by"] == "speaker" and s["split_overlap"] == 0
    assert any("gone.jpg" in p["reason"] for p in s["problems"])
    md = (out / "report.md").read_text()
    assert "## Records per label and split" in md and "gone.jpg" in md
    assert json.loads((out / "report.json").read_text())["records"] == 28
    # a rerun finds everything done and changes nothing
    before = {f: (out / f).read_bytes() for f in FILES}
    build([src], out, perceive=fake_perceive, hf=False, progress=False)
    assert {f: (out / f).read_bytes() for f in FILES} == before


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_resume_after_sigkill_gives_the_same_output_as_an_uninterrupted_run(src, tmp_path):
    ref, out = tmp_path / "ref", tmp_path / "killed"
    build([src], ref, perceive=fake_perceive, hf=False, progress=False)
    code = ("import sys; sys.path.insert(0, 'tests'); from data_fakes import fake_perceive; "
            "from data_engine.build import build; "
            f"build([{src!r}], {str(out)!r}, perceive=fake_perceive, hf=False, progress=False)")
    env = {**os.environ, "FAKE_PERCEIVE_DELAY": "0.1"}
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env)
    deadline = time.time() + 60
    while _lines(out / "sft.jsonl") < 8 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    n = _lines(out / "sft.jsonl")
    assert 8 <= n < 28, "the kill should land mid-build"
    # Make the worst cases certain, not luck: a torn last sft line, and an sft record whose rl line
    # was never written (a kill between the two appends).
    rl = (out / "rl.jsonl").read_bytes().splitlines(keepends=True)
    (out / "rl.jsonl").write_bytes(b"".join(rl[:-1]))
    with open(out / "sft.jsonl", "ab") as f:
        f.write(b'{"id": "manifest/item27", "messages": [{"ro')
    build([src], out, perceive=fake_perceive, hf=False, progress=False)
    for f in FILES:
        assert (out / f).read_bytes() == (ref / f).read_bytes(), f
    ids = [r["id"] for r in jsonl.read(out / "sft.jsonl")]
    assert len(ids) == len(set(ids)) == 28


def test_changed_settings_are_refused_unless_restarted(src, tmp_path):
    out = tmp_path / "out"
    build([src], out, perceive=fake_perceive, hf=False, progress=False, limit_per_source=5)
    with pytest.raises(InputError, match="limit_per_source"):
        build([src], out, perceive=fake_perceive, hf=False, progress=False, limit_per_source=6)
    rep = build([src], out, perceive=fake_perceive, hf=False, progress=False, limit_per_source=6, restart=True)
    assert rep["records"] + rep["rejected"] == 6


def test_a_second_build_cannot_write_the_same_folder(src, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with open(out / ".lock", "w") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(InputError, match="another build"):
            build([src], out, perceive=fake_perceive, hf=False, progress=False)


def test_limit_takes_a_seeded_spread_in_source_order():
    samples = [Sample(id=f"s{i}", labels=["anger"], speaker=f"p{i % 4}") for i in range(40)]
    a = subset(samples, 10, seed=0)
    assert len(a) == 10 and a == subset(samples, 10, seed=0) and a != subset(samples, 10, seed=1)
    assert [s.id for s in a] == sorted((s.id for s in a), key=lambda x: int(x[1:]))
    assert len({s.speaker for s in a}) > 1


def test_soft_features_go_to_the_feature_cache_under_the_modality_name(src, tmp_path):
    torch = pytest.importorskip("torch")
    from affectllm.perception.cache import FeatureCache

    def perceive(sample):
        obs = fake_perceive(sample)
        if obs.faces:
            obs.faces[0].embedding = torch.arange(8, dtype=torch.float32)
        if obs.audio is not None:
            obs.audio.features = torch.ones(5, 12)
        return obs

    perceive.feature_tag = "fake-v1"
    cache = FeatureCache(tmp_path / "cache")
    build([src], tmp_path / "out", perceive=perceive, hf=False, progress=False, feature_cache=cache)
    recs = list(jsonl.read(tmp_path / "out" / "sft.jsonl"))
    img = next(r for r in recs if "image" in r["media"])
    wav = next(r for r in recs if "audio" in r["media"])
    txt = next(r for r in recs if not r["media"])
    assert "<face>" in img["messages"][1]["content"] and txt["features"] == {} and txt["evidence_aus"] is None
    tensors, _ = cache.load(img["features"]["face"])
    assert tensors["face"].shape == (1, 8)
    tensors, _ = cache.load(wav["features"]["audio"])
    assert tensors["audio"].shape == (5, 12)
    assert img["features"]["face"].endswith("face_fake_v1_1")  # key names modality and encoder tag


def test_datasets_folder(src, tmp_path):
    try:
        import datasets
    except ImportError as e:  # pyarrow 26 needs numpy 2 while mediapipe pins numpy 1: pin pyarrow<26
        pytest.skip(f"datasets not importable: {e}")
    out = tmp_path / "out"
    build([src], out, perceive=fake_perceive, hf=True, progress=False)
    dd = datasets.load_from_disk(str(out / "hf_sft"))
    assert sum(len(d) for d in dd.values()) == 28 and set(dd) == {"train", "dev"}
    row = dd["train"][0]
    assert row["messages"][-1]["role"] == "assistant" and isinstance(json.loads(row["observations"]), dict)
    assert set(datasets.load_from_disk(str(out / "hf_rl"))) == {"train", "dev"}


def test_journal_repair(tmp_path):
    p = tmp_path / "j.jsonl"
    p.write_text('{"id": "a"}\n{"id": "b"}\n{"id": "c", "x": [1,')
    j = jsonl.Journal(p)
    assert j.cut > 0 and j.ids == ["a", "b"] and "a" in j and "c" not in j
    j.append({"id": "c"})
    j.close()
    assert [r["id"] for r in jsonl.read(p)] == ["a", "b", "c"]
    p.write_text('{"id": "a"}\nnot json\n{"id": "c"}\n')
    with pytest.raises(InputError, match="line 2"):
        jsonl.repair(p)


def test_perception_failures_are_kept_until_retried(src, tmp_path):
    out = tmp_path / "out"

    def broken(sample):
        if "wav" in "".join(sample.media.values()):
            raise RuntimeError("speech model missing")
        return fake_perceive(sample)

    rep = build([src], out, perceive=broken, hf=False, progress=False)
    failed = rep["rejections"]["by_stage"]["perception"]
    assert failed == 9 and rep["records"] == 19
    assert build([src], out, perceive=fake_perceive, hf=False, progress=False)["records"] == 19  # done stays done
    rep = build([src], out, perceive=fake_perceive, hf=False, progress=False, retry_failed=True)
    assert rep["records"] == 28 and rep["rejections"]["by_stage"] == {"label": 1}


def _voice_says_sadness(sample):
    """A clip whose voice classifier is sure of sadness, whatever the sample's gold label."""
    from affectllm.perception.observations import AudioObs, Observations

    return Observations(file=sample.media.get("audio"), audio=AudioObs(
        duration_s=2.0, descriptors={"pitch": "low pitch", "rate": "slow speech"},
        expression={"sadness": 0.9, "boredom": 0.05, "neutral": 0.03, "anger": 0.02}))


def test_decided_records_argue_for_the_experts_decision_which_the_prompt_carries(tmp_path):
    from data_engine.build import DEFAULT_EVIDENCE, Rejected, make_record

    s = Sample(id="emodb/x", source="emodb", split="train", labels=["anger"], media={"audio": "/x/a.wav"})
    rec = make_record(s, _voice_says_sadness, seed=0, taxonomy="emodb7", evidence=DEFAULT_EVIDENCE,
                      feature_tag="t", decided=True)
    assert rec["labels"] == ["anger"] and rec["answer"] == "sadness" and 0.5 < rec["probability"] <= 1.0
    user = rec["messages"][1]["content"]
    assert f"Decided answer: sadness (probability {rec['probability']:.2f})." in user
    assert user.index("Evidence:") < user.index("Decided answer:") < user.index("Which emotion")
    assert rec["messages"][-1]["content"].endswith("<answer>sadness</answer>")
    assert verify(rec) == []  # checked against the decided answer, not the gold label
    wrong = dict(rec, answer="anger")  # the same rationale, claimed for another answer: caught
    assert any(r.startswith("label:") for r in verify(wrong))
    gold = make_record(s, _voice_says_sadness, seed=0, taxonomy="emodb7", evidence=DEFAULT_EVIDENCE,
                       feature_tag="t")
    assert "answer" not in gold and "Decided answer" not in gold["messages"][1]["content"]
    assert gold["messages"][-1]["content"].endswith("<answer>anger</answer>")
    with pytest.raises(Rejected):  # an unlabelled item is still refused
        make_record(s.replace(labels=[]), _voice_says_sadness, seed=0, taxonomy="emodb7",
                    evidence=DEFAULT_EVIDENCE, feature_tag="t", decided=True)


def test_ids_keep_only_the_listed_samples_and_bad_id_files_name_the_line(src, tmp_path):
    from data_engine.cli import _read_ids

    (tmp_path / "ids.jsonl").write_text('{"id": "manifest/item01"}\n\n{"id": "manifest/item03", "x": 1}\n')
    (tmp_path / "ids.txt").write_text("manifest/item01\nmanifest/item03\n")
    assert _read_ids(tmp_path / "ids.jsonl") == _read_ids(tmp_path / "ids.txt") == {"manifest/item01",
                                                                                      "manifest/item03"}
    (tmp_path / "bad.jsonl").write_text('{"id": "a"}\n{"name": "b"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: not a JSON row with an 'id'"):
        _read_ids(tmp_path / "bad.jsonl")
    out = tmp_path / "out"
    rep = build([src], out, perceive=fake_perceive, hf=False, progress=False, ids={"manifest/item01", "manifest/item03"})
    kept = [r["id"] for r in jsonl.read(out / "sft.jsonl")]
    assert sorted(kept) == ["manifest/item01", "manifest/item03"] and rep["records"] == 2
