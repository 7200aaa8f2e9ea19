#!/usr/bin/python
# Copyright: zerotouch.selfheal maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: workload_rollback
short_description: Roll a Deployment back to an earlier revision
description:
  - Rolls a Deployment back as C(kubectl rollout undo) does. It finds the ReplicaSet of the revision (annotation
    C(deployment.kubernetes.io/revision), or C(deployment.kubernetes.io/revision-history) for a revision reused
    by an earlier rollback) and copies its pod template, minus the C(pod-template-hash) label, into the
    Deployment. The Deployment controller then rolls out that template.
  - A Deployment that already runs the template of the revision is left unchanged.
  - Without O(revision), rolls back to the previous revision. The Deployment is then annotated
    C(selfheal.zerotouch.io/rolled-back-to), so a second run finds that the rollback is done instead of toggling
    back to the revision it left. To step back further, pass O(revision).
  - The remediation behind the decision engine's C(rollback) action.
version_added: 0.1.0
author: zerotouch.selfheal maintainers (@zerotouch)
options:
  revision:
    description:
      - The rollout revision to go back to (the decision's C(to_revision)); the previous one when not set.
      - A revision that is not in the Deployment's history fails, listing the revisions that are.
    type: int
extends_documentation_fragment:
  - zerotouch.selfheal.workload
  - zerotouch.selfheal.k8s_auth
  - zerotouch.selfheal.attributes
"""

EXAMPLES = r"""
- name: Roll checkout back to revision 6
  zerotouch.selfheal.workload_rollback:
    namespace: shop
    name: checkout
    revision: 6

- name: Roll checkout back to the revision before the current one
  zerotouch.selfheal.workload_rollback:
    namespace: shop
    name: checkout
"""

RETURN = r"""
msg:
  description: What was done, or would be done in check mode, or why nothing had to be.
  returned: always
  type: str
  sample: >-
    rolled back shop/checkout from revision 7 to revision 6
    (checkout shop/checkout:1.42 -> shop/checkout:1.41)
from_revision:
  description: The revision the Deployment was on; null when the controller has not recorded one.
  returned: always
  type: int
  sample: 7
to_revision:
  description: The revision rolled back to.
  returned: always
  type: int
  sample: 6
from_images:
  description: Container name to image before the rollback.
  returned: always
  type: dict
  sample: {checkout: "shop/checkout:1.42"}
to_images:
  description: Container name to image of the revision rolled back to.
  returned: always
  type: dict
  sample: {checkout: "shop/checkout:1.41"}
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._argspec import rollback_spec  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s.client import connect  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s.runner import run_rollback  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._shell import run  # noqa: E402


def main() -> None:
    module = AnsibleModule(argument_spec=rollback_spec(), supports_check_mode=True)
    run(module, lambda: run_rollback(connect(module.params), module.params, module.check_mode, module._diff))


if __name__ == "__main__":
    main()
