"""The one rationale verifier: each planted defect raises its flag, the data engine's own templates pass,
and committed eval rationales that talk about a voice for a photo are caught."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from affectllm.explanation.verify import CODES, Verdict, flag_rates, rationale_stats, verifier_reward, verify
from affectllm.knowledge.facs import AU_NAMES
from affectllm.perception.observations import AUObs, AudioObs, FaceObs, Observations, VideoObs
from affectllm.knowledge.taxonomy import get_taxonomy
from affectllm.explanation.template import write_rationale

REPO = Path(__file__).resolve().parents[3]
FACE = FaceObs(box=(0, 0, 90, 90), score=0.9, expression={"happy": 0.7, "neutral": 0.2, "sad": 0.1},
               aus=[AUObs("AU6", 2.7, True), AUObs("AU12", 3.6, True), AUObs("AU1", 0.2, False),
                    AUObs("AU4", 0.1, False), AUObs("AU15", 0.1, False), AUObs("AU9", 0.2, False)])
PHOTO = Observations(file="/d/face.jpg", faces=[FACE])
AUDIO = AudioObs(duration_s=2.0, transcript="that is great news", expression={"happiness": 0.6, "anger": 0.3},
                 descriptors={"pitch": "high, variable pitch", "loudness": "loud", "rate": "fast speech"})
CLIP = Observations(file="/d/clip.mp4", faces=[FACE], audio=AUDIO)
TEXT = Observations(text="I am so happy today, thanks!")
VIDEO = Observations(file="/d/smile.mp4", faces=[FACE], video=VideoObs(
    fps=5.0, n_frames=21, duration_s=4.213, face_frame_s=1.8,
    au_summary={"AU12": {"peak": 3.6, "mean": 1.4, "onset_s": 0.6, "apex_s": 1.8},
                "AU6": {"peak": 2.9, "mean": 1.1, "onset_s": 0.8, "apex_s": 2.0}}))

FACE_GOOD = """<think>
Observations:
- AU12 lip corner puller, intensity D (pronounced): pulled-up lip corners
- AU6 cheek raiser, intensity C (marked): raised cheeks
- Expression classifier: happy 0.70, neutral 0.20
Interpretation: AU6 and AU12 match the EMFACS happiness prototype closely, but the brow lowerer is not active. The expression classifier agrees, rating happiness highest (0.70).
Conclusion: The face most likely shows happiness.
</think>
<answer>happiness</answer>"""

CLIP_GOOD = FACE_GOOD.replace("- Expression classifier: happy 0.70, neutral 0.20\n", (
    "- Expression classifier: happy 0.70, neutral 0.20\n- Pitch: high, variable pitch\n"
    '- The word "great" points to happiness\n')).replace(
    "(0.70).\n", "(0.70). The voice classifier also puts happiness first (0.60).\n").replace("face most", "speaker most")

VIDEO_GOOD = FACE_GOOD.replace("- Expression classifier:", (
    "- Over the 4.2 s video, AU12 (lip corner puller) sets in at 0.60 s and peaks at 1.80 s; "
    "AU6 (cheek raiser) sets in at 0.8s and peaks at 2.0 seconds\n- Expression classifier:")).replace(
    "Interpretation: ", "Interpretation: The face described is the video's apex frame, at 1.80 s. ")

TEXT_GOOD = """<think>
Observations:
- The word "happy" points to happiness
- Salient word: "thanks", suggesting happiness
Interpretation: The words name it directly ("happy").
Conclusion: The text most likely expresses happiness.
</think>
<answer>happiness</answer>"""


def _codes(text, obs, **kw) -> list[str]:
    return verify(text, obs, **kw).codes


def test_handwritten_good_rationales_pass():
    for text, obs in ((FACE_GOOD, PHOTO), (CLIP_GOOD, CLIP), (TEXT_GOOD, TEXT), (VIDEO_GOOD, VIDEO)):
        v = verify(text, obs, "happiness", 0.8)
        assert v.ok, v.flags


# (name, base text, observations, (old, new), expected code, extra keyword arguments)
PLANTED = [
    ("voice talk for a photo", FACE_GOOD, PHOTO, ("(0.70).", "(0.70). The voice sounds bright."),
     "wrong_modality", {}),
    ("face talk for text alone", TEXT_GOOD, TEXT, ('("happy").', '("happy"). The smile says the same.'),
     "wrong_modality", {}),
    ("conclusion names another emotion", FACE_GOOD, PHOTO, ("shows happiness.", "shows surprise."),
     "conclusion_mismatch", {}),
    ("conclusion names no emotion", FACE_GOOD, PHOTO, ("The face most likely shows happiness.", "See above."),
     "conclusion_mismatch", {}),
    ("interpretation favours another emotion", FACE_GOOD, PHOTO,
     ("(0.70).", "(0.70). On balance, surprise fits better."), "interpretation_mismatch", {}),
    ("another emotion said to fit better than the evidence allows", FACE_GOOD, PHOTO,
     ("(0.70).", "(0.70). Surprise fits the face better, which makes happiness uncertain here."),
     "interpretation_mismatch", {}),
    ("classifier said to favour a label it does not rank first", FACE_GOOD, PHOTO,
     ("agrees, rating happiness highest (0.70)", "favours neutral"), "false_agreement", {}),
    ("disagreement claimed though the classifier ranks the answer first", FACE_GOOD, PHOTO,
     ("agrees, rating happiness highest (0.70)", "disagrees"), "false_agreement", {}),
    ("agreement claimed with a text classifier that ranks another label first", TEXT_GOOD, TEXT,
     ('("happy").', '("happy"). The text classifier agrees.'), "false_agreement",
     {"classifiers": {"text": {"anger": 0.8, "joy": 0.2}}}),
    ("invented score", FACE_GOOD, PHOTO, ("(0.70)", "(0.37)"), "invented_number", {}),
    ("number given to an AU it does not belong to", FACE_GOOD, PHOTO,
     ("intensity D (pronounced)", "intensity D (pronounced): 0.23"), "invented_number", {}),
    ("time that is no onset or apex of the video", VIDEO_GOOD, VIDEO, ("sets in at 0.60 s", "sets in at 0.90 s"),
     "invented_time", {}),
    ("invented AU", FACE_GOOD, PHOTO, ("AU6 and AU12 match", "AU6, AU12 and AU20 match"), "invented_au", {}),
    ("score attached to the wrong label", FACE_GOOD, PHOTO, ("happy 0.70, neutral 0.20", "happy 0.20, neutral 0.70"),
     "wrong_label_score", {}),
    ("wrong intensity letter", FACE_GOOD, PHOTO, ("intensity D (pronounced)", "intensity B (pronounced)"),
     "wrong_intensity", {}),
    ("contradicted prosody", CLIP_GOOD, CLIP, ("Pitch: high, variable pitch", "Pitch: low pitch"), "false_prosody", {}),
    ("section cut mid-number", FACE_GOOD, PHOTO, ("highest (0.70).", "highest (0"), "cut_section", {}),
    ("section cut mid-sentence", FACE_GOOD, PHOTO, ("rating happiness highest (0.70).", "rating happiness highest and"),
     "cut_section", {}),
    ("empty interpretation", FACE_GOOD, PHOTO,
     (FACE_GOOD[FACE_GOOD.index("Interpretation:"):FACE_GOOD.index("Conclusion:")], "Interpretation:\n"),
     "empty_section", {}),
    ("misquoted text", CLIP_GOOD, CLIP, ('"great"', '"wonderful"'), "misquoted_text", {}),
    ("hedging next to a confident answer", FACE_GOOD, PHOTO,
     ("The face most likely shows happiness.", "With only weak cues, the answer is happiness, with low confidence."),
     "confidence_mismatch", {"probability": 0.97}),
    ("'not a confident one' next to a confident answer", FACE_GOOD, PHOTO,  # read off a model draft at p 0.93
     ("The face most likely shows happiness.", "The most likely reading is happiness, though not a confident one."),
     "confidence_mismatch", {"probability": 0.93}),
    ("certainty next to an unsure answer", FACE_GOOD, PHOTO,
     ("The face most likely shows happiness.", "The face clearly shows happiness."),
     "confidence_mismatch", {"probability": 0.2}),
    ("an AU described as something it does not mean", FACE_GOOD, PHOTO,  # read off a passing model draft
     ("pulled-up lip corners", "pulled-up lip corners pointing to the stomach"), "wrong_au_meaning", {}),
    # read off the retrained mini's EmoDB drafts, which passed: self-contradicting reasoning
    ("the answer named as its own runner-up", CLIP_GOOD, CLIP,
     ("(0.60).\n", "(0.60). The runner-up is happiness: it fits the voice, but happiness fits more of the evidence.\n"),
     "interpretation_mismatch", {}),
    ("an arousal level said to fit a label of the other arousal", CLIP_GOOD, CLIP,
     ("(0.60).\n", "(0.60). A raised pitch points to low arousal, which fits happiness.\n"),
     "interpretation_mismatch", {}),
    # read off the retrained mini's London face drafts, which passed: knowledge and rankings made up
    ("an EMFACS prototype that does not exist", FACE_GOOD, PHOTO,
     ("the EMFACS happiness prototype", "the EMFACS anxiety prototype"), "wrong_au_meaning", {}),
    ("a ranking credited to something that is no classifier", FACE_GOOD, PHOTO,
     ("(0.70).\n", "(0.70). The EMFACS happiness evaluator also puts happiness first (0.70).\n"), "false_agreement", {}),
    ("an AU called the core of an emotion it is not the core of", FACE_GOOD, PHOTO,
     ("(0.70).\n", "(0.70). AU6 is also the core of happiness.\n"), "wrong_au_meaning", {}),
    ("a runner-up neither the evidence nor a classifier ranks second", FACE_GOOD, PHOTO,
     ("(0.70).\n", "(0.70). Surprise is the runner-up: it fits the face, but happiness fits more of the evidence.\n"),
     "interpretation_mismatch", {}),
    ("the runner-up's 'missing' AU is not in its prototype", FACE_GOOD, PHOTO,
     ("(0.70).\n", "(0.70). Neutral is the runner-up: it fits the face, but its nose wrinkler is not active.\n"),
     "wrong_au_meaning", {}),
    ("another label said to fit better on its own when it scores lower", FACE_GOOD, PHOTO,
     ("(0.70).\n", "(0.70). Sadness fits the face better on its own, but the expression classifier's confidence in "
                   "happiness outweighs it.\n"), "interpretation_mismatch", {}),
    ("the answer called uncertain while a classifier is sure of it", TEXT_GOOD, TEXT,
     ('("happy").', '("happy"). Neutral fits the words better, which makes happiness uncertain here.'),
     "interpretation_mismatch", {"classifiers": {"text": {"joy": 0.93, "neutral": 0.07}}}),
    ("'no action unit is active' next to active AUs", FACE_GOOD, PHOTO,
     ("(0.70).\n", "(0.70). No action unit is active in the face.\n"), "invented_au", {}),
    ("malformed: text after the answer", FACE_GOOD, PHOTO, ("</answer>", "</answer> and more"), "malformed", {}),
]


def test_a_classifier_claim_carrying_another_sources_score_is_flagged():
    """"The expression classifier also puts neutral first (0.42)" where 0.42 is a prototype's score
    of neutral and the classifier's is 0.91: real number, wrong source (read off a London draft)."""
    from affectllm.knowledge.emfacs import match_prototypes

    proto = dict(match_prototypes({a.au: a.intensity for a in FACE.aus}))["happiness"]
    assert abs(proto - 0.70) > 0.01
    text = FACE_GOOD.replace("rating happiness highest (0.70)", f"rating happiness highest ({proto:.2f})")
    v = verify(text, PHOTO)
    assert "wrong_label_score" in v.codes, v.flags
    assert [f.code for f in v.flags].count("wrong_label_score") == 1
    assert "invented_number" not in v.codes  # flagged once, for the source


@pytest.mark.parametrize("name,base,obs,edit,code,kw", PLANTED, ids=[p[0] for p in PLANTED])
def test_each_planted_defect_raises_its_flag(name, base, obs, edit, code, kw):
    old, new = edit
    assert old in base
    assert code not in verify(base, obs, **kw).codes  # the defect is what raises it
    v = verify(base.replace(old, new), obs, **kw)
    assert code in v.codes, (name, v.flags)
    flag = next(f for f in v.flags if f.code == code)
    assert flag.detail  # names the words or number at fault


def test_every_code_is_planted():
    assert {p[4] for p in PLANTED} == set(CODES)


def test_times_are_checked_against_the_video_and_not_read_as_intensities():
    # "AU12 ... peaks at 1.80 s": 1.80 is a time, not AU12's intensity (3.6)
    assert "invented_number" not in verify(VIDEO_GOOD, VIDEO).codes
    # a time on a photo is invented; a time off by more than its printed precision too
    photo = FACE_GOOD.replace("(0.70).\n", "(0.70). The smile peaks at 1.80 s.\n")
    assert verify(photo, PHOTO).codes == ["invented_time"]
    assert "invented_time" in verify(VIDEO_GOOD.replace("2.0 seconds", "2.1 seconds"), VIDEO).codes
    assert verify(VIDEO_GOOD.replace("0.60 s", "0.6 s").replace("4.2 s", "4.21 s"), VIDEO).ok
    # the evidence text's own video line, copied into a rationale, passes; a wrong peak next to a time does not
    line = VIDEO.video.to_text()
    assert "AU12 lip corner puller from 0.60 s, peaking at 3.6 at 1.80 s" in line and "read at 1.80 s" in line
    copied = FACE_GOOD.replace("- Expression classifier:", f"- {line}\n- Expression classifier:")
    assert verify(copied, VIDEO).ok, verify(copied, VIDEO).flags
    assert "invented_number" in verify(copied.replace("peaking at 3.6", "peaking at 2.2"), VIDEO).codes


def test_templated_video_rationales_cite_times_and_pass():
    times = {f"{t:.2f} s" for t in (0.6, 0.8, 1.8, 2.0)}
    for seed in range(6):
        for label in ("happiness", "surprise", "neutral"):
            r = write_rationale(f"v{seed}", VIDEO, [label], taxonomy="ekman7", seed=seed, media=("video",))
            text = r.render()
            timing = next(ln for ln in r.observations if "4.2 s" in ln)
            assert "AU12 (lip corner puller)" in timing and any(t in timing for t in times), timing
            assert "1.80 s" in r.interpretation  # the face described is the apex frame
            v = verify(text, VIDEO, label, None, "ekman7")
            assert v.ok, (label, v.flags, text)
    # the answer's prototype AUs (happiness: AU6, AU12) come before a stronger other AU, at most 3
    face = FaceObs(box=(0, 0, 90, 90), score=0.9, aus=[AUObs("AU25", 4.0, True), AUObs("AU26", 3.0, True),
                                                       AUObs("AU12", 2.0, True), AUObs("AU6", 1.0, True)])
    summary = {au: {"peak": x, "mean": 1.0, "onset_s": 0.2 * i, "apex_s": 1.0}
               for i, (au, x) in enumerate((("AU25", 4.0), ("AU26", 3.0), ("AU12", 2.0), ("AU6", 1.0)))}
    obs = Observations(file="/d/v.mp4", faces=[face], video=VideoObs(5.0, 10, 2.0, summary, face_frame_s=1.0))
    r = write_rationale("v0", obs, ["happiness"], taxonomy="ekman7", media=("video",))
    timing = next(ln for ln in r.observations if "2.0 s" in ln)
    assert [m for m in ("AU12", "AU6", "AU25", "AU26") if m in timing] == ["AU12", "AU6", "AU25"], timing
    assert timing.index("AU12") < timing.index("AU6") < timing.index("AU25")
    assert verify(r.render(), obs, "happiness", None, "ekman7").ok


def test_text_classifier_claims_are_checked():
    text = TEXT_GOOD.replace('("happy").', '("happy"). The text classifier agrees.')
    assert verify(text, TEXT, classifiers={"text": {"joy": 0.8, "anger": 0.2}}).ok
    v = verify(text, TEXT, classifiers={"text": {"anger": 0.8, "joy": 0.2}})
    assert "false_agreement" in v.codes and "anger" in v.flags[0].detail


def _random_obs(r: random.Random, mods: tuple[str, ...]) -> Observations:
    obs = Observations(file="/d/x", text="I hate this, it is so scary!" if "text" in mods else None)
    if "image" in mods:
        aus = [AUObs(au, round(x, 2), x >= 0.5) for au in AU_NAMES
               for x in [r.random() * 4 if r.random() < 0.3 else r.random() * 0.4]]
        expr = {k: round(r.random(), 4) for k in r.sample(["angry", "happy", "sad", "fear", "neutral"], 3)}
        obs.faces = [FaceObs(box=(0, 0, 9, 9), score=0.9, aus=aus, expression=expr)]
    if "audio" in mods:
        obs.audio = AudioObs(duration_s=2.0, transcript=r.choice(["", "Der Lappen liegt auf dem Eisschrank."]),
                             descriptors={"pitch": r.choice(["low, monotone pitch", "high pitch", "medium pitch"]),
                                          "loudness": r.choice(["loud", "quiet", "moderate loudness"])},
                             expression={"anger": round(r.random(), 4), "sadness": round(r.random(), 4)})
    return obs


def test_the_data_engine_templates_pass_with_no_flag():
    mods_choices = [("image",), ("audio",), ("text",), ("image", "audio"), ("audio", "text"), ("image", "text")]
    for i in range(150):
        r = random.Random(i)
        mods = r.choice(mods_choices)
        tax = r.choice(["ekman7", "emodb7", "goemotions_ekman"])
        obs = _random_obs(r, mods)
        label = r.choice(get_taxonomy(tax).labels)
        text = write_rationale(f"s{i}", obs, [label], taxonomy=tax, seed=i, media=mods).render()
        v = verify(text, obs, label, None, tax)
        assert v.ok, (mods, label, v.flags, text)


def test_the_templates_of_random_videos_pass_with_no_flag():
    for i in range(60):
        r = random.Random(1000 + i)
        mods = r.choice([("video",), ("video", "audio"), ("video", "text")])
        obs = _random_obs(r, ("image",) + tuple(m for m in mods if m != "video"))
        face = obs.main_face
        dur = round(r.uniform(0.5, 30), 3)
        summary = {}
        for a in face.aus:  # the face's active AUs and some that are active elsewhere in the video
            if a.present or r.random() < 0.2:
                on = round(r.uniform(0, dur), 3)
                summary[a.au] = {"peak": round(max(a.intensity, 0.5) + r.random(), 3), "mean": 0.5,
                                 "onset_s": on, "apex_s": round(r.uniform(on, dur), 3)}
        obs.video = VideoObs(fps=5.0, n_frames=20, duration_s=dur, au_summary=summary,
                             face_frame_s=round(r.uniform(0, dur), 3) if summary else None)
        tax = r.choice(["ekman7", "emodb7", "goemotions_ekman"])
        label = r.choice(get_taxonomy(tax).labels)
        text = write_rationale(f"v{i}", obs, [label], taxonomy=tax, seed=i, media=mods).render()
        assert (" s video" in text or " s clip" in text) == bool(face.present_aus), text
        v = verify(text, obs, label, None, tax)
        assert v.ok, (mods, label, v.flags, text)


def _committed(run: str) -> list[dict]:
    """The predictions an earlier release committed (kept as a fixture: the audit's "before")."""
    path = REPO / "tests" / "fixtures" / f"{run.replace('-', '_')}_before_verifier.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _photo(rec: dict) -> Observations:
    """A photo whose face shows the AUs the run recorded (intensities are not stored: 1.0 each)."""
    aus = [AUObs(au, 1.0, True) for au in rec["evidence_aus"]]
    return Observations(file=rec["id"] + ".jpg", faces=[FaceObs(box=(0, 0, 9, 9), score=0.9, aus=aus)])


def test_committed_face_rationales_that_talk_about_a_voice_are_flagged():
    recs = _committed("mini-faces-demo")
    assert len(recs) == 6
    verdicts = [verify(r["rationale"], _photo(r), r["pred"], r["probabilities"][r["pred"]], r["taxonomy"])
                for r in recs]
    assert all("wrong_modality" in v.codes for v in verdicts)
    happy = verdicts[[r["id"] for r in recs].index("faces_demo/happy-baby")]
    # "AU25 lips part, intensity D: 0.23": neither the letter nor the number is the face's
    assert {"wrong_intensity", "invented_number", "cut_section"} <= set(happy.codes), happy.flags


def test_rates_stats_and_reward():
    good, bad = verify(FACE_GOOD, PHOTO), verify(FACE_GOOD.replace("(0.70)", "(0.37)"), PHOTO)
    rates = flag_rates([good, bad, bad.to_dict(), ["invented_number"]])
    assert rates["n"] == 4 and rates["invented_number"] == 0.75 and rates["any"] == 0.75
    assert rates["wrong_modality"] == 0.0 and isinstance(good, Verdict)
    stats = rationale_stats([FACE_GOOD, FACE_GOOD, TEXT_GOOD, "", None])
    assert stats["n"] == 3 and stats["distinct_ratio"] == pytest.approx(2 / 3)
    assert stats["top_sentence_share"] == pytest.approx(2 / 3)
    assert stats["mean_length_words"] == pytest.approx(sum(len(t.split()) for t in (FACE_GOOD,) * 2 + (TEXT_GOOD,)) / 3)
    assert verifier_reward(FACE_GOOD, PHOTO) == 1.0
    assert verifier_reward(FACE_GOOD.replace("(0.70)", "(0.37)"), PHOTO) == 0.0
    assert verifier_reward(FACE_GOOD.replace("(0.70)", "(0.37)"), PHOTO, graded=True) == 0.75


def test_eval_verifier_block_counts_stored_verdicts_and_unverified_lines():
    from eval.explanation_metrics import verifier_block

    bad = verify(FACE_GOOD.replace("(0.70)", "(0.37)"), PHOTO).to_dict()
    lines = [{"rationale": FACE_GOOD, "verifier": verify(FACE_GOOD, PHOTO).to_dict()},
             {"rationale": FACE_GOOD.replace("(0.70)", "(0.37)"), "verifier": bad},
             {"rationale": TEXT_GOOD}, {"rationale": None, "error": "failed"}]
    block = verifier_block(lines)
    assert block["flag_rates"]["n"] == 2 and block["flag_rates"]["invented_number"] == 0.5
    assert block["n_unverified"] == 1 and block["rationale_stats"]["n"] == 3
    assert verifier_block([{"rationale": TEXT_GOOD}])["flag_rates"] is None


def test_an_au_gloss_may_list_fewer_emotions_but_no_other_one():
    from affectllm.explanation.claims import check_au_meanings

    assert check_au_meanings("- AU1 inner brow raiser, intensity A (trace): raised inner brows, seen in sadness and worry") == []
    bad = check_au_meanings("- AU1 inner brow raiser, intensity A (trace): raised inner brows, seen in sadness and joy")
    assert [c for c, _ in bad] == ["wrong_au_meaning"]
