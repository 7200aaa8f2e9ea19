# Copyright: zerotouch.selfheal maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The journal's location (mirrors ``_argspec.journal_spec``)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  journal:
    description:
      - Path to the SQLite journal. Defaults to C($XDG_STATE_HOME/zerotouch-selfheal/journal.db)
        (C(~/.local/state/zerotouch-selfheal/journal.db)).
    type: path
"""
