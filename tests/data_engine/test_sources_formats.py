"""Dataset readers, part 2: formats users bring, each on a tiny fixture written in that
dataset's exact published format (RAF-DB, AffectNet, FER2013, DISFA, MELD, EMER, ExpLLM,
Facial-R1), with malformed rows that must be reported by line and skipped.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from data_engine.sources import open_source


def png(path: Path, value: int = 128) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (8, 8), value).save(path)
    return path


def touch(path: Path, data: bytes = b"\x00") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def lines_of(src) -> dict[int | None, str]:
    return {p["line"]: p["reason"] for p in src.problems}


def test_rafdb_list_file(tmp_path):
    basic = tmp_path / "basic"
    for name in ("train_00001", "train_00002", "test_0001"):
        png(basic / "Image" / "aligned" / f"{name}_aligned.jpg")
    png(basic / "Image" / "original" / "train_00001.jpg")
    (basic / "EmoLabel").mkdir()
    (basic / "EmoLabel" / "list_patition_label.txt").write_text(
        "train_00001.jpg 5\ntrain_00002.jpg 4\ntest_0001.jpg 7\ntrain_00003.jpg 9\n"
        "train_00004.jpg\ntrain_00005.jpg 1\n../../etc/x.jpg 1\n")
    src = open_source(f"rafdb:{basic}")
    got = {s.id: s for s in src}
    assert got["rafdb/train_00001"].labels == ["sadness"]
    assert got["rafdb/train_00002"].labels == ["happiness"]
    assert got["rafdb/test_0001"].labels == ["neutral"] and got["rafdb/test_0001"].split == "test"
    assert got["rafdb/train_00001"].media["image"].endswith("train_00001_aligned.jpg")
    p = lines_of(src)
    assert sorted(p) == [4, 5, 6, 7] and "missing media" in p[6] and "RAF-DB image name" in p[7]
    orig = open_source(f"rafdb:{basic / 'EmoLabel' / 'list_patition_label.txt'}", aligned=False)
    assert [s.id for s in orig] == ["rafdb/train_00001"]


def test_affectnet_csv(tmp_path):
    root = tmp_path / "AffectNet"
    for n in range(1, 6):
        png(root / "Manually_Annotated_Images" / "689" / f"img{n}.jpg")
    header = ("subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,"
              "expression,valence,arousal")
    rows = ["689/img1.jpg,10,12,100,100,1;2;3,0,0.1,-0.2",
            "689/img2.jpg,10,12,100,100,1;2;3,7,-0.6,0.4",
            "689/img3.jpg,10,12,100,100,1;2;3,8,-2,-2",
            "689/img4.jpg,10,12,100,100,1;2;3,10,-2,-2",
            "689/img5.jpg,10,12,100,100,1;2;3,12,0,0",
            "../img6.jpg,10,12,100,100,1;2;3,1,0.5,0.5"]
    lists = root / "Manually_Annotated_file_lists"
    lists.mkdir(parents=True)
    (lists / "training.csv").write_text(header + "\n" + "\n".join(rows) + "\n")
    (lists / "validation.csv").write_text(header + "\n689/img1.jpg,1,1,9,9,,3,0.2,0.3\n")
    src = open_source(f"affectnet:{lists}")
    got = {s.id: s for s in src}
    neutral, contempt = got["affectnet/689/img1"], got["affectnet/689/img2"]
    assert neutral.labels == ["neutral"] and neutral.split == "train"
    assert neutral.meta["face_box"] == [10.0, 12.0, 100.0, 100.0] and neutral.meta["valence"] == 0.1
    assert contempt.labels == ["contempt"] and contempt.meta["outside_ekman7"] is True
    p = lines_of(src)
    assert "(None)" in p[4] and "(No-Face)" in p[5] and "not in 0-10" in p[6] and "'..'" in p[7]
    assert len(got) == 2 + 1 - 1  # the validation row reuses img1's id -> duplicate reported
    assert any("duplicate id" in r["reason"] for r in src.problems)
    val = open_source(f"affectnet:{lists / 'validation.csv'}").load()
    assert val[0].split == "test" and val[0].labels == ["surprise"]


def test_fer2013_csv_decodes_to_cached_png(tmp_path):
    rng = np.random.default_rng(0)
    pix = rng.integers(0, 256, size=(3, 48 * 48))
    rows = ["emotion,pixels,Usage"]
    rows += [f"{e},{' '.join(map(str, p))},{u}"
             for e, p, u in zip((0, 3, 6), pix, ("Training", "PublicTest", "PrivateTest"))]
    rows += ["3,1 2 3,Training", "9," + " ".join(["0"] * 2304) + ",Training",
             "2," + " ".join(["300"] * 2304) + ",Training",
             "2," + " ".join(["0"] * 2304) + ",Holdout"]
    csv = tmp_path / "fer2013.csv"
    csv.write_text("\n".join(rows) + "\n")
    cache = tmp_path / "cache"
    src = open_source(f"fer2013:{tmp_path}", cache=cache)
    got = src.load()
    assert [s.labels for s in got] == [["anger"], ["happiness"], ["neutral"]]
    assert [s.split for s in got] == ["train", "dev", "test"]
    img = np.asarray(Image.open(got[1].media["image"]))
    assert img.shape == (48, 48) and (img == pix[1].reshape(48, 48)).all()
    assert sorted(lines_of(src)) == [5, 6, 7, 8]
    mtime = Path(got[0].media["image"]).stat().st_mtime_ns
    again = open_source(f"fer2013:{csv}", cache=cache).load()  # reuses the complete cache
    assert [s.media for s in again] == [s.media for s in got]
    assert Path(got[0].media["image"]).stat().st_mtime_ns == mtime


def _disfa_labels(root: Path, subject: str, aus: dict[int, list[int]]) -> None:
    d = root / "ActionUnit_Labels" / subject
    d.mkdir(parents=True)
    for au, values in aus.items():
        (d / f"{subject}_au{au}.txt").write_text(
            "".join(f"{i},{v}\n" for i, v in enumerate(values, 1)))


def test_disfa_per_frame_gold_aus(tmp_path):
    root = tmp_path / "DISFA"
    _disfa_labels(root, "SN001", {1: [0, 1, 2, 0], 12: [3, 4, 5, 0]})
    _disfa_labels(root, "SN002", {1: [0, 0], 12: [1, 1]})
    with open(root / "ActionUnit_Labels" / "SN001" / "SN001_au1.txt", "a") as f:
        f.write("5,9\n")  # intensity out of range: line 5
    touch(root / "Videos_LeftCamera" / "LeftVideoSN001_comp.avi")
    src = open_source(f"disfa:{root}")
    got = src.load()
    assert [s.id for s in got] == [f"disfa/SN001/{i:05d}" for i in range(1, 5)]
    f3 = got[2]
    assert f3.gold_aus == {"AU1": 2.0, "AU12": 5.0} and f3.speaker == "SN001"
    assert f3.meta["frame"] == 3 and f3.meta["frame_index"] == 2 and f3.labels == []
    assert f3.media["video"].endswith("LeftVideoSN001_comp.avi")
    reasons = [p["reason"] for p in src.problems]
    assert any("intensity 0-5" in r and "'5,9'" in r for r in reasons)
    assert any("SN002" in r and "2 frame(s)" in r for r in reasons) and src.stats["skipped"] == 2
    every = open_source(f"disfa:{root / 'ActionUnit_Labels'}", every=2, subjects=("SN001",))
    assert [s.meta["frame"] for s in every] == [1, 3]
    png(root / "frames" / "SN002" / "00001.png")
    frames = open_source(f"disfa:{root}", frames="frames/{subject}/{frame:05d}.png",
                         subjects=("SN002",))
    assert [s.id for s in frames] == ["disfa/SN002/00001"]
    assert "missing media" in frames.problems[0]["reason"] and frames.problems[0]["line"] == 2


MELD_HEADER = ("Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,"
               "Episode,StartTime,EndTime")


def test_meld_csv_and_video_folders(tmp_path):
    root = tmp_path / "MELD.Raw"
    touch(root / "train_splits" / "dia0_utt0.mp4")
    touch(root / "train_splits" / "dia0_utt1.mp4")
    touch(root / "dev_splits_complete" / "dia1_utt0.mp4")
    train = (MELD_HEADER + "\n"
             '1,"also I was the point person on my company\'s transition, you know",Chandler,'
             "neutral,neutral,0,0,8,21,\"00:16:16,059\",\"00:16:21,731\"\n"
             "2,You must\u2019ve had your hands full.,The Interviewer,joy,positive,0,1,8,21,"
             "\"00:16:21,940\",\"00:16:23,442\"\n"
             "3,Hmm.,Chandler,bored,neutral,0,2,8,21,a,b\n"
             "4,Where?,Chandler,fear,negative,0,3,8,21,a,b\n")
    (root / "train_sent_emo.csv").write_bytes(train.encode("cp1252"))
    (root / "dev_sent_emo.csv").write_text(MELD_HEADER + "\n1,Oh my God!,Monica,surprise,"
                                           "positive,1,0,4,7,a,b\n")
    (root / "test_sent_emo.csv").write_text(MELD_HEADER + "\n")
    src = open_source(f"meld:{root}")
    got = {s.id: s for s in src}
    assert set(got) == {"meld/train/dia0_utt0", "meld/train/dia0_utt1", "meld/dev/dia1_utt0"}
    first, second = got["meld/train/dia0_utt0"], got["meld/train/dia0_utt1"]
    assert first.text.startswith("also I was") and first.text.endswith("you know")
    assert first.speaker == "Chandler" and first.meta["sentiment"] == "neutral"
    assert second.labels == ["happiness"] and second.text == "You must\u2019ve had your hands full."
    assert got["meld/dev/dia1_utt0"].split == "dev" and first.media["video"].endswith("dia0_utt0.mp4")
    p = lines_of(src)
    assert "Windows-1252" in p[None] and "bored" in p[4] and "missing media" in p[5]


def test_emer_v1_v2_and_labels(tmp_path):
    root = tmp_path / "EMER"
    touch(root / "video" / "sample_00000648.avi")
    touch(root / "video" / "sample_00001823.mp4")
    (root / "gt-eng.csv").write_text(
        "names,emotions,subtitles,reasons\n"
        "sample_00000648,angry,Don't talk to me about feelings anymore.,"
        "\"In the video, he roared. Therefore, it is inferred that his emotional state is anger.\"\n"
        "sample_00001823,worried,\"I want to ask you, why are you quitting?\","
        "\"His brow is furrowed, suggesting worry.\"\n"
        "../../etc/passwd,sad,x,y\n"
        "sample_00000001,sad,x,y\n"
        "sample_00000648,bored,x,y\n")
    src = open_source(f"emer:{root / 'gt-eng.csv'}")
    a, w = src.load()
    assert a.labels == ["anger"] and a.media["video"].endswith(".avi")
    assert a.meta["rationale"].startswith("In the video, he roared")
    assert a.text == "Don't talk to me about feelings anymore."
    assert w.labels == ["fear"] and w.meta["orig_label"] == "worried"
    p = lines_of(src)
    assert "'..'" in p[4] and "no video" in p[5] and "MER2023" in p[6]
    v2 = tmp_path / "v2"
    touch(v2 / "video" / "sample_00000007.avi")
    (v2 / "final-EMER-reason.csv").write_text(
        "name,chinese,english\nsample_00000007,在视频中，她很高兴。,\"In the video, she is happy.\"\n")
    (v2 / "labels.csv").write_text("name,discrete,valence\nsample_00000007,happy,2.5\n")
    [s] = open_source(f"emer:{v2}", labels=v2 / "labels.csv").load()
    assert s.labels == ["happiness"] and s.meta["rationale_zh"].startswith("在视频中")
    [u] = open_source(f"emer:{v2}").load()
    assert u.labels == [] and u.meta["rationale"] == "In the video, she is happy."


def test_expllm_json(tmp_path):
    images = tmp_path / "aligned"
    for n in ("train_00001", "test_0001", "test_0002"):
        png(images / f"{n}_aligned.jpg")
    items = [{"file_name": "train_00001_aligned.jpg", "emo": "Sadness", "au": [0.0] * 24,
              "description": "**Key Observations:** brows lowered."},
             {"file_name": "test_0001_aligned.jpg", "emo": "Happiness", "gt_emo": "Surprise",
              "au": [0.1] * 24, "description": "raised lids"},
             {"emo": "Fear"},
             {"file_name": "test_0002_aligned.jpg", "emo": "Contempt", "au": "n/a"},
             {"file_name": "/abs/x.jpg", "emo": "Fear"}]
    (tmp_path / "rafdb_emo_au_val_mini_description.json").write_text(json.dumps(items))
    src = open_source(f"expllm:{tmp_path / 'rafdb_emo_au_val_mini_description.json'}",
                      images=images)
    a, b, c = src.load()
    assert a.labels == ["sadness"] and a.split == "train" and len(a.meta["au_vector"]) == 24
    assert a.meta["rationale"].startswith("**Key Observations:**") and a.gold_aus is None
    assert b.labels == ["surprise"] and b.meta["emo_field"] == "Happiness" and b.split == "test"
    assert c.labels == ["contempt"] and "au_vector" not in c.meta
    p = lines_of(src)
    assert "no file_name" in p[3] and "not a list" in p[4] and "absolute" in p[5]


def test_facialr1_jsonl(tmp_path):
    png(tmp_path / "imgs" / "RAF-AU" / "0001.jpg")
    png(tmp_path / "imgs" / "DISFA" / "SN001_0001.jpg")
    rows = [{"id": "raf-au-1", "dataset": "RAF-AU", "image": "RAF-AU/0001.jpg",
             "question": "Analyze the facial expression in the image.", "AUs": ["AU1", "AU4"],
             "labels": ["Sadness"], "description": "Inner brows raised and lowered.",
             "meta_info": {"k": "v"}},
            {"id": "disfa-1", "dataset": "DISFA", "image": ["DISFA/SN001_0001.jpg"],
             "AUs": [], "labels": [], "description": "No movement."}]
    text = "\n".join(json.dumps(r) for r in rows)
    text += '\n{"id": "bad", "image": "RAF-AU/0001.jpg", "AUs": ["smile"]}\n{"id": oops}\n'
    text += json.dumps({"id": "x", "image": "../../outside.jpg", "labels": ["Anger"]}) + "\n"
    (tmp_path / "fea_train_stage1.jsonl").write_text(text)
    src = open_source(f"facialr1:{tmp_path / 'fea_train_stage1.jsonl'}", images=tmp_path / "imgs")
    a, b = src.load()
    assert a.id == "facialr1/raf-au-1" and a.labels == ["sadness"] and a.split == "train"
    assert a.gold_aus == {"AU1": None, "AU4": None} and a.meta["rationale"].startswith("Inner")
    assert a.meta["question"].startswith("Analyze") and a.meta["dataset"] == "RAF-AU"
    assert b.gold_aus == {} and b.labels == [] and b.media["image"].endswith("SN001_0001.jpg")
    p = lines_of(src)
    assert "smile" in p[3] and "JSON" in p[4] and "'..'" in p[5]
