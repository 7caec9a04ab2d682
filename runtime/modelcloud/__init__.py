"""modelcloud: turn a Python model into an HTTP service with a few decorators.

.. code-block:: python

    import modelcloud
    from modelcloud.data_types import image, text

    @modelcloud.setup
    def setup():
        return load_model()

    @modelcloud.command('classify', inputs={'photo': image()}, outputs={'label': text()})
    def classify(model, inputs):
        return {'label': model.predict(inputs['photo'])}

    if __name__ == '__main__':
        modelcloud.run()
"""

from __future__ import annotations

from .batching import Batching, batching  # noqa: E402
from .data_types import (  # noqa: E402
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
from .errors import ModelCloudError  # noqa: E402
from .model import Registry, default_registry  # noqa: E402
from .runner import run  # noqa: E402
from .version import __version__  # noqa: E402

setup = default_registry.setup
command = default_registry.command
meta = default_registry.meta

__all__ = [
    "__version__",
    "any",
    "array",
    "Batching",
    "batching",
    "boolean",
    "category",
    "command",
    "default_registry",
    "directory",
    "file",
    "image",
    "image_bounding_box",
    "image_landmarks",
    "image_point",
    "meta",
    "ModelCloudError",
    "number",
    "Registry",
    "run",
    "segmentation",
    "setup",
    "text",
    "vector",
]
