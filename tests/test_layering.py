"""The shape of the house (DESIGN.md, "Layers"), read from the imports of every module.

Imports inside functions count: a lazy import is still a dependency. The package's front door
(`nmtkit/__init__.py`, which hands out `nmtkit.Translator` on first use) is not a node: every
module may read `nmtkit.__version__`, and the door may point at anything public.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "nmtkit"

# module (or package prefix) -> prefixes it must never import
FORBIDDEN = {
    "nmtkit.models": ("nmtkit.train", "nmtkit.cli", "nmtkit.evaluate", "nmtkit.search"),
    "nmtkit.search": ("nmtkit.train", "nmtkit.cli", "nmtkit.evaluate"),
    "nmtkit.data": ("nmtkit.train", "nmtkit.cli", "nmtkit.evaluate", "nmtkit.models"),
    "nmtkit.checkpoint": ("nmtkit.train", "nmtkit.cli", "nmtkit.evaluate", "nmtkit.translate"),
    "nmtkit.translate": ("nmtkit.train", "nmtkit.cli", "nmtkit.evaluate"),
    "nmtkit.translate_files": ("nmtkit.train", "nmtkit.cli", "nmtkit.evaluate"),
    "nmtkit.score": ("nmtkit.train", "nmtkit.cli", "nmtkit.evaluate"),
    "nmtkit.evaluate": ("nmtkit.train", "nmtkit.cli"),
    "nmtkit.serve": ("nmtkit.train", "nmtkit.cli", "nmtkit.evaluate"),
    "nmtkit.recipe": ("nmtkit.",),  # shared ground: only errors and paths below it
}
SHARED_GROUND = {
    "nmtkit.errors",
    "nmtkit.paths",
    "nmtkit.console",
    "nmtkit.recipe_errors",
    "nmtkit.builtin_recipes",
}


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The nmtkit modules that `path` imports (`from nmtkit.x import y` means nmtkit.x.y when
    that is a module, else nmtkit.x)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in modules else node.module)
    return {name for name in found if name in modules and name != "nmtkit"}


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    files = {module_name(p, root): p for p in root.rglob("*.py")}
    modules = set(files)
    return {name: imports_of(path, modules) for name, path in files.items() if name != "nmtkit"}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the list of modules around it, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def violations(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for module, targets in graph.items():
        for owner, banned in FORBIDDEN.items():
            if module != owner and not module.startswith(owner + "."):
                continue
            for target in targets:
                allowed = owner == "nmtkit.recipe" and target in SHARED_GROUND
                if not allowed and any(target == b or target.startswith(b) for b in banned):
                    found.append(f"{module} imports {target}")
    return sorted(found)


def test_no_import_cycle() -> None:
    assert find_cycle(import_graph()) is None, " -> ".join(find_cycle(import_graph()) or [])


def test_layers_point_down() -> None:
    assert violations(import_graph()) == []


def test_inference_reaches_nothing_of_training() -> None:
    """Translating (and serving, and evaluating) a model loads no training code at all,
    directly or through any module it imports."""
    graph = import_graph()
    for start in (
        "nmtkit.translate",
        "nmtkit.translate_files",
        "nmtkit.score",
        "nmtkit.evaluate.run",
        "nmtkit.serve.app",
    ):
        if start not in graph:
            continue
        seen, todo = set(), [start]
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        assert not [m for m in seen if m.startswith("nmtkit.train")], start


def test_only_the_checkpoint_module_knows_the_stored_keys() -> None:
    """Nothing but nmtkit/checkpoint.py calls torch.load/torch.save on a checkpoint."""
    users = [
        module_name(path)
        for path in PACKAGE.rglob("*.py")
        if "torch.load(" in path.read_text(encoding="utf-8")
        or "torch.save(" in path.read_text(encoding="utf-8")
    ]
    assert users == ["nmtkit.checkpoint"]


# ------------------------------------------------------------- the checks catch what they should


def write_package(root: Path, files: dict[str, str]) -> Path:
    package = root / "nmtkit"
    for name, text in {"__init__.py": "", **files}.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return package


@pytest.mark.parametrize(
    "files",
    [
        # The cycles the architecture issue found, as they were.
        {
            "train/__init__.py": "",
            "train/loop.py": "from nmtkit.train.distributed import World\n",
            "train/distributed.py": "def f():\n    from nmtkit.train.loop import x\n",
        },
        {
            "evaluate.py": "from nmtkit.report import print_report\n",
            "report.py": "from nmtkit.evaluate import LengthReport\n",
        },
    ],
)
def test_a_cycle_is_found(tmp_path: Path, files: dict[str, str]) -> None:
    assert find_cycle(import_graph(write_package(tmp_path, files))) is not None


def test_translate_importing_train_is_a_violation(tmp_path: Path) -> None:
    package = write_package(
        tmp_path,
        {
            "train/__init__.py": "",
            "train/checkpoint.py": "",
            "translate.py": "from nmtkit.train.checkpoint import load_checkpoint\n",
        },
    )
    assert violations(import_graph(package)) == ["nmtkit.translate imports nmtkit.train.checkpoint"]
