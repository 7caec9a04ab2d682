"""Export of what notebooks written by others hold: training data a command reads a little of, a weights
file reached through a ``pathlib.Path`` built in the notebook, and gradient-boosting models in their
libraries' own formats. Each notebook is run in a real kernel and exported with ``--verify``.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from support import Kernel

pytest.importorskip("pandas", reason="these notebooks use pandas: pip install pandas")


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("algolink-cache")


def notebook(folder: Path, cache: Path, cells: list) -> Kernel:
    k = Kernel(folder, env={"JUPYTER_RUNTIME_DIR": str(folder), "ALGOLINK_CACHE_DIR": str(cache)})
    k.folder = folder
    try:
        k.run("%load_ext algolink_jupyter", timeout=60)
        for cell in cells:
            out = k.run(cell, timeout=180)
            assert "Error" not in out["stderr"], out["stderr"]
    except BaseException:
        k.shutdown()
        raise
    return k


def export(k: Kernel, line: str) -> dict:
    return k.run(f"%algolink export {line}", timeout=600, check=False)


# scikit-learn's wine data as a DataFrame; the command builds its one-row frame with `X.columns`.
WINE = [
    "import pandas as pd\n"
    "from sklearn.datasets import load_wine\n"
    "from sklearn.ensemble import RandomForestClassifier\n"
    "from sklearn.model_selection import train_test_split",
    "wine = load_wine(as_frame=True)\n"
    "X, y = wine.data, wine.target\n"
    "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)\n"
    "clf = RandomForestClassifier(n_estimators=20, random_state=0).fit(X_train, y_train)\n"
    "clf.score(X_test, y_test)",
    '%%algolink_command classify --inputs "alcohol=number, proline=number" --outputs "cultivar=number"\n'
    "def classify(model, inputs):\n"
    "    row = dict.fromkeys(X.columns, 0.0)\n"
    "    row.update(inputs)\n"
    "    sample = pd.DataFrame([row], columns=X.columns)\n"
    '    return {"cultivar": int(clf.predict(sample)[0])}',
]


def test_a_command_that_reads_the_column_names_ships_them_not_the_training_set(tmp_path, cache):
    pytest.importorskip("skops", reason="the forest is saved with skops: pip install skops")
    k = notebook(tmp_path, cache, WINE)
    try:
        out = export(k, "bundle --verify")
        assert not out["stderr"], out["stdout"] + out["stderr"]
        text = out["stdout"]
        assert "kept of X" in text and "X.columns of a 178x13 DataFrame" in text
        assert "Verified in" in text
        bundle = tmp_path / "bundle"
        source = (bundle / "cloud_model.py").read_text()
        assert "X = types.SimpleNamespace(columns=pandas.Index(['alcohol', 'malic_acid'" in source
        assert sorted(p.name for p in (bundle / "models").iterdir()) == ["clf.skops"]
        assert "X.columns of a 178x13 DataFrame" in (bundle / "README.md").read_text()

        # A command that reads X as a whole: it ships whole, and the export says so in one line...
        k.run(
            '%%algolink_command nearest --inputs "row=number(min=0, max=177)" --outputs "cultivar=number"\n'
            "def nearest(model, inputs):\n"
            '    return {"cultivar": int(clf.predict(X.iloc[[int(inputs["row"])]])[0])}'
        )
        out = export(k, "bundle")
        assert not out["stderr"], out["stdout"] + out["stderr"]
        line = next(x for x in out["stdout"].splitlines() if x.startswith("  data "))
        assert "X: a 178x13 DataFrame, " in line and " kB, training data (given to " in line
        assert "train_test_split in In [" in line
        assert "kept of X" not in out["stdout"]
        readme = (tmp_path / "bundle" / "README.md").read_text()
        assert "`X`" in readme and "training data" in readme and "is a pickle" in readme
        # ...and --max-state-size stops it with a sentence, leaving the earlier bundle as it was.
        out = export(k, "bundle --max-state-size 10kB")
        assert "over --max-state-size 10.0 kB" in out["stderr"]
        assert "X: a 178x13 DataFrame" in out["stderr"] and "training data" in out["stderr"]
        assert (tmp_path / "bundle" / "models" / "notebook_state.pkl").is_file()
        out = export(k, "bundle --max-state-size lots")
        assert "--max-state-size takes a size such as 10MB" in out["stderr"]
    finally:
        k.shutdown()


# As in PyTorch's "save and load" workflow: the weights go to MODEL_PATH / MODEL_NAME, and the setup
# loads them from there.
PATHS = [
    "import torch\nfrom torch import nn\nfrom pathlib import Path",
    "class LinearRegressionModel(nn.Module):\n"
    "    def __init__(self):\n"
    "        super().__init__()\n"
    "        self.linear_layer = nn.Linear(in_features=1, out_features=1)\n\n"
    "    def forward(self, x):\n"
    "        return self.linear_layer(x)",
    "torch.manual_seed(42)\n"
    "X = torch.arange(0, 1, 0.02).unsqueeze(dim=1)\n"
    "y = 0.7 * X + 0.3\n"
    "model_0 = LinearRegressionModel()\n"
    "optimizer = torch.optim.SGD(model_0.parameters(), lr=0.1)\n"
    "for epoch in range(200):\n"
    "    loss = nn.L1Loss()(model_0(X), y)\n"
    "    optimizer.zero_grad()\n"
    "    loss.backward()\n"
    "    optimizer.step()",
    'MODEL_PATH = Path("models")\n'
    "MODEL_PATH.mkdir(parents=True, exist_ok=True)\n"
    'MODEL_NAME = "01_pytorch_workflow_model_0.pth"\n'
    "MODEL_SAVE_PATH = MODEL_PATH / MODEL_NAME\n"
    "torch.save(obj=model_0.state_dict(), f=MODEL_SAVE_PATH)",
    "%%algolink_setup\n"
    "def setup():\n"
    "    loaded_model_0 = LinearRegressionModel()\n"
    "    loaded_model_0.load_state_dict(torch.load(f=MODEL_SAVE_PATH, weights_only=True))\n"
    "    return loaded_model_0.eval()",
    '%%algolink_command predict --inputs "x=number" --outputs "y=number"\n'
    "def predict(model, inputs):\n"
    "    with torch.inference_mode():\n"
    '        return {"y": float(model(torch.tensor([[float(inputs["x"])]]))[0, 0])}',
]


def test_a_weights_file_reached_through_a_path_built_in_the_notebook_is_copied(tmp_path, cache):
    k = notebook(tmp_path, cache, PATHS)
    try:
        out = export(k, "bundle --verify")
        assert not out["stderr"], out["stdout"] + out["stderr"]
        assert "Verified in" in out["stdout"]
        assert "copied            models/01_pytorch_workflow_model_0.pth" in out["stdout"]
        bundle = tmp_path / "bundle"
        source = (bundle / "cloud_model.py").read_text()
        assert (
            'MODEL_SAVE_PATH = pathlib.Path(_here("models/01_pytorch_workflow_model_0.pth"))'
            "  # MODEL_PATH / MODEL_NAME, in the kernel"
        ) in source
        assert (
            "_load_pickled" not in source
            and not (bundle / "models" / "notebook_state.pkl").exists()
        )
        copied = bundle / "models" / "01_pytorch_workflow_model_0.pth"
        assert (
            copied.read_bytes()
            == (tmp_path / "models" / "01_pytorch_workflow_model_0.pth").read_bytes()
        )
    finally:
        k.shutdown()


# LightGBM's own API (lgb.train on a Dataset gives a Booster) and XGBoost's scikit-learn one.
BOOSTERS = [
    "import numpy as np\nimport lightgbm as lgb\nimport xgboost as xgb\n"
    "from sklearn.datasets import load_breast_cancer, load_iris",
    "data, target = load_breast_cancer(return_X_y=True)\n"
    "train_data = lgb.Dataset(data, label=target)\n"
    "param = {'num_leaves': 7, 'objective': 'binary', 'metric': 'auc', 'verbose': -1}\n"
    "bst = lgb.train(param, train_data, num_boost_round=10)",
    "iris_X, iris_y = load_iris(return_X_y=True)\n"
    "xgb_model = xgb.XGBClassifier(n_estimators=10, max_depth=2).fit(iris_X, iris_y)",
    '%%algolink_command cancer --inputs "row=number(min=0, max=568)" --outputs "p=number"\n'
    "def cancer(model, inputs):\n"
    '    i = int(inputs["row"])\n'
    '    return {"p": float(bst.predict(data[i : i + 1])[0])}',
    '%%algolink_command iris --inputs "features=vector(length=4)" --outputs "label=number"\n'
    "def iris(model, inputs):\n"
    '    return {"label": int(xgb_model.predict(np.array([inputs["features"]]))[0])}',
]


def test_boosters_are_saved_in_their_libraries_own_formats(tmp_path, cache):
    pytest.importorskip("lightgbm", reason="pip install lightgbm")
    pytest.importorskip("xgboost", reason="pip install xgboost")
    k = notebook(tmp_path, cache, BOOSTERS)
    try:
        out = export(k, "bundle --verify")
        assert not out["stderr"], out["stdout"] + out["stderr"]
        text = out["stdout"]
        assert "bst (Booster: LightGBM model text)" in text
        assert "xgb_model (XGBClassifier: XGBoost JSON)" in text
        assert "Verified in" in text
        bundle = tmp_path / "bundle"
        models = sorted(p.name for p in (bundle / "models").iterdir())
        assert "bst.lgb.txt" in models and "xgb_model.xgb.json" in models
        assert "notebook_state.pkl" not in models  # `data` is an array: .npy
        assert (bundle / "models" / "bst.lgb.txt").read_text().startswith("tree\n")
        json.loads((bundle / "models" / "xgb_model.xgb.json").read_text())
        source = (bundle / "cloud_model.py").read_text()
        assert 'bst = _load_lightgbm("bst.lgb.txt")' in source
        assert 'xgb_model = _load_xgboost(xgboost.XGBClassifier, "xgb_model.xgb.json")' in source
        assert "_load_pickled" not in source
        readme = (bundle / "README.md").read_text()
        assert "models/bst.lgb.txt (LightGBM model text)" in readme
        assert "is a pickle" not in readme
        pins = (bundle / "requirements.txt").read_text()
        assert "lightgbm==" in pins and "scikit-learn==" in pins
        assert re.search(r"^xgboost(-cpu)?==", pins, re.M), pins  # the CPU build, or the full one
    finally:
        k.shutdown()


def test_attributes_ship_only_when_nothing_reads_more_of_the_value(tmp_path, monkeypatch):
    """Slicing alone: `X.columns` and `X.shape` ship as literals; a function found later, through a
    pickled value, that reads `X` whole makes the export ship `X` whole after all."""
    from test_export import run_cells

    from algolink_jupyter.export import slice_notebook

    cells = [
        "import pandas as pd\nimport numpy as np",
        "X = pd.DataFrame(np.arange(12.0).reshape(4, 3), columns=['a', 'b', 'c'])",
        '%%algolink_command c --inputs "v=any" --outputs "n=any"\n'
        "def c(model, inputs):\n"
        "    return {'n': len(pd.DataFrame([inputs['v']], columns=X.columns)) + X.shape[1]}",
    ]
    ns, registry = run_cells(cells)
    plan = slice_notebook(cells, ns, registry, workdir=tmp_path)
    assert plan.state == {} and plan.reduced == {"X": "X.columns, X.shape of a 4x3 DataFrame"}
    stand_in = next(i.source for i in plan.items if i.label == "X")
    built: dict = {}
    exec("import types, pandas\n" + stand_in, built)
    assert list(built["X"].columns) == ["a", "b", "c"] and built["X"].shape == (4, 3)

    cells += [
        "def describe(i):\n    return X.iloc[i]\nhelpers = {'describe': describe}",
        '%%algolink_command d --inputs "v=any" --outputs "n=any"\n'
        "def d(model, inputs):\n"
        "    return {'n': len(helpers)}",
    ]
    ns, registry = run_cells(cells)
    # pickle finds a function of the notebook in __main__, as in a kernel
    monkeypatch.setattr(sys.modules["__main__"], "describe", ns["describe"], raising=False)
    plan = slice_notebook(cells, ns, registry, workdir=tmp_path)
    assert plan.reduced == {} and set(plan.state) == {"X", "helpers"}
    assert "describe" in plan.defined
