"""Rebuild ``affectllm/assets/face_calibration.json`` from the neutral London Set photos.

    python scripts/calibrate_au.py [--data ../shared/data] [--out affectllm/assets/face_calibration.json]

Runs MediaPipe on the 30 *neutral* photos of ``faces_london`` (never the smiling ones: they are
the held-out check of AU12), takes their Procrustes-mean shape as the frontal reference, then
frontalises each face against it and stores the mean and standard deviation of every raw AU
measure. Only these derived numbers are written (a few tens of KB); the photos stay in
the shared folder. The product reads the JSON and does not need the data at run time.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from affectllm.io.files import atomic_write_json  # noqa: E402
from affectllm.paths import data_root  # noqa: E402
from affectllm.perception.au import MEASURE_NAMES, raw_measures  # noqa: E402
from affectllm.perception.calibration import CALIBRATION_PATH, procrustes_mean  # noqa: E402
from affectllm.perception.geometry import frontalize  # noqa: E402

SD_FLOOR = 0.004  # reference units: below this a measure's spread is landmark noise, not anatomy


def neutral_landmarks(folder: Path) -> tuple[list[str], list[np.ndarray]]:
    from PIL import Image

    from affectllm.perception.mesh import FaceMesher

    mesher = FaceMesher()
    names, lms = [], []
    for f in sorted((folder / "neutral").glob("*.jpg")):
        img = np.asarray(Image.open(f).convert("RGB"))
        dets = mesher.detect(img)
        lm = mesher.mesh(img, dets[0].box) if dets else None
        if lm is None:
            print(f"skip {f.name}: no face mesh", file=sys.stderr)
            continue
        names.append(f.name)
        lms.append(lm)
    mesher.close()
    return names, lms


def calibrate(lms: list[np.ndarray]) -> dict:
    ref = procrustes_mean(lms)
    rows = [raw_measures(frontalize(lm, ref).points) for lm in lms]
    measures = {}
    for k in MEASURE_NAMES:
        v = np.array([r[k] for r in rows])
        measures[k] = {"mean": round(float(v.mean()), 6), "sd": round(max(float(v.std(ddof=1)), SD_FLOOR), 6)}
    return {"reference_shape": np.round(ref, 5).tolist(), "measures": measures}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--data", default=None, help="shared data folder (default: AFFECTLLM_DATA or ../shared/data)")
    ap.add_argument("--out", default=str(CALIBRATION_PATH))
    a = ap.parse_args(argv)
    root = Path(a.data) if a.data else data_root(required=True)
    names, lms = neutral_landmarks(root / "faces_london")
    if len(lms) < 10:
        raise SystemExit(f"only {len(lms)} neutral faces meshed: too few to calibrate")
    cal = calibrate(lms)
    cal["source"] = {"dataset": "Face Research Lab London Set (CC BY 4.0), neutral photos",
                     "n_faces": len(lms), "files": names,
                     "units": "reference units: eye-centre distance = 1, y up, origin between the eyes"}
    atomic_write_json(Path(a.out), cal)
    print(f"wrote {a.out}: {len(lms)} faces, {len(cal['measures'])} measures")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
