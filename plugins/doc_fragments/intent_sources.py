# Copyright: zerotouch.selfheal maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where intents, policy and metrics come from (mirrors ``_argspec.intent_sources_spec``)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  intents:
    description:
      - The declared intents. Either a path to a YAML file (one intent, a list, or a mapping with an
        C(intents) list) or to a directory of such files, or the intents themselves as a list (for example
        from inventory or group vars).
      - Every intent is validated; an invalid one fails with the file, the path to the field and the problem.
    type: raw
  policy:
    description:
      - The guardrails. A path to a YAML policy file, or the policy itself as a mapping.
      - Absent keys take the documented defaults; C(overrides) per namespace or service apply on top.
    type: raw
  prometheus_url:
    description:
      - Base URL of the Prometheus HTTP API, for example V(http://prometheus:9090).
      - Without it every indicator is unknown, and the decision engine escalates rather than act blind.
    type: str
"""
