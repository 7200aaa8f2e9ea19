# Copyright: zerotouch.selfheal maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The journal's location (mirrors ``_argspec.journal_spec``)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  journal:
    description:
      - Where the journal is. A path is an SQLite file; it defaults to
        C($XDG_STATE_HOME/zerotouch-selfheal/journal.db) (C(~/.local/state/zerotouch-selfheal/journal.db)).
      - A C(postgresql://) URL is a PostgreSQL database, for a loop that runs on more than one machine, for
        example C(postgresql://selfheal@db.example.com:5432/selfheal) or C(postgresql:///selfheal?service=journal).
        It needs the Python library C(psycopg) (3) on the controller. A URL that contains a password is refused;
        libpq reads the password from E(PGPASSWORD), a password file (E(PGPASSFILE), C(~/.pgpass)) or a service
        file (E(PGSERVICEFILE)).
      - Both hold the same tables; the schema is created or upgraded when the journal is opened.
    type: path
"""
