"""Inference: the pose-to-video pipeline, temporal windows, the denoising loop and the optimisations."""

from .optimisations import Optimisations
from .pipeline_animate_anyone import AnimateAnyonePipeline, AnimateAnyonePipelineOutput, PipelineHooks

__all__ = ["AnimateAnyonePipeline", "AnimateAnyonePipelineOutput", "Optimisations", "PipelineHooks"]
