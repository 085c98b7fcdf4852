"""Daily range partitions of `spans` on `start_ns` (UTC days). Retention drops whole partitions, never DELETEs.

Spans outside every daily partition (an imported old trace, a day missed while nothing ran) land in
`spans_default`; when a daily partition is created for a range the default already holds rows for, those rows are
moved into the new partition first, so creation never fails.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

NS_PER_SECOND = 1_000_000_000
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def day_start_ns(day: dt.date) -> int:
    return int((dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC) - EPOCH).total_seconds()) * NS_PER_SECOND


def partition_name(day: dt.date) -> str:
    return f"spans_{day:%Y%m%d}"


def partitions_existing(cursor: Any) -> list[str]:
    cursor.execute(
        """
        SELECT c.relname FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
        WHERE p.relname = 'spans' AND c.relname ~ '^spans_[0-9]{8}$' ORDER BY c.relname
        """
    )
    return [row[0] for row in cursor.fetchall()]


def partition_create(cursor: Any, day: dt.date) -> bool:
    """Create the partition for `day` if missing. Return True when it was created."""
    name = partition_name(day)
    if name in partitions_existing(cursor):
        return False
    low, high = day_start_ns(day), day_start_ns(day + dt.timedelta(days=1))
    cursor.execute("SELECT EXISTS (SELECT 1 FROM spans_default WHERE start_ns >= %s AND start_ns < %s)", [low, high])
    if cursor.fetchone()[0]:
        # Attaching would fail on rows already in the default partition: move them in first.
        cursor.execute(f"CREATE TABLE {name} (LIKE spans INCLUDING DEFAULTS)")
        cursor.execute(
            f"WITH moved AS (DELETE FROM spans_default WHERE start_ns >= %s AND start_ns < %s RETURNING *) "
            f"INSERT INTO {name} SELECT * FROM moved",
            [low, high],
        )
        cursor.execute(f"ALTER TABLE spans ATTACH PARTITION {name} FOR VALUES FROM ({low}) TO ({high})")
    else:
        cursor.execute(f"CREATE TABLE {name} PARTITION OF spans FOR VALUES FROM ({low}) TO ({high})")
    return True


def partitions_drop_before(cursor: Any, cutoff_day: dt.date) -> list[str]:
    """Drop daily partitions entirely before `cutoff_day`, and delete default-partition rows before it."""
    dropped = []
    for name in partitions_existing(cursor):
        day = dt.datetime.strptime(name[len("spans_") :], "%Y%m%d").date()
        if day < cutoff_day:
            cursor.execute(f"DROP TABLE {name}")
            dropped.append(name)
    cursor.execute("DELETE FROM spans_default WHERE start_ns < %s", [day_start_ns(cutoff_day)])
    return dropped
