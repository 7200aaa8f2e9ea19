#!/usr/bin/python
# Copyright: zerotouch.selfheal maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: intent_check
short_description: Check a service against its intent and decide the safest remediation
description:
  - Loads the service's intent and the policy, gathers what Prometheus and the Kubernetes API show right now
    into a snapshot, and decides what to do about it - possibly nothing - with reasons a human can read.
  - An alert is a prompt, not an order. The decision follows the intent's objectives, the recovery actions it
    allows and the policy's guardrails (cooldowns, circuit breaker, approvals, freezes, protected namespaces).
  - Records the snapshot and the decision in the journal, from which the guardrails read the history.
  - Changes nothing in the cluster, unless told to O(claim) the target for the action it decides. With
    O(snapshot) it replays a recorded snapshot instead of gathering.
  - Alert text is data - labels and annotations are never rendered as templates.
version_added: 0.1.0
author: zerotouch.selfheal maintainers (@zerotouch)
requirements:
  - kubernetes
  - prometheus-api-client
  - jsonschema
  - PyYAML
options:
  namespace:
    description:
      - Namespace of the service to check. Taken from the O(alert)'s labels when not set.
    type: str
  service:
    description:
      - Name of the service to check, as its intent declares it. Taken from the O(alert)'s labels when not set.
    type: str
  alert:
    description:
      - The Alertmanager alert that prompted the check, either as Alertmanager sends it (one element of the
        webhook's C(alerts)) or as an event of the C(zerotouch.selfheal.alertmanager) event source.
      - Its text is data, never rendered. Do not hand an alert file to C(ansible-playbook -e @file), since extra
        vars are templates to ansible-core; give the path as O(alert_file) instead.
    type: dict
  alert_file:
    description:
      - A JSON or YAML file holding the alert (one alert, an event of the alertmanager source, or a whole webhook
        body, of which the first alert is used), read by the module as data. Ignored when O(alert) is set.
    type: path
  patches:
    description:
      - Trusted catalog of available fixes; a workload running an image listed in C(from) gets C(image) as its
        available patch. Patch information is never taken from alert text.
    type: list
    elements: dict
  record:
    description:
      - Record the snapshot and the decision in the journal. Nothing is recorded in check mode.
    type: bool
    default: true
  claim:
    description:
      - When the decision is to act, take the target Deployment's remediation lock (the Lease
        M(zerotouch.selfheal.workload_lock) manages, held by C(selfheal-remediate/decision-<id>)) and journal that
        the action starts, as M(zerotouch.selfheal.journal_action) would - in this same run, so that a remediation
        playbook reaches its first write without a module run for each.
      - When another run holds the lock, journals the action as skipped and returns RV(claim.acquired=false).
      - The caller must give the lock back (M(zerotouch.selfheal.workload_lock) with C(state=released)).
      - Needs O(record) and a live check (no O(snapshot)). In check mode it only reads the lock and writes nothing.
    type: bool
    default: false
  lock_ttl_seconds:
    description:
      - With O(claim), how long the lock lasts if it is never given back.
    type: int
    default: 900
extends_documentation_fragment:
  - zerotouch.selfheal.intent_sources
  - zerotouch.selfheal.journal
  - zerotouch.selfheal.k8s_auth
  - zerotouch.selfheal.replay
attributes:
  check_mode:
    description: In check mode it decides the same way, records nothing in the journal and takes no lock.
    support: full
  diff_mode:
    description: Changes nothing, so there is nothing to diff.
    support: none
"""

EXAMPLES = r"""
- name: Decide what to do about a service
  zerotouch.selfheal.intent_check:
    intents: /etc/selfheal/intents/
    policy: /etc/selfheal/policy.yml
    prometheus_url: http://prometheus:9090
    namespace: shop
    service: checkout
  register: check

- name: Decide, and take the target's lock for the action decided
  zerotouch.selfheal.intent_check:
    intents: /etc/selfheal/intents/
    prometheus_url: http://prometheus:9090
    namespace: shop
    service: checkout
    claim: true
  register: check

- name: Check a service by name, with intents from group vars
  zerotouch.selfheal.intent_check:
    namespace: shop
    service: checkout
    intents: "{{ selfheal_intents }}"
    prometheus_url: http://prometheus:9090

- name: Decide about an alert file copied from Alertmanager, read as data
  zerotouch.selfheal.intent_check:
    alert_file: /tmp/alert.json
    intents: /etc/selfheal/intents/
    prometheus_url: http://prometheus:9090

- name: Replay a recorded snapshot without recording anything
  zerotouch.selfheal.intent_check:
    snapshot: incidents/2026-03-04-checkout.yml
    record: false
"""

RETURN = r"""
decision:
  description: What to do and why.
  returned: always
  type: dict
  contains:
    action:
      description:
        - One of none, restart, scale_up, scale_down, rollback, reroute, isolate_tenant, patch, reconcile,
          escalate.
      type: str
      sample: rollback
    params:
      description: The action's parameters, for example C(to_revision), C(replicas), C(node), C(tenant), C(image).
      type: dict
      sample: {"to_revision": 7}
    proposed:
      description: With C(escalate), the action a human is asked to approve, if any.
      type: str
      sample: null
    reasons:
      description: Human-readable reasons naming the objective, the evidence and the rule.
      type: list
      elements: str
    evidence:
      description: The numbers the decision used.
      type: dict
    rule:
      description: Stable identifier of the rule that decided.
      type: str
  sample:
    action: rollback
    params: {"to_revision": 7}
    proposed: null
    reasons: ["p99 latency 480 ms breaches max_latency_ms 250"]
snapshot:
  description: The snapshot the decision was made from, in the format of the scenario files.
  returned: always
  type: dict
decision_id:
  description: The journal's id of the recorded decision; null when nothing was recorded.
  returned: always
  type: int
  sample: 42
action_args:
  description:
    - The arguments of the module that carries out the decided action, from the decision and the intent (for
      example C(namespace), C(name) and C(revision) for M(zerotouch.selfheal.workload_rollback)); empty for
      C(none) and C(escalate).
    - The playbooks give them to the action's role; M(zerotouch.selfheal.decision_apply) uses the same ones.
  returned: always
  type: dict
  sample: {namespace: shop, name: checkout, revision: 6}
claim:
  description: With O(claim), the lock taken for the action and its journal entry.
  returned: when O(claim=true) and the decision is to act
  type: dict
  contains:
    acquired:
      description: Whether this run holds the lock; when not, the action was journaled as skipped.
      type: bool
      sample: true
    holder:
      description: The holder this run took the lock as; give it back under this name.
      type: str
      sample: selfheal-remediate/decision-42
    held_by:
      description: Who holds the lock now.
      type: str
      sample: selfheal-remediate/decision-42
    expires_at:
      description: When the holding expires (RFC 3339, UTC).
      type: str
    action_id:
      description: The journal's id of the action started (or skipped); null in check mode.
      type: int
      sample: 57
    decision_id:
      description: The decision the action belongs to.
      type: int
      sample: 42
    msg:
      description: What happened to the lock, in words.
      type: str
gather_warnings:
  description: What could not be gathered (for example Prometheus unreachable); those indicators are unknown.
  returned: always
  type: list
  elements: str
  sample: []
"""

from typing import TYPE_CHECKING  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._argspec import intent_check_spec  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop.check import check  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._shell import run  # noqa: E402

if TYPE_CHECKING:
    from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s.client import KubeApi


def main() -> None:
    module = AnsibleModule(argument_spec=intent_check_spec(), supports_check_mode=True)

    # Connect only when the cluster is read: a replay or a service without intent needs no cluster.
    def kube() -> KubeApi:
        from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s.client import connect

        return connect(module.params)

    run(module, lambda: check(module.params, kube, module.check_mode))


if __name__ == "__main__":
    main()
