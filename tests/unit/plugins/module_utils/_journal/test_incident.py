"""journal_incident's orchestration: a resolved alert closes its incident once, without looking at the cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import ValidationError
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.incident import close
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.store import Journal
from ansible_collections.zerotouch.selfheal.tests.unit.journal_backends import JournalBackend

FINGERPRINT = "ab12cd34ef560001"


def alert(status: str, **labels: str) -> dict:
    return {
        "status": status,
        "fingerprint": FINGERPRINT,
        "labels": {"alertname": "HighLatency", "namespace": "shop", "service": "checkout", **labels},
        "annotations": {"summary": "{{ lookup('pipe', 'id') }}"},
    }


@pytest.fixture
def journal(journal_backend: JournalBackend) -> str:
    path = journal_backend.target
    with Journal(path) as opened:
        opened.record_decision(
            namespace="shop",
            service="checkout",
            snapshot={"id": "x"},
            decision={"action": "rollback", "rule": "rollback"},
            fingerprint=FINGERPRINT,
            alert_status="firing",
        )
    return path


def test_a_resolved_alert_closes_its_open_incident_once(journal: str) -> None:
    result = close({"alert": alert("resolved"), "journal": journal}, check_mode=False)
    assert result["changed"] is True and result["decision"]["rule"] == "alert-resolved"
    with Journal(journal) as opened:
        [incident] = opened.incidents()
        [closing, _firing] = opened.query(include_snapshot=True)
    assert (incident["status"], incident["id"]) == ("closed", result["incident_id"])
    assert (closing["id"], closing["action"], closing["incident_id"]) == (result["decision_id"], "none", incident["id"])
    assert closing["snapshot"]["alert"]["annotations"]["summary"] == "{{ lookup('pipe', 'id') }}"  # data, verbatim
    again = close({"alert": alert("resolved"), "journal": journal}, check_mode=False)
    assert (again["changed"], again["decision_id"]) == (False, None)


def test_check_mode_writes_nothing(journal: str) -> None:
    result = close({"alert": alert("resolved"), "journal": journal}, check_mode=True)
    assert result["changed"] is True and result["decision_id"] is None
    assert result["diff"] == {"before": {"status": "open"}, "after": {"status": "closed"}}
    with Journal(journal) as opened:
        assert [i["status"] for i in opened.incidents()] == ["open"]


def test_nothing_to_close_and_a_firing_alert_is_refused(journal: str, tmp_path: Path) -> None:
    other = close({"alert": alert("resolved", service="catalog"), "journal": journal}, check_mode=False)
    assert other["changed"] is False
    missing = close({"alert": alert("resolved"), "journal": str(tmp_path / "none.db")}, check_mode=False)
    assert missing["changed"] is False and not (tmp_path / "none.db").exists()
    with pytest.raises(ValidationError, match='must be "resolved"'):
        close({"alert": alert("firing"), "journal": journal}, check_mode=False)
