"""Models shipped inside the package: the product's offline defaults (no download).

* ``mini``: the miniature Animate Anyone (a complete model directory, 64x64 pixels, trained by this project's own
  stage 1 and stage 2 commands on the synthetic benchmark; ``mini/PROVENANCE.txt``, docs/benchmark.md), the
  default model of the demo, the app and the ComfyUI node.
* ``pose_oracle``: the keypoint regressor of the synthetic benchmark (``pose.regressor``), the default of
  ``evaluate --pose-backend regressor``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def packaged_model() -> Path:
    """The miniature model directory shipped with the package."""
    path = Path(str(resources.files(__name__) / "mini"))
    if not (path / "model_index.json").is_file():
        raise FileNotFoundError(f"the packaged miniature model is missing ({path}); reinstall animate-anyone")
    return path


def packaged_pose_oracle() -> Path:
    """The keypoint regressor shipped with the package (``pose.regressor.KeypointRegressor``)."""
    return Path(str(resources.files(__name__) / "pose_oracle"))
