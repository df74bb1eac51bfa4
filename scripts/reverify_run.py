"""Re-check a committed eval run's shown rationales with today's verifier, without generating again.

The verifier grows as reading outputs finds claims it let through. This re-perceives the run's items
(as ``eval run`` does), verifies each shown rationale of the ``model`` system against its decided
answer and probability, and prints how many model-written ones would now fall back to the template,
with each new flag. It changes nothing in the run folder; re-run the eval to change what is shown.

    python scripts/reverify_run.py eval/results/mini-faces-london --source faces_london
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir")
    p.add_argument("--source", required=True)
    p.add_argument("--system", default="model")
    p.add_argument("--show", type=int, default=40, help="print at most this many newly failing rationales")
    args = p.parse_args(argv)

    from affectllm.explanation.answer import decide
    from affectllm.explanation.verify import verify
    from affectllm.perception.pipeline import Perception
    from affectllm.perception.text_expression import annotate, shipped
    from data_engine.sources import open_source
    from eval.generate import to_item

    path = Path(args.run_dir) / "predictions.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r.get("system") == args.system and r.get("rationale") and not r.get("error")]
    samples = {s.id: s for s in open_source(args.source).load(require=True)}
    perception, text_expert = Perception(), None
    counts, new_codes, shown = Counter(), Counter(), 0
    for r in rows:
        item = to_item(samples[r["id"]])
        obs = perception.perceive(item)
        if obs.text:
            text_expert = text_expert or shipped()
            annotate(obs, text_expert)
        extra = decide(obs, None, r["taxonomy"]).extra  # the classifier scores inference verifies against
        p_answer = (r.get("probabilities") or {}).get(r["pred"])
        verdict = verify(r["rationale"], obs, r["pred"], p_answer, r["taxonomy"], extra)
        src = r.get("rationale_source", "model")
        counts[(src, verdict.ok)] += 1
        if not verdict.ok:
            new_codes.update(verdict.codes)
            if shown < args.show:
                shown += 1
                print(f"--- {r['id']} ({src}) answer {r['pred']} p={p_answer}")
                print("   " + r["rationale"].split("<think>")[-1].split("</think>")[0].strip().replace("\n", "\n   "))
                for f in verdict.flags:
                    print(f"   !! {f.code}: {f.detail}")
    model_ok = counts[("model", True)]
    model_all = model_ok + counts[("model", False)]
    print(f"\n{path}: {len(rows)} rationales; model-written {model_all}, still passing {model_ok}; "
          f"template {counts[('template', True)] + counts[('template', False)]}, "
          f"template now flagged {counts[('template', False)]}")
    print("flag codes now raised:", dict(new_codes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
