"""``runway``, as modelcloud provides it when Runway's own package is not installed.

A model written for runway-python 0.6.1 runs unchanged: ``runway.setup``, ``runway.command``,
``runway.run`` and the data types, with Runway's argument order. See the README, "Coming from Runway".
"""

import modelcloud as _modelcloud

from .data_types import (
    BaseType,
    any,
    array,
    boolean,
    category,
    directory,
    file,
    image,
    image_bounding_box,
    image_landmarks,
    image_point,
    number,
    segmentation,
    text,
    vector,
)
from .model import RunwayModel

__version__ = _modelcloud.__version__

#: Runway's name for the model the decorators fill: modelcloud's default registry.
__defaultmodel__ = _modelcloud.default_registry
setup = _modelcloud.setup
command = _modelcloud.command
run = _modelcloud.run
meta = _modelcloud.meta

__all__ = [
    "BaseType",
    "RunwayModel",
    "any",
    "array",
    "boolean",
    "category",
    "command",
    "directory",
    "file",
    "image",
    "image_bounding_box",
    "image_landmarks",
    "image_point",
    "meta",
    "number",
    "run",
    "segmentation",
    "setup",
    "text",
    "vector",
]
