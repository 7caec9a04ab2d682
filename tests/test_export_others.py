"""Export of notebooks shaped like the ones others write (issue 16): a scikit-learn gallery example and a
PyTorch example, with only the cells a user adds (``%load_ext``, a command cell wrapping the prediction the
notebook already makes). Each is run by ``algolink export NOTEBOOK -o DIR --verify`` in a fresh kernel.

- A notebook that never runs ``import modelcloud`` exports with no warning and verifies (the decorator
  the export writes is not a name the notebook must define), nor does a guarded import of a module
  that is not installed (``try: import ujson ... except ImportError``).
- Every kind of warning the export prints about a name, a module or a file comes true: the bundle it
  warns of fails verification, saying why (a file outside the notebook's folder: once it is gone).
- A module's constructor arguments computed in the kernel (``W.size(0)``, ``len(vocab)``,
  ``cfg["hidden"]``) are written as the constants they evaluated to, with a comment.
- A command no example checks fails the verification (exit 1, "not checked"), unless
  ``--allow-unchecked``, where the last line says so.
- Verification leaves the bundle as the export wrote it: no ``__pycache__``, nothing the bundle wrote.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from algolink_jupyter.export import VerifyError, verify_bundle

WINE = [
    "%load_ext algolink_jupyter",
    "from sklearn.datasets import load_wine\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "from sklearn.model_selection import train_test_split\n"
    "from sklearn.pipeline import make_pipeline\n"
    "from sklearn.preprocessing import StandardScaler\n\n"
    "from helpers import rounded\n\n"
    "try:  # the faster one when it is installed (it is not, here nor in the bundle)\n"
    "    import ujson as fastjson\n"
    "except ImportError:\n"
    "    import json as fastjson",
    "X, y = load_wine(return_X_y=True)\n"
    "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)\n"
    "clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))\n"
    "clf.fit(X_train, y_train)\n"
    'print(f"accuracy: {clf.score(X_test, y_test):.3f}")',
    # A setup that writes a file where it runs: the bundle's folder, under verification.
    "%%algolink_setup\n"
    "def setup():\n"
    "    import os\n\n"
    '    with open(f"served-{os.getpid()}.log", "a") as f:\n'
    '        f.write("started\\n")\n'
    "    return clf",
    '%%algolink_command classify --inputs "features=vector(length=13, sampling_mean=1.0)" '
    '--outputs "label=number, probabilities=vector(length=3)"\n'
    "def classify(model, inputs):\n"
    '    proba = model.predict_proba([inputs["features"]])[0]\n'
    '    return {"label": int(proba.argmax()), "probabilities": fastjson.loads(fastjson.dumps(rounded(proba)))}',
]
HELPERS = "def rounded(values):\n    return [round(float(v), 4) for v in values]\n"


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("algolink-cache")


def notebook(folder: Path, cells: list, name: str = "model.ipynb") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "helpers.py").write_text(HELPERS)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, folder / name)
    return folder / name


def algolink_export(path: Path, cache: Path, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "algolink_jupyter.cli", "export", path.name, "-o", "bundle", *flags],
        cwd=str(path.parent),
        env={
            **os.environ,
            "ALGOLINK_CACHE_DIR": str(cache),
            "JUPYTER_RUNTIME_DIR": str(path.parent),
        },
        capture_output=True,
        text=True,
        timeout=600,
    )


def warnings_in(proc: subprocess.CompletedProcess) -> list:
    return [line for line in proc.stdout.splitlines() if line.startswith("Warning:")]


@pytest.fixture(scope="module")
def wine(tmp_path_factory, cache) -> tuple:
    """The gallery-shaped notebook (it never imports modelcloud), exported with --verify."""
    folder = tmp_path_factory.mktemp("wine")
    proc = algolink_export(notebook(folder, WINE), cache, "--verify")
    return proc, folder / "bundle"


@pytest.mark.timeout(600)
def test_a_notebook_that_never_imports_modelcloud_exports_without_a_warning(wine):
    proc, bundle = wine
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert not warnings_in(proc) and "Warning" not in proc.stderr, proc.stdout
    assert "modelcloud`, which the kernel does not define" not in proc.stdout
    assert "examples/classify/001.json: same answer as the notebook" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1].startswith("Verified in ")
    source = (bundle / "cloud_model.py").read_text()
    assert "import modelcloud\n" in source and "@modelcloud.command(" in source


@pytest.mark.timeout(600)
def test_verification_leaves_the_bundle_as_the_export_wrote_it(wine):
    proc, bundle = wine
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert (bundle / "helpers.py").is_file()  # imported by the bundle while it was verified
    assert "    | " in proc.stdout  # the bundle ran
    left = sorted(str(p.relative_to(bundle)) for p in bundle.rglob("*"))
    assert not [p for p in left if "__pycache__" in p or p.endswith(".pyc")], left
    assert not [p for p in left if p.startswith("served-")], left  # what the setup wrote there
    assert sorted(p.name for p in bundle.iterdir()) == [
        ".algolink-wheels",  # the Dockerfile's runtime wheel
        ".dockerignore",
        "Dockerfile",
        "README.md",
        "algolink.yml",
        "cloud_model.py",
        "examples",
        "helpers.py",
        "models",
        "requirements.txt",
    ]


@pytest.mark.timeout(600)
def test_a_name_the_kernel_no_longer_defines_is_warned_of_and_the_bundle_fails(tmp_path, cache):
    """The warning comes true: a name deleted from the kernel after an example was saved."""
    cells = WINE[:-1] + [
        "MIN_CONFIDENCE = 0.5",
        '%%algolink_command classify --inputs "features=vector(length=13, sampling_mean=1.0)" '
        '--outputs "label=number, sure=boolean"\n'
        "def classify(model, inputs):\n"
        '    proba = model.predict_proba([inputs["features"]])[0]\n'
        '    return {"label": int(proba.argmax()), "sure": bool(proba.max() > MIN_CONFIDENCE)}',
        "import modelcloud\nfrom algolink_jupyter import examples\n\n"
        'body = {"features": X_test[0].tolist()}\n'
        'examples.save("classify", body, modelcloud.default_registry.run_command("classify", body))',
        "del MIN_CONFIDENCE",
    ]
    proc = algolink_export(notebook(tmp_path, cells), cache, "--verify")
    assert warnings_in(proc) == [
        "Warning: command 'classify' reads `MIN_CONFIDENCE`, which the kernel does not define: "
        "the bundle will fail where it is read."
    ], proc.stdout
    assert proc.returncode == 1, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "examples/classify/001.json: FAILED, the bundle answered 500" in proc.stdout
    assert "cloud_model.py reads `MIN_CONFIDENCE`, which it never imports or defines" in proc.stderr


@pytest.mark.timeout(600)
def test_a_module_no_package_provides_is_warned_of_and_the_bundle_fails(tmp_path, cache):
    """The warning comes true: a module found through sys.path, outside the notebook's folder."""
    vendor = tmp_path / "vendor"
    vendor.mkdir()
    (vendor / "winestats.py").write_text("def label_name(i):\n    return f'cultivar {i}'\n")
    cells = WINE[:-1] + [
        f"import sys\nsys.path.insert(0, {str(vendor)!r})\nfrom winestats import label_name",
        '%%algolink_command classify --inputs "features=vector(length=13, sampling_mean=1.0)" '
        '--outputs "label=text"\n'
        "def classify(model, inputs):\n"
        '    return {"label": label_name(int(model.predict([inputs["features"]])[0]))}',
    ]
    proc = algolink_export(notebook(tmp_path / "nb", cells), cache, "--verify")
    found = warnings_in(proc)
    assert len(found) == 1 and found[0].startswith(
        "Warning: No installed package provides `winestats` (the kernel loads it from "
        f"{vendor / 'winestats.py'}), needed by `from winestats import ...`: the bundle will fail "
        "where it imports it"
    ), proc.stdout
    assert proc.returncode == 1, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "before serving" in proc.stderr
    assert "ModuleNotFoundError: No module named 'winestats'" in proc.stderr


@pytest.mark.timeout(600)
def test_a_file_outside_the_notebooks_folder_is_warned_of_and_the_bundle_fails_without_it(
    tmp_path, cache, monkeypatch
):
    """The warning comes true where the bundle runs without that file: verification here passes (the
    file is still there), and fails once it is gone."""
    shared = tmp_path / "shared"
    shared.mkdir()
    names = shared / "cultivars.json"
    names.write_text('["barolo", "grignolino", "barbera"]')
    cells = WINE[:-1] + [
        "import json",
        '%%algolink_command classify --inputs "features=vector(length=13, sampling_mean=1.0)" '
        '--outputs "label=text"\n'
        "def classify(model, inputs):\n"
        f"    with open({str(names)!r}) as f:\n"
        "        cultivars = json.load(f)\n"
        '    return {"label": cultivars[int(model.predict([inputs["features"]])[0])]}',
    ]
    proc = algolink_export(notebook(tmp_path / "nb", cells), cache, "--verify")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert warnings_in(proc) == [
        f"Warning: The code names {names}, outside the notebook's folder: the bundle does not "
        "include it; copy it next to the notebook and use a relative path."
    ], proc.stdout
    names.rename(tmp_path / "moved.json")
    monkeypatch.setenv("ALGOLINK_CACHE_DIR", str(cache))
    with pytest.raises(VerifyError, match="FileNotFoundError|No such file or directory"):
        verify_bundle(tmp_path / "nb" / "bundle", out=lambda _line: None)


DESCRIBE = (
    # The shape of a command whose input is free-form JSON: the made-up "hello" makes it fail.
    '%%algolink_command describe --inputs "sample=any" --outputs "label=number"\n'
    "def describe(model, inputs):\n"
    '    row = [inputs["sample"][name] for name in FEATURES]\n'
    '    return {"label": int(model.predict([row])[0])}'
)


@pytest.mark.timeout(600)
def test_a_command_no_example_checks_fails_verification_unless_allowed(tmp_path, cache):
    cells = WINE + [
        "FEATURES = list(load_wine().feature_names)",
        DESCRIBE,
    ]
    path = notebook(tmp_path, cells)
    proc = algolink_export(path, cache, "--verify")
    assert proc.returncode == 1, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "Warning: No example of 'describe' to verify it with: running 'describe'" in proc.stdout
    assert "examples/classify/001.json: same answer as the notebook" in proc.stdout
    assert (
        "  describe: NOT CHECKED, running 'describe' in the kernel on a made-up input failed ("
        in proc.stdout
    )
    assert "Verified in" not in proc.stdout
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "algolink: error: Verification failed: 1 of 2 commands not checked ('describe': no example"
    ), last
    assert 'Save as example") and export again, or give --allow-unchecked' in last
    assert not list((tmp_path / "bundle").rglob("__pycache__"))

    proc = algolink_export(path, cache, "--verify", "--allow-unchecked")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("Partly verified in "), last
    assert last.endswith(
        "answers its 1 example(s) as the notebook did; 1 of 2 commands ('describe') not checked, "
        "accepted with --allow-unchecked."
    ), last

    proc = algolink_export(path, cache, "--allow-unchecked")
    assert proc.returncode == 1 and "--allow-unchecked goes with --verify" in proc.stderr


REGRESSION = [
    "%load_ext algolink_jupyter",
    "import torch\nfrom torch import nn\n\ntorch.manual_seed(0)",
    "POLY_DEGREE = 4\nW_target = torch.randn(POLY_DEGREE, 1) * 5\nb_target = torch.randn(1) * 5",
    "def make_features(x):\n"
    '    """Builds features i.e. a matrix with columns [x, x^2, x^3, x^4]."""\n'
    "    x = x.unsqueeze(1)\n"
    "    return torch.cat([x**i for i in range(1, POLY_DEGREE + 1)], 1)\n\n\n"
    "def get_batch(batch_size=32):\n"
    "    x = torch.randn(batch_size)\n"
    "    features = make_features(x)\n"
    "    return features, features.mm(W_target) + b_target.item()",
    "fc = nn.Linear(W_target.size(0), 1)\n\n"
    "for batch_idx in range(300):\n"
    "    batch_x, batch_y = get_batch()\n"
    "    fc.zero_grad()\n"
    "    loss = nn.functional.smooth_l1_loss(fc(batch_x), batch_y)\n"
    "    loss.backward()\n"
    "    for param in fc.parameters():\n"
    "        param.data.add_(-0.1 * param.grad)\n"
    'print(f"loss {loss.item():.4f} after {batch_idx} batches")',
    'vocab = sorted(set("the quick brown fox jumps over the lazy dog".split()))\n'
    'cfg = {"hidden": 6, "mode": "mean"}\n'
    'bag = nn.EmbeddingBag(len(vocab), cfg["hidden"], mode=cfg["mode"]).eval()',
    '%%algolink_command evaluate --inputs "x=number(min=-2, max=2)" --outputs "y=number"\n'
    "def evaluate(model, inputs):\n"
    "    with torch.no_grad():\n"
    '        y = fc(make_features(torch.tensor([float(inputs["x"])])))\n'
    '    return {"y": round(float(y[0, 0]), 4)}',
    '%%algolink_command embed --inputs "text=text" --outputs "norm=number"\n'
    "def embed(model, inputs):\n"
    '    ids = [vocab.index(w) for w in inputs["text"].split() if w in vocab] or [0]\n'
    "    with torch.no_grad():\n"
    "        vector = bag(torch.tensor(ids), torch.tensor([0]))\n"
    '    return {"norm": round(float(vector.norm()), 4)}',
]


@pytest.mark.timeout(600)
def test_constructor_arguments_computed_in_the_kernel_are_written_as_constants(tmp_path, cache):
    proc = algolink_export(notebook(tmp_path, REGRESSION), cache, "--verify")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert not warnings_in(proc), proc.stdout
    source = (tmp_path / "bundle" / "cloud_model.py").read_text()
    assert (
        "# 4 = W_target.size(0): evaluated in the notebook's kernel\n"
        'fc = _load_module(nn.Linear(4, 1), "fc.pt", training=True)\n'
    ) in source
    assert (
        "# 8 = len(vocab), 6 = cfg['hidden'], 'mean' = cfg['mode']: evaluated in the notebook's "
        "kernel\n"
        "bag = _load_module(nn.EmbeddingBag(8, 6, mode='mean'), \"bag.pt\", training=False).eval()\n"
    ) in source
    assert "batch_idx" not in source and "W_target" not in source.replace("# 4 = W_target", "")
    assert "examples/evaluate/001.json: same answer as the notebook" in proc.stdout
    assert "examples/embed/001.json: same answer as the notebook" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1].startswith("Verified in ")


def test_names_the_bundle_has_are_not_warned_of(tmp_path):
    """The `modelcloud` of the decorator the export writes, and `__file__`: the kernel has neither, the
    bundle has both. A name neither has is still warned of."""
    from test_export import run_cells

    from algolink_jupyter.export import slice_notebook
    from algolink_jupyter.export.bundle import render

    cells = [
        '%%algolink_command where --inputs "x=number" --outputs "y=any"\n'
        "def where(model, inputs):\n"
        "    import os\n\n"
        "    return [os.path.basename(__file__), inputs['x'] * SCALE]",
    ]
    ns, registry = run_cells(cells)
    plan = slice_notebook(cells, ns, registry, workdir=tmp_path)
    assert plan.warnings == [
        "command 'where' reads `SCALE`, which the kernel does not define: the bundle will fail "
        "where it is read."
    ]
    source = render(plan, {})
    assert source.count("import modelcloud\n") == 1 and "__file__ =" not in source
