"""Training: stage 1 (image level) and stage 2 (temporal layers) on accelerate."""
