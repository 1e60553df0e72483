"""The Gradio page of ``animate-anyone app``: widgets -> ``AnimateService`` calls, nothing else.

Jobs go through Gradio's queue (every event that runs the model shares one concurrency group of
``AppSettings.concurrency`` jobs; a waiting user sees their place in the queue); errors become messages in the
page. Cancelling an event (the page's "Cancel" button, or a ``gradio_client`` job's ``cancel()``) stops that
user's job at its next denoising step, so the device is free for the next one at once. A job's folder is
removed once Gradio has copied its files into its cache, which Gradio empties of results older than
``AppSettings.keep_results`` seconds. The named endpoint ``/animate`` takes (reference image, motion file) and
optional settings and returns the video, for ``gradio_client``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass

from .service import MOTION_KINDS, AnimateService, JobCancelled

logger = logging.getLogger(__name__)
DEVICE_QUEUE = "device"  # the concurrency group of everything that runs the model: one job at a time
# The page's one difference from the other front ends: an empty widget, or the value its label names for "the
# default", means the default (None). Every other value goes on as it is, checked by the rules every front end
# shares (pipelines.settings).
UNSET = {"preset": "model default", "steps": 0, "guidance": -1, "frames": 0, "size": ""}


@dataclass(frozen=True)
class AppSettings:
    """How the app serves many users; checked once, here."""

    concurrency: int = 1  # jobs admitted at once (they share the model and take the device one at a time)
    max_queue: int | None = None  # users allowed to wait; more are told the queue is full (None: no limit)
    keep_results: int = 3600  # seconds a finished job's files stay downloadable in Gradio's cache

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"--concurrency {self.concurrency}: give at least 1")
        if self.max_queue is not None and self.max_queue < 1:
            raise ValueError(f"--max-queue {self.max_queue}: give at least 1 (or leave it out: no limit)")
        if self.keep_results < 1:
            raise ValueError(f"--keep-results {self.keep_results}: give at least 1 second")


# The page's name for each setting it shows (its field's label): the one place the page renames the library's
# settings, in the widgets and in the messages (``_message``).
LABELS = {
    "preset": "Speed preset",
    "steps": "Steps",
    "guidance": "Guidance scale",
    "seed": "Seed",
    "frames": "Frames",
    "size": "Size",
    "context_frames": "Window length",
    "context_overlap": "Window overlap",
    "decoder": "Decoder",
}
DECODER_INFO = (
    "vae: the model's VAE; light: its light decoder (from `animate-anyone train light-decoder` or TAESD by "
    "`animate-anyone convert light-decoder`), a fraction of the decode's work, not exact"
)


def _settings(preset, steps, guidance, seed, frames, size, context_frames, context_overlap, decoder) -> dict:
    """Page values -> AnimateConfig fields (``UNSET`` and empty widgets -> None)."""
    from ..pipelines.settings import unset_markers

    page = dict(
        preset=preset,
        steps=steps,
        guidance=guidance,
        seed=seed,
        frames=frames,
        size=size.strip() if isinstance(size, str) else size,
        context_frames=context_frames,
        context_overlap=context_overlap,
        decoder=decoder,
    )
    return unset_markers(page, UNSET)


def build_app(service: AnimateService, settings: AppSettings = AppSettings()):  # noqa: B008 (frozen)
    """The page as a ``gradio.Blocks`` (not launched)."""
    import gradio as gr

    from ..pipelines.pipeline_animate_anyone import DECODERS
    from ..pipelines.settings import PRESETS

    async def job(reference, motion, kind, side_by_side, page_settings):
        """The service's job in a worker thread; if Gradio cancels this event, the job stops at its next step."""
        cancel = threading.Event()
        try:
            return await asyncio.to_thread(
                service.animate, reference, motion, kind, side_by_side=side_by_side, cancel=cancel, **page_settings
            )
        except asyncio.CancelledError:
            cancel.set()
            raise

    async def run(
        reference,
        motion,
        kind,
        preset,
        steps,
        guidance,
        seed,
        frames,
        size,
        context,
        overlap,
        decoder,
        side_by_side,
        progress=gr.Progress(track_tqdm=True),  # noqa: B008  (Gradio's way: shows the pipeline's steps x windows bar)
    ):
        page_settings = _settings(preset, steps, guidance, seed, frames, size, context, overlap, decoder)
        try:
            result = await job(reference, motion, kind, side_by_side, page_settings)
        except JobCancelled:
            gr.Warning("The job was cancelled.")
            yield None, None, None, "Cancelled."
            return
        except Exception as exc:  # every failure is a message in the page; the app keeps serving
            logger.exception("animation failed")
            raise gr.Error(_message(exc)) from None
        where = f"{service.model.name}, {service.pipeline().device}"
        status = f"{result.frames} frames, {result.steps} steps, in {result.seconds:.1f} s ({where})."
        panel = str(result.side_by_side) if result.side_by_side else None
        keypoints = str(result.keypoints) if result.keypoints else None
        try:
            yield str(result.video), panel, keypoints, status  # Gradio copies the files into its cache here
        finally:
            service.release(result)

    async def run_api(
        reference, motion, kind, preset, steps, guidance, seed, frames, size, context, overlap, decoder="vae"
    ):
        args = (reference, motion, kind, preset, steps, guidance, seed, frames, size, context, overlap, decoder, False)
        async for outputs in run(*args):
            yield outputs[0]

    def preview(reference, motion, kind):
        try:
            return service.preview(reference, motion, kind)
        except Exception as exc:
            raise gr.Error(_message(exc)) from None

    keep = settings.keep_results
    with gr.Blocks(title="Animate Anyone", delete_cache=(min(keep, 600), keep)) as page:
        gr.Markdown(
            "# Animate Anyone\nOne image of a character and a motion in, a video of the character doing the "
            f"motion out. Model: `{service.model}`."
        )
        with gr.Row():
            with gr.Column():
                reference = gr.Image(label="Reference image", type="filepath", height=256, elem_id="reference")
                kind = gr.Radio(
                    list(MOTION_KINDS),
                    value="pose video",
                    label="Motion",
                    info="; ".join(f"{k}: {v}" for k, v in MOTION_KINDS.items()),
                    elem_id="kind",
                )
                motion = gr.File(label="Motion file (video, image or keypoints)", type="filepath", elem_id="motion")
                with gr.Accordion("Settings", open=False, elem_id="settings-accordion"):
                    choices = [UNSET["preset"], *PRESETS]
                    preset = gr.Dropdown(choices, value=UNSET["preset"], label=LABELS["preset"])
                    steps = gr.Number(0, precision=0, label=f"{LABELS['steps']} (0: the preset's)", elem_id="steps")
                    guidance = gr.Number(-1, label=f"{LABELS['guidance']} (-1: the preset's; 1 or less: off)")
                    seed = gr.Number(0, precision=0, label=LABELS["seed"])
                    frames = gr.Number(0, precision=0, label=f"{LABELS['frames']} (0: all)")
                    size = gr.Textbox("", label=f"{LABELS['size']} WIDTHxHEIGHT (empty: the reference's aspect ratio)")
                    context = gr.Number(24, precision=0, label=f"{LABELS['context_frames']} (frames)")
                    overlap = gr.Number(4, precision=0, label=f"{LABELS['context_overlap']} (frames)")
                    decoder = gr.Dropdown(
                        list(DECODERS), value="vae", label=LABELS["decoder"], info=DECODER_INFO, elem_id="decoder"
                    )
                    side_by_side = gr.Checkbox(True, label="Also write reference | pose | result")
                with gr.Row():
                    show = gr.Button("Preview skeleton", elem_id="preview-button")
                    go = gr.Button("Animate", variant="primary", elem_id="animate-button")
                    stop = gr.Button("Cancel", variant="stop", elem_id="cancel-button")
            with gr.Column():
                skeleton = gr.Image(
                    label="Skeleton over the reference", interactive=False, height=256, elem_id="skeleton"
                )
                video = gr.Video(label="Animation", interactive=False, autoplay=True, elem_id="result")
                panel = gr.Video(label="Reference | pose | result", interactive=False, elem_id="side-by-side")
                keypoints = gr.File(label="Driving keypoints", interactive=False, elem_id="keypoints")
                status = gr.Markdown(elem_id="status")
        inputs = [reference, motion, kind, preset, steps, guidance, seed, frames, size, context, overlap, decoder]
        show.click(preview, [reference, motion, kind], skeleton, api_visibility="private")
        limit = settings.concurrency
        animation = go.click(
            run,
            [*inputs, side_by_side],
            [video, panel, keypoints, status],
            api_visibility="private",
            concurrency_id=DEVICE_QUEUE,
            concurrency_limit=limit,
        )
        stop.click(None, None, None, cancels=[animation], queue=False, api_visibility="private")
        hidden = gr.Button(visible=False)
        hidden.click(run_api, inputs, video, api_name="animate", concurrency_id=DEVICE_QUEUE, concurrency_limit=limit)
    return page


def _message(exc: BaseException) -> str:
    """One line for the page: the error's own message (ours name the bad value and the fix), a setting under the
    page's label for it (``LABELS``)."""
    from ..config import SettingError

    if isinstance(exc, SettingError):
        exc = exc.named(LABELS)
    text = str(exc).strip() or type(exc).__name__
    return text if isinstance(exc, (ValueError, FileNotFoundError)) else f"{type(exc).__name__}: {text}"


def launch(
    model=None,
    host: str = "127.0.0.1",
    port: int = 7860,
    device: str = "auto",
    dtype: str = "auto",
    settings: AppSettings = AppSettings(),  # noqa: B008 (frozen)
):
    """Build the service and the page and serve it (blocks until stopped; then the working folder is removed)."""
    service = AnimateService(model, device=device, dtype=dtype)
    page = build_app(service, settings)
    try:
        queue = page.queue(default_concurrency_limit=settings.concurrency, max_size=settings.max_queue)
        queue.launch(server_name=host, server_port=port, show_error=True)
    finally:
        service.close()
