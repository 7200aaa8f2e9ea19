"""Every import of the collection's own code names something that exists, lazy imports included.

A function-level import is only resolved when that function runs, so a name moved between modules can leave an
import that no test on the happy path reaches (a recovery branch, an integration test run only in CI). This reads
every ``from ansible_collections.zerotouch.selfheal... import name`` in the repository and checks the name is
defined at the top of the target module, or is a submodule of it.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PREFIX = "ansible_collections.zerotouch.selfheal."
TREES = ("plugins", "extensions", "tests", "bench", "sandbox", "scripts")


def _source_of(module: str) -> Path | None:
    rel = Path(*module[len(PREFIX) :].split("."))
    for candidate in (REPO / rel.with_suffix(".py"), REPO / rel / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _is_package(module: str) -> bool:
    # module_utils' stages are namespace packages: a directory without __init__.py.
    return (REPO / Path(*module[len(PREFIX) :].split("."))).is_dir()


@cache
def _top_level_names(path: Path) -> frozenset[str]:
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.If, ast.Try)):
            # Names bound under a guard (``try: import x except ImportError: x = None``) count as defined.
            for sub in ast.walk(node):
                if isinstance(sub, (ast.FunctionDef, ast.ClassDef)):
                    names.add(sub.name)
                elif isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                    names.add(sub.id)
                elif isinstance(sub, (ast.Import, ast.ImportFrom)):
                    names.update((a.asname or a.name).split(".")[0] for a in sub.names)
    return frozenset(names)


def _imports() -> list[tuple[str, int, str, str]]:
    found = []
    for tree in TREES:
        for path in sorted((REPO / tree).rglob("*.py")):
            if "/.venv/" in str(path) or "__pycache__" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PREFIX):
                    for alias in node.names:
                        found.append((str(path.relative_to(REPO)), node.lineno, node.module, alias.name))
    return found


IMPORTS = _imports()


def test_the_imports_are_read_from_the_repository() -> None:
    # Guards the reader: without known imports found, every case below would pass vacuously.
    assert len(IMPORTS) > 200
    assert any(name == "run_lock" for _, _, _, name in IMPORTS)


def _missing(module: str, name: str) -> str | None:
    if name == "*" or _source_of(f"{module}.{name}") is not None:
        return None
    source = _source_of(module)
    if source is None:
        return f"{module} has no source file" if not _is_package(module) else f"{module} has no module {name!r}"
    if name in _top_level_names(source):
        return None
    return f"{module} defines no {name!r}"


def test_every_imported_name_exists() -> None:
    problems = [f"{where}:{line}: {why}" for where, line, module, name in IMPORTS if (why := _missing(module, name))]
    assert not problems, "imports that fail when they run:\n" + "\n".join(problems)
