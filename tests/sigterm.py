"""Test helper: run a training command, send SIGTERM once its progress bar shows a given step, and wait."""

from __future__ import annotations

import re
import signal
import subprocess
import threading


def stop_at(command: list[str], pattern: bytes, timeout: float = 300) -> tuple[int, str]:
    """Start ``command``; when its stderr (the progress bar) matches ``pattern``, send SIGTERM; return
    (exit code, the tail of its stderr). Fails the test if the pattern never shows."""
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.PIPE)
    seen, reached = bytearray(), threading.Event()

    def watch():
        while chunk := process.stderr.read1(256):
            seen.extend(chunk)
            if re.search(pattern, seen):
                reached.set()

    threading.Thread(target=watch, daemon=True).start()
    if not reached.wait(timeout=timeout):
        process.kill()
        raise AssertionError(f"{pattern!r} never showed:\n{seen[-2000:].decode(errors='replace')}")
    process.send_signal(signal.SIGTERM)
    code = process.wait(timeout=timeout)
    return code, seen[-2000:].decode(errors="replace")
