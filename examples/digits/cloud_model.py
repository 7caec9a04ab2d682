"""A handwritten digit classifier served by AlgoLink.

python train.py          # once: writes models/digits.pt (a few seconds on a CPU)
python cloud_model.py    # serves POST /classify on http://0.0.0.0:9000
"""

import numpy as np
import torch
from model import image_to_array, load_model, pick_device, predict

import modelcloud
from modelcloud.data_types import file, image, number


@modelcloud.setup(
    options={
        "checkpoint": file(
            extension=".pt",
            default="models/digits.pt",
            description=(
                "The network's weights (a state_dict saved by train.py). "
                "Run `python train.py` to make models/digits.pt."
            ),
        )
    }
)
def setup(opts):
    torch.set_num_threads(1)  # one 8x8 digit per request: more CPU threads only wait on each other
    path = opts["checkpoint"]
    try:
        return load_model(path, pick_device())
    except Exception as e:
        raise RuntimeError(
            f"{path} is not a digits checkpoint saved by train.py ({type(e).__name__}: {e}); "
            "run `python train.py` to make one"
        ) from e


@modelcloud.command(
    "classify",
    inputs={
        "photo": image(
            channels=1,
            description=(
                "A picture of one handwritten digit, any size: dark ink on light paper or light ink "
                "on a dark background."
            ),
        )
    },
    outputs={
        "digit": number(min=0, max=9, step=1, description="The digit the picture shows, 0 to 9."),
        "confidence": number(
            min=0, max=1, description="The model's probability for that digit (softmax)."
        ),
    },
    description="Read the handwritten digit in a picture.",
    # Requests that arrive together reach the network as one batch (up to 32, waiting at most 10 ms):
    # the function gets a list of inputs and answers one forward pass on the stacked tensor.
    batch=modelcloud.batching(max_size=32, max_latency_ms=10),
)
def classify(model, batch):
    arrays = np.stack([image_to_array(inputs["photo"]) for inputs in batch])
    digits, confidences = predict(model, arrays)
    return {"digit": digits, "confidence": confidences}


modelcloud.meta(
    name="digits",
    tagline="Reads a handwritten digit, 0 to 9, from a picture.",
    description="""\
A small convolutional network trained on the **8x8 handwritten digits** bundled with scikit-learn
(1,797 digits written by 43 people, from the UCI *Optical Recognition of Handwritten Digits* set).

Send any picture of a single digit. It is turned into the 8x8 grid the network was trained on:

1. grayscale, inverted when the paper is lighter than the ink;
2. cropped to the ink and padded to a square;
3. averaged down to 8x8 and stretched to the dataset's 0..16 range.

The answer is the digit and the network's confidence in it (softmax probability). Training data goes
through the very same steps, so what you send is read the way the training digits were.

Train it with `python train.py`; it keeps a fifth of the digits out of training and prints its
accuracy on them (about 98%).
""",
    license="MIT",
    performance_notes=(
        "About 150k parameters: a request takes about a millisecond of model time on a CPU, and no "
        "GPU is needed. When a CUDA GPU is present the weights are loaded onto it. Training takes a "
        "few seconds on a CPU."
    ),
    links=[
        {
            "title": "Dataset: scikit-learn load_digits",
            "url": "https://scikit-learn.org/stable/modules/generated/sklearn.datasets.load_digits.html",
        },
        {
            "title": "Dataset: UCI Optical Recognition of Handwritten Digits",
            "url": "https://archive.ics.uci.edu/dataset/80/optical+recognition+of+handwritten+digits",
        },
    ],
    images=["samples/digit_3.png", "samples/digit_7.png", "samples/digit_0.png"],
)

if __name__ == "__main__":
    modelcloud.run()
