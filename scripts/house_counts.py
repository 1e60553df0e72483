"""The "shape of the house" of a source tree, as one JSON object: how big the lab is next to the product, and how
tangled the two are.

    .venv/bin/python scripts/house_counts.py SRC_DIR [--json OUT]

SRC_DIR is a ``src`` folder holding ``animate_anyone`` (and, after the split, ``animate_anyone_lab``). The lab is the
package ``animate_anyone_lab`` when it exists; in the old layout it is ``animate_anyone/synthetic/``,
``animate_anyone/evaluation/world.py``, ``animate_anyone/cli/synthetic.py`` and ``animate_anyone/cli/demo.py``. The
product is everything else under ``animate_anyone``. Measures:

* ``lines``: non-blank lines of the .py files of the product and of the lab.
* ``upward_imports``: import statements of product modules that import a lab module (read with ``ast``; imports
  inside functions and relative ones count, ``if TYPE_CHECKING:`` bodies do not). In the new layout the imports of
  the front door ``animate_anyone/cli/main.py`` are reported as ``front_door_imports`` instead; in the old layout
  they are listed there too but still counted as upward.
* ``flags``: every leaf command of the tree's own ``build_parser()`` (built in a child process with
  ``PYTHONPATH=SRC_DIR``) and its options, each once whatever its aliases (``--out``/``-o``), ``--help`` left out.
* ``size_grammars``: what ``--size`` means in each leaf that has one.
* ``library_flag_mentions``: string literals (docstrings aside) of library modules that spell a CLI flag.
* ``sampling_flag_sets``: the sampling options of the commands that sample, and whether they agree.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

PRODUCT, LAB = "animate_anyone", "animate_anyone_lab"
OLD_LAB = ("animate_anyone.synthetic", "animate_anyone.evaluation.world", "animate_anyone.cli.synthetic",
           "animate_anyone.cli.demo")  # fmt: skip
FRONT_DOOR = "animate_anyone.cli.main"
NOT_LIBRARY = ("animate_anyone.cli", "animate_anyone.app", "animate_anyone_lab.cli")
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]+")
SAMPLERS = ("animate", "batch", "synthetic predict", "bench", "demo")
SAMPLING = {"--preset", "--steps", "--guidance", "--no-guidance", "--scheduler", "--guidance-interval",
            "--cache-interval", "--cache-depth", "--context-frames", "--context-overlap", "--window-mode",
            "--sampling"}  # fmt: skip


def under(name: str, prefixes) -> bool:
    """``name`` is one of ``prefixes`` or inside one, matched on whole dotted components."""
    return any(name == p or name.startswith(f"{p}.") for p in prefixes)


def modules(src: Path) -> dict[str, Path]:
    """Module name -> file for every .py file of both packages (``pkg/__init__.py`` is ``pkg``)."""
    files = {}
    for package in (PRODUCT, LAB):
        for path in sorted((src / package).rglob("*.py")):
            parts = list(path.relative_to(src).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            files[".".join(parts)] = path
    return files


def import_nodes(nodes):
    """Every Import/ImportFrom at any depth, ``if TYPE_CHECKING:`` bodies skipped (as tests/test_layering.py)."""
    for node in nodes:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            yield from import_nodes(node.orelse)
        elif not isinstance(node, ast.expr):
            yield from import_nodes(ast.iter_child_nodes(node))


def imported_modules(name: str, path: Path, node, known: set[str]) -> list[str]:
    """The package modules one import statement imports (``from pkg import x``: ``pkg.x`` if a module, else ``pkg``)."""

    def nearest(dotted):  # the longest known prefix of pkg.mod.attr
        parts = dotted.split(".")
        return next((".".join(parts[:i]) for i in range(len(parts), 0, -1) if ".".join(parts[:i]) in known), None)

    if isinstance(node, ast.Import):
        targets = [nearest(alias.name) for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
            anchor = ".".join(package[: len(package) - (node.level - 1)])
            base = f"{anchor}.{base}" if base else anchor
        targets = [nearest(f"{base}.{alias.name}") for alias in node.names]
    return [t for t in dict.fromkeys(targets) if t and t != name]


def docstrings(tree) -> set[int]:
    """ids of the docstring nodes of the module, its classes and functions."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = getattr(node.body[0], "value", None)
            if isinstance(node.body[0], ast.Expr) and isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.add(id(first))
    return found


def flag_mentions(path: Path, where: str) -> list[str]:
    """``file:line: --flag`` for each flag spelled in a string literal (f-string parts included), once per literal."""
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source, filename=str(path))
    skip, found, after = docstrings(tree), [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            segment = ast.get_source_segment(source, node) or ""
            for flag in dict.fromkeys(FLAG.findall(node.value)):
                # The flag's own line in a literal over several lines; the parts of an f-string share one position
                # before Python 3.12, hence the search goes on after the previous part's match.
                key = (node.lineno, node.col_offset, flag)
                at = after[key] = segment.find(flag, after.get(key, -1) + 1)
                found.append((node.lineno + (segment[:at].count("\n") if at >= 0 else 0), flag))
    return [f"{where}:{line}: {flag}" for line, flag in sorted(found)]


def dump_parser() -> None:
    """(Child process.) The leaves of ``build_parser()`` as JSON on stdout: flags, and the ``--size`` option."""
    from animate_anyone.cli.main import build_parser

    src = Path(sys.argv[2]).resolve()
    for name, module in list(sys.modules.items()):  # not the editable install's copy of the packages
        path = getattr(module, "__file__", None)
        if name.split(".")[0] in (PRODUCT, LAB) and path and src not in Path(path).resolve().parents:
            sys.exit(f"{name} was imported from {path}, not from {src}")
    leaves, seen = {}, set()

    def walk(parser, words):
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        for action in subs:
            for word, sub in action.choices.items():
                if id(sub) not in seen:  # an alias names the same parser again
                    seen.add(id(sub))
                    walk(sub, [*words, word])
        if subs:
            return
        every = [a for a in parser._actions if a.option_strings and not isinstance(a, argparse._HelpAction)]
        options = [a for a in every if a.help != argparse.SUPPRESS]  # a hidden option: a retired spelling

        def name(a):
            return next((s for s in a.option_strings if s.startswith("--")), a.option_strings[0])

        leaf = {"flags": [name(a) for a in options], "retired": [name(a) for a in every if a not in options]}
        for a in options:
            if "--size" in a.option_strings:
                kind = getattr(a.type, "__name__", None) if a.type else None
                leaf["size"] = {"help": a.help, "choices": list(a.choices) if a.choices else None, "type": kind}
        leaves[" ".join(words)] = leaf

    walk(build_parser(), [])
    json.dump(leaves, sys.stdout)


def size_grammar(size: dict) -> str:
    """``model shape``, ``WIDTHxHEIGHT``, ``one side`` (of a square, in pixels) or ``either`` (side or WxH)."""
    text = size["help"] or ""
    if size["choices"] or (re.search(r"\b(tiny|mini|sd15)\b", text) and "output size" not in text):
        return "model shape"
    pair = "widthxheight" in text.lower()
    side = size["type"] == "int" or bool(re.search(r"\b(SIZE|side|square)\b", text)) or (not pair and "pixel" in text)
    return "either" if pair and side else "WIDTHxHEIGHT" if pair else "one side" if side else "unknown"


def measure(src: Path) -> dict:
    src = src.resolve()
    new = (src / LAB).is_dir()
    files = modules(src)
    known = set(files) | {".".join(n.split(".")[:i]) for n in files for i in range(1, n.count(".") + 1)}

    def is_lab(name):
        return under(name, (LAB,)) if new else under(name, OLD_LAB)

    rel = {name: path.relative_to(src).as_posix() for name, path in files.items()}
    lines = {"product": 0, "lab": 0, "product_files": 0, "lab_files": 0}
    upward, front, mentions = [], [], {"product": [], "lab": []}
    for name, path in files.items():
        side = "lab" if is_lab(name) else "product"
        text = path.read_text(encoding="utf-8")
        lines[side] += sum(1 for line in text.splitlines() if line.strip())
        lines[f"{side}_files"] += 1
        if not under(name, NOT_LIBRARY):
            mentions[side] += flag_mentions(path, rel[name])
        if side == "lab":
            continue
        for node in import_nodes([ast.parse(text, filename=str(path))]):
            targets = [t for t in imported_modules(name, path, node, known) if is_lab(t)]
            if targets:
                entry = f"{rel[name]}:{node.lineno} -> {', '.join(targets)}"
                if name == FRONT_DOOR:
                    front.append(entry)
                if not (new and name == FRONT_DOOR):
                    upward.append(entry)
    lines["lab_share"] = round(lines["lab"] / max(1, lines["lab"] + lines["product"]), 3)

    env = {**os.environ, "PYTHONPATH": str(src)}
    command = [sys.executable, __file__, "--dump-parser", str(src)]
    child = subprocess.run(command, env=env, capture_output=True, text=True)
    if child.returncode:
        sys.exit(f"building the parser of {src} failed:\n{child.stderr}")
    leaves = json.loads(child.stdout)

    sizes = {w: {**leaf["size"], "grammar": size_grammar(leaf["size"])} for w, leaf in leaves.items() if "size" in leaf}
    grammars = sorted({s["grammar"] for s in sizes.values()})
    meanings = sorted({"model shape" if s["grammar"] == "model shape" else "output resolution" for s in sizes.values()})
    sampling = {w: sorted(SAMPLING & set(leaves[w]["flags"])) if w in leaves else None for w in SAMPLERS}
    present = [tuple(v) for v in sampling.values() if v is not None]
    all_mentions = mentions["product"] + mentions["lab"]
    return {
        "src": str(src),
        "layout": "new (animate_anyone_lab)" if new else "old (lab inside animate_anyone)",
        "lines": lines,
        "upward_imports": {"count": len(upward), "imports": upward},
        "front_door_imports": {"count": len(front), "imports": front, "counted_as_upward": not new},
        "flags": {
            "leaf_commands": len(leaves),
            "flags_total": sum(len(leaf["flags"]) for leaf in leaves.values()),
            "retired_total": sum(len(leaf.get("retired", ())) for leaf in leaves.values()),
            "note": "each option once per leaf (aliases folded), -h/--help and hidden retired spellings not counted",
            "per_leaf": {w: leaf["flags"] for w, leaf in sorted(leaves.items())},
        },
        "size_grammars": {
            "count": len(grammars),
            "grammars": grammars,
            "meanings": meanings,
            "per_leaf": dict(sorted(sizes.items())),
        },
        "library_flag_mentions": {
            "count": len(all_mentions),
            "in_product": len(mentions["product"]),
            "in_lab": len(mentions["lab"]),
            "mentions": all_mentions,
        },
        "sampling_flag_sets": {"identical": len(set(present)) <= 1, "per_leaf": sampling},
    }


def main() -> None:
    if sys.argv[1:2] == ["--dump-parser"]:
        return dump_parser()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src", type=Path, help="the src folder of a tree (holding animate_anyone/)")
    parser.add_argument("--json", metavar="OUT", type=Path, help="also write the JSON object to OUT")
    args = parser.parse_args()
    if not (args.src / PRODUCT).is_dir():
        parser.error(f"{args.src} holds no {PRODUCT}/ package")
    text = json.dumps(measure(args.src), indent=2) + "\n"
    print(text, end="")
    if args.json:
        args.json.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
