# Copyright: zerotouch.selfheal maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Judge a recorded snapshot, or as of another instant (mirrors ``_argspec.replay_spec``)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  snapshot:
    description:
      - Replay this snapshot instead of gathering - a path to a YAML or JSON file, or the snapshot as a mapping.
      - Its C(expect) block, if any, is never read.
    type: raw
  now:
    description:
      - Judge as of this instant (ISO 8601 with a UTC offset) instead of the current time.
    type: str
"""
