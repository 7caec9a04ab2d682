"""The version of the ``modelcloud`` runtime (its manifest's ``sdkVersion``)."""

__version__ = "0.1.0"
