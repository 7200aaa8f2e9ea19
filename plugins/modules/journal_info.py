#!/usr/bin/python
# Copyright: zerotouch.selfheal maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: journal_info
short_description: Query the self-healing journal
description:
  - Returns the decisions recorded by C(zerotouch.selfheal.intent_check), newest first, each with the actions
    run for it and their outcomes, or the incidents they belong to.
  - With O(view=proposals), the proposals waiting for an answer (an escalation's C(proposed) action, not yet
    approved, denied or expired), with their age and the evidence; with O(view=promotion), the promotion
    evidence per service and proposed action (what became of each proposal, and the share of approved actions
    that recovered the service), as data and as a Markdown report.
  - Read-only.
version_added: 0.1.0
author: zerotouch.selfheal maintainers (@zerotouch)
options:
  namespace:
    description: Only decisions about services in this namespace.
    type: str
  service:
    description: Only decisions about this service.
    type: str
  action:
    description: Only decisions that chose this action.
    type: str
  since:
    description: Only decisions made at or after this instant (ISO 8601 with a UTC offset).
    type: str
  until:
    description: Only decisions made at or before this instant (ISO 8601 with a UTC offset).
    type: str
  limit:
    description: At most this many decisions.
    type: int
    default: 100
  include_snapshot:
    description: Include each decision's full snapshot.
    type: bool
    default: false
  view:
    description:
      - C(decisions) returns RV(decisions); C(proposals) returns RV(proposals), the waiting ones; C(promotion)
        returns RV(promotion) and RV(report). The O(namespace), O(service) and (for C(promotion)) O(since)
        filters apply to each.
    type: str
    choices: [decisions, proposals, promotion]
    default: decisions
  recovered_within_minutes:
    description:
      - With O(view=promotion), a proposal never acted on (expired, stale, unanswered) counts as recovered by
        itself when a later check found the service healthy within this many minutes of the proposal.
    type: int
    default: 30
extends_documentation_fragment:
  - zerotouch.selfheal.journal
attributes:
  check_mode:
    description: Read-only; runs the same in check mode.
    support: full
  diff_mode:
    description: Changes nothing, so there is nothing to diff.
    support: none
"""

EXAMPLES = r"""
- name: What did self-healing decide about checkout in the last day?
  zerotouch.selfheal.journal_info:
    namespace: shop
    service: checkout
    since: "2026-03-04T00:00:00Z"
  register: journal

- name: Show every rollback and its outcome
  ansible.builtin.debug:
    msg: "{{ journal.decisions | selectattr('action', 'equalto', 'rollback') | list }}"

- name: Which proposals wait for an answer?
  zerotouch.selfheal.journal_info:
    view: proposals
  register: waiting

- name: Can checkout move from approve to auto? The promotion evidence of the last month
  zerotouch.selfheal.journal_info:
    view: promotion
    namespace: shop
    since: "2026-02-04T00:00:00Z"
  register: promotion
"""

RETURN = r"""
decisions:
  description: Matching decisions, newest first.
  returned: with O(view=decisions)
  type: list
  elements: dict
  sample:
    - id: 12
      time: "2026-03-04T15:10:02Z"
      namespace: shop
      service: checkout
      action: rollback
      actions: [{"action": "rollback", "outcome": "recovered"}]
proposals:
  description: Proposals waiting for an answer, newest first, with C(age_seconds), C(reasons) and C(evidence).
  returned: with O(view=proposals)
  type: list
  elements: dict
  sample:
    - decision_id: 41
      namespace: shop
      service: checkout
      action: rollback
      params: {"to_revision": 6}
      expires: "2026-03-04T15:40:02Z"
      age_seconds: 312.5
promotion:
  description: >-
    Per service and proposed action, the number of proposals, of each outcome (approved_recovered,
    approved_not_recovered, approved_pending, denied, expired, stale, recovered_by_itself, waiting) and
    C(success_rate), the share of approved actions that recovered (null before any).
  returned: with O(view=promotion)
  type: list
  elements: dict
report:
  description: The promotion evidence as a Markdown table.
  returned: with O(view=promotion)
  type: str
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._argspec import journal_info_spec  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.approvals import (  # noqa: E402
    query as proposals_view,
)
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.store import query_journal  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._shell import run  # noqa: E402


def main() -> None:
    module = AnsibleModule(argument_spec=journal_info_spec(), supports_check_mode=True)
    if module.params["view"] == "decisions":
        run(module, lambda: {"changed": False, "decisions": query_journal(module.params)})
    else:
        run(module, lambda: {"changed": False, **proposals_view(module.params)})


if __name__ == "__main__":
    main()
