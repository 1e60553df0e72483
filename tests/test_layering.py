"""The layering of the product and the lab as a checked contract, read from the source with ``ast`` (no module is
imported).

Two packages: the product, ``animate_anyone``, and the benchmark lab, ``animate_anyone_lab`` (the synthetic world,
its oracle and autoencoder, the world metrics, the quality benchmark and their commands). The lab may import the
product; no product module imports the lab, except the front door ``animate_anyone.cli.main`` (the table of every
command, which offers the lab's ``demo`` and ``synthetic`` beside the product's own).

Every import of a module of either package counts (absolute, relative, inside functions), except those under
``if TYPE_CHECKING:``. Two rules: no import cycles between modules, and no import of a higher layer.
"""

from __future__ import annotations

import ast
import functools
import itertools
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGES = ("animate_anyone", "animate_anyone_lab")
PRODUCT, LAB = PACKAGES

# Bottom to top, as module-name prefixes matched on whole components. The product's root module
# (``animate_anyone/__init__.py``) belongs to the lowest layer.
LAYERS = [
    (
        "foundation",
        [
            "animate_anyone.config",
            "animate_anyone.atomic",
            "animate_anyone.weights",
            "animate_anyone.devices",
            "animate_anyone.capacity",
            "animate_anyone.shapes",
            "animate_anyone.quiet",
            "animate_anyone.jsonl",
            "animate_anyone.media",
            "animate_anyone.distributed",
            "animate_anyone.extras",
            "animate_anyone.assets",
            "animate_anyone.hub",  # the Hugging Face Hub: Hub ids, the public sources, model cards
            "animate_anyone.meta_count",  # counting memory on the meta device
        ],
    ),
    ("models", ["animate_anyone.models", "animate_anyone.convert", "animate_anyone.model_dir"]),
    ("pipelines", ["animate_anyone.pipelines"]),
    ("pose", ["animate_anyone.pose"]),
    ("data", ["animate_anyone.data"]),
    ("evaluation", ["animate_anyone.evaluation"]),
    ("training", ["animate_anyone.training"]),
    ("jobs", ["animate_anyone.jobs", "animate_anyone.speed"]),
    ("front ends", ["animate_anyone.app"]),
    ("lab", ["animate_anyone_lab"]),  # the world, oracle, autoencoder, world metrics, benchmark, demo
    ("commands", ["animate_anyone.cli"]),
    ("lab commands", ["animate_anyone_lab.cli"]),
    ("front door", ["animate_anyone.cli.main"]),
]
# The layers above do not say that the product's commands may not use the lab (the lab sits below them so that its
# library never imports a command); this second rule does: no product module imports the lab but the front door.
FRONT_DOOR = "animate_anyone.cli.main"


def _modules(root_dir: Path, packages: tuple[str, ...]) -> tuple[dict[str, Path], set[str]]:
    """Module name -> file for every .py file of the packages, and the set of all known names (files and folders)."""
    files: dict[str, Path] = {}
    paths = [path for package in packages for path in sorted((Path(root_dir) / package).rglob("*.py"))]
    for path in paths:
        parts = list(path.relative_to(root_dir).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        files[".".join(parts)] = path
    known = set(files)
    for name in files:  # namespace packages (folders without __init__.py) are modules too
        parts = name.split(".")
        known.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return files, known


def _import_nodes(nodes):
    """Yield every Import/ImportFrom in ``nodes``, at any depth, skipping ``if TYPE_CHECKING:`` bodies."""
    for node in nodes:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            yield from _import_nodes(node.orelse)
        elif not isinstance(node, ast.expr):  # statements only: an expression holds no import statement
            yield from _import_nodes(ast.iter_child_nodes(node))


def _nearest(name: str, known: set[str]) -> str | None:
    """``name`` if it is a known module, else its longest known parent (``pkg.mod.attr`` -> ``pkg.mod``)."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        if ".".join(parts[:i]) in known:
            return ".".join(parts[:i])
    return None


@functools.cache  # both contract tests read the same tree: parse it once
def collect_imports(
    root_dir: Path, packages: tuple[str, ...]
) -> tuple[dict[str, Path], list[tuple[str, str, Path, int]]]:
    """The packages' modules and the imports among them as (importer, imported, path, line), self-imports dropped."""
    files, known = _modules(root_dir, packages)
    edges = []
    for importer, path in files.items():
        is_init = path.name == "__init__.py"
        for node in _import_nodes([ast.parse(path.read_text(encoding="utf-8"), filename=str(path))]):
            if isinstance(node, ast.Import):
                targets = [_nearest(alias.name, known) for alias in node.names]
            else:
                base = node.module or ""
                if node.level:  # relative: against the file's package, one level up per extra dot
                    package = importer.split(".") if is_init else importer.split(".")[:-1]
                    anchor = ".".join(package[: len(package) - (node.level - 1)])
                    base = f"{anchor}.{base}" if base else anchor
                # ``from pkg import name`` imports ``pkg.name`` when that is a submodule, else ``pkg`` itself.
                targets = [_nearest(f"{base}.{alias.name}", known) for alias in node.names]
            for target in dict.fromkeys(targets):  # once per imported module and line
                if target and target.split(".")[0] in packages and target != importer:
                    edges.append((importer, target, path, node.lineno))
    return files, edges


def _where(root_dir: Path, path: Path, line: int) -> str:
    return f"{path.relative_to(root_dir).as_posix()}:{line}"


def check_cycles(root_dir: Path, packages: tuple[str, ...]) -> list[str]:
    """One message per strongly connected component of more than one module, with one concrete cycle."""
    files, edges = collect_imports(root_dir, packages)
    graph: dict[str, dict[str, str]] = {name: {} for name in files}
    for importer, imported, path, line in edges:
        graph[importer].setdefault(imported, _where(root_dir, path, line))
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm; the graph is small enough for recursion
        index[node] = low[node] = len(index)
        stack.append(node)
        for succ in graph.get(node, {}):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)

    messages = []
    for component in components:
        start, members = component[0], set(component)
        paths = {start: [start]}
        queue = [start]
        cycle: list[str] = []
        while queue and not cycle:  # breadth-first, inside the component, back to the start
            node = queue.pop(0)
            for succ in sorted(graph[node]):
                if succ == start:
                    cycle = paths[node] + [start]
                    break
                if succ in members and succ not in paths:
                    paths[succ] = paths[node] + [succ]
                    queue.append(succ)
        steps = " -> ".join(f"{a} ({graph[a][b]})" for a, b in itertools.pairwise(cycle)) + f" -> {start}"
        messages.append(f"cycle among {', '.join(component)}:\n    {steps}")
    return messages


def layer_of(module: str, packages: tuple[str, ...], layers) -> list[int]:
    """Indices of the layers holding the longest prefix that matches ``module`` on whole components (the front door
    ``animate_anyone.cli.main`` is not in the layer of ``animate_anyone.cli``); the first package's root is layer 0."""
    if module == packages[0]:
        return [0]
    matches = [
        (len(p), i)
        for i, (_, prefixes) in enumerate(layers)
        for p in prefixes
        if module == p or module.startswith(f"{p}.")
    ]
    longest = max((n for n, _ in matches), default=0)
    return sorted({i for n, i in matches if n == longest})


def check_product_apart(root_dir: Path, packages: tuple[str, ...] = PACKAGES) -> list[str]:
    """Every import of the lab (``packages[1]``) by a product module (``packages[0]``) other than the front door."""
    _, edges = collect_imports(root_dir, packages)
    product, lab = packages[0], packages[1]
    return [
        f"{importer} -> {imported} at {_where(root_dir, path, line)}: the product never imports the lab"
        for importer, imported, path, line in edges
        if importer.split(".")[0] == product and imported.split(".")[0] == lab and importer != FRONT_DOOR
    ]


def check_layers(root_dir: Path, packages: tuple[str, ...], layers) -> list[str]:
    """Modules placed in no layer (or several), and every import of a higher layer than the importer's."""
    files, edges = collect_imports(root_dir, packages)
    messages = []
    for name, path in files.items():
        found = layer_of(name, packages, layers)
        if len(found) != 1:
            where = ", ".join(layers[i][0] for i in found) or "no layer"
            messages.append(f"{name} ({path.relative_to(root_dir).as_posix()}) is in {where}: place it in LAYERS")
    for importer, imported, path, line in edges:
        low, high = layer_of(importer, packages, layers), layer_of(imported, packages, layers)
        if len(low) == 1 and len(high) == 1 and high[0] > low[0]:
            where = _where(root_dir, path, line)
            messages.append(f"{importer} ({layers[low[0]][0]}) -> {imported} ({layers[high[0]][0]}) at {where}")
    return messages


def test_no_import_cycles():
    cycles = check_cycles(SRC, PACKAGES)
    assert not cycles, f"{len(cycles)} import cycle(s):\n" + "\n".join(cycles)


def test_no_product_module_imports_the_lab():
    violations = check_product_apart(SRC)
    assert not violations, f"{len(violations)} import(s) of the lab:\n" + "\n".join(violations)


def test_layering():
    violations = check_layers(SRC, PACKAGES, LAYERS)
    assert not violations, f"{len(violations)} layering violation(s):\n" + "\n".join(violations)


def test_checker_finds_cycles_and_upward_imports(tmp_path):
    """The checks on a throw-away package: they must find what is planted, so the contract cannot pass vacuously."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .high import H\n")
    (pkg / "low.py").write_text("import os\n\n\ndef f():\n    from .high import H\n    return H\n")
    (pkg / "high.py").write_text("from pkg import low\n\nH = 1\n")
    (pkg / "stray.py").write_text("")
    layers = [("low", ["pkg.low"]), ("high", ["pkg.high", "pkg.str"])]  # "pkg.str" must not match "pkg.stray"

    cycles = check_cycles(tmp_path, ("pkg",))
    assert len(cycles) == 1 and "pkg.high, pkg.low" in cycles[0], cycles
    assert "pkg.high (pkg/high.py:1) -> pkg.low (pkg/low.py:5) -> pkg.high" in cycles[0], cycles

    # The TYPE_CHECKING import in the root package (lowest layer) of pkg.high is no violation.
    assert check_layers(tmp_path, ("pkg",), layers) == [
        "pkg.stray (pkg/stray.py) is in no layer: place it in LAYERS",
        "pkg.low (low) -> pkg.high (high) at pkg/low.py:5",
    ]
    assert layer_of("animate_anyone.models.sizes", PACKAGES, LAYERS) == [1]
    assert layer_of("animate_anyone.models_extra", PACKAGES, LAYERS) == []


def _layer_name(module: str) -> str:
    (index,) = layer_of(module, PACKAGES, LAYERS)
    return LAYERS[index][0]


def test_the_lab_library_sits_below_every_command_and_the_front_door_on_top():
    files, _ = collect_imports(SRC, PACKAGES)
    assert _layer_name("animate_anyone_lab.benchmark") == "lab"
    assert _layer_name("animate_anyone.cli.animate") == "commands"
    assert _layer_name("animate_anyone_lab.cli.synthetic") == "lab commands"
    assert _layer_name(FRONT_DOOR) == "front door"
    assert any(m.startswith(f"{LAB}.") for m in files) and len(files) > 100  # both packages were read


def test_a_product_module_importing_the_lab_is_refused(tmp_path):
    """The real tree copied, an import of the lab planted in product modules (inside a function; in the packaged
    ``assets``; in a command) and one of a command in the lab's library: each named, and nothing else."""
    import shutil

    for package in PACKAGES:
        shutil.copytree(
            SRC / package, tmp_path / package, ignore=shutil.ignore_patterns("*.safetensors", "__pycache__")
        )
    assert check_layers(tmp_path, PACKAGES, LAYERS) == [] == check_product_apart(tmp_path)
    planted = tmp_path / PRODUCT / "jobs" / "animate.py"
    planted.write_text(planted.read_text() + "\n\ndef _planted():\n    from animate_anyone_lab.demo import demo_clip\n")
    assets = tmp_path / PRODUCT / "assets" / "__init__.py"
    assets.write_text(assets.read_text() + "\nimport animate_anyone_lab.world_metrics\n")
    command = tmp_path / PRODUCT / "cli" / "evaluate.py"
    command.write_text(command.read_text() + "\nfrom animate_anyone_lab.measure import measure_split\n")
    library = tmp_path / LAB / "measure.py"
    library.write_text(library.read_text() + "\nfrom animate_anyone.cli.flags import renamed\n")
    collect_imports.cache_clear()  # the same folder, read again
    violations = check_layers(tmp_path, PACKAGES, LAYERS)
    assert len(violations) == 3, violations
    assert violations[0].startswith("animate_anyone.assets (foundation) -> animate_anyone_lab.world_metrics (lab)")
    assert violations[1].startswith("animate_anyone.jobs.animate (jobs) -> animate_anyone_lab.demo (lab)")
    assert violations[2].startswith("animate_anyone_lab.measure (lab) -> animate_anyone.cli.flags (commands)")
    apart = check_product_apart(tmp_path)
    assert [v.split(" at ")[0] for v in apart] == [
        "animate_anyone.assets -> animate_anyone_lab.world_metrics",
        "animate_anyone.cli.evaluate -> animate_anyone_lab.measure",
        "animate_anyone.jobs.animate -> animate_anyone_lab.demo",
    ], apart
