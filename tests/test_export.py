"""Notebook export: slicing, bundles written from a real kernel, and bundles run in fresh virtual
environments (built with uv from the bundle's requirements.txt alone) that hold no Jupyter package.

One kernel serves most tests; verification environments go to a cache folder private to this module, so
the first verification builds one and a later one must reuse it.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import modelcloud
from algolink_jupyter.export import SliceError, VerifyError, slice_notebook, verify_bundle
from algolink_jupyter.export.bundle import render
from algolink_jupyter.export.state import StateError
from algolink_jupyter.export.verify import environment
from support import REPO, Kernel, ServerProcess

# -- slicing, on its own ------------------------------------------------------------------------------------


def run_cells(cells: list) -> tuple:
    """Run cells as a kernel with the magics would: a ``%%algolink_*`` cell's body runs in the one
    namespace and its function is declared to the registry; returns ``(namespace, registry)``."""
    from IPython.core.magic_arguments import parse_argstring

    from algolink_jupyter.magics import AlgoLinkMagics
    from algolink_jupyter.spec import parse_spec

    ns: dict = {"__name__": "__main__"}
    registry = modelcloud.Registry()
    for cell in cells:
        magic, line, body = None, "", cell
        if cell.startswith("%%"):
            first, _, body = cell.partition("\n")
            magic, _, line = first[2:].partition(" ")
        before = set(ns)
        exec(compile(body, "<cell>", "exec"), ns)
        if magic is None:
            continue
        fn = next(v for k, v in ns.items() if k not in before and callable(v))
        fn.__algolink_magic__ = {"magic": magic, "line": line}
        if magic == "algolink_setup":
            registry.setup(fn)
        else:
            args = parse_argstring(AlgoLinkMagics.algolink_command, line)
            spec = {k: parse_spec(getattr(args, k).strip('"')) for k in ("inputs", "outputs")}
            registry.command(args.name, **spec)(fn)
    return ns, registry


def test_slicing_keeps_what_the_functions_read_and_decides_how(tmp_path):
    cells = [
        "import math\nimport json as j\nimport os\nimport os.path\nimport functools\nunused = math.pi",
        "import xml.etree.ElementTree as ET\n@functools.lru_cache\ndef cached(x):\n    return ET.__name__",
        "def helper(x):\n    return x * 2",
        "def helper(x):\n    return x * 3",  # the cell ran again, edited: the later one wins
        "FACTOR = BASE = 1.5\nLABELS = ['a', 'b']\nGROWING = [1]\nMODE = 'fast' if math.sqrt(4) == 2 else 'slow'",
        "GROWING.append(2)\ncount = 0\nfor i in range(3):\n    count += i\ntotal = 10\ntotal = total + 1",
        "print('training...')\ntable = {'k': j.dumps([1])}",
        '%%algolink_command run --inputs "x=number" --outputs "y=any"\n'
        "def run(model, inputs):\n"
        "    return [helper(inputs['x']) * FACTOR * BASE, LABELS, GROWING, MODE, count, total, table,\n"
        "            os.path.sep, cached(1)]",
    ]
    ns, registry = run_cells(cells)
    plan = slice_notebook(cells, ns, registry, workdir=tmp_path)
    source = render(plan, {})
    compile(source, "cloud_model.py", "exec")
    assert "return x * 3" in source and "return x * 2" not in source
    assert sorted(plan.recomputed) == ["BASE", "FACTOR", "LABELS", "MODE"]
    assert source.count("FACTOR = BASE = 1.5") == 1
    assert plan.defined == ["cached", "helper"]
    # Changed after its statement (GROWING), built by a loop (count), bound twice (total), or holding
    # something built from a name bound by an import alias (table): saved, not recomputed.
    assert set(plan.state) == {"GROWING", "count", "total", "table"}
    assert plan.state["GROWING"] == [1, 2] and plan.state["total"] == 11
    assert "unused" not in source and "training" not in source
    assert plan.imports == [
        "import math",
        "import os",
        "import os.path",
        "import functools",
        "import xml.etree.ElementTree as ET",
    ]
    assert "@functools.lru_cache\ndef cached(x):" in source
    assert "@modelcloud.command(" in source and '"run"' in source
    assert '"x": modelcloud.number()' in source
    # Each value in the safest format that holds it: these four are plain JSON, nothing pickled.
    assert {n: s.format for n, s in plan.saved.items()} == dict.fromkeys(plan.state, "json")
    assert 'GROWING = _load_json("GROWING.json")' in source and "_load_pickled" not in source
    # The state loads before the command that reads it, after the definitions it needs.
    assert source.index('_load_json("table.json")') < source.index("def run(")


def test_slicing_refuses_what_a_bundle_cannot_have(tmp_path):
    cells = ["%%algolink_command show\ndef show(model, inputs):\n    display(inputs)\n    return 1"]
    ns, registry = run_cells(cells)
    with pytest.raises(SliceError, match=r"`display`, which exists only inside IPython"):
        slice_notebook(cells, ns, registry, workdir=tmp_path)

    cells = [
        "from IPython.display import HTML",
        "%%algolink_command page\ndef page(model, inputs):\n    return HTML('x')",
    ]
    ns, registry = run_cells(cells)
    with pytest.raises(SliceError, match=r"needs IPython .*exists only around a notebook"):
        slice_notebook(cells, ns, registry, workdir=tmp_path)

    with pytest.raises(SliceError, match="There is nothing to export"):
        slice_notebook([], {}, modelcloud.Registry(), workdir=tmp_path)

    cells = ["def plain(model, inputs):\n    return 1"]
    ns = {"__name__": "__main__"}
    exec(cells[0], ns)
    registry = modelcloud.Registry()
    registry.command("plain")(ns["plain"])  # a call, not a decorator or a magic cell
    with pytest.raises(SliceError, match="registered by a call rather than declared"):
        slice_notebook(cells, ns, registry, workdir=tmp_path)


def test_slicing_copies_local_modules_and_warns_of_undefined_names(tmp_path, monkeypatch):
    (tmp_path / "mylocalhelpers.py").write_text("import yaml\n\ndef double(x):\n    return 2 * x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cells = [
        "from mylocalhelpers import double",
        "%%algolink_command f\ndef f(model, inputs):\n    return double(inputs['x']) + not_defined_anywhere",
    ]
    ns, registry = run_cells(cells)
    plan = slice_notebook(cells, ns, registry, workdir=tmp_path)
    assert plan.local_modules == {"mylocalhelpers": tmp_path / "mylocalhelpers.py"}
    assert "yaml" in plan.modules  # what the local module imports is pinned too
    assert any("not_defined_anywhere" in w for w in plan.warnings)
    sys.modules.pop("mylocalhelpers", None)


def test_state_formats_and_a_module_that_cannot_be_rebuilt(tmp_path):
    """Each value in its stated format, loaded back by the very loader cloud_model.py carries."""
    import numpy as np
    import torch

    pytest.importorskip(
        "skops", reason="scikit-learn estimators are saved with skops: pip install skops"
    )

    from algolink_jupyter.export.state import loader, plan_value, save

    cells = [
        "import torch\nimport numpy as np\nfrom sklearn.linear_model import LogisticRegression",
        "class Tiny(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.w = torch.nn.Parameter(torch.zeros(2))\n\n"
        "    def forward(self, x):\n        return x * self.w",
        "t = Tiny()\nwith torch.no_grad():\n    t.w += 3",  # a later statement: Tiny() rebuilds it
        "lin = torch.nn.Linear(*[2], 1)",  # arguments that are not constants, one by one
        "sizes = {'in': np.int64(2)}\nsized = torch.nn.Linear(sizes['in'], len('a'), bias=1 > 0)",
        "clf = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1])",
        "tensors = {'a': torch.arange(3)}\nscalar = np.float32(1.5)",
    ]
    ns: dict = {"__name__": "__main__"}
    nodes: dict = {}
    for cell in cells:
        exec(compile(cell, "<cell>", "exec"), ns)
        for node in __import__("ast").parse(cell).body:
            for target in getattr(node, "targets", []):
                nodes[getattr(target, "id", None)] = node
    plans = {n: plan_value(n, ns[n], nodes.get(n), ns) for n in ("t", "clf", "tensors", "scalar")}
    assert {n: p.format for n, p in plans.items()} == {
        "t": "torch_module",
        "clf": "skops",
        "tensors": "torch",
        "scalar": "npy",
    }
    assert plans["t"].expr == '_load_module(Tiny(), "t.pt", training=True)'
    assert plans["t"].uses == {"Tiny"}
    models = tmp_path / "models"
    save(ns, plans, models)
    assert sorted(p.name for p in models.iterdir()) == [
        "clf.skops",
        "scalar.npy",
        "t.pt",
        "tensors.pt",
    ]
    (tmp_path / "m.py").write_text(
        loader(plans, False)
        + "\n"
        + cells[1]
        + "\n"
        + "\n".join(f"{n} = {p.expr}" for n, p in plans.items())
    )
    got: dict = {"__name__": "m", "__file__": str(tmp_path / "m.py"), "torch": torch}
    exec(compile((tmp_path / "m.py").read_text(), "m.py", "exec"), got)
    assert got["t"].w.tolist() == [3.0, 3.0] and type(got["t"]).__name__ == "Tiny"
    assert got["clf"].predict(np.array([[0.0], [3.0]])).tolist() == [0, 1]
    assert got["tensors"]["a"].tolist() == [0, 1, 2] and got["scalar"] == np.float32(1.5)

    with pytest.raises(StateError, match=r"`lin` \(a PyTorch Linear\) cannot be rebuilt"):
        plan_value("lin", ns["lin"], nodes["lin"], ns)
    # Arguments computed in the kernel: the constants they evaluated to, and where they came from.
    sized = plan_value("sized", ns["sized"], nodes["sized"], ns)
    assert sized.expr == '_load_module(torch.nn.Linear(2, 1, bias=True), "sized.pt", training=True)'
    assert sized.note == (
        "2 = sizes['in'], 1 = len('a'), True = 1 > 0: evaluated in the notebook's kernel"
    )


def test_made_up_inputs_are_valid_for_every_type():
    from algolink_jupyter.export.recording import synthetic
    from modelcloud import data_types as dt

    types = {
        "a": dt.text(min_length=2, max_length=3),
        "b": dt.number(min=2, max=9, step=2),
        "c": dt.number(default=4),
        "d": dt.category(choices=["x", "y"]),
        "e": dt.vector(length=4),
        "f": dt.image(channels=1, width=20, height=10),
        "g": dt.image(min_width=300),
        "h": dt.boolean(),
        "i": dt.array(item_type=dt.number(min=1), min_length=2),
        "j": dt.segmentation(label_to_id={"bg": 0, "fg": 5}, width=8, height=8),
        "k": dt.image_landmarks(3),
        "m": dt.image_bounding_box(),
    }
    for name, t in types.items():
        value = synthetic(t, name)
        t.deserialize(value)  # raises when not valid
    assert synthetic(types["b"], "b") == 4 and synthetic(types["c"], "c") == 4


# -- a real kernel --------------------------------------------------------------------------------------------

NOTEBOOK = [
    "%load_ext algolink_jupyter",
    "import json\nimport numpy as np\nfrom PIL import Image",
    "SCALE = 2.5\nLABELS = ['low', 'high']\nunused = Image.new('L', (2, 2))",
    "class Scaler:\n    def __init__(self, k):\n        self.k = k\n\n    def __call__(self, x):\n"
    "        return x * self.k",
    "def helper(x):\n    return float(np.round(x, 3))",
    # Found only through a saved value: `alias` is saved, pickled by reference to `shifted`, which
    # reads `offset`, saved in turn.
    "offset = np.zeros(1) + 0.25\ndef shifted(x):\n    return float(x + offset[0])\nalias = shifted",
    "weights = np.arange(4, dtype=np.float64)\nfor _ in range(3):\n    weights = weights * 1.5\n"
    "trained = Scaler(2.0)\nprint('trained')",
    "!echo shell escapes are left out",
    '%%algolink_setup\ndef setup():\n    return {"scaler": trained, "weights": weights}',
    '%%algolink_command predict --inputs "x=number(min=0, max=100)" --outputs "y=number, '
    "label=category(choices=['low', 'high'])\" --description \"Scale it\"\n"
    "def predict(model, inputs):\n"
    '    y = alias(helper(model["scaler"](inputs["x"]) * SCALE + model["weights"].sum()))\n'
    '    return {"y": y, "label": LABELS[int(y > 50)]}',
    "import modelcloud\nfrom modelcloud.data_types import text\n\n"
    "def lookup(word):\n"
    '    with open("lexicon.json") as f:\n'
    '        return json.load(f).get(word, "?")\n\n'
    '@modelcloud.command("shout", inputs={"s": text(max_length=20)}, outputs={"s": text()})\n'
    "def shout(model, inputs):\n"
    '    return lookup(inputs["s"].upper()) + "!" * len(LABELS)',
    'modelcloud.meta(name="toy", description="A toy.\\nTwo lines.", license="MIT")',
    # A trained PyTorch module whose class needs arguments: saved as its state_dict, rebuilt from the
    # constructor call the notebook made (HIDDEN inlined), loaded with weights_only=True.
    "import torch\n\nclass Net(torch.nn.Module):\n"
    "    def __init__(self, n_in, n_out, scale=1.0):\n"
    "        super().__init__()\n"
    "        self.lin = torch.nn.Linear(n_in, n_out)\n"
    "        self.scale = scale\n\n"
    "    def forward(self, x):\n"
    "        return self.lin(x) * self.scale\n\n"
    "HIDDEN = 3\ntorch.manual_seed(0)\nnet = Net(HIDDEN, 2, scale=0.5).eval()\n"
    "opt = torch.optim.SGD(net.parameters(), lr=0.1)\n"
    "for _ in range(20):\n"
    "    opt.zero_grad()\n"
    "    ((net(torch.ones(4, 3)) - 1.0) ** 2).mean().backward()\n"
    "    opt.step()",
    # No example is saved for this one: the export records one itself.
    '%%algolink_command affine --inputs "v=vector(length=3, sampling_mean=0.5)" --outputs "out=vector(length=2)"\n'
    "def affine(model, inputs):\n"
    "    with torch.no_grad():\n"
    '        return net(torch.tensor(inputs["v"]).float()).tolist()',
    "from algolink_jupyter import examples\n"
    'for name, body in [("predict", {"x": 10}), ("shout", {"s": "hi"})]:\n'
    "    examples.save(name, body, modelcloud.default_registry.run_command(name, body))",
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("algolink-cache")


@pytest.fixture(scope="module")
def kernel(tmp_path_factory, cache):
    folder = tmp_path_factory.mktemp("notebook")
    (folder / "lexicon.json").write_text(json.dumps({"HI": "hello"}))
    (folder / "models").mkdir()  # not named by the code: stays out of the bundle
    (folder / "models" / "unrelated.bin").write_bytes(b"x" * 1000)
    k = Kernel(
        folder,
        env={"JUPYTER_RUNTIME_DIR": str(folder), "ALGOLINK_CACHE_DIR": str(cache)},
    )
    k.folder = folder
    for cell in NOTEBOOK:
        k.run(cell, timeout=120)
    yield k
    k.shutdown()


def export(kernel: Kernel, line: str, timeout: float = 300) -> dict:
    return kernel.run(f"%algolink export {line}", timeout=timeout, check=False)


def test_export_writes_a_sliced_bundle(kernel):
    out = export(kernel, "bundle")
    assert not out["stderr"], out["stderr"]
    assert "Exported 3 commands (predict, shout, affine) and the setup to" in out["stdout"]
    assert "affine: 1 made up and run in the kernel" in out["stdout"]
    bundle = kernel.folder / "bundle"
    source = (bundle / "cloud_model.py").read_text()
    compile(source, "cloud_model.py", "exec")
    for kept in (
        "class Scaler:",
        "def helper(x):",
        "def shifted(x):",
        "SCALE = 2.5",
        "LABELS = ['low', 'high']",
        'alias = _pickled["alias"]',
        'offset = _load_array("offset.npy")',
        'weights = _load_array("weights.npy")',
        "class Net(torch.nn.Module):",
        'net = _load_module(Net(3, 2, scale=0.5), "net.pt", training=False).eval()',
        'open(_here("lexicon.json"))',  # opened next to cloud_model.py, wherever it runs from
    ):
        assert kept in source
    for left_out in (
        "unused",
        "print('trained')",
        "echo",
        "np.arange",
        "examples.save",
        "opt.step",
        "HIDDEN",
    ):
        assert left_out not in source
    assert '@modelcloud.command(\n    "predict",' in source
    assert 'description="Scale it"' in source
    assert '@modelcloud.command("shout"' in source  # a decorator is kept as written
    assert "modelcloud.meta(" in source and "license='MIT'" in source
    models = bundle / "models"
    assert sorted(p.name for p in models.iterdir()) == [
        "net.pt",
        "notebook_state.pkl",
        "offset.npy",
        "weights.npy",
    ]
    # The module is its state_dict: plain tensors, loadable without running any code.
    import numpy as np
    import torch

    state = torch.load(models / "net.pt", weights_only=True)
    assert sorted(state) == ["lin.bias", "lin.weight"]
    trained_weight = kernel.eval("net.lin.weight.flatten().tolist()")
    assert state["lin.weight"].flatten().tolist() == pytest.approx(trained_weight)
    assert np.load(models / "weights.npy", allow_pickle=False).tolist() == [0, 3.375, 6.75, 10.125]
    readme = (bundle / "README.md").read_text()
    assert "models/net.pt (state_dict)" in readme and "loading it executes code" in readme
    assert "weights_only=True" in source and "allow_pickle=False" in source
    assert json.loads((bundle / "lexicon.json").read_text()) == {"HI": "hello"}
    assert sorted(p.name for p in (bundle / "examples").iterdir()) == ["affine", "predict", "shout"]
    recorded = json.loads((bundle / "examples" / "affine" / "001.json").read_text())
    assert recorded["inputs"] == {"v": [0.5, 0.5, 0.5]} and recorded["recorded_by"] == "export"
    want = kernel.eval("net(torch.full((3,), 0.5)).tolist()")
    assert recorded["outputs"]["out"] == pytest.approx(want)

    pins = [
        line
        for line in (bundle / "requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    expected = {
        name: importlib.metadata.version(name).split("+")[0]
        for name in ("numpy", "pillow", "pyyaml", "tornado")
    }
    expected["torch"] = importlib.metadata.version("torch").split("+")[0]
    expected["modelcloud"] = modelcloud.__version__  # the runtime, named: not vendored
    assert {p.split("==")[0].lower(): p.split("==")[1].split()[0] for p in pins} == expected
    torch_line = next(p for p in pins if p.startswith("torch=="))
    installed = importlib.metadata.version("torch")
    if "+" in installed:  # a local build: pinned installable, with what the kernel had
        assert torch_line == f"torch=={installed.split('+')[0]}  # the kernel had {installed} " + (
            "(a local build; pip installs the public one)"
        )
    config = yaml.safe_load((bundle / "algolink.yml").read_text())
    assert config == {
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "cuda": None,
        "entrypoint": "python cloud_model.py",
        "build_steps": ["pip install -r requirements.txt"],
    }
    assert not (bundle / "modelcloud").exists()


def test_verified_bundle_runs_without_jupyter_and_answers_like_the_kernel(
    kernel, tmp_path, cache, monkeypatch
):
    out = export(kernel, "bundle --verify", timeout=600)
    assert not out["stderr"], out["stdout"] + out["stderr"]
    text = out["stdout"]
    assert "No Jupyter package is importable there" in text
    assert "examples/predict/001.json: same answer as the notebook" in text
    assert "examples/shout/001.json: same answer as the notebook" in text
    assert "examples/affine/001.json: same answer as the notebook" in text
    assert "Verified in" in text and "never imports or defines" not in text

    # The very environment verification used (from this module's cache), and a copy of the bundle in
    # another folder: it needs nothing from the notebook's folder.
    monkeypatch.setenv("ALGOLINK_CACHE_DIR", str(cache))
    python, reused = environment(kernel.folder / "bundle" / "requirements.txt")
    assert reused and str(python).startswith(str(cache))
    probe = subprocess.run(
        [str(python), "-c", "import IPython"], capture_output=True, text=True, timeout=60
    )
    assert probe.returncode != 0 and "No module named 'IPython'" in probe.stderr
    copy = tmp_path / "elsewhere"
    shutil.copytree(kernel.folder / "bundle", copy)
    server = ServerProcess([str(python), "-E", "-s", "cloud_model.py"], cwd=copy).wait_started()
    try:
        for x in (0, 7.25, 33, 100):
            body = {"x": x}
            want = kernel.eval(f"modelcloud.default_registry.run_command('predict', {body!r})")
            got = server.post("/predict", json=body)
            assert got.status_code == 200, got.text
            assert got.json()["label"] == want["label"]
            assert got.json()["y"] == pytest.approx(want["y"])
        assert server.post("/shout", json={"s": "hi"}).json() == {"s": "hello!!"}
        assert server.post("/predict", json={"x": 101}).status_code == 400
        v = [0.1, -2.0, 3.5]
        want = kernel.eval(f"net(torch.tensor({v})).tolist()")
        assert server.post("/affine", json={"v": v}).json()["out"] == pytest.approx(want, rel=1e-5)
    finally:
        server.stop()


def test_second_verification_reuses_its_environment_and_catches_a_changed_answer(
    kernel, tmp_path, cache, monkeypatch
):
    monkeypatch.setenv("ALGOLINK_CACHE_DIR", str(cache))
    copy = tmp_path / "bundle"
    shutil.copytree(kernel.folder / "bundle", copy)
    lines: list = []
    report = verify_bundle(copy, out=lines.append)
    assert report.reused and report.examples == 3
    example = copy / "examples" / "predict" / "001.json"
    record = json.loads(example.read_text())
    record["outputs"]["y"] += 1
    example.write_text(json.dumps(record))
    lines.clear()
    with pytest.raises(
        VerifyError,
        match=r"1 of 3 example\(s\) failed; examples/predict/001\.json: the bundle's output 'y' is",
    ):
        verify_bundle(copy, out=lines.append)
    # A line per example, the failing one saying which output differed and how.
    assert any(
        line.startswith("  examples/predict/001.json: FAILED, the bundle's output 'y' is")
        for line in lines
    )
    assert "  examples/shout/001.json: same answer" in "\n".join(lines)


def test_verify_names_the_cause_of_a_bundle_broken_on_purpose(kernel, tmp_path, cache, monkeypatch):
    """An import the slicer must not drop (`import json`, which only `lookup` reads, inside a
    function), removed from the written cloud_model.py: verification fails and says why."""
    monkeypatch.setenv("ALGOLINK_CACHE_DIR", str(cache))
    broken = tmp_path / "broken"
    shutil.copytree(kernel.folder / "bundle", broken)
    source = (broken / "cloud_model.py").read_text()
    assert "\nimport json\n" in source
    (broken / "cloud_model.py").write_text(source.replace("\nimport json\n", "\n", 1))
    lines: list = []
    with pytest.raises(VerifyError) as caught:
        verify_bundle(broken, out=lines.append)
    message = str(caught.value)
    assert "examples/shout/001.json" in message
    assert "name 'json' is not defined" in message
    assert "cloud_model.py reads `json`, which it never imports or defines" in message
    log = "\n".join(lines)
    assert "examples/shout/001.json: FAILED, the bundle answered 500" in log
    assert "examples/predict/001.json: same answer" in log  # the others still ran

    # Removed where it is read at start-up (numpy, for the saved arrays' class lookups and for
    # `helper`): the bundle does not start, and the message says what it printed.
    broken2 = tmp_path / "broken2"
    shutil.copytree(kernel.folder / "bundle", broken2)
    text = (broken2 / "cloud_model.py").read_text()
    text = text.replace("class Net(torch.nn.Module):", "class Net(nn_missing.Module):", 1)
    (broken2 / "cloud_model.py").write_text(text)
    with pytest.raises(VerifyError) as caught:
        verify_bundle(broken2, out=lines.append)
    message = str(caught.value)
    assert "before serving" in message and "NameError: name 'nn_missing' is not defined" in message


def test_export_replaces_its_own_bundle_and_refuses_other_folders(kernel):
    (kernel.folder / "bundle" / "stale.txt").write_text("from an earlier export")
    out = export(kernel, "bundle")
    assert not out["stderr"] and not (kernel.folder / "bundle" / "stale.txt").exists()
    mine = kernel.folder / "my_code"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    out = export(kernel, "my_code")
    assert "my_code already holds files that are not an AlgoLink export" in out["stderr"]
    assert (mine / "notes.txt").read_text() == "mine" and not (mine / "cloud_model.py").exists()
    out = export(kernel, ".")
    assert "holds the notebook itself" in out["stderr"]


def test_a_value_made_by_an_older_class_is_reported(kernel):
    kernel.run(NOTEBOOK[3])  # the class cell runs again: `trained` is an instance of the old class
    out = export(kernel, "bundle")
    assert "`trained` was made by an older definition of `Scaler`" in out["stderr"]
    kernel.run(NOTEBOOK[6])  # building it again fixes it
    out = export(kernel, "bundle --port 9123")
    assert not out["stderr"] and "Exported 3 commands" in out["stdout"]
    config = yaml.safe_load((kernel.folder / "bundle" / "algolink.yml").read_text())
    assert config["port"] == 9123 and config["cuda"] is None  # the model is on the CPU


# -- the command line ---------------------------------------------------------------------------------------


def algolink(
    *args: str, cwd: Path, cache: Path, timeout: float = 600
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "algolink_jupyter.cli", *args],
        cwd=str(cwd),
        env={**os.environ, "ALGOLINK_CACHE_DIR": str(cache), "JUPYTER_RUNTIME_DIR": str(cwd)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.timeout(600)
def test_cli_exports_and_verifies_the_quickstart(tmp_path, cache):
    shutil.copy(REPO / "notebooks" / "quickstart.ipynb", tmp_path)
    proc = algolink(
        "export",
        "quickstart.ipynb",
        "-o",
        "out/bundle",
        "--verify",
        "--port",
        "9100",
        cwd=tmp_path,
        cache=cache,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "Running quickstart.ipynb in a fresh kernel" in proc.stdout
    assert "examples/classify/001.json: same answer as the notebook" in proc.stdout
    assert "Verified in" in proc.stdout
    bundle = tmp_path / "out" / "bundle"
    source = (bundle / "cloud_model.py").read_text()
    assert "class DigitNet(nn.Module):" in source and "def to_input(img):" in source
    assert 'device = "cuda" if torch.cuda.is_available() else "cpu"' in source
    for left_out in ("load_digits", "optimizer", "curl", "serving_info", "examples.save"):
        assert left_out not in source
    # The trained net ships as its state_dict, rebuilt by DigitNet() (`net = DigitNet().to(device)`)
    # and loaded with weights_only=True: nothing is pickled, nothing is trained again.
    assert sorted(p.name for p in (bundle / "models").iterdir()) == ["net.pt"]
    # `.to(device)` is replayed after loading: on the GPU where the bundle's `device` says so.
    assert 'net = _load_module(DigitNet(), "net.pt", training=False).to(device)' in source
    assert "_load_pickled" not in source
    config = yaml.safe_load((bundle / "algolink.yml").read_text())
    assert config["port"] == 9100 and config["cuda"] is None
    installed = importlib.metadata.version("torch")
    lines = (bundle / "requirements.txt").read_text().splitlines()
    torch_line = next(line for line in lines if line.startswith("torch=="))
    assert torch_line.split()[0] == f"torch=={installed.split('+')[0]}"
    if "+" in installed:  # installable as written, with a comment saying what the kernel had
        assert f"# the kernel had {installed}" in torch_line
    from algolink_jupyter.export.requirements import is_notebook_distribution

    pinned = [line.split("==")[0] for line in lines if line and not line.startswith("#")]
    assert pinned and not [name for name in pinned if is_notebook_distribution(name)]


def test_cli_errors_name_the_notebook_and_the_cell(tmp_path, cache):
    proc = algolink("export", "missing.ipynb", "-o", "b", cwd=tmp_path, cache=cache)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "algolink: error: missing.ipynb does not exist: give the path of a .ipynb notebook."
    )
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("1 / 0")]
    nbformat.write(nb, tmp_path / "broken.ipynb")
    proc = algolink("export", "broken.ipynb", "-o", "b", cwd=tmp_path, cache=cache)
    assert proc.returncode == 1
    assert "Cell 2 of broken.ipynb raised ZeroDivisionError: division by zero" in proc.stderr
    nb.cells = [nbformat.v4.new_code_cell("x = 1")]
    nbformat.write(nb, tmp_path / "nothing.ipynb")
    proc = algolink("export", "nothing.ipynb", "-o", "b", cwd=tmp_path, cache=cache)
    assert proc.returncode == 1 and "There is nothing to export" in proc.stderr
    assert not (tmp_path / "b").exists()


def test_bench_export_quick(tmp_path, cache):
    output = tmp_path / "export.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "export.py"), "--quick", "--output", str(output)],
        cwd=str(REPO),
        env={**os.environ, "ALGOLINK_CACHE_DIR": str(cache)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for row in ("export, cold (s)", "export, warm (s)", "verify, warm cache (s)"):
        assert row in proc.stdout, proc.stdout
    results = json.loads(output.read_text())
    assert results["cells"] == 100 and results["cloud_model_lines"] > 100
    assert all(
        results[k] > 0 for k in ("export_cold_s", "nbconvert_s", "verify_warm_s", "startup_s")
    )
