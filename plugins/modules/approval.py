#!/usr/bin/python
# Copyright: zerotouch.selfheal maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: approval
short_description: Approve or deny the action an escalation proposes
description:
  - Answers the proposal of a journaled escalation (its C(proposed) action), once. The proposal is read from the
    journal by its decision's id; nothing of the alert is taken from the command line.
  - Approving checks the service again now, through the same check as the loop, under the same policy with the
    approval gate lifted for that one action. When the check still decides the same action on the same target
    (its parameters may be refreshed, for example the replica count), that decision is journaled and its target
    claimed (locked, the action journaled as started), and RV(decision_id) is what the remediate path then acts
    on and verifies. Otherwise the proposal is C(stale), nothing changes and RV(msg) says why.
  - Denying changes nothing in the cluster. An expired proposal (older than the policy's C(approval_ttl)) is never
    acted on, and a proposal answered already stays as it was.
  - Who answered, when, how and what was claimed are journaled, and so is every refused answer.
version_added: 0.2.0
author: zerotouch.selfheal maintainers (@zerotouch)
requirements:
  - kubernetes
  - prometheus-api-client
options:
  decision_id:
    description: The journal's id of the escalation whose proposal is answered.
    type: int
    required: true
  approver:
    description: Who answers, as it is journaled.
    type: str
    required: true
  state:
    description: C(approved) approves the proposal, C(denied) denies it.
    type: str
    choices: [approved, denied]
    default: approved
  patches:
    description: The trusted catalog of fixes for the C(patch) action, as for M(zerotouch.selfheal.intent_check).
    type: list
    elements: dict
  lock_ttl_seconds:
    description: How long the target's lock lasts without being given back.
    type: int
    default: 900
extends_documentation_fragment:
  - zerotouch.selfheal.intent_sources
  - zerotouch.selfheal.journal
  - zerotouch.selfheal.k8s_auth
attributes:
  check_mode:
    description: In check mode it reads the proposal and says what an answer would do; nothing is written.
    support: full
  diff_mode:
    description: The journal's record is returned as RV(proposal) instead.
    support: none
"""

EXAMPLES = r"""
- name: Approve the rollback proposed by escalation 42
  zerotouch.selfheal.approval:
    decision_id: 42
    approver: ana
    intents: /etc/selfheal/intents
    policy: /etc/selfheal/policy.yml
    prometheus_url: http://prometheus:9090
  register: answered

- name: Deny it instead
  zerotouch.selfheal.approval:
    decision_id: 42
    approver: ana
    state: denied
"""

RETURN = r"""
state:
  description: >-
    How the answer ended: C(acted) (claimed, to be acted on), C(stale) (no longer stands), C(denied), C(expired),
    C(answered) (answered already; this answer did nothing), or in check mode the proposal's state.
  returned: always
  type: str
  sample: acted
decision_id:
  description: With C(acted), the journal's id of the new acting decision; else null.
  returned: always
  type: int
  sample: 43
decision:
  description: With C(acted), the decision acted on (as M(zerotouch.selfheal.intent_check) returns it).
  returned: when acted
  type: dict
snapshot:
  description: With C(acted), the snapshot the re-check decided on.
  returned: when acted
  type: dict
claim:
  description: With C(acted), the lock taken and the action journaled as started.
  returned: when acted
  type: dict
proposal:
  description: The proposal as journaled (state, approver, how, answered, expires, acted_decision_id, detail).
  returned: always
  type: dict
msg:
  description: What was done and why, for the approver.
  returned: always
  type: str
"""

from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._argspec import approval_spec  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop.approve import approval  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._shell import run  # noqa: E402


def main() -> None:
    module = AnsibleModule(argument_spec=approval_spec(), supports_check_mode=True)

    def kube() -> Any:  # connected only when the service is checked again
        from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s.client import connect

        return connect(module.params)

    run(module, lambda: approval(module.params, kube, module.check_mode))


if __name__ == "__main__":
    main()
