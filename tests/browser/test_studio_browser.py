"""The studio in a real browser: upload the example photo and speech, render with the warp engine at 256 px,
wait for the video, save screenshots (tests/artifacts/studio.png, the one docs/studio.png copies)."""

from __future__ import annotations

import time

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def _wait(predicate, timeout: float, what: str, poll: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except AssertionError:
            raise
        except Exception:  # noqa: BLE001 - the page is still changing; try again
            value = None
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def _click_text(driver, xpath_text: str, tag: str = "label"):
    from selenium.webdriver.common.by import By

    element = _wait(lambda: driver.find_element(By.XPATH, f"//{tag}[.//*[normalize-space(text())='{xpath_text}']]"),
                    60, xpath_text)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].click();", element)
    return element


def _upload(driver, label_start: str, path) -> None:
    from selenium.webdriver.common.by import By

    field = _wait(lambda: driver.find_element(
        By.XPATH, f"//div[@data-testid='stFileUploader'][.//*[starts-with(normalize-space(.), '{label_start}')]]"
                  "//input[@type='file']"), 60, f"the '{label_start}' uploader")
    field.send_keys(str(path))


def _idle(driver, timeout: float = 120) -> None:
    """Wait until the page's script run is over (Streamlit shows its status widget while it runs)."""
    from selenium.webdriver.common.by import By

    time.sleep(0.5)
    _wait(lambda: not driver.find_elements(By.CSS_SELECTOR, "[data-testid='stStatusWidget']"), timeout,
          "the page to finish running")


def _full_page_screenshot(driver, path) -> None:
    height = driver.execute_script(
        "const m = document.querySelector('[data-testid=\"stMain\"]') || document.body; return m.scrollHeight;")
    driver.set_window_size(1280, min(int(height) + 120, 9000))
    time.sleep(1.0)
    driver.save_screenshot(str(path))


def test_upload_render_and_watch_the_video(studio_server, browser, artifacts):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver = browser
    driver.get(studio_server)
    _wait(lambda: "1 · Portrait" in driver.find_element(By.TAG_NAME, "body").text, 120, "the page")
    # the portrait: upload the example photo; its face box and landmarks appear
    _click_text(driver, "Upload a photo")
    _upload(driver, "A photo with a face", ROOT / "examples" / "portrait.png")
    _wait(lambda: "The face that will move" in driver.find_element(By.TAG_NAME, "body").text, 120, "the face")
    # the voice: upload the example speech; its waveform and duration appear
    _idle(driver)
    _click_text(driver, "Upload a recording")
    _upload(driver, "A voice recording", ROOT / "examples" / "speech.wav")
    _wait(lambda: "7.1 s of speech" in driver.find_element(By.TAG_NAME, "body").text, 120, "the waveform")
    # the engine panel: warp, 256 px
    _idle(driver)
    _click_text(driver, "Engine", tag="summary")
    _click_text(driver, "warp")
    box = _wait(lambda: driver.find_element(
        By.XPATH, "//div[@data-testid='stSlider'][.//p[normalize-space(text())='Video size (short side, px)']]"),
        60, "the size slider")
    thumb = box.find_element(By.CSS_SELECTOR, "input[type='range']")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].focus();", thumb)
    thumb.send_keys(Keys.LEFT, Keys.LEFT)
    _wait(lambda: "256" in box.text, 30, "size 256")
    _idle(driver)  # the rerun for the new size: a click during a rerun can be lost
    _click_text(driver, "Render the video", tag="button")
    # the video comes, playable, with a download button
    def video_or_error():
        errors = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "[data-testid='stAlertContentError']")]
        if errors:
            driver.save_screenshot(str(artifacts / "studio_failure.png"))
            raise AssertionError(f"the page shows an error: {errors}")
        return driver.execute_script(
            "const v = document.querySelector('video'); return v && v.readyState >= 1 ? v.duration : null;")

    try:
        duration = _wait(video_or_error, 600, "the rendered video", poll=1.0)
    except AssertionError:
        driver.save_screenshot(str(artifacts / "studio_failure.png"))
        raise
    assert 6.5 < duration < 7.8  # the 7.1 s speech
    body = driver.find_element(By.TAG_NAME, "body").text
    assert "Render #1" in body and "Download the video" in body
    assert "Traceback" not in body and "Error" not in body
    # the README's picture: the render section with the video; and the whole page
    driver.execute_script("document.querySelector('video').scrollIntoView({block: 'end'});")
    time.sleep(1.0)
    driver.save_screenshot(str(artifacts / "studio.png"))
    _full_page_screenshot(driver, artifacts / "studio_full.png")
    assert (artifacts / "studio.png").stat().st_size > 50_000


def test_a_drag_drawn_on_the_photo_is_read_and_its_flow_shown(studio_server, browser, artifacts):
    """The canvas component works in the browser: a stroke on the photo becomes a drag in photo pixels."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    driver = browser
    driver.get(studio_server)
    _wait(lambda: "0 drag(s)" in driver.find_element(By.TAG_NAME, "body").text, 180, "the drawing canvas")
    # the component draws in a closed shadow root: aim at its host element, whose box is the canvas
    canvas = _wait(lambda: [c for c in driver.find_elements(By.CSS_SELECTOR, "[data-testid='stBidiComponentIsolated']")
                            if c.size["width"] > 300][-1], 60, "the canvas element")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", canvas)
    time.sleep(1.0)
    chain = ActionChains(driver).move_to_element_with_offset(canvas, -60, 40).click_and_hold()
    for _ in range(6):
        chain = chain.move_by_offset(10, -4).pause(0.05)
    chain.release().perform()
    body = lambda: driver.find_element(By.TAG_NAME, "body").text  # noqa: E731
    _wait(lambda: "1 drag(s)" in body(), 120, "the drag to be read")
    _wait(lambda: "Where the background moves" in body(), 120, "the flow preview")
    assert "Traceback" not in body()
    driver.save_screenshot(str(artifacts / "studio_drag.png"))
