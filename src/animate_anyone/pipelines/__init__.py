"""Inference: temporal windows and the denoising loop."""
