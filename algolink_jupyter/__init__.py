"""AlgoLink for Jupyter: serve notebook functions from the kernel, export them as bundles, run the hub.

The runtime SDK a ``cloud_model.py`` imports is the sibling package :mod:`modelcloud`.
"""

__version__ = "0.1.0"
