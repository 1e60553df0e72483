"""Test helper: run a command, send it a signal once its progress bar shows a given step, and wait."""

from __future__ import annotations

import re
import signal
import subprocess
import threading


def _default_sigint() -> None:
    # A shell starts background jobs with SIGINT ignored, and Python then installs no KeyboardInterrupt handler:
    # give the child the default disposition a terminal's Ctrl-C meets, however this suite was started.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def stop_at(command: list[str], pattern: bytes, timeout: float = 300, signum: int = signal.SIGTERM) -> tuple[int, str]:
    """Start ``command``; when its stderr (the progress bar) matches ``pattern``, send ``signum``; return
    (exit code, the tail of its stderr). Fails the test if the pattern never shows."""
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, preexec_fn=_default_sigint)
    seen, reached = bytearray(), threading.Event()

    def watch():
        while chunk := process.stderr.read1(256):
            seen.extend(chunk)
            if re.search(pattern, seen):
                reached.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    if not reached.wait(timeout=timeout):
        process.kill()
        raise AssertionError(f"{pattern!r} never showed:\n{seen[-2000:].decode(errors='replace')}")
    process.send_signal(signum)
    code = process.wait(timeout=timeout)
    watcher.join(timeout=timeout)  # the last lines it wrote before exiting
    return code, seen[-2000:].decode(errors="replace")
