"""Training data: a dataset directory (manifest + keypoints), its preparation from raw videos, and the loader.

* :mod:`.manifest`: the on-disk layout, ``Clip``, ``read_manifest`` / ``write_manifest``.
* :mod:`.prepare`: ``prepare_dataset`` (``animate-anyone data prepare``): probe, quarantine, extract keypoints.
* :mod:`.dataset`: ``VideoPoseDataset`` (samples keyed by ``(clip index, seed)``), ``Sample``, ``collate``.

Importing this package loads neither torch nor a pose backend; ``from animate_anyone.data.dataset import ...``
loads torch.
"""

from .manifest import (
    MANIFEST_NAME,
    QUARANTINE_NAME,
    Clip,
    ManifestError,
    read_manifest,
    read_quarantine,
    write_manifest,
)

__all__ = [
    "MANIFEST_NAME",
    "QUARANTINE_NAME",
    "Clip",
    "ManifestError",
    "read_manifest",
    "read_quarantine",
    "write_manifest",
]
