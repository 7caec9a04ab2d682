"""The digits classifier: a small CNN for 8x8 grayscale digits, and the preprocessing that turns any
picture of a digit into the 8x8 input it was trained on. Shared by ``train.py`` and ``cloud_model.py``
so that training and serving cannot drift apart.

The training data is scikit-learn's bundled ``load_digits`` (1,797 digits, 8x8, ink as 0..16 on a 0
background; it ships with scikit-learn, nothing is downloaded). Every 8x8 array, from the dataset or
from a served picture, goes through :func:`image_to_array` and :func:`to_tensor`.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import nn

SIZE = 8  #: the dataset's images are SIZE x SIZE
MAX_VALUE = 16.0  #: and their pixels run from 0 (background) to 16 (ink)
CLASSES = 10
HELD_OUT = 0.2  #: fraction of the dataset kept out of training, stratified by digit
SPLIT_SEED = 0
INK_THRESHOLD = 0.1  #: of the brightest pixel: what counts as ink when cropping to the digit


class DigitNet(nn.Module):
    """Two 3x3 convolutions, one 2x2 max-pool, two fully connected layers: about 150k parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 8x8 -> 4x4
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(0.25),
            nn.Linear(64 * 4 * 4, 128),
            nn.ReLU(),
            nn.Dropout(0.25),
            nn.Linear(128, CLASSES),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def normalize(arr: np.ndarray) -> np.ndarray:
    """Stretch one 8x8 array so that its background is 0 and its darkest ink is 16.

    Every dataset image already starts at 0 and 98% of them reach 16, so for the training data this is
    (nearly) the identity; for a photo with grey paper or faint ink it restores the dataset's range.
    """
    arr = np.asarray(arr, dtype=np.float32)
    low, high = float(arr.min()), float(arr.max())
    if high - low < 1e-6:
        return np.zeros_like(arr)
    return (arr - low) * (MAX_VALUE / (high - low))


def to_tensor(arrays: np.ndarray) -> torch.Tensor:
    """A batch of normalized 8x8 arrays (N, 8, 8) in 0..16 as the network's input (N, 1, 8, 8) in 0..1."""
    arrays = np.asarray(arrays, dtype=np.float32).reshape(-1, 1, SIZE, SIZE)
    return torch.from_numpy(arrays / MAX_VALUE)


def image_to_array(img: Image.Image) -> np.ndarray:
    """Any picture of one digit -> the 8x8 array in 0..16 the network sees. Training data goes through
    it too (see :func:`dataset_arrays`), so a served picture is prepared exactly as the training digits.

    1. grayscale; a picture with a light background (dark ink on paper) is inverted, since the dataset
       has light ink on a dark background;
    2. cropped to the ink (pixels above 10% of the brightest), so a digit drawn small or off-centre on
       a large canvas is found;
    3. padded to a square with background, so the digit keeps its shape, and reduced to 8x8 by
       averaging (each output pixel is the mean of the block it covers, like the dataset's, whose pixels
       count the inked points of 4x4 blocks);
    4. :func:`normalize`.
    """
    gray = np.asarray(img.convert("L"), dtype=np.float32)
    if gray.size == 0:
        raise ValueError("the image is empty")
    border = np.concatenate([gray[0, :], gray[-1, :], gray[:, 0], gray[:, -1]])
    if border.mean() > (float(gray.min()) + float(gray.max())) / 2:
        gray = 255.0 - gray
    gray = gray - float(gray.min())
    rows, cols = np.nonzero(gray > INK_THRESHOLD * float(gray.max()))
    if rows.size:
        gray = gray[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    h, w = gray.shape
    side = max(h, w)
    square = np.zeros((side, side), dtype=np.float32)
    top, left = (side - h) // 2, (side - w) // 2
    square[top : top + h, left : left + w] = gray
    small = Image.fromarray(square, mode="F").resize((SIZE, SIZE), Image.Resampling.BOX)
    return normalize(np.asarray(small, dtype=np.float32))


def array_to_image(
    arr: np.ndarray,
    scale: int = 16,
    dark_on_light: bool = True,
    resample: Image.Resampling = Image.Resampling.NEAREST,
) -> Image.Image:
    """An 8x8 dataset array (0..16) as a grayscale picture ``scale`` times larger, the way a person
    would draw it: dark ink on white paper by default."""
    values = np.asarray(arr, dtype=np.float32) * (255.0 / MAX_VALUE)
    if dark_on_light:
        values = 255.0 - values
    pixels = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, mode="L").resize((SIZE * scale, SIZE * scale), resample)


def split_indices(targets: np.ndarray) -> tuple:
    """``(train, held_out)`` index arrays into ``load_digits()``: HELD_OUT of the digits are kept out of
    training, stratified by digit, with a fixed seed, so every run (and every test) gets the same split."""
    from sklearn.model_selection import train_test_split

    return train_test_split(
        np.arange(len(targets)),
        test_size=HELD_OUT,
        random_state=SPLIT_SEED,
        stratify=targets,
    )


def dataset_arrays() -> tuple:
    """``(arrays, digits)``: every ``load_digits`` image drawn as a picture (:func:`array_to_image`)
    and read back through :func:`image_to_array`, exactly as a served picture is."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    # 32x32 pictures: any whole-number NEAREST scale gives the very same arrays, this one is quick.
    arrays = np.stack([image_to_array(array_to_image(a, scale=4)) for a in digits.images])
    return arrays, digits.target


def load_split() -> tuple:
    """``(x_train, y_train, x_test, y_test)``: the prepared 8x8 arrays and their digits, split by
    :func:`split_indices`."""
    arrays, targets = dataset_arrays()
    train, test = split_indices(targets)
    return arrays[train], targets[train], arrays[test], targets[test]


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_model(path: str, device: torch.device | None = None) -> DigitNet:
    """The network with the weights ``train.py`` saved, on ``device`` (CUDA when there is one), in
    evaluation mode. ``weights_only=True``: a checkpoint is data, never code."""
    device = device or pick_device()
    state = torch.load(path, map_location=device, weights_only=True)
    net = DigitNet()
    net.load_state_dict(state)
    return net.to(device).eval()


@torch.inference_mode()
def predict(net: DigitNet, arrays: np.ndarray) -> tuple:
    """``(digits, confidences)`` for a batch of normalized 8x8 arrays: the argmax of the softmax and
    its probability."""
    device = next(net.parameters()).device
    probs = torch.softmax(net(to_tensor(arrays).to(device)), dim=1)
    conf, digit = probs.max(dim=1)
    return digit.cpu().numpy(), conf.cpu().numpy()
