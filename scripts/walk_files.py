"""The files a newcomer walks through from ``animate-anyone animate`` to frames on disk, measured, not guessed.

    .venv/bin/python scripts/walk_files.py SRC_DIR MODEL REFERENCE POSE_DIR [--json OUT]

Runs the ``animate`` command of the tree in SRC_DIR (1 step, 4 frames, PNG frames into a temporary folder) under a
profiler hook and lists every source file of the project's packages whose code ran, in the order first entered,
with the number of functions entered in each. Used by docs/architecture.md ("A newcomer's walk") on the trees
before and after a refactor.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, sys
from pathlib import Path
src = Path(sys.argv[1]).resolve()
seen = {}

def hook(frame, event, arg):
    if event == "call":
        path = Path(frame.f_code.co_filename)
        if path.is_relative_to(src) and path.suffix == ".py":
            key = path.relative_to(src).as_posix()
            seen[key] = seen.get(key, 0) + 1

argv = ["animate", "--model", sys.argv[2], "--reference", sys.argv[3], "--pose", sys.argv[4], "--out", sys.argv[5],
        "--frames", "4", "--steps", "1", "--quiet"]
sys.setprofile(hook)  # before the command's own import: what importing it runs counts too
from animate_anyone.cli.main import main
code = main(argv)
sys.setprofile(None)
print(json.dumps({"exit": code, "files": seen}))
"""


def walk(src: Path, model: str, reference: str, pose: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = {"PYTHONPATH": str(src), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(src), model, reference, pose, str(Path(tmp) / "frames")],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    files = result["files"]
    by_package: dict[str, int] = {}
    for name in files:
        by_package[name.split("/")[0]] = by_package.get(name.split("/")[0], 0) + 1
    return {"exit": result["exit"], "files": len(files), "by_package": by_package, "walk": files}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src")
    parser.add_argument("model")
    parser.add_argument("reference")
    parser.add_argument("pose")
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args()
    result = walk(Path(args.src).resolve(), args.model, args.reference, args.pose)
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
