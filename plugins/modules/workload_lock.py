#!/usr/bin/python
# Copyright: zerotouch.selfheal maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: workload_lock
short_description: Take or give back the remediation lock of a workload
description:
  - Serialises remediations of one workload with a C(coordination.k8s.io/v1) Lease named C(selfheal-<name>) in
    the workload's namespace. The Lease records the holder, when it was taken and for how long
    (O(ttl_seconds)).
  - With O(state=acquired), a free lock is taken. A lock held by another holder that has not expired is not a
    failure; the module returns RV(acquired=false) and RV(held_by), so the caller can record that it skipped
    the remediation because the target is locked by that holder. A lock whose holder did not renew it in time
    (renew time plus TTL in the past) is taken over.
  - Two runs racing for the same lock are told apart by the API server (the write carries the resourceVersion
    read); the loser gets RV(acquired=false) and the winner's name.
  - Idempotent; taking a lock already held by O(holder) changes nothing and does not extend it.
  - With O(state=released), gives the lock back if O(holder) has it; someone else's lock is left alone.
version_added: 0.1.0
author: zerotouch.selfheal maintainers (@zerotouch)
options:
  state:
    description:
      - V(acquired) takes the lock; V(released) gives it back.
    type: str
    choices: [acquired, released]
    default: acquired
  holder:
    description:
      - Who takes or gives back the lock, for example the run's id; shown to the others as RV(held_by).
    type: str
    required: true
  ttl_seconds:
    description:
      - How long the lock holds without renewal; after that another holder may take it over.
    type: int
    default: 900
extends_documentation_fragment:
  - zerotouch.selfheal.workload
  - zerotouch.selfheal.k8s_auth
  - zerotouch.selfheal.attributes
"""

EXAMPLES = r"""
- name: Lock checkout for this remediation
  zerotouch.selfheal.workload_lock:
    namespace: shop
    name: checkout
    holder: "remediate-{{ alert.fingerprint }}"
    ttl_seconds: 600
  register: lock

- name: Skip when someone else is remediating checkout
  ansible.builtin.meta: end_play
  when: not lock.acquired

- name: Give the lock back
  zerotouch.selfheal.workload_lock:
    namespace: shop
    name: checkout
    holder: "remediate-{{ alert.fingerprint }}"
    state: released
"""

RETURN = r"""
msg:
  description: What was done, or would be done in check mode, or why nothing had to be.
  returned: always
  type: str
  sample: "shop/checkout is locked by remediate-a1b2c3 until 2026-03-02T14:15:00.000000Z"
lease:
  description: Name of the Lease.
  returned: always
  type: str
  sample: selfheal-checkout
acquired:
  description: Whether O(holder) holds the lock after the run (always false with O(state=released)).
  returned: always
  type: bool
  sample: false
held_by:
  description: Who holds the lock after the run; null when nobody does.
  returned: always
  type: str
  sample: remediate-a1b2c3
expires_at:
  description: When the current holding expires (RFC 3339, UTC); null when nobody holds the lock.
  returned: always
  type: str
  sample: "2026-03-02T14:15:00.000000Z"
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._argspec import lock_spec  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s.client import connect  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s.runner import run_lock  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._shell import run  # noqa: E402


def main() -> None:
    module = AnsibleModule(argument_spec=lock_spec(), supports_check_mode=True)
    run(module, lambda: run_lock(connect(module.params), module.params, module.check_mode, module._diff))


if __name__ == "__main__":
    main()
