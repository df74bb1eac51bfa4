"""Dataset readers, part 1: Sample, registry, path safety, generic readers, shipped-set readers
(on tiny fixtures written here in their exact formats) and speaker-disjoint splits.

The user-brought formats (RAF-DB, AffectNet, FER2013, DISFA, MELD, EMER, ExpLLM, Facial-R1)
are in ``test_sources_formats.py``; the real shared data in ``slow/test_sources_shared.py``.
"""

from __future__ import annotations

import json
import os
import wave
from pathlib import Path

import pytest
from PIL import Image

from affectllm.errors import InputError
from data_engine.sample import Sample
from data_engine.sources import (EMODB_DEV_SPEAKERS, SOURCES, assign_splits, emodb_split,
                                 open_source, split_overlap)
from affectllm.io.files import safe_join
from data_engine.sources.labels import parse_aus


def png(path: Path, value: int = 128) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (8, 8), value).save(path)
    return path


def wav(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes(b"\x00\x00" * 160)
    return path


def reasons(src) -> list[tuple[int | None, str]]:
    return [(p["line"], p["reason"]) for p in src.problems]


# ---- Sample -------------------------------------------------------------------------------
def test_sample_fields_and_validation():
    s = Sample(id="x/1", media={"image": "/a.png"}, labels=["happiness", "surprise"],
               speaker="p1", split="train")
    assert s.label == "happiness" and s.subject == "p1" and s.modalities == ("image",)
    assert Sample.from_dict(s.to_dict()) == s
    assert Sample(id="x/2").label is None
    with pytest.raises(ValueError, match="split"):
        Sample(id="x", split="validation")
    with pytest.raises(ValueError, match="media"):
        Sample(id="x", media={"depth": "/a"})
    with pytest.raises(TypeError, match="list"):
        Sample(id="x", labels="anger")
    t = s.replace(split="dev")
    t.meta["k"] = 1
    assert s.split == "train" and "k" not in s.meta


def test_parse_aus_forms():
    assert parse_aus("AU6:3,AU12:4") == {"AU6": 3.0, "AU12": 4.0}
    assert parse_aus("AU12C; au1") == {"AU12": 3.0, "AU1": None}
    assert parse_aus(["AU1", "AU4"]) == {"AU1": None, "AU4": None}
    assert parse_aus({"au12": 2}) == {"AU12": 2.0}
    assert parse_aus("") is None and parse_aus([]) == {}
    for bad in ("AU6:9", "smile", "AU12C:3"):
        with pytest.raises(ValueError):
            parse_aus(bad)


# ---- registry and path safety --------------------------------------------------------------
def test_registry_errors(tmp_path):
    assert {"imagefolder", "manifest", "emodb", "goemotions", "faces_demo", "faces_london",
            "rafdb", "affectnet", "fer2013", "disfa", "meld", "emer", "expllm",
            "facialr1"} <= set(SOURCES)
    with pytest.raises(ValueError, match="unknown source kind 'nope'"):
        open_source(f"nope:{tmp_path}")
    with pytest.raises(InputError, match="not found"):
        open_source(f"imagefolder:{tmp_path / 'absent'}")
    with pytest.raises(TypeError):
        open_source(f"imagefolder:{tmp_path}", colour="red")
    with pytest.raises(ValueError, match="needs a path"):
        open_source("manifest")


def test_safe_join_rejects_escapes(tmp_path):
    root = tmp_path / "root"
    png(root / "a" / "b.png")
    outside = png(tmp_path / "secret.png")
    os.symlink(outside, root / "link.png")
    assert safe_join(root, "a/../a/b.png") == (root / "a" / "b.png").resolve()
    for bad, why in [("../secret.png", "'..'"), ("a/../../secret.png", "'..'"),
                     (str(outside), "absolute"), ("C:\\data\\x.png", "absolute"),
                     ("~/x.png", "absolute"), ("..\\secret.png", "'..'"),
                     ("link.png", "symlink"), ("http://x/y.png", "URL"), ("", "empty")]:
        with pytest.raises(InputError, match=why):
            safe_join(root, bad)


# ---- imagefolder -----------------------------------------------------------------------------
def test_imagefolder_classes_and_splits(tmp_path):
    root = tmp_path / "faces"
    png(root / "train" / "angry" / "a1.png")
    png(root / "train" / "happy" / "h1.jpg")
    png(root / "train" / "contempt" / "c1.png")
    png(root / "val" / "Happiness" / "h2.png")
    (root / "val" / "Happiness" / "notes.txt").write_text("x")
    outside = png(tmp_path / "elsewhere" / "x.png")
    os.symlink(outside, root / "train" / "angry" / "escape.png")
    os.symlink(outside.parent, root / "train" / "angry" / "more")
    src = open_source(f"imagefolder:{root}")
    got = {s.id: s for s in src}
    assert set(got) == {"imagefolder/train/angry/a1", "imagefolder/train/happy/h1",
                        "imagefolder/train/contempt/c1", "imagefolder/val/Happiness/h2"}
    assert got["imagefolder/train/angry/a1"].labels == ["anger"]
    assert got["imagefolder/train/happy/h1"].split == "train"
    assert got["imagefolder/val/Happiness/h2"].split == "dev"
    c = got["imagefolder/train/contempt/c1"]
    assert c.labels == ["contempt"] and c.meta["outside_ekman7"] is True
    text = " ".join(r for _, r in reasons(src))
    assert "notes.txt" in text and "symlink" in text and "symlinked folder" in text
    assert src.stats == {"yielded": 4, "skipped": 3, "unlabelled": 0}


def test_imagefolder_flat_with_split_option(tmp_path):
    png(tmp_path / "sad" / "1.png")
    png(tmp_path / "Weird Class" / "2.png")
    got = {s.id: s for s in open_source(f"imagefolder:{tmp_path}", split="test")}
    assert got["imagefolder/sad/1"].labels == ["sadness"]
    w = got["imagefolder/Weird Class/2"]
    assert w.labels == ["weird class"] and w.meta["unmapped_labels"] == ["Weird Class"]
    assert {s.split for s in got.values()} == {"test"}


# ---- manifest --------------------------------------------------------------------------------
def test_manifest_csv_rows_and_problems(tmp_path):
    root = tmp_path / "data"
    png(root / "img" / "a.png")
    wav(root / "aud" / "b.wav")
    png(tmp_path / "secret.png")
    os.symlink(tmp_path / "secret.png", root / "img" / "out.png")
    (root / "m.csv").write_text(
        "path,label,text,aus,speaker,split,extra\n"
        "img/a.png,happy|surprise,,\"AU6:3,AU12:4\",p1,train,x1\n"  # line 2
        "aud/b.wav,sad,\"so, tired\",,p2,val,\n"                      # line 3
        "../secret.png,anger,,,,,\n"                                  # line 4
        "/etc/passwd,anger,,,,,\n"                                    # line 5
        "img/out.png,anger,,,,,\n"                                    # line 6
        "img/missing.png,anger,,,,,\n"                                # line 7
        "img/a.png,anger,,AU6:banana,,,\n"                            # line 8
        "img/a.png,anger,,,,,,too,many\n"                             # line 9
        ",neutral,,,,,\n"                                             # line 10
        "img/a.png,fear,,,,holdout,\n")                               # line 11
    src = open_source(f"manifest:{root / 'm.csv'}")
    got = src.load()
    assert [s.id for s in got] == ["manifest/img/a", "manifest/aud/b"]
    a, b = got
    assert a.labels == ["happiness", "surprise"] and a.gold_aus == {"AU6": 3.0, "AU12": 4.0}
    assert a.media == {"image": str((root / "img" / "a.png").resolve())}
    assert a.meta["extra"] == "x1" and a.speaker == "p1" and a.split == "train"
    assert b.media.keys() == {"audio"} and b.text == "so, tired" and b.split == "dev"
    lines = dict(reasons(src))
    assert sorted(lines) == [4, 5, 6, 7, 8, 9, 10, 11]
    assert "'..'" in lines[4] and "absolute" in lines[5] and "symlink" in lines[6]
    assert "missing media" in lines[7] and "banana" in lines[8] and "field" in lines[9]
    assert "neither" in lines[10] and "holdout" in lines[11]
    assert all(p["file"] == str(root / "m.csv") for p in src.problems)
    assert src.stats["skipped"] == 8


def test_manifest_missing_columns_and_keep_missing_media(tmp_path):
    (tmp_path / "bad.csv").write_text("file,emotion\na.png,anger\nb.png,fear\n")
    src = open_source(f"manifest:{tmp_path / 'bad.csv'}")
    assert src.load() == [] and src.problems[0]["line"] == 1
    assert "missing column" in src.problems[0]["reason"] and src.stats["skipped"] == 2
    (tmp_path / "m.csv").write_text("path,label\nnot_there.png,anger\n")
    keep = open_source(f"manifest:{tmp_path / 'm.csv'}", require_media=False)
    [s] = keep.load()
    assert s.media == {} and s.labels == ["anger"] and keep.stats["skipped"] == 0
    assert "kept without it" in keep.problems[0]["reason"]


def test_manifest_jsonl_and_media_root(tmp_path):
    media = tmp_path / "media"
    png(media / "x.png")
    lines = [json.dumps({"id": "one", "image": "x.png", "labels": ["joy", "surprise"],
                         "aus": {"AU12": 4, "AU6": 2}, "subject": "s1"}),
             "{not json",
             json.dumps({"text": "only text", "label": "disgusted"}),
             json.dumps(["a", "list"])]
    (tmp_path / "m.jsonl").write_text("\n".join(lines) + "\n")
    src = open_source(f"manifest:{tmp_path / 'm.jsonl'}", root=media)
    one, two = src.load()
    assert one.id == "manifest/one" and one.labels == ["happiness", "surprise"]
    assert one.gold_aus == {"AU12": 4.0, "AU6": 2.0} and one.speaker == "s1"
    assert two.media == {} and two.text == "only text" and two.labels == ["disgust"]
    assert [p["line"] for p in src.problems] == [2, 4]


def test_iterating_twice_resets_problems_and_reports_duplicates(tmp_path):
    png(tmp_path / "a.png")
    (tmp_path / "m.csv").write_text("id,path,label\nk,a.png,anger\nk,a.png,fear\n")
    src = open_source(f"manifest:{tmp_path / 'm.csv'}")
    assert len(src.load()) == 1 and len(src.load()) == 1
    assert len(src.problems) == 1 and "duplicate id" in src.problems[0]["reason"]
    assert src.problems[0]["line"] == 3


# ---- shipped-set readers on fixtures in their exact formats ----------------------------------
def make_emodb(root: Path) -> Path:
    rows = ["file,speaker,text_id,emotion,complete,recog_rate"]
    for spk in ("03", "08", "09", "10", "11", "12"):
        for letter, emo in (("W", "anger"), ("L", "boredom"), ("N", "neutral")):
            name = f"{spk}a01{letter}a.wav"
            wav(root / "wav" / name)
            rows.append(f"{name},{spk},a01,{emo},True,90.0")
    rows.append("03a02Fa.wav,03,a02,sadness,True,80.0")  # contradicts letter F
    rows.append("03a04Ta.wav,03,a04,sadness,False,")      # wav missing
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


def test_emodb_reader_and_default_split(tmp_path):
    src = open_source(f"emodb:{make_emodb(tmp_path)}")
    got = src.load()
    assert len(got) == 18 and {s.speaker for s in got} == {"03", "08", "09", "10", "11", "12"}
    s = next(x for x in got if x.id == "emodb/08a01La")
    assert s.labels == ["boredom"] and s.meta["outside_ekman7"] and s.meta["sex"] == "f"
    assert s.text == "Der Lappen liegt auf dem Eisschrank." and s.media["audio"].endswith(".wav")
    assert {x.speaker for x in got if x.split == "dev"} == set(EMODB_DEV_SPEAKERS)
    assert split_overlap(got) == {}
    assert [(p["line"], p["reason"][:20]) for p in src.problems] == [
        (20, "emotion 'sadness' co"), (21, "missing media file '")]
    assert open_source(f"emodb:{tmp_path}", split=None).load()[0].split is None


def test_goemotions_multilabel_limit_and_bad_rows(tmp_path):
    (tmp_path / "labels.txt").write_text("anger\ndisgust\nfear\njoy\nneutral\nsadness\nsurprise\n")
    train = [f'comment "{i}" here\t{i % 7}\tc{i}' for i in range(40)]
    train[3] = "so happy and shocked\t3,6\tmulti"
    train[5] = "bad id\t9\tbad"
    train[6] = "too few fields\t1"
    (tmp_path / "train.tsv").write_text("\n".join(train) + "\n")
    (tmp_path / "dev.tsv").write_text("dev text\t4\td1\n")
    src = open_source(f"goemotions:{tmp_path}")
    got = {s.id: s for s in src}
    assert len(got) == 39 and got["goemotions/multi"].labels == ["happiness", "surprise"]
    assert got["goemotions/c0"].text == 'comment "0" here' and got["goemotions/d1"].split == "dev"
    assert [p["line"] for p in src.problems] == [6, 7]
    pick = [s.id for s in open_source(f"goemotions:{tmp_path}", splits="train", limit=10)]
    again = [s.id for s in open_source(f"goemotions:{tmp_path}", splits="train", limit=10)]
    other = [s.id for s in open_source(f"goemotions:{tmp_path}", splits="train", limit=10, seed=1)]
    assert pick == again and len(pick) == 10 and pick != other
    order = [s.id for s in open_source(f"goemotions:{tmp_path}", splits="train")]
    assert pick == [i for i in order if i in set(pick)]  # subset kept in file order


def test_faces_demo_and_london_fixtures(tmp_path):
    demo = tmp_path / "demo"
    for name in ("angry.jpg", "group.jpeg"):
        png(demo / name)
    (demo / "labels.csv").write_text(
        "file,label,source_url_from_repo_README\nangry.jpg,anger,u1\n"
        "group.jpeg,(unlabelled multi-face),u2\n")
    src = open_source(f"faces_demo:{demo}")
    a, g = src.load()
    assert a.labels == ["anger"] and g.labels == [] and g.label is None
    assert g.meta["unlabelled_reason"] == "(unlabelled multi-face)"
    assert src.stats == {"yielded": 2, "skipped": 0, "unlabelled": 1}
    lon = tmp_path / "london"
    png(lon / "neutral" / "001_03.jpg"), png(lon / "smiling" / "001_08.jpg")
    (lon / "labels.csv").write_text("file,identity,label,smile\nneutral/001_03.jpg,001,neutral,\n"
                                    "smiling/001_08.jpg,001,happiness,clear_smile\n"
                                    "smiling/002_08.jpg,002,angry,\n")
    src = open_source(f"faces_london:{lon}")
    n, s = src.load()
    assert n.subject == s.subject == "001" and s.meta["smile"] == "clear_smile"
    assert src.problems[0]["line"] == 4


# ---- splits ----------------------------------------------------------------------------------
def _people(n_people: int, per: int) -> list[Sample]:
    return [Sample(id=f"s/{p}-{i}", speaker=f"p{p}") for p in range(n_people) for i in range(per)]


def test_assign_splits_disjoint_and_deterministic():
    items = _people(10, 5) + [Sample(id="t/1", speaker="p0", split="test")]
    a = assign_splits(items, dev_fraction=0.3, seed=7)
    b = assign_splits(list(reversed(items)), dev_fraction=0.3, seed=7)
    assert {s.id: s.split for s in a} == {s.id: s.split for s in b}
    assert split_overlap([s for s in a if s.split != "test"]) == {}
    assert sum(s.split == "dev" for s in a) == 15 and a[-1].split == "test"
    c = assign_splits(items, dev_fraction=0.3, seed=8)
    assert {s.speaker for s in a if s.split == "dev"} != {s.speaker for s in c if s.split == "dev"}
    explicit = assign_splits(items, dev=["p1", "p2"])
    assert {s.speaker for s in explicit if s.split == "dev"} == {"p1", "p2"}
    with pytest.raises(ValueError, match="p99"):
        assign_splits(items, dev=["p99"])
    two = assign_splits(_people(2, 3), dev_fraction=0.9)
    assert {s.split for s in two} == {"train", "dev"}
    by_id = assign_splits([Sample(id=f"x/{i}") for i in range(10)], dev_fraction=0.2)
    assert sum(s.split == "dev" for s in by_id) == 2  # no speaker: each item is its own group


def test_emodb_split_helper(tmp_path):
    got = open_source(f"emodb:{make_emodb(tmp_path)}", split=None).load()
    redone = emodb_split(got)
    assert {s.speaker for s in redone if s.split == "dev"} == {"08", "12"}
    assert split_overlap(redone) == {}


def test_manifest_oversized_field_is_reported_not_fatal(tmp_path):
    png(tmp_path / "a.png")
    (tmp_path / "m.csv").write_text("path,emotion,text\n"
                                    f"a.png,anger,{'x' * 200_000}\n"
                                    "a.png,fear,short\n")
    src = open_source(f"manifest:{tmp_path / 'm.csv'}")
    [s] = src.load()
    assert s.labels == ["fear"] and s.text == "short"
    assert src.problems[0]["line"] == 2 and "unreadable CSV row" in src.problems[0]["reason"]
