#!/usr/bin/python
# Copyright: zerotouch.selfheal maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: decision_apply
short_description: Apply the remediations an event source decided and claimed, by their journal ids
description:
  - The rulebook path's action. The collection's event sources check each alert, journal the decision, lock the
    target and journal a pending action; the rulebook's playbook is then given the decisions' ids, and nothing
    else from the event. This module reads each decision and its snapshot back from the journal, names the
    playbook's process on the action (so a loop that restarts can stop it), applies the change with the code of
    the action's module (M(zerotouch.selfheal.workload_rollback), M(zerotouch.selfheal.workload_scale), ...), and
    journals the change applied. The event source then verifies the service, journals the outcome, escalates
    what did not recover and gives the lock back.
  - An action that cannot be applied is journaled C(failed) with the reason; the event source escalates it and
    gives the lock back. The others are still applied, and the module fails afterwards, naming each one.
  - A decision the journal does not hold, or whose action is no longer pending (a loop that started again
    settled it), is not acted on and fails the module.
  - One run applies several decisions, in order, so a burst of remediations costs one playbook.
  - A scale does not wait for its replicas, a drain waits up to 60 seconds for each eviction a
    PodDisruptionBudget refuses, and a tenant limit lasts O(tenant_limit_ttl_minutes).
version_added: 0.1.0
author: zerotouch.selfheal maintainers (@zerotouch)
requirements:
  - kubernetes
options:
  decision_ids:
    description:
      - The journal ids of the claimed decisions, as the event source's event carries them. A string of ids
        separated by commas is accepted.
    type: list
    elements: int
    required: true
  tenant_limit_rps:
    description:
      - The rate an isolated tenant keeps, in requests per second. By default, what all the other tenants sent
        together when the decision was made, and at least 1.
    type: float
  tenant_limit_ttl_minutes:
    description:
      - How long a tenant limit lasts; C(0) keeps it until it is removed.
    type: int
    default: 60
extends_documentation_fragment:
  - zerotouch.selfheal.journal
  - zerotouch.selfheal.k8s_auth
  - zerotouch.selfheal.attributes
"""

EXAMPLES = r"""
- name: Apply the decisions the event source claimed
  zerotouch.selfheal.decision_apply:
    decision_ids: "{{ decision_ids }}"
    journal: /var/lib/selfheal/journal.db

- name: Apply one decision from a journal on PostgreSQL
  zerotouch.selfheal.decision_apply:
    decision_ids: [42]
    journal: postgresql://selfheal@db.example.com/selfheal
"""

RETURN = r"""
msg:
  description: What was done for each decision, or would be done in check mode.
  returned: success
  type: str
  sample: "decision 42: rolled back shop/checkout from revision 7 to revision 6"
decisions:
  description: One entry per decision applied, in the order given.
  returned: success
  type: list
  elements: dict
  contains:
    decision_id:
      description: The decision's journal id.
      type: int
      sample: 42
    action:
      description: The decided action.
      type: str
      sample: rollback
    changed:
      description: Whether the action changed the cluster (or would, in check mode).
      type: bool
    failed:
      description: Whether the action could not be applied (always false when the module succeeds).
      type: bool
    msg:
      description: What the action's module said.
      type: str
"""

from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._argspec import decision_apply_spec  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop.handoff import apply  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._shell import run  # noqa: E402


def main() -> None:
    module = AnsibleModule(argument_spec=decision_apply_spec(), supports_check_mode=True)

    def kube() -> Any:  # connected at the first decision that is read, with the Kubernetes client
        from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s.client import connect

        return connect(module.params)

    run(module, lambda: apply(module.params, kube, module.check_mode, module._diff))


if __name__ == "__main__":
    main()
