#!/usr/bin/python
# Copyright: zerotouch.selfheal maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: workload_restart
short_description: Restart a Deployment's pods, all of them or only the failing ones
description:
  - Without O(pods) and O(only_failing), performs a rollout restart as C(kubectl rollout restart) does; it sets
    the pod template annotation C(kubectl.kubernetes.io/restartedAt) to the current time, so the Deployment rolls
    out a new ReplicaSet and replaces every pod under its update strategy.
  - A restart is an imperative action. To make it idempotent, pass O(restart_id), a token naming this
    remediation (for example the alert fingerprint). It is recorded in the pod template as the annotation
    C(selfheal.zerotouch.io/restart-id), and a run whose O(restart_id) is already recorded changes nothing.
    Without O(restart_id), every run restarts the Deployment and reports a change.
  - With O(pods) or O(only_failing), deletes only some pods instead and lets the ReplicaSet replace them. Pods
    already gone or being deleted are skipped, so a second run changes nothing.
  - The remediation behind the decision engine's C(restart) action.
version_added: 0.1.0
author: zerotouch.selfheal maintainers (@zerotouch)
options:
  pods:
    description:
      - Delete these pods (by name) instead of restarting the whole Deployment.
      - Every pod named must be selected by the Deployment; pods that no longer exist are skipped.
    type: list
    elements: str
  only_failing:
    description:
      - Delete only the Deployment's failing pods; with O(pods), only those of the named pods that fail.
      - A pod fails when its phase is C(Failed), a container is waiting or terminated with a reason such as
        C(CrashLoopBackOff), C(ImagePullBackOff), C(ErrImagePull), C(CreateContainerConfigError) or C(OOMKilled),
        or it is C(Running) but not ready. Pending pods are left alone.
    type: bool
    default: false
  restart_id:
    description:
      - Token of this restart, recorded in the pod template; a run with a token already recorded is a no-op.
      - Only for rollout restarts; ignored with O(pods) or O(only_failing).
    type: str
extends_documentation_fragment:
  - zerotouch.selfheal.workload
  - zerotouch.selfheal.k8s_auth
  - zerotouch.selfheal.attributes
"""

EXAMPLES = r"""
- name: Restart checkout once for this alert
  zerotouch.selfheal.workload_restart:
    namespace: shop
    name: checkout
    restart_id: "{{ alert.fingerprint }}"

- name: Replace only the crash-looping pods of checkout
  zerotouch.selfheal.workload_restart:
    namespace: shop
    name: checkout
    only_failing: true

- name: Delete one pod
  zerotouch.selfheal.workload_restart:
    namespace: shop
    name: checkout
    pods: [checkout-7f9c6d5b8-abcde]
"""

RETURN = r"""
msg:
  description: What was done, or would be done in check mode, or why nothing had to be.
  returned: always
  type: str
  sample: restarted shop/checkout (rollout restart at 2026-03-02T14:05:00Z, restart_id a1b2c3)
restarted_at:
  description: The C(restartedAt) stamp of the pod template after the run; null when it never was restarted.
  returned: always
  type: str
  sample: "2026-03-02T14:05:00Z"
restart_id:
  description: The O(restart_id) of a rollout restart.
  returned: always
  type: str
  sample: a1b2c3
deleted_pods:
  description: The pods deleted (or that would be, in check mode); empty for a rollout restart.
  returned: always
  type: list
  elements: str
  sample: [checkout-7f9c6d5b8-abcde]
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._argspec import restart_spec  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s.client import connect  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s.runner import run_restart  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._shell import run  # noqa: E402


def main() -> None:
    module = AnsibleModule(argument_spec=restart_spec(), supports_check_mode=True)
    run(module, lambda: run_restart(connect(module.params), module.params, module.check_mode, module._diff))


if __name__ == "__main__":
    main()
