"""The main job on the offline default model: check the stack, then explain a face photo, a
speech clip and a sentence from the shared data, printing each emotion with its reasoning and
writing the results (JSONL) and pictures (landmark overlay, AU chart) to --out.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

DEMO_TEXT = "I waited all year for this concert and they cancelled it an hour before. Unbelievable."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="default: affectllm-mini when trained, else base")
    p.add_argument("--out", default="outputs/demo", help="folder for results and pictures")
    p.add_argument("--skip-doctor", action="store_true")


def demo_inputs(data: Path | None) -> list[dict]:
    items = []
    if data is not None:
        face = data / "faces_demo" / "happy-baby.jpeg"
        clip = data / "emodb" / "wav" / "03a01Wa.wav"
        if face.is_file():
            items.append({"id": "face: faces_demo/happy-baby.jpeg (gold: happiness)", "image": str(face)})
        if clip.is_file():
            items.append({"id": "voice: emodb/03a01Wa.wav (gold: anger)", "audio": str(clip)})
    items.append({"id": "text (gold: anger)", "text": DEMO_TEXT})
    return items


def run(args) -> int:
    from affectllm.commands import doctor
    from affectllm.paths import data_root

    if not args.skip_doctor:
        code = doctor.run(argparse.Namespace(json=False, no_load=False))
        if code:
            print("\ndemo stopped: the default stack is incomplete (see the fixes above)", file=sys.stderr)
            return code
    from affectllm.io.files import atomic_write_bytes, atomic_write_text
    from affectllm.inference import Explainer
    from affectllm.io.item import Item
    from affectllm.model.builder import default_model_name

    data = data_root()
    if data is None:
        print("note: shared data not found (AFFECTLLM_DATA); the demo explains text only")
    name = args.model or default_model_name()
    print(f"\n== explaining with model '{name}'")
    t0 = time.perf_counter()
    explainer = Explainer.from_name(name)
    print(f"model loaded in {time.perf_counter() - t0:.1f} s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    for spec in demo_inputs(data):
        item = Item(**spec)
        t0 = time.perf_counter()
        res = explainer.explain(item)
        d = res.to_dict()
        lines.append(json.dumps(d, ensure_ascii=False))
        print(f"\n--- {item.id}  ({time.perf_counter() - t0:.1f} s)")
        if d["error"]:
            print(f"error: {d['error']}")
            continue
        print(f"evidence: {res.observations.to_text()}")
        print(d["rationale"])
        if d["rationale_source"] == "model":
            print("(rationale written by the model; it passed the verifier)")
        elif d["rejected_rationales"]:
            print(f"(the model's {len(d['rejected_rationales'])} draft(s) failed the verifier: "
                  f"{', '.join(sorted({f['code'] for r in d['rejected_rationales'] for f in r['flags']}))}; "
                  "the evidence template is shown)")
        else:
            print("(evidence template: this model writes no draft for such input)")
        top = sorted(d["probabilities"].items(), key=lambda kv: -kv[1])[:3]
        print(f"=> {d['emotion']}  ({', '.join(f'{k} {v:.2f}' for k, v in top)})")
        if res.observations.faces and item.image:
            from affectllm.io import load_image
            from affectllm.perception import render

            stem = Path(item.image).stem
            atomic_write_bytes(out / f"{stem}_landmarks.png",
                               render.overlay_png(load_image(item.image), res.observations.faces))
            atomic_write_bytes(out / f"{stem}_aus.png", render.au_chart_png(res.observations.faces[0]))
    atomic_write_text(out / "explanations.jsonl", "\n".join(lines) + "\n")
    print(f"\nresults: {out / 'explanations.jsonl'} (+ PNG pictures)")
    return 0 if all(json.loads(x)["error"] is None for x in lines) else 1
