"""The package's layering, as docs/architecture.md draws it, checked on the code's own imports.

Every module of ``src/longrnn`` belongs to a room: its first-level package (``cells``, ``training``, ...)
or, for a file at the top, its own name (``models``, ``cli``). Rooms stand in layers, bottom first; a
module may import its own room and the rooms of lower layers, never a room of its own layer or above
(imports inside functions count too). No two modules import each other in a loop.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "src" / "longrnn"

LAYERS = [  # bottom first
    {"errors", "_version", "_deprecated", "streams", "console"},
    {"functional", "kernels"},
    {"cells", "dsr"},
    {"models", "tasks"},
    {"nn"},
    {"methods"},
    {"runs"},
    {"training"},
    {"experiment"},
    {"reporting", "bench"},
    {"cli"},
    {"__init__"},  # the public API: nothing in the package imports it
]
LAYER = {room: level for level, rooms in enumerate(LAYERS) for room in rooms}


def module_name(path: Path, package: Path) -> str:
    parts = ["longrnn", *path.relative_to(package).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def room(module: str) -> str:
    """``longrnn.cells.gated`` -> ``cells``; ``longrnn.models`` -> ``models``; ``longrnn`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports(path: Path, package: Path) -> list[tuple[int, str]]:
    """(line, imported longrnn module) for every import in the file, relative ones resolved.
    ``from longrnn.cells import gated`` names the module ``longrnn.cells.gated`` if that file exists."""
    this = module_name(path, package)
    base = this if path.name == "__init__.py" else this.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parent = ".".join(base.split(".")[: len(base.split(".")) - node.level + 1])
                target = f"{parent}.{node.module}" if node.module else parent
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                exists = (package.parent / Path(*sub.split("."))).with_suffix(".py").exists() or (
                    package.parent / Path(*sub.split(".")) / "__init__.py"
                ).exists()
                found.append((node.lineno, sub if exists else target))
    return [(line, name) for line, name in found if name == "longrnn" or name.startswith("longrnn.")]


def modules(package: Path) -> dict[str, Path]:
    return {module_name(p, package): p for p in sorted(package.rglob("*.py"))}


def layering_violations(package: Path) -> list[str]:
    """One line per import that points to the module's own layer (another room) or above."""
    problems = []
    for module, path in modules(package).items():
        here = room(module)
        if here not in LAYER:
            problems.append(f"{path.relative_to(package.parent)}: room {here!r} is in no layer of LAYERS")
            continue
        for line, target in imports(path, package):
            there = room(target)
            if there == here:
                continue
            if there not in LAYER or LAYER[there] >= LAYER[here]:
                where = "its own layer" if LAYER.get(there) == LAYER[here] else "a layer above"
                problems.append(
                    f"{path.relative_to(package.parent)}:{line} imports {target} ({there!r}, {where} of {here!r})"
                )
    return problems


def cycles(package: Path) -> list[list[str]]:
    """Loops of module imports (each found once, as the path from a module back to itself)."""
    graph = {m: sorted({t for _, t in imports(p, package) if t != m}) for m, p in modules(package).items()}
    found, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in graph.get(node, []):
            if state.get(nxt) == "open":
                found.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = "done"

    for node in graph:
        if node not in state:
            visit(node, [node])
    return found


def test_every_import_points_down():
    assert layering_violations(PACKAGE) == []


def test_every_room_of_the_layers_exists():
    rooms = {room(module) for module in modules(PACKAGE)}
    assert rooms == set(LAYER)


def test_no_import_loops():
    assert cycles(PACKAGE) == []


@pytest.mark.parametrize(
    ("file", "planted", "named"),
    [
        ("cells/simple.py", "from longrnn.training import train",
         "imports longrnn.training ('training', a layer above"),
        ("models.py", "from longrnn.tasks import make_task", "imports longrnn.tasks ('tasks', its own layer"),
        ("functional/gates.py", "import longrnn.cli", "imports longrnn.cli ('cli', a layer above"),
        ("runs/config.py", "    from . import directory as _d", None),  # its own room: allowed
    ],
)
def test_a_planted_import_is_named(tmp_path, file, planted, named):
    copy = tmp_path / "longrnn"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / file
    text = target.read_text()
    if planted.startswith(" "):
        planted = "def _planted():\n" + planted
    target.write_text(text + "\n\n" + planted + "\n")
    problems = layering_violations(copy)
    if named is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problems[0].startswith(f"longrnn/{file}:") and named in problems[0], problems


def test_a_planted_loop_is_found(tmp_path):
    copy = tmp_path / "longrnn"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "cells" / "base.py").write_text((copy / "cells" / "base.py").read_text()
                                            + "\nfrom longrnn.cells import gated\n")
    assert ["longrnn.cells.base", "longrnn.cells.gated", "longrnn.cells.base"] in [c[-3:] for c in cycles(copy)]
