"""Train the digits classifier on scikit-learn's bundled 8x8 digits (nothing is downloaded).

    python train.py                      # -> models/digits.pt and samples/digit_*.png next to this file
    python train.py --out /tmp/digits.pt  # save the weights elsewhere
    python train.py --if-missing         # only when models/digits.pt is not there yet

It takes a few seconds on a CPU, with a fixed seed, and prints the accuracy on the digits it never saw.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from model import DigitNet, array_to_image, load_split, split_indices, to_tensor
from PIL import Image
from torch import nn

HERE = Path(__file__).resolve().parent
SEED = 0
EPOCHS = 12
BATCH = 32
SAMPLE_DIGITS = (0, 3, 5, 7, 8)


def train(epochs: int = EPOCHS, seed: int = SEED) -> tuple:
    """``(net, held-out accuracy, seconds)``; the same seed gives the same weights on the same machine."""
    torch.manual_seed(seed)
    x_train, y_train, x_test, y_test = load_split()
    x, y = to_tensor(x_train), torch.from_numpy(y_train).long()
    net = DigitNet()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for _ in range(epochs):
        net.train()
        for idx in torch.randperm(len(x), generator=gen).split(BATCH):
            opt.zero_grad()
            loss_fn(net(x[idx]), y[idx]).backward()
            opt.step()
        sched.step()
    seconds = time.perf_counter() - start
    net.eval()
    with torch.inference_mode():
        pred = net(to_tensor(x_test)).argmax(1).numpy()
    return net, float((pred == y_test).mean()), seconds


def write_samples(folder: Path) -> list:
    """One held-out digit per SAMPLE_DIGITS as a 128x128 picture, dark ink on white, smoothed the way
    a scan would be: ``digit_<d>.png``. The model never trained on them."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    _, held_out = split_indices(digits.target)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for d in SAMPLE_DIGITS:
        i = next(int(i) for i in held_out if digits.target[i] == d)
        path = folder / f"digit_{d}.png"
        array_to_image(digits.images[i], resample=Image.Resampling.BICUBIC).save(path)
        written.append(path)
    return written


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=HERE / "models" / "digits.pt",
        help="where to save the state_dict (default: models/digits.pt next to this file)",
    )
    parser.add_argument(
        "--samples",
        type=Path,
        default=HERE / "samples",
        help="where to write sample digit PNGs (default: samples/ next to this file)",
    )
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument(
        "--if-missing",
        action="store_true",
        help="do nothing when the weights file already exists (for build steps)",
    )
    args = parser.parse_args(argv)
    if args.if_missing and args.out.is_file():
        print(f"{args.out} exists; not training (drop --if-missing to retrain)")
        return 0

    # One thread: the network is tiny, and on a busy machine several OpenMP threads wait on each other
    # far longer than they compute (measured: 10 s with one thread, 37 s with two on a loaded 2-core box).
    torch.set_num_threads(1)
    net, accuracy, seconds = train(args.epochs)
    print(f"held-out accuracy: {accuracy:.4f} ({seconds:.1f} s training on CPU)", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), args.out)
    print(f"saved {args.out}")
    for path in write_samples(args.samples):
        print(f"sample {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
