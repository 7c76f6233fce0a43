"""The studio's Live tab in a real browser: headless Chromium with fake camera and microphone (the
bundled driving clip and speech) talks WebRTC to `streamlit run streamlit_app.py` (the example photo);
the <video> that comes back must show the portrait (its size, not the camera's), moving.

Needs Debian's `chromium` and `chromium-driver`; skipped, saying so, without them. Everything started
here is stopped here.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from portrait_studio.media import ffmpeg_exe

from .chromium import headless_chromium

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
FRAME_STATS = """
const v = document.querySelector('video');
if (!v || !v.videoWidth) return null;
const c = document.createElement('canvas');
c.width = v.videoWidth; c.height = v.videoHeight;
const g = c.getContext('2d');
g.drawImage(v, 0, 0);
const d = g.getImageData(0, 0, c.width, c.height).data;
let sum = 0, sq = 0, n = 0;
const pixels = [];
for (let i = 0; i < d.length; i += 4 * 97) { const y = (d[i] + d[i + 1] + d[i + 2]) / 3; sum += y; sq += y * y; n++; pixels.push(y); }
const mean = sum / n;
return {width: v.videoWidth, height: v.videoHeight, mean: mean, std: Math.sqrt(sq / n - mean * mean), pixels: pixels};
"""


def _wait(predicate, timeout: float, what: str, poll: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except Exception:  # noqa: BLE001 - the page is still changing; try again
            value = None
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


@pytest.fixture
def fake_media(tmp_path) -> tuple[Path, Path]:
    """The driving clip as y4m and the speech as 16-bit wav: what Chromium's fake devices play (looped)."""
    clip, speech = tmp_path / "clip.y4m", tmp_path / "speech.wav"
    subprocess.run([ffmpeg_exe(), "-nostdin", "-v", "error", "-y", "-i", str(ROOT / "tests" / "fixtures" /
                    "driving_carphone.mp4"), "-pix_fmt", "yuv420p", str(clip)], check=True)
    subprocess.run([ffmpeg_exe(), "-nostdin", "-v", "error", "-y", "-i", str(ROOT / "examples" / "speech.wav"),
                    "-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le", str(speech)], check=True)
    return clip, speech


@pytest.fixture
def browser(fake_media):
    """Headless Chromium whose camera and microphone play the bundled clip and speech."""
    clip, speech = fake_media
    with headless_chromium("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                           f"--use-file-for-fake-video-capture={clip}",
                           f"--use-file-for-fake-audio-capture={speech}") as driver:
        yield driver


def test_live_tab_sends_back_moving_portrait_frames(studio_server, browser):
    from selenium.webdriver.common.by import By

    browser.get(studio_server)
    tab = _wait(lambda: next(t for t in browser.find_elements(By.XPATH, "//*[@role='tab']")
                             if "Live" in t.get_attribute("textContent")), 180, "the Live tab")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", tab)
    tab.click()
    toggle = _wait(lambda: next(e for e in browser.find_elements(By.XPATH, "//label[.//*[normalize-space(text())="
                                                                 "'Go live']]") if e.is_displayed()), 60, "Go live")
    toggle.click()
    frame = _wait(lambda: browser.find_element(By.CSS_SELECTOR, "iframe[title*='webrtc']"), 120, "the WebRTC component")
    browser.switch_to.frame(frame)
    start = _wait(lambda: next(b for b in browser.find_elements(By.TAG_NAME, "button") if b.text.strip() == "START"),
                  60, "the START button")
    start.click()
    first = _wait(lambda: (s := browser.execute_script(FRAME_STATS)) and s["width"] == 512 and s["std"] > 10 and s,
                  120, "portrait frames (512 px wide; the camera's are 176)")
    assert first["height"] == 512  # the portrait's frame size: these frames are ours, not the camera's echo
    changes = []
    for _ in range(8):  # the driving face moves, so the portrait does
        time.sleep(1.0)
        later = browser.execute_script(FRAME_STATS)
        changes.append(sum(abs(a - b) for a, b in zip(first["pixels"], later["pixels"], strict=True)) / len(later["pixels"]))
    assert max(changes) > 0.5, changes
    browser.switch_to.default_content()
    status = _wait(lambda: next(e.text for e in browser.find_elements(By.TAG_NAME, "p") if "latency p50" in e.text),
                   60, "the latency line")
    assert "fps" in status and "frames" in status
