#!/usr/bin/python
# Copyright: zerotouch.selfheal maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: change_gate
short_description: Ask a service's intent whether a change may go ahead now
description:
  - The change gate for pipelines (GitHub Actions, GitLab CI, Jenkins, Argo CD PreSync hooks, an automation
    controller workflow) - asked before a deploy, a configuration change, a scaling, a patch or a rollback, and
    judged on the same intents, policy, metrics, cluster and journal as the self-healing loop.
  - Denies inside a freeze window; inside peak hours when the policy sets C(block_changes_during_peak); while the
    service breaches an objective or burns its error budget at least O(burn_rate) times as fast as allowed
    (unless the change is a C(rollback) or a C(patch), which fix it); while the metrics those rules need are
    unknown (unless O(allow_unknown)); while a remediation holds the service's lock or waits for verification;
    and a C(deploy) after two deploys in a row that the loop rolled back within C(recent_change_minutes) x 4
    (unless O(force) with a O(reason)). Otherwise allows. The rules are listed in C(docs/decisions.md).
  - Returns the answer, the reasons naming each rule and its evidence, and RV(retry_after) when the denial
    ends at a known time. A denial is an answer, not a failure - use RV(allowed). The module fails only when it
    cannot answer (no intent for the service, no Deployment, the cluster unreachable); then nothing is journaled.
  - Changes nothing in the cluster. Journals every answer, allow or deny, with O(requested_by) and O(change_id)
    (unless O(record=false) or in check mode).
  - With O(snapshot) it replays a recorded gate snapshot (RV(snapshot) of an earlier answer, with its C(gate)
    block of burn error rate, lock and loop rollbacks) instead of gathering; a plain snapshot without that block
    has an unknown burn rate.
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
      - Namespace of the service the change is for.
    type: str
  service:
    description:
      - Name of the service, as its intent declares it. Required unless O(snapshot) is given.
    type: str
  change:
    description:
      - The kind of change the pipeline is about to make.
    type: str
    required: true
    choices: [deploy, config, scale, patch, rollback]
  requested_by:
    description:
      - Who asks - the pipeline, job or person. Journaled as given, never rendered.
    type: str
  change_id:
    description:
      - The pipeline's identifier of the change (a commit, a merge request, a run id). Journaled as given.
    type: str
  force:
    description:
      - Let a C(deploy) through a streak of bad releases (the last two deploys rolled back by the loop). Needs
        O(reason); both are journaled. It lifts no other rule.
    type: bool
    default: false
  reason:
    description:
      - Why O(force) is used, for the journal. Required with O(force=true).
    type: str
  allow_unknown:
    description:
      - Judge without the metrics that are unknown instead of denying. By default the gate never answers blind.
    type: bool
    default: false
  burn_window:
    description:
      - The short window (a Prometheus duration) over which the error budget's burn rate is measured, as the
        C(zerotouch.selfheal.intent_watch) event source measures it.
    type: str
    default: 1m
  burn_rate:
    description:
      - The burn rate from which the budget burns fast, as the watch's fast-burn threshold; a burn at exactly this
        rate is fast. V(0) turns the rule off.
    type: float
    default: 6.0
  record:
    description:
      - Journal the answer. Nothing is journaled in check mode.
    type: bool
    default: true
extends_documentation_fragment:
  - zerotouch.selfheal.intent_sources
  - zerotouch.selfheal.journal
  - zerotouch.selfheal.k8s_auth
  - zerotouch.selfheal.replay
attributes:
  check_mode:
    description: In check mode it judges the same way and journals nothing.
    support: full
  diff_mode:
    description: Changes nothing, so there is nothing to diff.
    support: none
"""

EXAMPLES = r"""
- name: Ask whether checkout may be deployed now
  zerotouch.selfheal.change_gate:
    namespace: shop
    service: checkout
    change: deploy
    intents: /etc/selfheal/intents/
    policy: /etc/selfheal/policy.yml
    prometheus_url: http://prometheus:9090
    requested_by: "{{ lookup('ansible.builtin.env', 'CI_JOB_URL') }}"
    change_id: "{{ lookup('ansible.builtin.env', 'CI_COMMIT_SHA') }}"
  register: gate

- name: Stop the pipeline when the gate denies
  ansible.builtin.fail:
    msg: "{{ gate.reasons }}"
  when: not gate.allowed

- name: Deploy after two bad releases, vouched for by a human
  zerotouch.selfheal.change_gate:
    namespace: shop
    service: checkout
    change: deploy
    intents: /etc/selfheal/intents/
    prometheus_url: http://prometheus:9090
    force: true
    reason: 1.44 fixes the connection leak of 1.42 and 1.43, reviewed by the checkout team

- name: Replay a journaled answer's snapshot without journaling
  zerotouch.selfheal.change_gate:
    snapshot: gate-snapshot.json
    change: rollback
    record: false
"""

RETURN = r"""
allowed:
  description: Whether the change may go ahead now.
  returned: always
  type: bool
  sample: false
change:
  description: The kind of change judged.
  returned: always
  type: str
  sample: deploy
rule:
  description: C(allow), or the first rule that denies.
  returned: always
  type: str
  sample: freeze
denied_by:
  description:
    - Every rule that denies, in the order of the rules - C(freeze), C(peak-hours), C(impact), C(fast-burn),
      C(blind), C(remediation-locked), C(remediation-pending), C(bad-release-streak). Empty when allowed.
  returned: always
  type: list
  elements: str
  sample: [freeze]
reasons:
  description:
    - When denied, one line per denial, each starting with its rule and naming the evidence; when allowed, what
      each rule found.
  returned: always
  type: list
  elements: str
  sample:
    - "freeze: inside the freeze 2026-12-20T00:00:00Z to 2027-01-04T00:00:00Z (holidays); it ends at 2027-01-04..."
retry_after:
  description:
    - When every denial ends at a known time (a freeze, peak hours, a streak leaving its window), the first
      instant none of them denies any more (RFC 3339, UTC). Null when allowed or when a denial has no known end.
  returned: always
  type: str
  sample: "2027-01-04T00:00:00Z"
evidence:
  description: The numbers and windows the answer used (objectives, metrics, burn rate, freeze, lock, ...).
  returned: always
  type: dict
forced:
  description: Whether O(force) let the change through a streak of bad releases.
  returned: always
  type: bool
  sample: false
force_reason:
  description: The O(reason) given with O(force), as journaled.
  returned: always
  type: str
  sample: null
msg:
  description: The answer in one line.
  returned: always
  type: str
  sample: deploy of shop/checkout denied by freeze; retry after 2027-01-04T00:00:00Z
gate_id:
  description: The journal's id of the answer; null when nothing was journaled.
  returned: always
  type: int
  sample: 12
requested_by:
  description: O(requested_by), as journaled.
  returned: always
  type: str
  sample: https://ci.example.com/shop/checkout/-/jobs/4711
change_id:
  description: O(change_id), as journaled.
  returned: always
  type: str
  sample: 9f1c2e7a
snapshot:
  description:
    - What the answer was judged on, in the snapshot format plus a C(gate) block (C(burn_error_rate),
      C(burn_window), C(lock), C(rollbacks)); give it back as O(snapshot) to replay the answer.
  returned: always
  type: dict
gather_warnings:
  description: What could not be gathered (for example Prometheus unreachable); those metrics are unknown.
  returned: always
  type: list
  elements: str
  sample: []
"""

from typing import TYPE_CHECKING  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._argspec import (  # noqa: E402
    CHANGE_GATE_ONE_OF,
    CHANGE_GATE_REQUIRED_IF,
    change_gate_spec,
)
from ansible_collections.zerotouch.selfheal.plugins.module_utils._engine.gate import CHANGES  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop.gate import gate  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._shell import run  # noqa: E402

if TYPE_CHECKING:
    from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s.client import KubeApi


def main() -> None:
    module = AnsibleModule(
        argument_spec=change_gate_spec(CHANGES),
        required_if=CHANGE_GATE_REQUIRED_IF,
        required_one_of=CHANGE_GATE_ONE_OF,
        supports_check_mode=True,
    )

    def kube() -> KubeApi:  # connect only for a live answer: a replay needs no cluster
        from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s.client import connect

        return connect(module.params)

    run(module, lambda: gate(module.params, kube, module.check_mode))


if __name__ == "__main__":
    main()
