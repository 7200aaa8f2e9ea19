#!/usr/bin/python
# Copyright: zerotouch.selfheal maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: node_drain
short_description: Move a workload off a node, or let the node take pods again
description:
  - With O(state=drained), cordons the node (no new pods are scheduled on it) and evicts from it the pods of the
    Deployment O(namespace)/O(name), or every pod with O(all_pods). Pods owned by a DaemonSet, static pods and
    pods that have already finished or are being deleted are left alone.
  - Pods are evicted through the C(policy/v1) Eviction subresource, so PodDisruptionBudgets are respected. An
    eviction a budget refuses (HTTP 429) is retried until O(wait_timeout) seconds have passed, then the module
    fails, saying which pod could not be evicted and what was already done.
  - With O(state=uncordoned), makes the node schedulable again (the undo); evicted pods are not moved back.
  - Idempotent; a cordoned node without pods to evict changes nothing.
  - The remediation behind the decision engine's C(reroute) action.
version_added: 0.1.0
author: zerotouch.selfheal maintainers (@zerotouch)
options:
  node:
    description:
      - Name of the node.
    type: str
    required: true
  state:
    description:
      - V(drained) cordons the node and evicts the pods; V(uncordoned) makes the node schedulable again.
    type: str
    choices: [drained, uncordoned]
    default: drained
  namespace:
    description:
      - Namespace of the Deployment whose pods to evict. Required with O(state=drained) unless O(all_pods).
    type: str
  name:
    description:
      - Name of the Deployment whose pods to evict. Required with O(state=drained) unless O(all_pods).
      - Only pods its selector selects are evicted.
    type: str
  all_pods:
    description:
      - Evict every pod on the node, of every namespace, as C(kubectl drain) does.
    type: bool
    default: false
  wait_timeout:
    description:
      - How many seconds to keep retrying an eviction a PodDisruptionBudget refuses; V(0) fails at once.
    type: int
    default: 60
extends_documentation_fragment:
  - zerotouch.selfheal.k8s_auth
  - zerotouch.selfheal.attributes
"""

EXAMPLES = r"""
- name: Move checkout away from the slow node
  zerotouch.selfheal.node_drain:
    node: node-b
    namespace: shop
    name: checkout
    wait_timeout: 120

- name: Let node-b take pods again
  zerotouch.selfheal.node_drain:
    node: node-b
    state: uncordoned
"""

RETURN = r"""
msg:
  description: What was done, or would be done in check mode, or why nothing had to be.
  returned: always
  type: str
  sample: "cordoned node node-b and evicted 1 pod of shop/checkout from node node-b (shop/checkout-6d4b9-x2x7q)"
node:
  description: The node.
  returned: always
  type: str
  sample: node-b
cordoned:
  description: Whether the node is left unschedulable.
  returned: always
  type: bool
  sample: true
evicted:
  description: The pods evicted (or that would be, in check mode), as C(namespace/name).
  returned: always
  type: list
  elements: str
  sample: [shop/checkout-6d4b9-x2x7q]
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._argspec import drain_spec  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s.client import connect  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s.runner import run_drain  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._shell import run  # noqa: E402


def main() -> None:
    module = AnsibleModule(argument_spec=drain_spec(), supports_check_mode=True)
    run(module, lambda: run_drain(connect(module.params), module.params, module.check_mode, module._diff))


if __name__ == "__main__":
    main()
