#!/usr/bin/python
# Copyright: zerotouch.selfheal maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: tenant_limit
short_description: Rate-limit one tenant of a service
description:
  - Caps the requests per second the service O(namespace)/O(name) accepts from one tenant, by writing the
    ConfigMap the service reads its tenant limits from. It is named C(<name>-tenant-limits) unless
    O(configmap) says otherwise; its C(data) maps each tenant to its limit in requests per second, as a string
    (for example V(50) for the tenant C(acme)). The ConfigMap is created when missing.
  - With O(ttl_minutes), the limit's expiry is recorded as the annotation
    C(selfheal.zerotouch.io/expires-<tenant>) (ISO 8601, UTC). The service does not lift the limit by itself;
    a later run with O(state=absent) and no O(tenant) removes every expired limit.
  - Idempotent; a limit already in force with the same rate changes nothing, and its expiry is not pushed
    back. A limit whose expiry has passed is renewed.
  - With O(state=absent), removes O(tenant)'s limit, or every expired limit when O(tenant) is not set.
  - The remediation behind the decision engine's C(isolate_tenant) action.
version_added: 0.1.0
author: zerotouch.selfheal maintainers (@zerotouch)
options:
  tenant:
    description:
      - The tenant, as the service labels its requests. Required with O(state=present).
    type: str
  requests_per_second:
    description:
      - The most requests per second the service accepts from O(tenant); V(0) blocks it. Required with
        O(state=present).
    type: float
  ttl_minutes:
    description:
      - How long the limit is meant to last, in minutes; recorded as its expiry. No expiry when not set.
    type: int
  configmap:
    description:
      - Name of the ConfigMap holding the limits; C(<name>-tenant-limits) when not set.
    type: str
  state:
    description:
      - V(present) sets the limit; V(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - zerotouch.selfheal.workload
  - zerotouch.selfheal.k8s_auth
  - zerotouch.selfheal.attributes
"""

EXAMPLES = r"""
- name: Limit the noisy tenant acme to 50 requests/s for an hour
  zerotouch.selfheal.tenant_limit:
    namespace: shop
    name: checkout
    tenant: acme
    requests_per_second: 50
    ttl_minutes: 60

- name: Lift acme's limit
  zerotouch.selfheal.tenant_limit:
    namespace: shop
    name: checkout
    tenant: acme
    state: absent

- name: Remove every expired limit of checkout
  zerotouch.selfheal.tenant_limit:
    namespace: shop
    name: checkout
    state: absent
"""

RETURN = r"""
msg:
  description: What was done, or would be done in check mode, or why nothing had to be.
  returned: always
  type: str
  sample: >-
    limited tenant acme of shop/checkout to 50 requests/s until 2026-03-02T15:05:00Z
    (ConfigMap checkout-tenant-limits)
configmap:
  description: The ConfigMap holding the limits.
  returned: always
  type: str
  sample: checkout-tenant-limits
tenant:
  description: The tenant.
  returned: always
  type: str
  sample: acme
requests_per_second:
  description: The limit, as written in the ConfigMap.
  returned: with O(state=present)
  type: str
  sample: "50"
expires_at:
  description: When the limit expires (ISO 8601); null without O(ttl_minutes).
  returned: with O(state=present)
  type: str
  sample: "2026-03-02T15:05:00Z"
removed:
  description: The tenants whose limit was removed (or would be, in check mode).
  returned: with O(state=absent)
  type: list
  elements: str
  sample: [acme]
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._argspec import (  # noqa: E402
    TENANT_LIMIT_REQUIRED_IF,
    tenant_limit_spec,
)
from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s.client import connect  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s.runner import run_tenant_limit  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._shell import run  # noqa: E402


def main() -> None:
    module = AnsibleModule(
        argument_spec=tenant_limit_spec(), required_if=TENANT_LIMIT_REQUIRED_IF, supports_check_mode=True
    )
    run(module, lambda: run_tenant_limit(connect(module.params), module.params, module.check_mode, module._diff))


if __name__ == "__main__":
    main()
