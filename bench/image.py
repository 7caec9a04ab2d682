"""Container images: how long ``algolink image`` takes on the digits example, the first time and
again after a change to its ``cloud_model.py``, as a ratio (target: the second under a third of the
first).

1. First build, with an empty layer cache (a temporary ``ALGOLINK_IMAGE_CACHE``): the environment
   (uv, from uv's own package cache), debootstrap's Debian base, the Python, dependency, models and
   app layers, and the archive.
2. Second build, after ``cloud_model.py`` changed: the same work as a user's rebuild; the base,
   Python and dependency layers come from the cache, the app layer and the archive are written again.

The first build is the baseline; the ratio is second / first. With ``--cache DIR`` the layer cache is
``DIR`` (kept: a first build there is as warm as DIR is). Needs root, debootstrap and Debian's
package mirror (``make image-tools``). Run: ``.venv/bin/python bench/image.py``. Writes
``bench/results/image.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

TARGET_RATIO = 1 / 3


def timed_build(bundle: Path, work: Path, output: Path, cache: Path) -> tuple:
    from algolink_jupyter.hub import image

    lines: list = []
    t0 = time.perf_counter()
    spec = image.local_spec(bundle, work, lines.append, output=output, cache=cache)
    t_env = time.perf_counter() - t0
    result = image.build_image(spec, cache=cache, log=lines.append)
    return time.perf_counter() - t0, t_env, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, help="the layer cache to use (default: a new one)")
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "image.json")
    args = parser.parse_args()
    if os.geteuid() != 0 or not shutil.which("debootstrap"):
        print("bench/image.py needs root and debootstrap (make image-tools).", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="algolink-image-bench-") as tmp_name:
        tmp = Path(tmp_name)
        cache = args.cache or tmp / "cache"
        if args.cache is None:
            os.environ["ALGOLINK_IMAGE_CACHE"] = str(cache)
        bundle = tmp / "digits"
        shutil.copytree(
            REPO / "examples" / "digits",
            bundle,
            ignore=shutil.ignore_patterns("models", "__pycache__"),
        )
        first, first_env, r1 = timed_build(bundle, tmp / "w1" / "app", tmp / "one.tar", cache)
        source = bundle / "cloud_model.py"
        source.write_text(source.read_text() + "\n# a change to the code\n")
        second, second_env, r2 = timed_build(bundle, tmp / "w2" / "app", tmp / "two.tar", cache)
    reused = [layer.what.split()[0] for layer in r2.layers if layer.reused]
    ratio = second / first
    rows = [
        ("first build (empty layer cache)", f"{first:.1f} s", "baseline", ""),
        ("  of which the environment", f"{first_env:.1f} s", "", ""),
        ("  of which the image", f"{r1.seconds:.1f} s", "", ""),
        ("second build (cloud_model.py changed)", f"{second:.1f} s", f"{ratio:.2f}x", "< 0.33x"),
        ("  of which the environment", f"{second_env:.1f} s", "", ""),
        ("  of which the image", f"{r2.seconds:.1f} s", "", ""),
        ("layers reused by the second", ", ".join(reused), "", ""),
        ("image size", f"{r2.size / 1e9:.2f} GB", "", ""),
    ]
    print(f"{'figure':40} {'value':>10} {'ratio':>9} {'target':>8}")
    for name, value, ratio_text, target in rows:
        print(f"{name:40} {value:>10} {ratio_text:>9} {target:>8}")
    ok = ratio < TARGET_RATIO
    print(f"second/first = {ratio:.3f}: {'meets' if ok else 'misses'} the target (< 1/3)")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "first_s": first,
                "first_environment_s": first_env,
                "second_s": second,
                "second_environment_s": second_env,
                "ratio": ratio,
                "target_ratio": TARGET_RATIO,
                "reused": reused,
                "size_bytes": r2.size,
            },
            indent=2,
        )
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
