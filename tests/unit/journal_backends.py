"""Where a test's journal lives (an SQLite file or a PostgreSQL database), and a side door to its tables."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from typing import Any


@dataclass
class JournalBackend:
    """Where a test's journal lives, and a side door to its tables that does not go through the Journal."""

    kind: str  # sqlite | postgresql
    target: str  # the journal option: a path or a postgresql:// URL

    def execute(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self.kind == "sqlite":
            with sqlite3.connect(self.target) as conn:
                return list(conn.execute(sql, args).fetchall())
        import psycopg

        with psycopg.connect(self.target, autocommit=True) as conn:
            cursor = conn.execute(sql.replace("?", "%s"), args)
            return list(cursor.fetchall()) if cursor.description else []

    def count(self, table: str) -> int:
        return int(self.execute(f"SELECT COUNT(*) FROM {table}")[0][0])

    def created(self) -> bool:
        """Has anything been written (the file, or the journal's tables in the database)?"""
        if self.kind == "sqlite":
            return os.path.exists(self.target)
        return bool(self.execute("SELECT to_regclass('decisions') IS NOT NULL")[0][0])
