"""The seed's SqueezeNet classifier in today's torchvision: ``transforms.Resize`` for the old ``Scale``,
no ``Variable``, and the weights read from a checkpoint file (the ``checkpoint`` option) instead of
downloaded at start-up. See README.md for where to get the file.
"""

import json
import os

import torch
from torchvision import models, transforms

import modelcloud
from modelcloud.data_types import image, text

HERE = os.path.dirname(os.path.abspath(__file__))

# Read the index -> label mapping from a file
with open(os.path.join(HERE, "labels.json"), encoding="utf-8") as f:
    labels = json.load(f)

# set up preprocessing transformations

normalize = transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])

preprocess = transforms.Compose(
    [
        transforms.Resize(256),
        transforms.CenterCrop(224),
        transforms.ToTensor(),
        normalize,
    ]
)

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")


@modelcloud.setup(
    options={
        "checkpoint": modelcloud.file(
            extension=(".pth", ".pt"),
            default="models/squeezenet1_1.pth",
            description=(
                "SqueezeNet 1.1 weights: a state_dict such as torchvision's ImageNet checkpoint "
                "squeezenet1_1-b8a52dc0.pth (see README.md)."
            ),
        )
    }
)
def setup(opts):
    model = models.squeezenet1_1(weights=None)
    state = torch.load(opts["checkpoint"], map_location=device, weights_only=True)
    model.load_state_dict(state)
    return model.to(device).eval()


@modelcloud.command(
    "classify",
    inputs={"photo": image(description="A photo; it is resized and center-cropped to 224x224.")},
    outputs={"label": text(description="The ImageNet class the model sees, such as 'lemon'.")},
    description="Classify a photo into one of the 1,000 ImageNet classes.",
)
def classify(model, input):
    img = input["photo"]
    img_tensor = preprocess(img)
    img_tensor.unsqueeze_(0)
    with torch.inference_mode():
        fc_out = model(img_tensor.to(device))
    index = str(fc_out.cpu().numpy().argmax())
    # A labels.json without this index answers the index itself rather than failing the request.
    label = labels.get(index, index)
    return {"label": label}


modelcloud.meta(
    name="squeezenet",
    tagline="Classifies a photo into one of the 1,000 ImageNet classes.",
    description="""\
**SqueezeNet 1.1** ([Iandola et al., 2016](https://arxiv.org/abs/1602.07360)) trained on ImageNet:
AlexNet-level accuracy with 50x fewer parameters (1.2 million, a 5 MB checkpoint).

Send a photo; it is resized to 256 pixels on its short side, center-cropped to 224x224 and normalized
with ImageNet's mean and standard deviation. The answer is the most likely of the 1,000 ImageNet
classes, named as in torchvision (`labels.json`).
""",
    license="BSD-3-Clause",
    performance_notes=(
        "Top-1 accuracy 58.2%, top-5 80.6% on ImageNet (torchvision's IMAGENET1K_V1 weights). "
        "About 0.35 GFLOPs per image: tens of milliseconds on a CPU, a few on a GPU, where the "
        "weights are loaded when CUDA is available."
    ),
    links=[
        {"title": "Paper", "url": "https://arxiv.org/abs/1602.07360"},
        {"title": "Code", "url": "https://github.com/DeepScale/SqueezeNet"},
        {
            "title": "torchvision squeezenet1_1",
            "url": "https://pytorch.org/vision/stable/models/generated/torchvision.models.squeezenet1_1.html",
        },
    ],
)

if __name__ == "__main__":
    modelcloud.run()
