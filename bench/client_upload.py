"""The client's large file uploads: a file input sent as ``multipart/form-data`` streamed from disk (the
default above ``multipart_threshold``) next to the baseline, the same file as base64 in JSON (the client's
path below the threshold), measured in the same run against the same bare model server.

For each way: the wall time of ``Client.run`` for one call with a 48 MiB file (median of a few), and the
client process's peak memory (each call in a fresh Python, ``ru_maxrss``), as the ratio to the baseline.
Target: the multipart path's peak memory at most half the baseline's, and no slower.
Run: ``.venv/bin/python bench/client_upload.py`` (``--quick``: a 16 MiB file, fewer repeats).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from support import start_script  # noqa: E402

MODEL = """
import os
import modelcloud
from modelcloud.data_types import file, number


@modelcloud.command("size", inputs={"doc": file()}, outputs={"size": number()})
def size(model, inputs):
    return {"size": os.path.getsize(inputs["doc"])}


if __name__ == "__main__":
    modelcloud.run()
"""

CALL = """
import json, resource, sys, time
from algolink_jupyter.client import Client
url, path, threshold = sys.argv[1], sys.argv[2], int(sys.argv[3])
client = Client(url=url, multipart_threshold=threshold)
client.spec("size")
start = time.perf_counter()
out = client.run("size", doc=path)
took = time.perf_counter() - start
print(json.dumps({"s": took, "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "size": out["size"]}))
"""


def call(url: str, path: Path, threshold: int) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "runtime")])}
    proc = subprocess.run(
        [sys.executable, "-c", CALL, url, str(path), str(threshold)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    mib = 16 if args.quick else 48
    repeats = 2 if args.quick else 5
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "cloud_model.py").write_text(MODEL)
        big = folder / "big.bin"
        with open(big, "wb") as f:
            for _ in range(mib):
                f.write(os.urandom(1 << 20))
        server = start_script(
            folder / "cloud_model.py", env={"ALGOLINK_MAX_BODY_SIZE": str(1 << 30)}
        )
        try:
            rows = {}
            for label, threshold in (("multipart", 1 << 20), ("JSON base64", 1 << 40)):
                runs = [call(server.url, big, threshold) for _ in range(repeats)]
                assert all(r["size"] == mib << 20 for r in runs)
                rows[label] = {
                    "s": statistics.median(r["s"] for r in runs),
                    "rss_mib": statistics.median(r["rss_kb"] for r in runs) / 1024,
                }
        finally:
            server.stop()
    base, new = rows["JSON base64"], rows["multipart"]
    print(f"{mib} MiB file input, one call, client side")
    print(f"{'figure':<26}{'multipart':>12}{'JSON base64':>14}{'ratio':>8}")
    print(f"{'wall time (s)':<26}{new['s']:>12.3f}{base['s']:>14.3f}{new['s'] / base['s']:>8.2f}")
    print(
        f"{'client peak RSS (MiB)':<26}{new['rss_mib']:>12.1f}{base['rss_mib']:>14.1f}"
        f"{new['rss_mib'] / base['rss_mib']:>8.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
