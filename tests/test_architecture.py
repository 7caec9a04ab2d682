"""The house's rule, checked on the code's own imports: every import points down.

The floors, lowest first (ARCHITECTURE.md says what each room holds):

    modelcloud                                   the runtime SDK and model server
    errors, names, markdown, spec, examples,     the shared bottom of algolink_jupyter
    runtime, dockerfile, budget
    kernel, client, hub                          kernel serving; the hub's HTTP client; the hub server
    export                                       notebook -> bundle
    widgets, serverext                           the notebook's forms; the Jupyter server extension
    magics                                       the %algolink magics
    cli, algolink_jupyter (the package)          what assembles the parts

A module may import its own room and the floors below, never a floor above nor another room of its own
floor; only ``cli`` imports the hub server; there is no import circle among modules; and no module
imports another module's private (``_``) name. Imports inside functions count like the others.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("modelcloud", "algolink_jupyter")

LAYERS = [
    ["modelcloud"],
    [
        "algolink_jupyter.errors",
        "algolink_jupyter.names",
        "algolink_jupyter.translation",
        "algolink_jupyter.markdown",
        "algolink_jupyter.spec",
        "algolink_jupyter.examples",
        "algolink_jupyter.runtime",
        "algolink_jupyter.dockerfile",
        "algolink_jupyter.budget",
    ],
    ["algolink_jupyter.kernel", "algolink_jupyter.client", "algolink_jupyter.hub"],
    ["algolink_jupyter.export"],
    ["algolink_jupyter.widgets", "algolink_jupyter.serverext"],
    ["algolink_jupyter.magics"],
    ["algolink_jupyter.cli", "algolink_jupyter"],
]
#: Who may import the hub server (it depends on modelcloud and the shared bottom only).
HUB_IMPORTERS = {"algolink_jupyter.cli"}
FLOOR = {room: i for i, rooms in enumerate(LAYERS) for room in rooms}


def modules() -> dict:
    """module name -> its file, for every module of both packages."""
    found = {}
    for package, where in (("modelcloud", REPO / "runtime"), ("algolink_jupyter", REPO)):
        for path in sorted((where / package).rglob("*.py")):
            parts = list(path.relative_to(where).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def room_of(module: str) -> str:
    return max((r for r in FLOOR if module == r or module.startswith(r + ".")), key=len)


def imports(known: dict) -> list:
    """``(importer, imported, line, names)`` for every import of one of our modules by another."""
    edges = []
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [(a.name, []) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                names = [a.name for a in node.names]
                # `from pkg import sub` imports the module pkg.sub
                targets = [(f"{base}.{n}", []) for n in names if f"{base}.{n}" in known]
                rest = [n for n in names if f"{base}.{n}" not in known]
                if rest:
                    targets.append((base, rest))
            else:
                continue
            for target, names in targets:
                while target and target not in known:  # `import a.b.c` of a name inside a.b
                    target = target.rpartition(".")[0]
                if target and target.split(".")[0] in PACKAGES and target != name:
                    edges.append((name, target, node.lineno, names))
    return edges


def problems(known: dict, edges: list) -> list:
    """Every break of the rules, as a sentence."""
    found = []
    for importer, imported, line, names in edges:
        a, b = room_of(importer), room_of(imported)
        where = f"{known[importer].relative_to(REPO)}:{line}"
        if b == "algolink_jupyter.hub" and a != b and a not in HUB_IMPORTERS:
            found.append(f"{where}: {importer} imports the hub server ({imported})")
        elif a != b and FLOOR[a] <= FLOOR[b]:
            way = "up" if FLOOR[a] < FLOOR[b] else "sideways"
            found.append(f"{where}: {importer} imports {imported}, {way} a floor")
        private = [n for n in names if n.startswith("_") and not n.startswith("__")]
        if private:
            found.append(
                f"{where}: {importer} imports the private {', '.join(private)} of {imported}"
            )
    graph: dict = {}
    for importer, imported, _line, _names in edges:
        graph.setdefault(importer, set()).add(imported)
    for cycle in circles(graph):
        found.append("an import circle: " + " -> ".join([*cycle, cycle[0]]))
    return found


def circles(graph: dict) -> list:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict = {}
    low: dict = {}
    stack: list = []
    on_stack: set = set()
    out: list = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_every_import_points_down():
    known = modules()
    assert all(room_of(m) for m in known)
    assert problems(known, imports(known)) == []


def test_the_check_fails_on_an_upward_import_a_circle_and_a_private_name():
    """The rules are real: each break added here on purpose is reported."""
    known = modules()
    edges = imports(known)
    upward = ("modelcloud.server", "algolink_jupyter.cli", 1, [])
    hub = ("algolink_jupyter.widgets.publish", "algolink_jupyter.hub.app", 1, [])
    circle = ("algolink_jupyter.spec", "algolink_jupyter.magics", 1, [])
    private = ("algolink_jupyter.magics", "algolink_jupyter.widgets.test_form", 1, ["_secret"])
    found = problems(known, [*edges, upward, hub, circle, private])
    assert any("modelcloud.server imports algolink_jupyter.cli, up a floor" in p for p in found)
    assert any("imports the hub server (algolink_jupyter.hub.app)" in p for p in found)
    assert any(p.startswith("an import circle:") and "algolink_jupyter.spec" in p for p in found)
    assert any("imports the private _secret" in p for p in found)
    assert len(found) == 5  # the upward import, the hub, the circle (up, and round) and the name


def test_install_json_is_at_the_root_and_the_rooms_are_documented():
    assert (REPO / "install.json").is_file() and not (REPO / "js" / "install.json").exists()
    text = (REPO / "ARCHITECTURE.md").read_text()
    for room in FLOOR:
        short = room.rpartition(".")[2]
        assert f"`{short}`" in text, short
