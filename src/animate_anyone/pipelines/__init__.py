"""Inference: the pose-to-video pipeline, temporal windows and the denoising loop."""

from .pipeline_animate_anyone import AnimateAnyonePipeline, AnimateAnyonePipelineOutput

__all__ = ["AnimateAnyonePipeline", "AnimateAnyonePipelineOutput"]
