#!/usr/bin/python
# Copyright: zerotouch.selfheal maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: workload_image
short_description: Set the image of a Deployment's container
description:
  - Sets the image of one container of a Deployment's pod template, as C(kubectl set image) does; the
    Deployment rolls it out under its update strategy.
  - The image replaced is recorded in the Deployment's annotation C(selfheal.zerotouch.io/previous-image) and
    returned as RV(previous_image), so the change can be undone.
  - A container that already runs the image changes nothing.
  - The remediation behind the decision engine's C(patch) action.
version_added: 0.1.0
author: zerotouch.selfheal maintainers (@zerotouch)
options:
  image:
    description:
      - The image to run, for example V(shop/checkout:1.42.1).
    type: str
    required: true
  container:
    description:
      - The container to update; the first container of the pod template when not set.
    type: str
extends_documentation_fragment:
  - zerotouch.selfheal.workload
  - zerotouch.selfheal.k8s_auth
  - zerotouch.selfheal.attributes
"""

EXAMPLES = r"""
- name: Roll out the patched checkout image
  zerotouch.selfheal.workload_image:
    namespace: shop
    name: checkout
    container: checkout
    image: shop/checkout:1.42.1
  register: patched

- name: Undo the patch
  zerotouch.selfheal.workload_image:
    namespace: shop
    name: checkout
    container: checkout
    image: "{{ patched.previous_image }}"
"""

RETURN = r"""
msg:
  description: What was done, or would be done in check mode, or why nothing had to be.
  returned: always
  type: str
  sample: updated container checkout of shop/checkout from shop/checkout:1.42 to shop/checkout:1.42.1
container:
  description: The container updated.
  returned: always
  type: str
  sample: checkout
image:
  description: The image set.
  returned: always
  type: str
  sample: shop/checkout:1.42.1
previous_image:
  description:
    - The image replaced by this run; when nothing changed, the one recorded by an earlier run (or null).
  returned: always
  type: str
  sample: shop/checkout:1.42
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._argspec import image_spec  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s.client import connect  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s.runner import run_image  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._shell import run  # noqa: E402


def main() -> None:
    module = AnsibleModule(argument_spec=image_spec(), supports_check_mode=True)
    run(module, lambda: run_image(connect(module.params), module.params, module.check_mode, module._diff))


if __name__ == "__main__":
    main()
