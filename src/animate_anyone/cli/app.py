"""``animate-anyone app``: the Gradio page (needs the ``app`` extra)."""

from __future__ import annotations

from ..devices import DEVICE_HELP, DTYPE_HELP


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "app",
        help="serve the Gradio page: reference image + motion -> video, in the browser",
        description="Serves a local page (and a /animate endpoint for gradio_client). The default model is the "
        "packaged miniature model, so it runs offline on a CPU; --model takes any model directory or Hub id.",
    )
    p.add_argument(
        "--model",
        help="model directory, or the Hugging Face Hub id org/name of one (default: the packaged miniature model)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--dtype", default="auto", help=DTYPE_HELP)
    p.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="jobs admitted at once (default 1); they share the one model and take the device in turn, so more than "
        "1 only overlaps their pose extraction and checks with another job's rendering",
    )
    p.add_argument("--max-queue", type=int, help="users allowed to wait in the queue (default: no limit)")
    p.add_argument(
        "--keep-results", type=int, default=3600, help="seconds a finished video stays downloadable (default 3600)"
    )
    p.set_defaults(run=run)


def run(args) -> None:
    try:
        import gradio  # noqa: F401
    except ImportError:
        from ..extras import install_hint

        raise ValueError(f"the app needs Gradio: {install_hint('app')}") from None
    from ..app.ui import AppSettings, launch
    from ..config import SettingError
    from .flags import renamed

    settings = AppSettings(concurrency=args.concurrency, max_queue=args.max_queue, keep_results=args.keep_results)
    try:
        launch(args.model, host=args.host, port=args.port, device=args.device, dtype=args.dtype, settings=settings)
    except SettingError as error:  # the model's device and dtype, under this command's flags
        raise renamed(error, {"device": "--device", "dtype": "--dtype"}) from None
