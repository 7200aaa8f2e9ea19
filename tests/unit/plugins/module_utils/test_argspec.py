"""_argspec: each shared argspec piece agrees with the doc fragment that documents it, and the modules' rules
(required_if, required_one_of ...) name options their spec has.

The fragments are parsed as YAML, so a renamed option, a changed type or default, or an option documented but
not accepted (or the other way round) fails here, before validate-modules sees a module.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from ansible_collections.zerotouch.selfheal.plugins.module_utils import _argspec

# The argspec keys a fragment documents with the same name and meaning; "fallback" is in prose, no_log undocumented.
COMPARED = ("type", "default", "required", "choices", "elements", "aliases")

PIECES: list[tuple[str, Callable[[], dict[str, Any]]]] = [
    ("k8s_auth", _argspec.k8s_auth_spec),
    ("workload", _argspec.workload_spec),
    ("replay", _argspec.replay_spec),
    ("journal", _argspec.journal_spec),
    ("intent_sources", _argspec.intent_sources_spec),
]


def fragment_options(name: str) -> dict[str, Any]:
    module = importlib.import_module(f"ansible_collections.zerotouch.selfheal.plugins.doc_fragments.{name}")
    doc = yaml.safe_load(module.ModuleDocFragment.DOCUMENTATION)
    return dict(doc["options"])


def normalised(option: dict[str, Any]) -> dict[str, Any]:
    """The compared keys of an option (documented or accepted), with the defaults Ansible assumes made explicit."""
    seen = {key: option[key] for key in COMPARED if key in option}
    seen.setdefault("type", "str")
    seen["required"] = bool(seen.get("required", False))
    return seen


@pytest.mark.parametrize(("fragment", "piece"), PIECES, ids=[name for name, _ in PIECES])
def test_the_fragment_documents_exactly_the_options_the_piece_accepts(
    fragment: str, piece: Callable[[], dict[str, Any]]
) -> None:
    docs, spec = fragment_options(fragment), piece()
    assert sorted(docs) == sorted(spec)
    for name in spec:
        assert normalised(docs[name]) == normalised(spec[name]), f"{fragment}: option {name}"


def test_k8s_auth_options_fall_back_to_their_environment_variables_and_the_key_is_secret() -> None:
    spec, docs = _argspec.k8s_auth_spec(), fragment_options("k8s_auth")
    for name, option in spec.items():
        if "fallback" in option:
            _fallback, (variable,) = option["fallback"]
            assert variable == "K8S_AUTH_" + name.upper()
            assert variable in " ".join(docs[name]["description"]), f"{name}: the fragment names {variable}"
    assert spec["api_key"]["no_log"] is True


def test_pieces_are_fresh_dicts_so_a_module_cannot_change_another_ones_spec() -> None:
    first = _argspec.k8s_auth_spec()
    first["host"]["type"] = "int"
    assert _argspec.k8s_auth_spec()["host"]["type"] == "str"


def _rule_options(rule: tuple[Any, ...], kind: str) -> list[str]:
    if kind == "required_if":
        key, _value, needed = rule[:3]
        return [key, *needed]
    return list(rule)


RULES = [
    ("tenant_limit", _argspec.tenant_limit_spec, _argspec.TENANT_LIMIT_REQUIRED_IF, "required_if"),
    ("workload_reconcile", _argspec.reconcile_spec, _argspec.RECONCILE_ONE_OF, "required_one_of"),
    ("escalation", _argspec.escalation_spec, _argspec.ESCALATION_ONE_OF, "required_one_of"),
    ("change_gate", lambda: _argspec.change_gate_spec(["rollback"]), _argspec.CHANGE_GATE_REQUIRED_IF, "required_if"),
    ("change_gate", lambda: _argspec.change_gate_spec(["rollback"]), _argspec.CHANGE_GATE_ONE_OF, "required_one_of"),
    ("journal_action", _argspec.journal_action_spec, _argspec.JOURNAL_ACTION_REQUIRED_IF, "required_if"),
    ("journal_action", _argspec.journal_action_spec, _argspec.JOURNAL_ACTION_REQUIRED_TOGETHER, "required_together"),
]


@pytest.mark.parametrize(("module", "spec", "rules", "kind"), RULES, ids=[f"{m}-{k}" for m, _, _, k in RULES])
def test_every_rule_names_options_of_its_modules_spec(
    module: str, spec: Callable[[], dict[str, Any]], rules: list[tuple[Any, ...]], kind: str
) -> None:
    options = spec()
    assert rules
    for rule in rules:
        missing = [name for name in _rule_options(rule, kind) if name not in options]
        assert not missing, f"{module}: {kind} {rule} names options the spec does not have: {missing}"
