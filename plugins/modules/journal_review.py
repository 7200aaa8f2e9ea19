#!/usr/bin/python
# Copyright: zerotouch.selfheal maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: journal_review
short_description: Write the post-incident review of a period from the self-healing journal
description:
  - Reads the journal and reviews each service over a period - its incidents with the time to action and the
    time to recovery, the actions taken and their success rate, escalations and approval requests, the time
    spent in breach, its indicators against its objectives - and suggests what to change, each suggestion
    naming the journal records it is drawn from.
  - The time to recovery comes from the effectiveness records that M(zerotouch.selfheal.intent_verify) writes
    when the verification of an action ends (given its C(action_id)), else from the alert resolving.
  - O(format=html) is one self-contained page (inline CSS and SVG plots, nothing fetched from a network);
    O(format=markdown) has the same tables without the plots. Journal text is escaped in both.
  - Reads the journal only; writes O(output) when its content changes.
version_added: 0.1.0
author: zerotouch.selfheal maintainers (@zerotouch)
requirements:
  - pygal (for O(format=html))
options:
  since:
    description:
      - The start of the period, a duration before O(until) (V(7d), V(24h), V(30m), V(2w)) or an ISO 8601 time
        with a UTC offset.
    type: str
    default: 7d
  until:
    description:
      - The end of the period (a duration before now, or an ISO 8601 time with a UTC offset); now when not set.
    type: str
    aliases: [end]
  namespace:
    description: Only services in this namespace.
    type: str
  service:
    description: Only this service.
    type: str
  output:
    description:
      - The file to write the review to. Without it the review is returned in RV(review).
    type: path
  format:
    description:
      - V(html) or V(markdown). Defaults to what the extension of O(output) says (C(.html), C(.htm), C(.md),
        C(.markdown)), else V(html).
    type: str
    choices: [html, markdown]
  limit:
    description: At most this many decisions are read, the newest first; the review says when it was cut short.
    type: int
    default: 10000
extends_documentation_fragment:
  - zerotouch.selfheal.journal
attributes:
  check_mode:
    description: Reads the same; reports whether O(output) would change and does not write it.
    support: full
  diff_mode:
    description: The review is a whole new document; no diff is returned.
    support: none
"""

EXAMPLES = r"""
- name: Write last week's review as a page
  zerotouch.selfheal.journal_review:
    since: 7d
    output: /var/lib/selfheal/review.html

- name: Review checkout's last day in Markdown
  zerotouch.selfheal.journal_review:
    namespace: shop
    service: checkout
    since: 24h
    format: markdown
  register: review

- name: Show the suggestions
  ansible.builtin.debug:
    msg: "{{ review.suggestions | map(attribute='text') | list }}"
"""

RETURN = r"""
msg:
  description: What was written, or would be.
  returned: always
  type: str
  sample: "wrote the html review of 2 service(s) to review.html"
format:
  description: The format rendered.
  returned: always
  type: str
  sample: html
since:
  description: The start of the period reviewed.
  returned: always
  type: str
  sample: "2026-02-25T15:10:00Z"
until:
  description: The end of the period reviewed.
  returned: always
  type: str
  sample: "2026-03-04T15:10:00Z"
output:
  description: The file written.
  returned: when O(output) is set
  type: str
  sample: review.html
review:
  description: The rendered review.
  returned: when O(output) is not set
  type: str
services:
  description: Each service reviewed, in figures.
  returned: always
  type: list
  elements: dict
  sample:
    - namespace: shop
      service: checkout
      incidents: 3
      breach_seconds: 1260.0
      median_time_to_action_seconds: 42.0
      median_time_to_recovery_seconds: 310.5
      escalations: 1
      approvals: 0
      actions: [{"action": "restart", "attempts": 3, "recovered": 0, "success_rate": 0.0}]
suggestions:
  description: What to change, each with the journal records it is drawn from.
  returned: always
  type: list
  elements: dict
  sample:
    - rule: ineffective-action
      service: shop/checkout
      text: "restart did not recover shop/checkout's KubePodCrashLooping in 3 of 3 attempts in the last 7 days:
        find the cause, or remove restart from its recovery"
      evidence: ["action 4", "action 9", "action 13"]
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._argspec import journal_review_spec  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.review_run import run as review  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._shell import run  # noqa: E402


def main() -> None:
    module = AnsibleModule(argument_spec=journal_review_spec(), supports_check_mode=True)
    run(module, lambda: review(module.params, module.check_mode))


if __name__ == "__main__":
    main()
