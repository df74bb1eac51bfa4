"""Headless Debian Chromium driven by Selenium, for the page tests and the live-mode benchmark.

    d = browser(fake_camera="clip.y4m")    # a webdriver; the page's webcam plays clip.y4m in a loop
    got = live_run(url, seconds=15)        # open the live webcam, sample the AU bars, explain the moment

Chromium starts with the flags this machine needs (no background networking, a fresh profile)
and, with ``fake_camera``, ``--use-fake-device-for-media-stream --use-fake-ui-for-media-stream
--use-file-for-fake-video-capture=FILE`` (the permission prompt is accepted, the file is the camera).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
DONE_MARKS = ("Emotion:", "Could not explain", "Cannot use this input")


def have_browser() -> bool:
    return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()


def browser(fake_camera: str | Path | None = None, size: str = "1400,1300"):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run", f"--user-data-dir={tempfile.mkdtemp()}",
            f"--window-size={size}"]
    if fake_camera is not None:
        args += ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                 f"--use-file-for-fake-video-capture={Path(fake_camera).resolve()}"]
    for a in args:
        opts.add_argument(a)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


def wait_for(find, timeout_s: float, every_s: float = 0.25):
    """Call ``find()`` until it returns something truthy; that value, or None after ``timeout_s``."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        got = find()
        if got:
            return got
        time.sleep(every_s)
    return None


def _bars(d) -> dict | None:
    """The live bars panel's numbers: updates, rate and every data-au*/data-expr-* value."""
    return d.execute_script(
        "const e = document.querySelector('#live-bars'); if (!e) return null;"
        "const out = {updates: +e.dataset.updates, rate: +e.dataset.rate, values: {}};"
        "e.querySelectorAll('div').forEach(r => { for (const k in r.dataset) out.values[k] = +r.dataset[k]; });"
        "return out;")


def live_run(url: str, fake_camera: str | Path, seconds: float = 15.0, explain: bool = True,
             shots: Path | None = None, timeout_s: float = 600) -> dict:
    """Open the page's live webcam (fed by ``fake_camera``), sample the bars every 0.1 s for ``seconds``
    once the first face is measured, then press "Explain this moment" and wait for the chat's answer.

    Returns {"samples": [(t, bars)], "updates_per_s": measured in the page, "first_update_s",
    "chat": the chat's text, "explain_s": press to answer, "timeline": a timeline picture shown
    (the last three when ``explain``), "shots": screenshot paths}.
    """
    from selenium.webdriver.common.by import By

    d = browser(fake_camera)
    out: dict = {"samples": [], "shots": []}
    try:
        d.get(url)
        wait_for(lambda: d.find_elements(By.CSS_SELECTOR, "#live button"), 60)
        d.find_element(By.CSS_SELECTOR, "#live button").click()  # open the accordion
        access = wait_for(lambda: [b for b in d.find_elements(By.CSS_SELECTOR, "#live_cam button")
                                   if "Access Webcam" in b.text and b.is_displayed()], 30)
        if not access:
            raise AssertionError("the live webcam has no 'Click to Access Webcam' button")
        access[0].click()
        start = wait_for(lambda: [b for b in d.find_elements(By.CSS_SELECTOR, "#live_cam button")
                                  if b.is_displayed() and b.text.strip() and "Access Webcam" not in b.text], 30)
        if not start:
            raise AssertionError("the live webcam shows no start button after access was granted")
        start[-1].click()
        t_click = time.monotonic()
        if not wait_for(lambda: (_bars(d) or {}).get("values"), 120, 0.1):
            raise AssertionError(f"no face measured within 120 s of starting the stream: {_bars(d)}")
        out["first_update_s"] = time.monotonic() - t_click
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            out["samples"].append((time.monotonic() - t0, _bars(d)))
            time.sleep(0.1)
        first, last = out["samples"][0], out["samples"][-1]
        out["updates_per_s"] = (last[1]["updates"] - first[1]["updates"]) / max(last[0] - first[0], 1e-6)
        if shots is not None:
            shots.mkdir(parents=True, exist_ok=True)
            d.execute_script("document.querySelector('#live').scrollIntoView()")
            d.save_screenshot(str(shots / "ui_live.png"))
            out["shots"].append(shots / "ui_live.png")
        if explain:
            d.find_element(By.CSS_SELECTOR, "#moment").click()
            t_moment = time.monotonic()
            wait_for(lambda: any(m in d.find_element(By.CSS_SELECTOR, "#chat").text.split("this moment", 1)[-1]
                                 for m in DONE_MARKS), timeout_s, 0.5)
            out["explain_s"] = time.monotonic() - t_moment
            time.sleep(2)
            out["chat"] = d.find_element(By.CSS_SELECTOR, "#chat").text
            out["timeline"] = bool(d.find_elements(By.CSS_SELECTOR, "#timeline img"))
            if shots is not None:
                d.execute_script("window.scrollTo(0, 0)")
                d.save_screenshot(str(shots / "ui_moment.png"))
                out["shots"].append(shots / "ui_moment.png")
        return out
    finally:
        d.quit()
