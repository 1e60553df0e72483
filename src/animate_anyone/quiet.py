"""Quiet runs: the libraries' loading bars and log lines, switched in one place (``--quiet``, the loader)."""

from __future__ import annotations

import contextlib

_QUIET = False  # set by silence_libraries (--quiet)


def hide_progress_bars() -> None:
    """No loading bars from diffusers and transformers (those imported or cheap to import)."""
    import importlib
    import importlib.util

    for name in ("diffusers", "transformers"):
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(f"{name}.utils.logging").disable_progress_bar()


def silence_libraries() -> None:
    """``--quiet``: no loading bars from diffusers / transformers / huggingface_hub and no C++ log lines from
    MediaPipe (absl/glog) or TensorFlow Lite. Environment first (read when those libraries start), then the
    switches of the libraries already imported or cheap to import."""
    import importlib
    import importlib.util
    import os

    global _QUIET
    _QUIET = True
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    hide_progress_bars()
    for name in ("diffusers", "transformers"):
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(f"{name}.utils.logging").set_verbosity_error()


@contextlib.contextmanager
def native_logs_silenced():
    """Under ``--quiet``, the C++ log lines that native libraries (MediaPipe's absl logging) write straight to
    file descriptor 2 go to /dev/null for the duration of the block; otherwise nothing changes."""
    if not _QUIET:
        yield
        return
    import os
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
