"""The import graph of module_utils: no cycles, and no import pointing back up the loop.

Stages, lowest first (a file may import its own stage and any stage below it, never one above):

0. ``_errors`` - the base of every typed error; imports nothing of the collection.
1. the other leaves (``_schema``, ``_alerts``, ``_prom``, ``_notify``, ``_shell``, ``_argspec``) - small helpers
   that know no stage; they may import ``_errors`` and each other.
2. ``_model`` - intent, policy, snapshot and the Kubernetes object rules everyone shares.
3. ``_engine``, ``_gather``, ``_act`` - siblings on the model: the engine decides, gather builds snapshots, act
   plans writes. None of them imports another (the engine never sees how data was fetched or how it is applied).
4. ``_k8s`` - the Kubernetes adapter: the client and the runners that apply act's plans.
5. ``_journal`` - the decision journal; it may replay a decision (``_engine``) but not drive the loop.
6. ``_loop`` - the orchestration (check, verify, watch, gate, the warm loop, the sources' toolkit), on top.

Function-level imports count too: a lazy import upward is still an upward import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[4] / "plugins" / "module_utils"
PREFIX = "ansible_collections.zerotouch.selfheal.plugins.module_utils"
LEVEL = {"_errors": 0, "_model": 2, "_engine": 3, "_gather": 3, "_act": 3, "_k8s": 4, "_journal": 5, "_loop": 6}
LEAF = 1


def _module_name(path: Path) -> str:
    return path.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".")


def _target(base: str, name: str) -> str:
    """``from <base> import <name>``: the module imported, whether name is a submodule or a symbol."""
    candidate = f"{base}.{name}" if base else name
    return candidate if (ROOT / (candidate.replace(".", "/") + ".py")).is_file() else base


def import_graph() -> dict[str, set[str]]:
    """module -> the collection modules it imports (every import statement, at any depth)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        edges = graph.setdefault(_module_name(path), set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PREFIX):
                base = node.module[len(PREFIX) + 1 :]
                edges.update(_target(base, alias.name) for alias in node.names)
            elif isinstance(node, ast.Import):
                edges.update(a.name[len(PREFIX) + 1 :] for a in node.names if a.name.startswith(PREFIX + "."))
    return graph


def stage(module: str) -> str:
    return module.split(".")[0]


def level(module: str) -> int:
    return LEVEL.get(stage(module), LEAF)


GRAPH = import_graph()


def test_the_graph_is_read_from_the_sources() -> None:
    # Guards the parser itself: known edges must be found, or every other test here passes vacuously.
    assert "_engine.facts" in GRAPH["_engine.decide"]
    assert "_k8s.client" in GRAPH["_k8s.runner"]
    assert "_act.plans" in GRAPH["_act.drift"]
    assert len(GRAPH) > 30


def test_every_stage_has_a_level() -> None:
    packages = {p.name for p in ROOT.iterdir() if p.is_dir() and p.name.startswith("_") and p.name != "__pycache__"}
    assert packages <= set(LEVEL), f"a stage without a place in the order: {sorted(packages - set(LEVEL))}"


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_no_import_points_up_the_loop(module: str) -> None:
    upward = sorted(t for t in GRAPH[module] if level(t) > level(module))
    assert not upward, f"{module} (level {level(module)}) imports {upward} from a later stage"


def test_sibling_stages_do_not_import_each_other() -> None:
    crossing = sorted(
        (a, b)
        for a, targets in GRAPH.items()
        for b in targets
        if stage(a) != stage(b) and level(a) == level(b) and level(a) != LEAF
    )
    assert not crossing


def test_there_is_no_import_cycle() -> None:
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        if module in path:
            raise AssertionError("import cycle: " + " -> ".join((*path[path.index(module) :], module)))
        if module in done:
            return
        for target in sorted(GRAPH.get(module, ())):
            visit(target, (*path, module))
        done.add(module)

    for module in sorted(GRAPH):
        visit(module, ())


def stage_graph() -> dict[str, list[str]]:
    """The graph between stages (leaves by file), as printed in the architecture note."""
    edges: dict[str, set[str]] = {}
    for a, targets in GRAPH.items():
        for b in targets:
            if stage(a) != stage(b):
                edges.setdefault(stage(a), set()).add(stage(b))
    return {a: sorted(b, key=lambda s: (level(s), s)) for a, b in sorted(edges.items(), key=lambda e: level(e[0]))}


if __name__ == "__main__":  # python tests/unit/plugins/module_utils/test_layering.py prints the stage graph
    for source, targets in stage_graph().items():
        print(f"{source} (level {level(source)}) -> {', '.join(targets)}")
