#!/usr/bin/python
# Copyright: zerotouch.selfheal maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: journal_info
short_description: Query the self-healing journal
description:
  - Returns the decisions recorded by C(zerotouch.selfheal.intent_check), newest first, each with the actions
    run for it and their outcomes, or the incidents they belong to.
  - Read-only.
version_added: 0.1.0
author: zerotouch.selfheal maintainers (@zerotouch)
options:
  namespace:
    description: Only decisions about services in this namespace.
    type: str
  service:
    description: Only decisions about this service.
    type: str
  action:
    description: Only decisions that chose this action.
    type: str
  since:
    description: Only decisions made at or after this instant (ISO 8601 with a UTC offset).
    type: str
  until:
    description: Only decisions made at or before this instant (ISO 8601 with a UTC offset).
    type: str
  limit:
    description: At most this many decisions.
    type: int
    default: 100
  include_snapshot:
    description: Include each decision's full snapshot.
    type: bool
    default: false
extends_documentation_fragment:
  - zerotouch.selfheal.journal
attributes:
  check_mode:
    description: Read-only; runs the same in check mode.
    support: full
  diff_mode:
    description: Changes nothing, so there is nothing to diff.
    support: none
"""

EXAMPLES = r"""
- name: What did self-healing decide about checkout in the last day?
  zerotouch.selfheal.journal_info:
    namespace: shop
    service: checkout
    since: "2026-03-04T00:00:00Z"
  register: journal

- name: Show every rollback and its outcome
  ansible.builtin.debug:
    msg: "{{ journal.decisions | selectattr('action', 'equalto', 'rollback') | list }}"
"""

RETURN = r"""
decisions:
  description: Matching decisions, newest first.
  returned: always
  type: list
  elements: dict
  sample:
    - id: 12
      time: "2026-03-04T15:10:02Z"
      namespace: shop
      service: checkout
      action: rollback
      actions: [{"action": "rollback", "outcome": "recovered"}]
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._argspec import journal_info_spec  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.store import query_journal  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._shell import run  # noqa: E402


def main() -> None:
    module = AnsibleModule(argument_spec=journal_info_spec(), supports_check_mode=True)
    run(module, lambda: {"changed": False, "decisions": query_journal(module.params)})


if __name__ == "__main__":
    main()
