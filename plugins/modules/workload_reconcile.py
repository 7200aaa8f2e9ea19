#!/usr/bin/python
# Copyright: zerotouch.selfheal maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: workload_reconcile
short_description: Put drifted objects back to their declared manifests
description:
  - Compares declared manifests with the live objects and re-applies only the fields that drifted; every other
    field, including the ones the server or other controllers set, is left as it is.
  - Only fields present in a declared manifest are compared, and of C(metadata) only C(labels) and
    C(annotations). Lists of named items (containers, ports, env, volumes, ...) are matched by name (or by
    C(port)/C(containerPort)/C(mountPath) when they have no name); other lists are compared as a whole. A
    declared C(null) means the field must be absent.
  - Each drifted field is reported in RV(drift). A declared object that does not exist is created.
  - Writes are guarded by the resourceVersion read, so a concurrent change makes the run fail instead of
    being overwritten.
  - Idempotent; objects without drift are not written.
  - The remediation behind the decision engine's C(reconcile) action.
version_added: 0.1.0
author: zerotouch.selfheal maintainers (@zerotouch)
options:
  manifests:
    description:
      - The declared objects. A C(List) of objects is flattened.
      - Exactly one of O(manifests) and O(src) is required.
    type: list
    elements: dict
  src:
    description:
      - A YAML file of declared objects (several documents allowed), or a directory whose C(*.yml),
        C(*.yaml) and C(*.json) files are read in name order. Read on the host that runs the module.
    type: path
  namespace:
    description:
      - Namespace for declared namespaced objects that do not set C(metadata.namespace).
    type: str
extends_documentation_fragment:
  - zerotouch.selfheal.k8s_auth
  - zerotouch.selfheal.attributes
"""

EXAMPLES = r"""
- name: Put checkout back to its declared manifests
  zerotouch.selfheal.workload_reconcile:
    src: "{{ playbook_dir }}/manifests/checkout"
    namespace: shop
  register: reconciled

- name: Reconcile one declared Service
  zerotouch.selfheal.workload_reconcile:
    manifests:
      - apiVersion: v1
        kind: Service
        metadata: {name: checkout, namespace: shop}
        spec:
          ports: [{name: http, port: 80, targetPort: 8080}]
"""

RETURN = r"""
msg:
  description: What was done, or would be done in check mode, or why nothing had to be.
  returned: always
  type: str
  sample: "reconciled 1 drifted field in 1 object: Service/checkout spec.ports[0].targetPort: 9090 -> 8080"
drift:
  description:
    - The fields that differed from their declared value (before the run).
    - A missing object is one entry with C(field) V((object)), C(declared) V(present) and C(live) V(absent).
  returned: always
  type: list
  elements: dict
  contains:
    object:
      description: C(<kind>/<name>) of the object.
      type: str
      sample: Service/checkout
    field:
      description: Path of the field in the live object.
      type: str
      sample: spec.ports[0].targetPort
    declared:
      description: The declared value.
      type: raw
      sample: 8080
    live:
      description: The live value (null when absent).
      type: raw
      sample: 9090
  sample:
    - {object: Service/checkout, field: "spec.ports[0].targetPort", declared: 8080, live: 9090}
objects:
  description: How many declared objects were compared.
  returned: always
  type: int
  sample: 2
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._argspec import RECONCILE_ONE_OF, reconcile_spec  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s.client import connect  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s.runner import run_reconcile  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._shell import run  # noqa: E402


def main() -> None:
    module = AnsibleModule(
        argument_spec=reconcile_spec(),
        required_one_of=RECONCILE_ONE_OF,
        mutually_exclusive=RECONCILE_ONE_OF,
        supports_check_mode=True,
    )
    run(module, lambda: run_reconcile(connect(module.params), module.params, module.check_mode, module._diff))


if __name__ == "__main__":
    main()
