# Copyright: zerotouch.selfheal maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Deployment a remediation acts on (mirrors ``_argspec.workload_spec``)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  namespace:
    description:
      - Namespace of the workload.
    type: str
    required: true
  name:
    description:
      - Name of the workload's Deployment; by convention also the name of the service it runs.
    type: str
    required: true
"""
