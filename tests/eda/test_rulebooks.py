"""The rulebooks: one source of truth (rules/ is shipped verbatim in extensions/eda/rulebooks/), valid, and wired."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible_rulebook.util import substitute_variables
from ansible_rulebook.validators import Validate

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
SHIPPED = ROOT / "extensions" / "eda" / "rulebooks"
NAMES = sorted(p.name for p in RULES.glob("*.yml"))


def test_the_shipped_rulebooks_are_the_rules_verbatim() -> None:
    assert NAMES == ["remediate.yml", "remediate_controller.yml", "watch.yml", "watch_controller.yml"]
    assert sorted(p.name for p in SHIPPED.glob("*.yml")) == NAMES
    for name in NAMES:
        assert (SHIPPED / name).read_bytes() == (RULES / name).read_bytes(), f"cp rules/{name} {SHIPPED}/"


@pytest.mark.parametrize("name", NAMES)
def test_rulebook_is_valid_and_names_every_rule(name: str) -> None:
    data = yaml.safe_load((RULES / name).read_text())
    Validate.rulebook(data)
    for ruleset in data:
        assert ruleset["name"] and all(rule["name"] for rule in ruleset["rules"])
        assert all("throttle" in rule for rule in ruleset["rules"] if "firing" in rule["condition"])


@pytest.mark.parametrize("name", ["remediate.yml", "watch.yml"])
def test_the_playbook_gets_the_rulebook_variables_and_the_playbook_defaults(name: str) -> None:
    rules = yaml.safe_load((RULES / name).read_text())[0]["rules"]
    action = next(r["action"]["run_playbook"] for r in rules if "run_playbook" in r["action"])
    assert action["name"] == "zerotouch.selfheal.remediate"
    given = {"intents": "/i", "escalation_url": "http://e", "prometheus_url": "http://p", "verify_interval": 3}
    rendered = substitute_variables(action["extra_vars"], given)
    assert rendered["intents"] == "/i" and rendered["verify_interval"] == 3 and rendered["verify_settle_seconds"] == 30
    assert rendered["policy"] is None and rendered["journal"] is None  # the playbook's defaults apply
    closing = next(r["action"]["run_module"] for r in rules if "run_module" in r["action"])
    assert closing["name"] == "zerotouch.selfheal.journal_incident"
