"""The rulebooks: one copy (extensions/eda/rulebooks/, where ansible-rulebook finds a collection's rulebooks; rules/
holds symlinks to them, which ansible-galaxy collection build and install keep), valid, and wired."""

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


def test_rules_are_links_to_the_shipped_rulebooks() -> None:
    assert NAMES == ["remediate.yml", "remediate_controller.yml", "watch.yml", "watch_controller.yml"]
    assert sorted(p.name for p in SHIPPED.glob("*.yml")) == NAMES
    for name in NAMES:
        link = RULES / name
        # A relative link inside the collection: galaxy keeps it in the tarball and on install.
        assert link.is_symlink(), f"ln -sf ../extensions/eda/rulebooks/{name} rules/{name}"
        assert link.readlink() == Path("../extensions/eda/rulebooks") / name
        assert not (SHIPPED / name).is_symlink()


@pytest.mark.parametrize("name", NAMES)
def test_rulebook_is_valid_and_names_every_rule(name: str) -> None:
    data = yaml.safe_load((RULES / name).read_text())
    Validate.rulebook(data)
    for ruleset in data:
        assert ruleset["name"] and all(rule["name"] for rule in ruleset["rules"])
        # The sources coalesce per service: a throttle would only hide remediations the loop decided.
        assert not any("throttle" in rule for rule in ruleset["rules"])
        assert "No throttle" in (RULES / name).read_text()


@pytest.mark.parametrize("name", ["remediate.yml", "watch.yml"])
def test_the_playbook_gets_the_decision_ids_and_the_operator_variables_only(name: str) -> None:
    ruleset = yaml.safe_load((RULES / name).read_text())[0]
    (rule,) = ruleset["rules"]
    assert rule["condition"] == 'event.kind == "remediate"'
    action = rule["action"]["run_playbook"]
    assert action["name"] == "zerotouch.selfheal.remediate"
    given = {"intents": "/i", "escalation_url": "http://e", "prometheus_url": "http://p"}
    handed = [{"decision_id": i, "namespace": "shop", "service": f"s{i}", "action": "rollback"} for i in (42, 57)]
    event = {"kind": "remediate", "decision_ids": [42, 57], "decisions": handed}
    rendered = substitute_variables(action["extra_vars"], {**given, "event": event})
    assert rendered == {
        "decision_ids": [42, 57],
        "journal": None,
        "escalation_url": "http://e",
        "escalation_format": "generic",
        "tenant_limit_ttl_minutes": 60,
    }
    # One anchor: what the source and the playbook share is written once.
    source_args = {k: v for k, v in ruleset["sources"][0].items() if k != "name"}
    (args,) = source_args.values()
    assert {k: args[k] for k in ("journal", "escalation_url", "escalation_format")} == {
        k: action["extra_vars"][k] for k in ("journal", "escalation_url", "escalation_format")
    }
    assert (RULES / name).read_text().count("&operator") == 1


@pytest.mark.parametrize("name", ["remediate_controller.yml", "watch_controller.yml"])
def test_the_controller_job_gets_the_decision_ids_only(name: str) -> None:
    (rule,) = yaml.safe_load((RULES / name).read_text())[0]["rules"]
    launch = rule["action"]["run_job_template"]
    assert launch["job_args"] == {"extra_vars": {"decision_ids": "{{ event.decision_ids }}"}}
