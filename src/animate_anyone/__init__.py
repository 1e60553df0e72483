"""animate-anyone: Animate Anyone (Hu et al., 2023) on diffusers.

Importing the package is cheap; heavy submodules load when first used.
"""

__version__ = "0.1.0"
