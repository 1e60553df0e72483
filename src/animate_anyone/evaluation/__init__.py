"""Evaluation of generated videos against their ground truth.

* :mod:`animate_anyone.evaluation.registry`: the one list of metrics (kind, direction, convention, how computed).
* :mod:`animate_anyone.evaluation.metrics`: pixel and pose metrics (L1, PSNR, SSIM, flicker, PCK).
* :mod:`animate_anyone.evaluation.features`: learned metrics, LPIPS and the Fréchet distances FID (Inception-v3),
  FID-VID (Kinetics 3D ResNet-50) and FVD (Kinetics I3D), with strict loaders for the published weight files.
* :mod:`animate_anyone.evaluation.evaluate`: ``evaluate()`` over two folders of videos, and its output files
  (built from ``pairing``, ``scoring``, ``learned`` and ``output``).

Importing this package loads nothing heavy; import the submodules you need.
"""
