"""The integration tier (``pytest -m integration``, set up by ``.ci/integration``): real servers and clients."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, timeout: float, log: Path) -> None:
    """Poll ``url`` until it answers 200; fail with the server's log if it dies or the time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"server not ready after {timeout} s:\n{log.read_text()[-3000:]}")


def start(command: list[str], log: Path, cwd=None, env=None) -> subprocess.Popen:
    return subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=cwd, env=env)


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="session")
def demo_inputs(tmp_path_factory) -> dict[str, Path]:
    """A held-out synthetic character (reference.png), its motion as rendered skeletons (pose.mp4), and a file
    that is not a video (bad.mp4)."""
    from PIL import Image

    from animate_anyone.media import write_video
    from animate_anyone_lab.demo import demo_clip

    folder = tmp_path_factory.mktemp("inputs")
    reference, _, poses = demo_clip(index=1, frames=12, size=64)
    Image.fromarray(reference).save(folder / "reference.png")
    write_video(folder / "pose.mp4", list(poses), 12.0)
    (folder / "bad.mp4").write_bytes(b"this is not a video")
    return {"reference": folder / "reference.png", "pose": folder / "pose.mp4", "bad": folder / "bad.mp4"}


@pytest.fixture(scope="session")
def app_server(tmp_path_factory):
    """``animate-anyone app`` (the packaged miniature model) on a free loopback port; yields its URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("app") / "server.log"
    process = start([sys.executable, "-m", "animate_anyone.cli.main", "app", "--port", str(port)], log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(url + "/", process, 120, log)
        yield url
    finally:
        stop(process)


CHROMIUM = os.environ.get("ANIMATE_ANYONE_CHROMIUM", "/usr/bin/chromium")
SCREENSHOT_DIR = os.environ.get("ANIMATE_ANYONE_SCREENSHOTS")  # docs/images when refreshing the docs' pictures


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium, headless, driven by Playwright (no browser is downloaded)."""
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no chromium at {CHROMIUM}: apt-get install -y chromium (see .ci/integration)")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
        )
        yield browser
        browser.close()


def shot(page, name: str) -> None:
    """A full-page screenshot into $ANIMATE_ANYONE_SCREENSHOTS (when set)."""
    if SCREENSHOT_DIR:
        page.screenshot(path=str(Path(SCREENSHOT_DIR) / name), full_page=True)
