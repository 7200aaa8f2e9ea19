"""The journal's stored times read back: the fast path gives exactly what parsing and formatting would."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.store import _stamp, _unstamp
from ansible_collections.zerotouch.selfheal.plugins.module_utils._schema import format_datetime


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 3, 4, 15, 10, tzinfo=UTC),
        datetime(2026, 3, 4, 15, 10, 0, 1, tzinfo=UTC),
        datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 1, 1, 0, 0, 0, 500000, tzinfo=UTC),
    ],
)
def test_a_stored_time_reads_back_as_the_collection_formats_it(moment: datetime) -> None:
    assert _unstamp(_stamp(moment)) == format_datetime(moment)


def test_a_time_in_another_shape_is_parsed() -> None:
    assert _unstamp(None) is None
    with pytest.raises(ValueError):
        _unstamp("2026-03-04 15:10:00")
