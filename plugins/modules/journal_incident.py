#!/usr/bin/python
# Copyright: zerotouch.selfheal maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: journal_incident
short_description: Close the journal's incident of an alert that resolved
description:
  - The journal groups the decisions about one alert into an incident, opened by the first decision on the
    firing alert (M(zerotouch.selfheal.intent_check)). This module closes it when the alert resolves, without
    looking at the cluster or acting, which is what the collection's rulebooks do with resolved alerts.
  - The closing is journaled as a decision of the engine on the resolved alert (action C(none), rule
    C(alert-resolved)), so the journal reads alert, decision, action, outcome, resolution.
  - Idempotent. When no incident of the alert is open (already closed, or never opened), nothing is recorded and
    nothing changed.
version_added: 0.1.0
author: zerotouch.selfheal maintainers (@zerotouch)
options:
  alert:
    description:
      - The resolved alert, one element of an Alertmanager webhook's C(alerts), or an event of the
        C(zerotouch.selfheal.alertmanager) or C(zerotouch.selfheal.intent_watch) event source.
      - Its C(status) must be C(resolved); its fingerprint identifies the incident. Its text is data, never a
        template.
    type: dict
    required: true
  namespace:
    description:
      - Namespace of the service, instead of the one the alert's labels name.
    type: str
  service:
    description:
      - The service, instead of the one the alert's labels name.
    type: str
extends_documentation_fragment:
  - zerotouch.selfheal.journal
attributes:
  check_mode:
    description: Can run in check mode; it then reports whether an incident would be closed and records nothing.
    support: full
  diff_mode:
    description: Returns the incident's status before and after.
    support: full
"""

EXAMPLES = r"""
- name: Close the incident of a resolved alert
  zerotouch.selfheal.journal_incident:
    alert: "{{ ansible_eda.event }}"
    journal: /var/lib/selfheal/journal.db

- name: Close the incident of an alert read from Alertmanager's API
  zerotouch.selfheal.journal_incident:
    alert:
      status: resolved
      fingerprint: 5f0e8e1c2b9a7d31
      labels: {alertname: HighLatency, namespace: shop, service: checkout}
"""

RETURN = r"""
incident_id:
  description: The incident closed (or that would be in check mode); null when none was open.
  returned: always
  type: int
  sample: 12
decision_id:
  description: The decision recorded for the resolution; null when nothing was recorded.
  returned: always
  type: int
  sample: 57
fingerprint:
  description: The alert's fingerprint, which identifies its incident.
  returned: always
  type: str
  sample: 5f0e8e1c2b9a7d31
decision:
  description: The engine's decision on the resolved alert.
  returned: always
  type: dict
  sample: {action: none, rule: alert-resolved, reasons: ["alert HighLatency is resolved: nothing to do"]}
msg:
  description: What was done.
  returned: always
  type: str
  sample: "closed incident 12 of shop/checkout: the alert resolved"
"""

from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.incident import (  # noqa: E402
    close,
    journal_incident_spec,
)
from ansible_collections.zerotouch.selfheal.plugins.module_utils._shell import run  # noqa: E402


def main() -> None:
    module = AnsibleModule(argument_spec=journal_incident_spec(), supports_check_mode=True)

    def work() -> dict[str, Any]:
        result = close(module.params, module.check_mode)
        if not module._diff:
            result.pop("diff", None)
        return result

    run(module, work)


if __name__ == "__main__":
    main()
