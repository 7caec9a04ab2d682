"""A model written for Runway's model SDK (runway-python 0.6.1), served by AlgoLink unchanged.

Nothing here names AlgoLink or modelcloud: `algolink serve runway_model.py` and the hub give it
`runway` (modelcloud's Runway API) when Runway's own package is not installed. It uses what Runway
models use: setup options without defaults (Runway's implicit defaults apply), a category of numbers,
a custom data type built on `BaseType`, an input name with a space, an image output, and a generator
command that reports progress with `yield (outputs, progress)`.
"""

import numpy as np
import runway
from runway.data_types import BaseType, boolean, category, image, number, text
from runway.exceptions import InvalidArgumentError


class color(BaseType):
    """A colour sent as '#rrggbb' text; the model gets an (r, g, b) tuple."""

    def __init__(self, description=None, default=None):
        super().__init__("color", description=description)
        if default is not None:
            self.default = default

    def deserialize(self, value):
        digits = "0123456789abcdef"
        if (
            not isinstance(value, str)
            or len(value) != 7
            or value[0] != "#"
            or any(c not in digits for c in value[1:].lower())
        ):
            raise InvalidArgumentError(self.name, "a colour is written like #ff8800")
        return tuple(int(value[i : i + 2], 16) for i in (1, 3, 5))

    def serialize(self, value, output_format=None):
        return "#{:02x}{:02x}{:02x}".format(*tuple(int(c) for c in value))

    def to_dict(self):
        ret = super().to_dict()
        ret["pattern"] = "#rrggbb"
        return ret


@runway.setup(
    options={
        "greeting": text(description="What every caption starts with"),
        "scale": number(description="How many pixels each square takes", min=1, max=4, step=1),
        "shout": boolean(description="Captions in capitals"),
        "size": category(description="The side of the picture, in squares", choices=[8, 16, 32]),
    }
)
def setup(opts):
    return dict(opts)


@runway.command(
    "paint",
    inputs={"fill": color(description="The colour to paint with"), "label text": text()},
    outputs={"image": image(), "caption": text(), "dark": boolean(), "complement": color()},
    description="Paint a square picture of one colour and caption it.",
)
def paint(model, inputs):
    side = int(model["size"] * model["scale"])
    r, g, b = inputs["fill"]
    pixels = np.zeros((side, side, 3), dtype=np.uint8)
    pixels[:, :] = (r, g, b)
    caption = "{} {}".format(model["greeting"], inputs["label text"])
    if model["shout"]:
        caption = caption.upper()
    return {
        "image": pixels,
        "caption": caption.strip(),
        "dark": (r + g + b) < 384,
        "complement": (255 - r, 255 - g, 255 - b),
    }


@runway.command(
    "count",
    inputs={"steps": category(choices=[2, 4, 8], description="How many steps to count")},
    outputs={"count": number(), "done": boolean()},
    description="Count up to steps, reporting progress after each one.",
)
def count(model, inputs):
    steps = inputs["steps"]
    for i in range(1, steps + 1):
        yield {"count": i, "done": i == steps}, i / steps


if __name__ == "__main__":
    runway.run()
