#!/usr/bin/python
# Copyright: zerotouch.selfheal maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: escalation
short_description: Hand a situation to a human through a webhook
description:
  - Posts the decision, its reasons and its evidence as JSON to a webhook, optionally with an action that
    awaits a human's approval (O(proposed)).
  - O(format=generic) sends a document any receiver can read (see RV(payload)); O(format=slack) sends a Slack
    incoming-webhook message with the same content.
  - Sending a message is not idempotent. Every run that sends reports a change; the payload carries a
    C(dedup_key), the same for the same service, decision, reasons and proposed action, with which a
    receiver can drop repeats.
  - In check mode nothing is sent; the payload that would be sent is returned.
  - The remediation behind the decision engine's C(escalate) action.
version_added: 0.1.0
author: zerotouch.selfheal maintainers (@zerotouch)
options:
  url:
    description:
      - The webhook URL. Only its scheme and host appear in messages, since webhook URLs often embed a secret.
    type: str
    required: true
  format:
    description:
      - V(generic) JSON, or a V(slack) incoming-webhook message.
    type: str
    choices: [generic, slack]
    default: generic
  headers:
    description:
      - Extra HTTP headers, for example an C(Authorization) header.
    type: dict
    default: {}
  timeout:
    description:
      - Seconds to wait for the webhook to answer.
    type: int
    default: 10
  validate_certs:
    description:
      - Whether to verify the webhook's TLS certificate.
    type: bool
    default: true
  namespace:
    description:
      - Namespace of the service concerned.
    type: str
  name:
    description:
      - Name of the service concerned.
    type: str
  summary:
    description:
      - One line for the human; built from the service, the proposed action and the first reason when not set.
    type: str
  decision:
    description:
      - The decision, as the decision engine returns it (C(action), C(params), C(reasons), C(evidence),
        C(proposed), C(proposed_params), C(rule)).
      - At least one of O(decision), O(reasons) and O(summary) is required.
    type: dict
  reasons:
    description:
      - Why a human is needed; the decision's C(reasons) when not set.
    type: list
    elements: str
  evidence:
    description:
      - The numbers behind the reasons; the decision's C(evidence) when not set.
    type: dict
  proposed:
    description:
      - An action awaiting approval, as an action name (V(rollback)) or a dict with C(action) and C(params);
        the decision's C(proposed) and C(proposed_params) when not set.
    type: raw
  decision_id:
    description:
      - The journal's id of the decision. With an action awaiting approval, the message then carries the command
        that answers it (C(ansible-playbook zerotouch.selfheal.approve -e decision=<id> ...)), as C(approval).
    type: int
notes:
  - Posts with ansible-core's own HTTP client (C(ansible.module_utils.urls)), so it needs no extra Python library;
    proxies follow the usual C(http_proxy)/C(https_proxy) environment variables.
extends_documentation_fragment:
  - zerotouch.selfheal.attributes.notify
"""

EXAMPLES = r"""
- name: Ask a human to approve the rollback the engine proposes
  zerotouch.selfheal.escalation:
    url: "{{ escalation_webhook_url }}"
    format: slack
    namespace: shop
    name: checkout
    decision: "{{ decision }}"

- name: Escalate with explicit reasons
  zerotouch.selfheal.escalation:
    url: https://hooks.example.com/selfheal
    headers:
      Authorization: "Bearer {{ webhook_token }}"
    namespace: shop
    name: checkout
    reasons:
      - dependency payments-db is unhealthy; scaling or restarting checkout will not help
    evidence:
      payments-db: {healthy: false, latency_p99_ms: 900}
"""

RETURN = r"""
msg:
  description: What was sent, or would be in check mode.
  returned: always
  type: str
  sample: "sent the escalation to https://hooks.example.com (HTTP 200): Approval needed: rollback on shop/checkout"
payload:
  description: The JSON document sent (or that would be, in check mode).
  returned: always
  type: dict
  sample:
    source: zerotouch.selfheal
    type: escalation
    summary: "Approval needed: rollback on shop/checkout: p99 latency 480ms > 250ms since the rollout at 13:58"
    service: {namespace: shop, name: checkout}
    decision: {action: escalate, params: {}, rule: approval}
    reasons: ["p99 latency 480ms > 250ms since the rollout at 13:58"]
    proposed: {action: rollback, params: {to_revision: 6}}
    evidence: {latency_p99_ms: 480}
    approval_required: true
    dedup_key: 4f0c2d9b1e7a46c3a1b25d0e9f3c7a81
status:
  description: The webhook's HTTP status; null in check mode.
  returned: always
  type: int
  sample: 200
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.urls import open_url  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._argspec import ESCALATION_ONE_OF, escalation_spec  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._notify import send_escalation  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._shell import run  # noqa: E402


def main() -> None:
    module = AnsibleModule(argument_spec=escalation_spec(), required_one_of=ESCALATION_ONE_OF, supports_check_mode=True)
    run(module, lambda: send_escalation(module.params, module.check_mode, open_url))


if __name__ == "__main__":
    main()
