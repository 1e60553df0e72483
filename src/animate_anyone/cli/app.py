"""``animate-anyone app``: the Gradio page (needs the ``app`` extra)."""

from __future__ import annotations

from ..devices import DEVICE_HELP, DTYPE_HELP


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "app",
        help="serve the Gradio page: reference image + motion -> video, in the browser",
        description="Serves a local page (and a /animate endpoint for gradio_client). The default model is the "
        "packaged miniature model, so it runs offline on a CPU; --model takes any model directory.",
    )
    p.add_argument("--model", help="model directory (default: the packaged miniature model)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--dtype", default="auto", help=DTYPE_HELP)
    p.set_defaults(run=run)


def run(args) -> None:
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise ValueError('the app needs Gradio: pip install "animate-anyone[app]"') from None
    from ..app.ui import launch

    launch(args.model, host=args.host, port=args.port, device=args.device, dtype=args.dtype)
