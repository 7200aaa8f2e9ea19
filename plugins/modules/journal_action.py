#!/usr/bin/python
# Copyright: zerotouch.selfheal maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: journal_action
short_description: Record an action of a decision in the self-healing journal
description:
  - Records what was done about a decision of M(zerotouch.selfheal.intent_check), so that the journal holds
    decision, action and outcome, and the guardrails (cooldown, circuit breaker, "not tried again within the
    hour") see every action.
  - >-
    O(state=started) opens an action with the outcome C(pending) and returns its RV(action_id).
    O(state=finished) records how it ended (O(outcome), O(changed), O(detail)); without O(action_id) it records
    a whole action in one go. O(state=skipped) records an action that did not run, with the reason in O(detail),
    for example C(skipped: locked by remediate/41).
  - An action without O(decision_id) is a manual one; a decision with rule C(manual) is recorded for it first,
    for the service O(namespace)/O(service).
  - Every run that records something reports a change; in check mode nothing is recorded.
version_added: 0.1.0
author: zerotouch.selfheal maintainers (@zerotouch)
options:
  state:
    description:
      - V(started) opens an action, V(finished) records how it ended, V(skipped) records that it did not run.
      - V(applied) records that the change of a started action (O(action_id)) is made while its outcome stays
        C(pending); the event source that claimed it then verifies it, journals the outcome and gives the lock back.
    type: str
    required: true
    choices: [started, applied, finished, skipped]
  decision_id:
    description:
      - The decision the action belongs to, the C(decision_id) that M(zerotouch.selfheal.intent_check) returns.
      - When not set with O(state=started), O(state=skipped) or O(state=finished) without O(action_id), the
        action is recorded as a manual one and O(namespace) and O(service) are required.
    type: int
  action_id:
    description:
      - With O(state=finished) or O(state=applied), the action, as returned by O(state=started).
    type: int
  action:
    description:
      - The action, for example V(rollback), V(scale_up) or V(escalate). Required unless O(action_id) is given.
    type: str
  params:
    description:
      - "The action's parameters, for example C({to_revision: 6})."
    type: dict
    default: {}
  outcome:
    description:
      - With O(state=finished), how the action ended. V(recovered) and V(not_recovered) are what verification
        found; V(failed) means the action itself failed; V(pending) means it ran but was not verified.
      - Required with O(state=finished).
    type: str
    choices: [recovered, not_recovered, failed, pending]
  changed:
    description:
      - Whether the action changed something.
    type: bool
  detail:
    description:
      - What happened, in words, for example the action's message or why it was skipped.
    type: str
  namespace:
    description:
      - Namespace of the service, for a manual action (no O(decision_id)).
    type: str
  service:
    description:
      - The service, for a manual action (no O(decision_id)).
    type: str
  reason:
    description:
      - Why the manual action was taken; recorded as the reason of its decision.
    type: str
extends_documentation_fragment:
  - zerotouch.selfheal.journal
attributes:
  check_mode:
    description: Can run in check mode; it then records nothing and returns null ids.
    support: full
  diff_mode:
    description: Appends records; there is no state to compare.
    support: none
"""

EXAMPLES = r"""
- name: Journal that the rollback starts
  zerotouch.selfheal.journal_action:
    state: started
    decision_id: "{{ check.decision_id }}"
    action: rollback
    params: "{{ check.decision.params }}"
  register: started

- name: Journal how it ended
  zerotouch.selfheal.journal_action:
    state: finished
    action_id: "{{ started.action_id }}"
    outcome: recovered
    changed: true
    detail: rolled back shop/checkout from revision 7 to revision 6

- name: Journal that another run holds the lock
  zerotouch.selfheal.journal_action:
    state: skipped
    decision_id: "{{ check.decision_id }}"
    action: rollback
    detail: "skipped: locked by {{ lock.held_by }}"

- name: Journal a restart run by hand
  zerotouch.selfheal.journal_action:
    state: finished
    namespace: shop
    service: checkout
    action: restart
    outcome: pending
    changed: true
    reason: restarted by the on-call engineer
"""

RETURN = r"""
action_id:
  description: The id of the action recorded or finished; null in check mode.
  returned: always
  type: int
  sample: 57
decision_id:
  description: The decision the action belongs to (the manual decision recorded for it, if any); null in check mode.
  returned: always
  type: int
  sample: 41
outcome:
  description: The outcome recorded.
  returned: always
  type: str
  sample: recovered
msg:
  description: What was recorded, or would be in check mode.
  returned: always
  type: str
  sample: "journaled action 57: recovered"
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._argspec import (  # noqa: E402
    JOURNAL_ACTION_REQUIRED_IF,
    JOURNAL_ACTION_REQUIRED_TOGETHER,
    journal_action_spec,
)
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop.check import journal_action  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._shell import run  # noqa: E402


def main() -> None:
    module = AnsibleModule(
        argument_spec=journal_action_spec(),
        required_if=JOURNAL_ACTION_REQUIRED_IF,
        required_together=JOURNAL_ACTION_REQUIRED_TOGETHER,
        supports_check_mode=True,
    )
    run(module, lambda: journal_action(module.params, module.check_mode))


if __name__ == "__main__":
    main()
