# Copyright: zerotouch.selfheal maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the remediation modules support: check mode and diff mode."""

from __future__ import annotations


class ModuleDocFragment:
    # Modules that change cluster objects: a plan is computed first, then applied unless in check mode.
    DOCUMENTATION = r"""
attributes:
  check_mode:
    description: Can run in check mode and return the changed status it predicts without modifying the cluster.
    support: full
  diff_mode:
    description: Returns the before and after values of the fields it changes when run with C(--diff).
    support: full
"""

    # Modules that send something (a notification) rather than change a state that could be diffed.
    NOTIFY = r"""
attributes:
  check_mode:
    description: Can run in check mode; it then builds the message and returns it without sending anything.
    support: full
  diff_mode:
    description: There is no state to compare; the message sent is returned as RV(payload) instead.
    support: none
"""
