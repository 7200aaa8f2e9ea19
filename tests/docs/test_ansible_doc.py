"""What `ansible-doc` users see: every module and role of the installed collection documents itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MODULES = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py") if not p.stem.startswith("_"))
ROLES = sorted(p.parent.parent.name for p in (ROOT / "roles").glob("*/meta/argument_specs.yml"))


def ansible_doc(*args: str) -> dict:
    env = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": os.environ.get("ANSIBLE_COLLECTIONS_PATH", str(ROOT / ".collections")),
    }
    proc = subprocess.run(
        [str(BIN / "ansible-doc"), "--json", *args], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "[ERROR]" not in proc.stderr, proc.stderr
    return json.loads(proc.stdout)


def test_every_module_renders_its_documentation_examples_and_return_values() -> None:
    docs = ansible_doc("-t", "module", *(f"zerotouch.selfheal.{name}" for name in MODULES))
    assert sorted(docs) == [f"zerotouch.selfheal.{name}" for name in MODULES]
    for name, doc in docs.items():
        assert doc["doc"]["short_description"], name
        assert all(isinstance(line, str) for line in doc["doc"]["description"]), name
        for option, spec in doc["doc"].get("options", {}).items():
            description = spec["description"]
            lines = description if isinstance(description, list) else [description]
            assert all(isinstance(line, str) and line for line in lines), f"{name}: {option}"
        assert doc["examples"].strip(), name
        assert doc["return"] is not None, name
        assert doc["doc"]["attributes"]["check_mode"]["support"] in ("full", "partial"), name


@pytest.mark.parametrize("role", ROLES)
def test_every_role_documents_its_entry_point(role: str) -> None:
    docs = ansible_doc("-t", "role", f"zerotouch.selfheal.{role}")
    main = docs[f"zerotouch.selfheal.{role}"]["entry_points"]["main"]
    assert main["short_description"]
    assert all(name.startswith(f"{role}_") for name in main.get("options", {})), (
        "role variables carry the role's prefix"
    )
