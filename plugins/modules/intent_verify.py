#!/usr/bin/python
# Copyright: zerotouch.selfheal maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: intent_verify
short_description: Wait until a service meets its intent again, or report that it does not
description:
  - Verifies a remediation. Waits O(settle_seconds), then looks at the service every O(interval) seconds until
    its intent has been met at every look for O(window_seconds) (RV(outcome=recovered)), or until
    O(timeout_seconds) have passed since it started (RV(outcome=not_recovered)).
  - Each look gathers the service the way C(zerotouch.selfheal.intent_check) does (the same Prometheus
    indicators and Kubernetes reads). The intent is met when every declared objective is known and met, the
    Deployment has as many ready replicas as it desires (more than zero), and no pod fails.
  - Changes nothing in the cluster; journal the outcome with C(zerotouch.selfheal.journal_action).
  - Given the O(action_id) of the journaled action it verifies, it records in the journal how effective that
    action was when verification ends (RV(effectiveness)) - the post-incident review
    (C(zerotouch.selfheal.journal_review)) is built on these records - and reports a change.
  - A look that cannot gather (after a first one that could) counts as not met, so a brief outage of the API
    or of Prometheus does not abort the verification.
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
      - Namespace of the service, as its intent declares it.
    type: str
    required: true
  service:
    description:
      - Name of the service, as its intent declares it.
    type: str
    required: true
  action_id:
    description:
      - The journal's id of the action being verified (the C(action_id) of C(zerotouch.selfheal.journal_action)
        or of C(zerotouch.selfheal.intent_check) with C(claim)). When set, the action's effectiveness is
        recorded in the journal O(journal) when verification ends; the action must be one of O(namespace)/O(service).
      - Nothing is recorded in check mode.
    type: int
  settle_seconds:
    description:
      - Seconds to wait before the first look, for the action to take effect.
    type: int
    default: 30
  interval:
    description:
      - Seconds between two looks.
    type: int
    default: 15
  window_seconds:
    description:
      - For how many seconds the intent must be met, look after look, to count as recovered. V(0) accepts the
        first look that meets it.
      - Indicators are rates over the intent's C(indicators.window); a window at least that long makes sure the
        values seen were measured after the action.
    type: int
    default: 120
  timeout_seconds:
    description:
      - Seconds after which the service is C(not_recovered), counted from the start (settling included). Must
        leave room for O(settle_seconds) plus O(window_seconds).
    type: int
    default: 600
extends_documentation_fragment:
  - zerotouch.selfheal.intent_sources
  - zerotouch.selfheal.journal
  - zerotouch.selfheal.k8s_auth
attributes:
  check_mode:
    description: >-
      Reads only, apart from the effectiveness record of O(action_id). In check mode nothing was changed, so it
      takes one look without waiting and records nothing.
    support: full
  diff_mode:
    description: Changes nothing, so there is nothing to diff.
    support: none
"""

EXAMPLES = r"""
- name: Verify that checkout recovered after the rollback
  zerotouch.selfheal.intent_verify:
    namespace: shop
    service: checkout
    intents: /etc/selfheal/intents/
    prometheus_url: http://prometheus:9090
    settle_seconds: 30
    interval: 15
    window_seconds: 300
    timeout_seconds: 900
    action_id: "{{ started.action_id }}"
  register: verified

- name: Journal the outcome
  zerotouch.selfheal.journal_action:
    state: finished
    action_id: "{{ started.action_id }}"
    outcome: "{{ verified.outcome }}"
    detail: "{{ verified.msg }}"
"""

RETURN = r"""
outcome:
  description: V(recovered) or V(not_recovered).
  returned: always
  type: str
  sample: recovered
recovered:
  description: Whether RV(outcome) is V(recovered).
  returned: always
  type: bool
  sample: true
msg:
  description: The outcome in words, with what is not met when not recovered.
  returned: always
  type: str
  sample: "recovered: the intent held for 120s (window_seconds 120) after 10 look(s) in 165.2s"
reasons:
  description: What the last look found - what is not met, or that everything is.
  returned: always
  type: list
  elements: str
  sample: ["p99 latency 480 ms breaches max_latency_ms 250"]
evidence:
  description: The numbers the last look was judged on - indicators, objectives, desired and ready replicas.
  returned: always
  type: dict
  sample: {"latency_p99_ms": 118.2, "max_latency_ms": 250, "replicas": 4, "ready_replicas": 4}
metrics:
  description: Every indicator of the last look (the snapshot's C(observed.metrics)); unknown ones are absent.
  returned: always
  type: dict
  sample: {"latency_p99_ms": 118.2, "error_rate": 0.0, "availability": 100.0, "cpu_utilization": 41.3}
gather_warnings:
  description: What the last look could not gather.
  returned: always
  type: list
  elements: str
  sample: []
looks:
  description: Every look, oldest first - seconds since the start, whether the intent was met, and why.
  returned: always
  type: list
  elements: dict
  sample: [{"at": 30.4, "met": false, "reasons": ["only 3 of 4 replicas are ready"]}]
met_for_seconds:
  description: For how long the intent had been met at the last look (0 when it was not met).
  returned: always
  type: float
  sample: 120.3
effectiveness:
  description:
    - How effective the action O(action_id) was, as recorded in the journal (null without O(action_id)).
    - C(recovered); C(seconds_to_objectives_met) from the action's start to the first look of the final run of
      looks that met the intent (null when not recovered); C(alert_resolved), the state of the decision's
      incident (null when no alert was involved); C(indicators), each with C(before) (the decision's snapshot),
      C(after) (the last look) and C(moved).
  returned: always
  type: dict
  sample:
    recovered: true
    outcome: recovered
    seconds_to_objectives_met: 74.2
    alert_resolved: false
    indicators: {"error_rate": {"before": 12.5, "after": 0.2, "moved": -12.3}}
    looks: 6
    verified_at: "2026-03-04T15:14:02Z"
elapsed_seconds:
  description: Seconds from the start to the last look.
  returned: always
  type: float
  sample: 165.2
"""

from typing import TYPE_CHECKING  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._argspec import intent_verify_spec  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import verify  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._shell import run  # noqa: E402

if TYPE_CHECKING:
    from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s.client import KubeApi


def main() -> None:
    module = AnsibleModule(argument_spec=intent_verify_spec(), supports_check_mode=True)

    def kube() -> KubeApi:
        from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s.client import connect

        return connect(module.params)

    run(module, lambda: verify.run(module.params, kube, module.check_mode))


if __name__ == "__main__":
    main()
