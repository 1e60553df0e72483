"""Animate Anyone nodes for ComfyUI: copy (or clone) this folder into ``ComfyUI/custom_nodes/`` and install the
library into ComfyUI's Python from a checkout of this repository (``pip install /path/to/animate-anyone``; it is not
on PyPI). See docs/comfyui.md."""

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
