"""The example intents, policy and manifests that the README and the demo point users at stay valid."""

from __future__ import annotations

from pathlib import Path

from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.intent import load_intents
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.policy import load_policy, policy_for

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_example_intents_load_with_defaults_applied() -> None:
    intents = {i["service"]: i for i in load_intents(EXAMPLES / "intents")}
    assert set(intents) == {"checkout", "catalog"}
    assert intents["catalog"]["recovery"]["rollback_on_regression"] is True  # a default filled in
    # A relative manifests directory is resolved next to the intent file, not where the check runs.
    assert intents["checkout"]["manifests"] == str(EXAMPLES / "manifests" / "shop")


def test_example_policy_overrides_apply_per_namespace() -> None:
    policy = load_policy(EXAMPLES / "policy.yml")
    assert policy_for(policy, "payments", "ledger")["require_approval"] == ["rollback", "patch"]
    assert policy_for(policy, "shop", "checkout")["require_approval"] == []
