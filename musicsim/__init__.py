"""musicsim: organise a personal music library by how it sounds.

Importing this package loads neither Qt nor torch.
"""

__version__ = "0.1.0"
