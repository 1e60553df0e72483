"""``animate-anyone app`` in a real headless browser (Debian's chromium through Playwright) and through
``gradio_client``: upload, animate, the result video loads and plays; a bad upload shows a message and the
app keeps serving."""

from __future__ import annotations

import re
import time

import pytest

from .conftest import shot

pytestmark = pytest.mark.integration


def test_upload_animate_and_play_then_a_bad_upload(browser, app_server, demo_inputs):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(app_server)
    page.locator("#reference input[type=file]").set_input_files(str(demo_inputs["reference"]))
    page.locator("#motion input[type=file]").set_input_files(str(demo_inputs["pose"]))
    # The skeleton preview first.
    page.locator("#preview-button").click()
    page.wait_for_selector("#skeleton img", timeout=60_000)
    # Animate; the result video must load (readyState >= 2: current data) and play.
    start = time.monotonic()
    page.locator("#animate-button").click()
    page.wait_for_function(
        "() => { const v = document.querySelector('#result video'); return v && v.readyState >= 2; }",
        timeout=300_000,
    )
    first_result = time.monotonic() - start
    played = page.evaluate(
        """async () => {
            const v = document.querySelector('#result video');
            v.muted = true;
            await v.play();
            await new Promise(r => setTimeout(r, 700));
            return [v.currentTime, v.videoWidth, v.videoHeight, v.duration];
        }"""
    )
    current, width, height, duration = played
    assert current > 0 and (width, height) == (64, 64) and duration == pytest.approx(1.0, abs=0.1), played
    assert re.search(r"12 frames, 25 steps, in [\d.]+ s", page.locator("#status").inner_text())
    page.wait_for_function(
        "() => { const v = document.querySelector('#side-by-side video'); return v && v.readyState >= 2; }",
        timeout=60_000,
    )
    shot(page, "app.png")
    # A long job, cancelled: the page stays usable and the next job runs.
    page.locator("#settings-accordion").click()
    page.locator("#steps input").fill("400")
    page.locator("#animate-button").click()
    page.wait_for_selector(".progress-text, .eta-bar", timeout=60_000)  # the progress display is up
    page.locator("#cancel-button").click()
    page.locator("#steps input").fill("2")
    page.locator("#animate-button").click()
    page.wait_for_function(
        "() => /12 frames, 2 steps, in [0-9.]+ s/.test(document.querySelector('#status').innerText)", timeout=120_000
    )
    print(f"time to first result in the app (miniature model, 12 frames, browser): {first_result:.1f} s")
    # A file that is not a video: a message in the page, no traceback, and the app still serves.
    page.locator("#motion button[aria-label=Clear]").click()
    page.locator("#motion input[type=file]").set_input_files(str(demo_inputs["bad"]))
    page.locator("#animate-button").click()
    message = page.get_by_text(re.compile("cannot decode it as video"))
    message.first.wait_for(timeout=60_000)
    assert "Traceback" not in page.content()
    shot(page, "app_error.png")
    page.reload()
    page.wait_for_selector("#animate-button", timeout=30_000)
    page.close()


def test_gradio_client_calls_the_named_endpoint(app_server, demo_inputs, tmp_path):
    client_module = pytest.importorskip("gradio_client")
    from animate_anyone.media import probe_frames

    client = client_module.Client(app_server, download_files=str(tmp_path))
    result = client.predict(
        client_module.handle_file(str(demo_inputs["reference"])),
        client_module.handle_file(str(demo_inputs["pose"])),
        api_name="/animate",
    )
    video = result["video"] if isinstance(result, dict) else result
    info = probe_frames(video)
    assert (info.num_frames, info.width, info.height) == (12, 64, 64)
    # Optional settings by name: fewer frames.
    result = client.predict(
        client_module.handle_file(str(demo_inputs["reference"])),
        client_module.handle_file(str(demo_inputs["pose"])),
        frames=5,
        api_name="/animate",
    )
    video = result["video"] if isinstance(result, dict) else result
    assert probe_frames(video).num_frames == 5
