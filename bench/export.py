"""Notebook export: how long ``%algolink export`` takes on a generated 100-cell notebook, and how long a
verification takes once its environment is cached, each next to a baseline measured in the same run.

1. Export without verification, timed inside the kernel (the cell's own work, no messaging): the first
   export of the kernel (cold: it also learns which package provides which module) and the median of the
   next ones (warm). Target: under 1 s. Baseline: nbconvert's PythonExporter turning the same notebook
   into a script in the same kernel, the simplest notebook-to-file there is (no slicing, no state).
2. Verification with a warm environment cache (the environment was built by an earlier verification):
   median of a few runs. Baseline: the bundle's own start-up in that same environment, from
   ``python cloud_model.py`` until ``/healthcheck`` says RUNNING, which any verification must pay.
   Target: at most the start-up plus 2 s.

The generated notebook has imports, constants, chains of helper functions, data and "training" cells,
cells that print and call the shell, a model class, a setup and three commands, and saved examples.
Run: ``.venv/bin/python bench/export.py`` (``--quick`` for fewer repeats). Writes
``bench/results/export.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from support import Kernel, ServerProcess  # noqa: E402

TARGET_EXPORT_S = 1.0
VERIFY_MARGIN_S = 2.0


def generate_cells() -> list:
    """100 code cells, as a long notebook grows: most of them have nothing to do with serving."""
    cells = [
        "%load_ext algolink_jupyter",
        "import json\nimport math\nfrom collections import Counter\n\nimport numpy as np\nfrom PIL import Image",
    ]
    for i in range(25):
        cells.append(f"C{i} = {i} * 1.5\nNAME{i} = 'feature_{i}'\nSIZES{i} = ({i}, {i + 1})")
    cells.append("def f0(x):\n    return float(x)")
    for i in range(1, 25):
        cells.append(
            f"def f{i}(x):\n"
            f'    """Step {i} of the pipeline."""\n'
            f"    y = f{i - 1}(x) + C{i}\n"
            f"    return math.tanh(y / 100) * 100 if abs(y) > 1e6 else y"
        )
    for i in range(20):
        cells.append(
            f"data{i} = np.random.default_rng({i}).normal(size=(200, 16))\n"
            f"stats{i} = Counter(np.sign(data{i}[:, 0]).tolist())\n"
            f"for _ in range(3):\n    data{i} = data{i} * 0.9 + 0.1"
        )
    for i in range(12):
        cells.append(
            f"print('step {i}', data{i % 20}.mean())\n!echo cell {i}"
            if i % 2
            else f"summary{i} = {{k: float(v) for k, v in stats{i}.items()}}\nsummary{i}"
        )
    cells += [
        "class Model:\n"
        "    def __init__(self, weights, bias):\n"
        "        self.weights = weights\n"
        "        self.bias = bias\n\n"
        "    def predict(self, x):\n"
        "        return float(np.tanh(self.weights @ np.full(16, x)).sum() + self.bias)",
        "model = Model(np.linalg.lstsq(data0, data1[:, 0], rcond=None)[0][None, :], C3)\n"
        "print('trained', model.predict(1.0))",
        "%%algolink_setup\ndef setup():\n    return model",
        '%%algolink_command score --inputs "x=number(min=-10, max=10)" --outputs "y=number"\n'
        "def score(model, inputs):\n"
        '    return {"y": f24(model.predict(inputs["x"]))}',
        '%%algolink_command name --inputs "i=number(min=0, max=24, step=1)" --outputs "name=text"\n'
        "def name(model, inputs):\n"
        '    return {"name": NAME0.replace("0", str(int(inputs["i"])))}',
        '%%algolink_command shape --inputs "w=number(min=1, max=64)" --outputs "image=image"\n'
        "def shape(model, inputs):\n"
        '    return {"image": Image.new("L", (int(inputs["w"]), SIZES3[1]), 128)}',
        "import modelcloud\n\nfrom algolink_jupyter import examples\n\n"
        "for command, body in [('score', {'x': 1.5}), ('name', {'i': 3}), ('shape', {'w': 8})]:\n"
        "    examples.save(command, body, modelcloud.default_registry.run_command(command, body))",
    ]
    while len(cells) < 100:
        cells.append(f"scratch{len(cells)} = json.dumps({{'cell': {len(cells)}}})")
    assert len(cells) == 100, len(cells)
    return cells


def write_notebook(cells: list, path: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, path)


TIME_EXPORT = """
import time as _t
from algolink_jupyter.export import export as _export
_start = _t.perf_counter()
_export({dest!r}, say=lambda _s: None)
print(_t.perf_counter() - _start)
"""

TIME_NBCONVERT = """
import time as _t
from nbconvert import PythonExporter as _PE
_start = _t.perf_counter()
_script, _ = _PE().from_filename({path!r})
open({out!r}, "w").write(_script)
print(_t.perf_counter() - _start)
"""

TIME_VERIFY = """
import time as _t
from algolink_jupyter.export import verify_bundle as _verify
_start = _t.perf_counter()
_report = _verify({bundle!r}, out=lambda _s: None)
print(_t.perf_counter() - _start, _report.reused)
"""


def bundle_startup(python: str, bundle: Path) -> float:
    """Seconds from ``python cloud_model.py`` to /healthcheck RUNNING, in the cached environment."""
    start = time.perf_counter()
    server = ServerProcess([python, "-u", "-E", "-s", "cloud_model.py"], cwd=bundle)
    try:
        server.wait_started()
        with urllib.request.urlopen(server.url + "/healthcheck", timeout=30) as resp:
            assert json.loads(resp.read())["status"] == "RUNNING"
        return time.perf_counter() - start
    finally:
        server.stop()


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, to smoke-test it")
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "export.json")
    args = parser.parse_args(argv)
    repeats = 2 if args.quick else 5

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cells = generate_cells()
        write_notebook(cells, folder / "generated.ipynb")
        kernel = Kernel(folder, env={"JUPYTER_RUNTIME_DIR": str(folder)})
        try:
            for cell in cells:
                kernel.run(cell, timeout=120)

            def timed(code: str) -> list:
                return kernel.run(code, timeout=600)["stdout"].split()

            exports = [float(timed(TIME_EXPORT.format(dest=str(folder / "bundle")))[0])]
            exports += [
                float(timed(TIME_EXPORT.format(dest=str(folder / "bundle")))[0])
                for _ in range(repeats)
            ]
            nbconvert = [
                float(
                    timed(
                        TIME_NBCONVERT.format(
                            path=str(folder / "generated.ipynb"), out=str(folder / "script.py")
                        )
                    )[0]
                )
                for _ in range(repeats + 1)
            ]
            bundle = folder / "bundle"
            first = timed(TIME_VERIFY.format(bundle=str(bundle)))  # builds the environment if new
            verifies = []
            for _ in range(repeats):
                seconds, reused = timed(TIME_VERIFY.format(bundle=str(bundle)))
                assert reused == "True", "the environment was not reused"
                verifies.append(float(seconds))
        finally:
            kernel.shutdown()
        from algolink_jupyter.export.verify import environment

        python, _ = environment(bundle / "requirements.txt", out=lambda _s: None)
        startups = [bundle_startup(str(python), bundle) for _ in range(repeats)]
        lines = (bundle / "cloud_model.py").read_text().count("\n")

    results = {
        "cells": len(cells),
        "cloud_model_lines": lines,
        "export_cold_s": exports[0],
        "export_warm_s": statistics.median(exports[1:]),
        "nbconvert_s": statistics.median(nbconvert[1:]),
        "verify_first_s": float(first[0]),
        "verify_first_reused": first[1] == "True",
        "verify_warm_s": statistics.median(verifies),
        "startup_s": statistics.median(startups),
    }
    rows = [
        (
            "export, cold (s)",
            results["export_cold_s"],
            results["nbconvert_s"],
            f"< {TARGET_EXPORT_S:.0f} s",
            results["export_cold_s"] < TARGET_EXPORT_S,
        ),
        (
            "export, warm (s)",
            results["export_warm_s"],
            results["nbconvert_s"],
            f"< {TARGET_EXPORT_S:.0f} s",
            results["export_warm_s"] < TARGET_EXPORT_S,
        ),
        (
            "verify, warm cache (s)",
            results["verify_warm_s"],
            results["startup_s"],
            f"<= start+{VERIFY_MARGIN_S:.0f} s",
            results["verify_warm_s"] <= results["startup_s"] + VERIFY_MARGIN_S,
        ),
    ]
    print(f"{'figure':24} {'ours':>8} {'baseline':>9} {'ratio':>7}  {'target':14} met")
    for label, ours, base, target, met in rows:
        print(
            f"{label:24} {ours:8.3f} {base:9.3f} {ours / base:6.2f}x  {target:14} {'yes' if met else 'NO'}"
        )
    print(
        f"{len(cells)} code cells -> cloud_model.py of {lines} lines. Baselines: nbconvert's "
        "PythonExporter on the same notebook in the same kernel (export rows); the bundle's own "
        "start-up to /healthcheck RUNNING in the same cached environment (verify row). First "
        f"verification of this run: {results['verify_first_s']:.2f} s (environment "
        f"{'reused' if results['verify_first_reused'] else 'built'})."
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
