"""Headless Chromium through Selenium for the browser tests (Debian's `chromium` and `chromium-driver`)."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
ARGS = ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1600", "--disable-gpu",
        "--mute-audio")


@contextlib.contextmanager
def headless_chromium(*extra_args: str) -> Iterator:
    """A Selenium driver of headless Chromium with `ARGS` and `extra_args`, quit on leaving; skips the test,
    saying why, when Chromium or its driver is not installed."""
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("the browser test needs Debian's chromium and chromium-driver "
                    "(apt-get install -y chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for arg in (*ARGS, *extra_args):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()
