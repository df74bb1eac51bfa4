"""Issue 17 through every front door: explain (CLI), batch, eval and the app API.

Inputs with no usable signal (a tone, 60 s of silence, a 0.05 s clip, NaN audio, letterless
text) give an error naming the cause, or a warning and the other channel's answer; a text file
named .jpg is refused everywhere and an .flv video is routed as video by content; text is
cleaned and cut with exact counts; a Latin-1 manifest lists its rows as errors naming the
encoding; an eval whose rows are all skipped exits 2 with file:line reasons; a non-loopback app
refuses to start without a login; and no result names a path the caller did not give (two
paths of the same bytes, two app users). Perception is real (Whisper, mediapipe), models tiny.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from _app_server import load_app_module, serve
from _robust_files import DIRTY, DIRTY_CLEAN, LONG_CHARS, make_robust
from _tiny_model import tiny_model_dir  # noqa: F401 - fixture
from affectllm.io.item import Item, to_item
from affectllm.io.text import MAX_TEXT_CHARS, clean_text
from affectllm.perception.gate import gate
from affectllm.perception.observations import AudioObs, FaceObs, Observations
from affectllm.perception.pipeline import Perception

NO_SIGNAL = {"tone.wav": "steady tone", "silence.wav": "silent", "short.wav": "too short",
             "nan.wav": "non-finite"}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return make_robust(tmp_path_factory.mktemp("robust"))


@pytest.fixture(scope="module")
def perception(tmp_path_factory):
    return Perception(cache_root=tmp_path_factory.mktemp("cache"))


def paths_in(obj) -> set[str]:
    """Every absolute path written anywhere in a JSON-like result."""
    return set(re.findall(r"(/[\w.\-]+(?:/[\w.\-]+)+)", json.dumps(obj, ensure_ascii=False)))


def assert_paths_within(obj, folder: Path) -> None:
    stray = {p for p in paths_in(obj) if not p.startswith(str(folder))}
    assert not stray, stray


# ---- the text sanitiser and the exact cut ------------------------------------------------------
def test_one_sanitiser_for_typed_words_and_files(files):
    assert clean_text(DIRTY) == DIRTY_CLEAN
    assert Item(id="t", text=DIRTY).text == DIRTY_CLEAN  # typed words (--text, the API)
    assert to_item(None, text=DIRTY).text == DIRTY_CLEAN
    assert Item.from_path(files["dirty.txt"]).text == DIRTY_CLEAN  # a file with a NUL byte is text
    long = Item.from_path(files["long.txt"])
    assert len(long.text) <= MAX_TEXT_CHARS and long.meta["text_chars"] == LONG_CHARS
    assert f"text of {LONG_CHARS:,} characters cut to {len(long.text):,}" in long.meta["text_warning"]
    assert to_item(None, text="\x00\x1b[2J\u200b").text == ""  # nothing left: the gate says so


# ---- the gate as a pure function ----------------------------------------------------------------
def test_gate_drops_a_dead_channel_or_errors_the_item():
    face = FaceObs(box=(0, 0, 10, 10), score=0.9)
    tone = AudioObs(duration_s=2.0, flags=["no_speech"], prosody={"f0_std_st": 0.05, "voiced_ratio": 1.0})
    obs = Observations(file="/x/a.mp4", faces=[face], audio=tone)
    r = gate(obs, item_id="a.mp4")
    assert r.error is None and r.obs_kept.audio is None and r.obs_kept.faces == [face]
    assert r.warnings == ["a.mp4: voice dropped from the evidence: the audio is a steady tone, not speech "
                          "(its pitch varies 0.05 semitones)"]
    assert obs.audio is tone  # pure: the input is untouched
    photo = Observations(file="/x/p.jpg", text="so glad")
    once = gate(photo, Item(id="p.jpg", image="/x/p.jpg", text="so glad"))
    assert once.warnings == ["p.jpg: face dropped from the evidence: no face found in the image"]
    photo.errors += once.warnings
    assert gate(photo, Item(id="p.jpg", image="/x/p.jpg", text="so glad")).warnings == []  # idempotent
    r = gate(Observations(file="/x/b.wav", audio=AudioObs(duration_s=0.05, flags=["too_short"]), text="?? 123"),
             item_id="b.wav")
    assert r.obs_kept.audio is None and r.obs_kept.text is None
    assert r.error == ("b.wav: no usable evidence to explain: the audio is too short (0.05 s; at least 0.3 s "
                       "is needed); the text has no letters")
    speech = AudioObs(duration_s=2.0, transcript="I told you so", prosody={"f0_std_st": 2.5, "voiced_ratio": 0.5})
    assert gate(Observations(audio=speech)).warnings == []


# ---- perception: generated clips, and the cache with two paths of the same bytes ---------------
@pytest.mark.parametrize("name", list(NO_SIGNAL))
def test_no_signal_audio_is_an_error_or_dropped_beside_text(perception, files, name):
    alone = perception.perceive(Item(id=name, audio=str(files[name])))
    assert alone.audio is None and not alone.text
    assert any(NO_SIGNAL[name] in e and name in e for e in alone.errors), alone.errors
    with_words = perception.perceive(Item(id=name, audio=str(files[name]), text="I am thrilled!"))
    assert with_words.audio is None and with_words.text == "I am thrilled!"
    assert any(f"{name}: voice dropped" in e and NO_SIGNAL[name] in e for e in with_words.errors)


def test_a_cache_hit_carries_the_current_path_only(perception, files):
    first = perception.perceive(Item(id="a", audio=str(files["sweep.wav"])))
    assert first.audio is not None and not first.errors, first.errors  # a moving pitch is not gated
    copy = str(files["other/sweep_copy.wav"])
    again = perception.perceive(Item(id="b", audio=copy))
    assert again.file == copy and again.audio.to_dict() == first.audio.to_dict()
    assert str(files["sweep.wav"]) not in json.dumps(again.to_dict())
    stored = b"".join(p.read_bytes() for p in perception.cache.root.rglob("*.safetensors"))
    assert str(files["sweep.wav"]).encode() not in stored and copy.encode() not in stored


# ---- batch: row count, causes, flags, no stray paths --------------------------------------------
@pytest.fixture(scope="module")
def explainer(tiny_model_dir, perception):  # noqa: F811
    from affectllm.inference import Explainer

    return Explainer.from_name(str(tiny_model_dir), perception=perception, max_new_tokens=8)


def test_batch_battery(files, explainer, tmp_path):
    from affectllm.batch.job import run_batch

    folder = files["tone.wav"].parent
    names = [*NO_SIGNAL, "sweep.wav", "other/sweep_copy.wav", "clip.flv", "words.jpg", "dirty.txt", "long.txt"]
    manifest = folder / "rows.csv"
    manifest.write_text("path,text,id\n" + "".join(f"{n},,{n}\n" for n in names) + ",%%% 123 !!,symbols\n")
    out = tmp_path / "rows.jsonl"
    run_batch([str(manifest), str(files["latin1.csv"])], out, explainer=explainer, progress=False)
    rows = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert len(rows) == len(names) + 1 + 2
    for name, cause in NO_SIGNAL.items():
        assert rows[name]["emotion"] is None and cause in rows[name]["error"] and name in rows[name]["error"]
    assert rows["symbols"]["error"] and "no letters" in rows["symbols"]["error"]
    assert "content is text" in rows["words.jpg"]["error"]
    assert "no face in any of the video" in rows["clip.flv"]["error"]  # routed as video, not refused
    for name in ("sweep.wav", "other/sweep_copy.wav"):
        assert rows[name]["error"] is None and rows[name]["evidence"]["file"] == str(folder / name)
    assert rows["dirty.txt"]["evidence"]["text"] == DIRTY_CLEAN
    assert "truncated" in rows["long.txt"]["flags"]
    assert any(f"text of {LONG_CHARS:,} characters cut to" in w for w in rows["long.txt"]["warnings"])
    latin = [r for r in rows.values() if r["id"] in ("l1", "l2")]
    assert len(latin) == 2 and all("tried utf-8" in r["error"] and "--encoding latin-1" in r["error"]
                                   and "latin1.csv line" in r["error"] for r in latin)
    assert_paths_within(list(rows.values()), folder)


# ---- explain (CLI) and eval (CLI) -------------------------------------------------------------
def test_explain_cli_routes_by_content(files, tiny_model_dir, capsys):  # noqa: F811
    from affectllm.cli import main

    args = [str(files[n]) for n in ("words.jpg", "clip.flv", "tone.wav")]
    main(["explain", *args, "--model", str(tiny_model_dir), "--json", "--max-new-tokens", "4"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert len(rows) == 3
    assert "content is text" in rows[0]["error"]
    assert "no face in any of the video" in rows[1]["error"] and "unrecognised" not in rows[1]["error"]
    assert "steady tone" in rows[2]["error"] and rows[2]["emotion"] is None
    main(["explain", "--text", "\x1b[31mI am\x00 so \u202ehappy", "--model", str(tiny_model_dir), "--json",
          "--max-new-tokens", "4"])
    [row] = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert row["evidence"]["text"] == "I am so happy"
    assert_paths_within(rows + [row], files["tone.wav"].parent)


def test_eval_with_every_row_skipped_exits_2_naming_file_and_line(tmp_path, capsys):
    from affectllm.cli import main

    m = tmp_path / "gold.csv"
    m.write_text("path,label\nnope.xyz,anger\nmissing.jpg,fear\n")
    assert main(["eval", "run", "--source", f"manifest:{m}", "--out", str(tmp_path / "ev"),
                 "--baselines", "majority"]) == 2
    err = capsys.readouterr().err
    assert "no usable items" in err and f"{m}:2:" in err and f"{m}:3: missing media file" in err
    assert "max() arg" not in err


def test_eval_errors_a_tone_and_answers_from_words_beside_silence(files, tiny_model_dir, tmp_path):  # noqa: F811
    from affectllm.cli import main

    folder = files["tone.wav"].parent
    m = folder / "eval.csv"
    m.write_text("path,text,label\ntone.wav,,anger\nsweep.wav,,fear\nsilence.wav,I am so happy today,happiness\n")
    out = tmp_path / "ev"
    assert main(["eval", "run", "--source", f"manifest:{m}", "--out", str(out), "--model", str(tiny_model_dir),
                 "--baselines", "majority", "--max-new-tokens", "4", "--quiet"]) == 0
    rows = {r["id"]: r for r in map(json.loads, (out / "predictions.jsonl").read_text().splitlines())
            if r.get("system") == "model"}
    assert len(rows) == 3
    tone, silence = rows["manifest/tone"], rows["manifest/silence"]
    assert tone["pred"] is None and tone["probabilities"] == {} and "steady tone" in tone["error"]
    assert silence["error"] is None and silence["pred"] is not None
    assert any("voice dropped from the evidence: the audio is silent" in w for w in silence["warnings"])
    assert_paths_within([{k: r[k] for k in ("error", "warnings")} for r in rows.values()], folder)


def test_eval_source_routes_an_flv_row_by_content(files, tmp_path):
    from data_engine.sources import open_source

    m = files["clip.flv"].parent / "gold.csv"
    m.write_text("path,label\nclip.flv,anger\nwords.jpg,fear\nlong.txt,joy\n")
    src = open_source(f"manifest:{m}")
    flv, jpg = src.load()  # words.jpg: a listed extension is trusted here; decoding refuses it later
    assert flv.media == {"video": str(files["clip.flv"])} and jpg.media == {"image": str(files["words.jpg"])}
    [p] = src.problems  # an unlisted extension goes to the router: text where media was expected
    assert p["line"] == 4 and "text file where an image, audio or video" in p["reason"]


# ---- the app: exposure and two users ------------------------------------------------------------
def test_app_refuses_a_network_host_without_a_login(capsys):
    app = load_app_module()
    assert app.main(["--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert "--auth user:pass" in err and "--insecure-no-auth" in err and "0.0.0.0" in err
    assert app.exposure_check("127.0.0.1", False) is None and app.exposure_check("::1", False) is None
    assert app.exposure_check("0.0.0.0", True) is None and app.exposure_check("10.0.0.2", False, True) is None


def test_two_app_users_never_see_each_others_paths(files, tiny_model_dir, tmp_path, perception):  # noqa: F811
    from gradio_client import Client, handle_file

    alice = tmp_path / "alice_private_name.wav"
    bob = tmp_path / "bob.wav"
    for p in (alice, bob):
        p.write_bytes(files["sweep.wav"].read_bytes())
    s = serve([str(tiny_model_dir)], perception=perception, max_new_tokens=4, attribution=False,
              max_seconds=90.0, max_file_size="10mb")  # room for the 60 s silence
    try:
        a = Client(s.url, verbose=False).predict(handle_file(str(alice)), "", "", api_name="/explain")
        b = Client(s.url, verbose=False).predict(handle_file(str(bob)), "", "", api_name="/explain")
        for name in NO_SIGNAL:
            row = Client(s.url, verbose=False).predict(handle_file(str(files[name])), "", "", api_name="/explain")
            assert row["emotion"] is None and NO_SIGNAL[name] in row["error"], row["error"]
        words = Client(s.url, verbose=False).predict(handle_file(str(files["words.jpg"])), "", "",
                                                     api_name="/explain")
    finally:
        s.close()
    assert a["evidence"]["file"] == "alice_private_name.wav" and a["error"] is None
    assert b["evidence"]["file"] == "bob.wav" and b["error"] is None
    assert "alice" not in json.dumps(b) and not paths_in(b) and not paths_in(a)
    assert "content is text" in words["error"]



def test_a_latin1_manifest_reads_with_the_encoding_it_names(files):
    from affectllm.batch.inputs import expand_inputs

    utf8 = expand_inputs([str(files["latin1.csv"])])
    assert [b.id for b in utf8] == ["l1", "l2"] and all("byte 0xe9 on line 2" in b.error for b in utf8)
    latin = expand_inputs([str(files["latin1.csv"])], encoding="latin-1")
    assert [(b.id, b.text, b.error) for b in latin] == [("l1", "caf\u00e9 cr\u00e8me is lovely", None),
                                                        ("l2", "na\u00efve joy", None)]
