"""Real-browser tests: `streamlit run streamlit_app.py` on 127.0.0.1 and headless Chromium through Selenium.

Needs Debian's `chromium` and `chromium-driver` (`apt-get install -y chromium chromium-driver`); the tests
are skipped, saying so, when they are not installed. Everything started here is stopped here.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT

from .chromium import headless_chromium

ARTIFACTS = ROOT / "tests" / "artifacts"  # screenshots (git-ignored)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def studio_server(tmp_path_factory):
    """The studio served on 127.0.0.1:<free port>; yields its URL; stopped (and its folders gone) after."""
    port = _free_port()
    workdir = tmp_path_factory.mktemp("sessions")
    env = dict(os.environ, OMP_NUM_THREADS="1", PORTRAIT_STUDIO_WORKDIR=str(workdir))
    log = open(tmp_path_factory.mktemp("log") / "streamlit.log", "w+")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "streamlit_app.py"),
                             "--server.address", "127.0.0.1", "--server.port", str(port),
                             "--server.headless", "true", "--browser.gatherUsageStats", "false"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"streamlit did not start: {log.read()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


@pytest.fixture
def browser():
    """Headless Chromium (quit after the test)."""
    with headless_chromium() as driver:
        yield driver


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
