#!/usr/bin/python
# Copyright: zerotouch.selfheal maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: workload_scale
short_description: Set a Deployment's replica count within bounds
description:
  - Sets the number of replicas of a Deployment through its C(scale) subresource, as C(kubectl scale) does.
  - The count is kept within O(min_replicas) and O(max_replicas). A request outside them is not an error; it is
    clamped to the nearest bound, the message says so and RV(clamped) is true.
  - Idempotent; a Deployment that already has the replica count changes nothing.
  - The remediation behind the decision engine's C(scale_up) and C(scale_down) actions.
version_added: 0.1.0
author: zerotouch.selfheal maintainers (@zerotouch)
options:
  replicas:
    description:
      - The number of replicas wanted.
    type: int
    required: true
  min_replicas:
    description:
      - Lower bound; a smaller O(replicas) is raised to it.
    type: int
  max_replicas:
    description:
      - Upper bound; a larger O(replicas) is lowered to it.
    type: int
  wait:
    description:
      - Wait until the Deployment has exactly the replica count set, all of them ready.
      - Also waits when the count did not change. Never waits in check mode.
    type: bool
    default: false
  wait_timeout:
    description:
      - How many seconds to wait with O(wait) before failing.
    type: int
    default: 120
extends_documentation_fragment:
  - zerotouch.selfheal.workload
  - zerotouch.selfheal.k8s_auth
  - zerotouch.selfheal.attributes
"""

EXAMPLES = r"""
- name: Scale checkout to 6 replicas, within the intent's bounds, and wait for them
  zerotouch.selfheal.workload_scale:
    namespace: shop
    name: checkout
    replicas: 6
    min_replicas: 2
    max_replicas: 10
    wait: true
    wait_timeout: 180
"""

RETURN = r"""
msg:
  description: What was done, or would be done in check mode, or why nothing had to be.
  returned: always
  type: str
  sample: scaled shop/checkout from 4 to 10 replicas (requested 12, clamped to max_replicas 10)
replicas:
  description: The replica count set (after clamping).
  returned: always
  type: int
  sample: 10
previous_replicas:
  description: The replica count before the run.
  returned: always
  type: int
  sample: 4
requested_replicas:
  description: The replica count asked for (O(replicas)).
  returned: always
  type: int
  sample: 12
clamped:
  description: Whether O(replicas) was outside O(min_replicas) and O(max_replicas) and was clamped.
  returned: always
  type: bool
  sample: true
ready_replicas:
  description: Ready replicas at the end of the run (after waiting with O(wait)).
  returned: always
  type: int
  sample: 10
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._argspec import scale_spec  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s.client import connect  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s.runner import run_scale  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._shell import run  # noqa: E402


def main() -> None:
    module = AnsibleModule(argument_spec=scale_spec(), supports_check_mode=True)
    run(module, lambda: run_scale(connect(module.params), module.params, module.check_mode, module._diff))


if __name__ == "__main__":
    main()
