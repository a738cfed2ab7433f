"""Schema-aware fake tenant data.

Faker is slow per value (tens of microseconds) and a fleet needs millions of values, so the
seeder asks Faker for a small *pool* per kind of value (emails, names, timestamps...) once, then
builds rows by drawing from the pools with a seeded ``random.Random`` and making values unique
where the schema demands it. Rows are written in foreign-key order; child rows pick parent keys
that were really inserted.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import sqlite3
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pytest_tenantdb.errors import ConfigError, SeedingError
from pytest_tenantdb.schema import Column, ColumnCheck, ForeignKey, Schema, Table

if TYPE_CHECKING:
    from faker import Faker

#: A user's own generator for a column: called with a seeded Faker and the row number.
ColumnGenerator = Callable[["Faker", int], object]

#: Rows per table for each size class (each seeded template varies it by +-50 %).
SIZE_ROWS: dict[str, int] = {"empty": 0, "small": 10, "medium": 50, "large": 250}

SEEDER_VERSION = "1"
POOL_SIZE = 64
# Fixed bounds, not "now": the same seed must give the same data on any day.
_EPOCH = datetime(2020, 1, 1)
_END = datetime(2026, 1, 1)
NULL_RATE = 0.1

_KINDS: list[tuple[tuple[str, ...], str]] = [
    (("email",), "email"),
    (("first_name", "firstname", "given_name"), "first_name"),
    (("last_name", "lastname", "surname", "family_name"), "last_name"),
    (("username", "user_name", "login", "handle"), "user_name"),
    (("display_name", "full_name", "fullname", "author", "owner_name"), "name"),
    (("company", "organisation", "organization"), "company"),
    (("title", "subject", "headline"), "title"),
    (("body", "content", "description", "text", "comment", "note", "summary", "bio"), "paragraph"),
    (("url", "website", "link", "homepage"), "url"),
    (("phone", "mobile"), "phone_number"),
    (("country",), "country_code"),
    (("city",), "city"),
    (("address", "street"), "address"),
    (("color", "colour"), "color_name"),
    (("slug",), "slug"),
    (("ip", "ip_address"), "ipv4"),
    (("password", "hash", "token", "secret", "digest", "checksum"), "sha256"),
    (("currency",), "currency_code"),
    (("locale", "language", "lang"), "locale"),
    (("timezone", "tz"), "timezone"),
    (("name",), "name"),
]
_FAKER_CALLS: dict[str, Callable[[Any], object]] = {
    "email": lambda f: f.email(),
    "first_name": lambda f: f.first_name(),
    "last_name": lambda f: f.last_name(),
    "user_name": lambda f: f.user_name(),
    "name": lambda f: f.name(),
    "company": lambda f: f.company(),
    "title": lambda f: f.sentence(nb_words=4).rstrip("."),
    "paragraph": lambda f: f.paragraph(nb_sentences=3),
    "url": lambda f: f.url(),
    "phone_number": lambda f: f.phone_number(),
    "country_code": lambda f: f.country_code(),
    "city": lambda f: f.city(),
    "address": lambda f: f.address(),
    "color_name": lambda f: f.color_name(),
    "slug": lambda f: f.slug(),
    "ipv4": lambda f: f.ipv4(),
    "sha256": lambda f: f.sha256(),
    "currency_code": lambda f: f.currency_code(),
    "locale": lambda f: f.locale(),
    "timezone": lambda f: f.timezone(),
    "word": lambda f: f.word(),
    "datetime": lambda f: f.date_time_between(_EPOCH, _END).isoformat(sep=" ", timespec="seconds"),
    "date": lambda f: f.date_between(_EPOCH.date(), _END.date()).isoformat(),
    "json": lambda f: json.dumps(f.pydict(3, value_types=[str, int])),
}


def _words(name: str) -> set[str]:
    return set(name.lower().split("_")) | {name.lower()}


def value_kind(column: Column) -> str:
    """What kind of value a column holds, guessed from its name, then its declared type."""
    name = column.name.lower()
    declared = column.type.upper()
    words = _words(name)
    if name.endswith("_at") or name.endswith("_on") or "TIMESTAMP" in declared or "DATETIME" in declared:
        return "datetime"
    if declared == "DATE" or name.endswith("_date") or name in {"date", "birthday", "dob"}:
        return "date"
    if "uuid" in words or "guid" in words or declared == "UUID":
        return "uuid"
    if "json" in words or name in {"metadata", "settings", "payload", "data", "extra"} or "JSON" in declared:
        return "json"
    if name.startswith(("is_", "has_", "can_")) or declared in {"BOOLEAN", "BOOL"}:
        return "bool"
    if words & {"amount", "price", "total", "cost", "balance", "salary", "fee"}:
        return "money"
    if words & {
        "count",
        "qty",
        "quantity",
        "position",
        "priority",
        "rank",
        "score",
        "age",
        "level",
    }:
        return "small_int"
    if "INT" in declared:
        return "int"
    if any(t in declared for t in ("REAL", "FLOA", "DOUB", "NUMERIC", "DECIMAL")):
        return "real"
    if "BLOB" in declared:
        return "blob"
    for names, kind in _KINDS:
        if any(n in words for n in names):
            return kind
    return "word"


class Seeder:
    """Fills the tables of a schema with fake rows, deterministically for a seed.

    ``generators`` overrides any column: keys are ``"table.column"`` or ``"column"`` (any table),
    values are ``fn(faker, row_number) -> value``.
    """

    def __init__(self, seed: int = 0, generators: Mapping[str, ColumnGenerator] | None = None) -> None:
        self.seed = seed
        self.generators = dict(generators or {})
        # names this seeder's templates: unlike id(), never reused by a later seeder
        self.token = uuid.uuid4().hex
        for key, fn in self.generators.items():
            if not callable(fn):
                raise ConfigError(f"generator for {key!r} must be callable as fn(faker, row), got {fn!r}")
        self._faker: Faker | None = None
        self._pools: dict[str, list[object]] = {}
        self._rows: dict[str, list[tuple[object, ...]]] = {}

    @property
    def faker(self) -> Faker:
        """A Faker seeded with the seeder's seed (one instance per process, it is slow to make)."""
        if self._faker is None:
            self._faker = _shared_faker()
            self._faker.seed_instance(self.seed)
        return self._faker

    def pool(self, kind: str) -> list[object]:
        """A pool of Faker values of ``kind``, made once per seeder.

        Faker is reseeded per kind, so a pool does not depend on which pools were made before.
        """
        if kind not in self._pools:
            make = _FAKER_CALLS[kind]
            faker = _shared_faker()
            faker.seed_instance(f"{self.seed}:{kind}")
            self._pools[kind] = [make(faker) for _ in range(POOL_SIZE)]
        return self._pools[kind]

    def fill(self, conn: sqlite3.Connection, schema: Schema, rows: int, variant: int = 0) -> dict[str, int]:
        """Insert about ``rows`` rows per table (varied +-50 %); return the rows each table got."""
        keys: dict[tuple[str, tuple[str | None, ...]], list[tuple[object, ...]]] = {}
        counts: dict[str, int] = {}
        lineage: dict[str, str] = {}
        conn.execute("BEGIN")
        try:
            for name in schema.insert_order():
                table = schema.tables[name]
                # A table's rows depend only on its definition and its parents' rows, so a table
                # unchanged between versions gets the same rows without generating them again.
                parents = "|".join(lineage.get(fk.ref_table.lower(), "") for fk in table.foreign_keys)
                key = hashlib.sha1(f"{self.seed}|{variant}|{rows}|{table.sql}|{parents}".encode()).hexdigest()
                lineage[name.lower()] = key
                if key not in self._rows:
                    rng = random.Random(key)
                    wanted = 0 if rows == 0 else max(1, round(rows * rng.uniform(0.5, 1.5)))
                    self._rows[key] = self._make_rows(schema, table, wanted, rng, keys)
                counts[name] = self._insert(conn, schema, table, self._rows[key], keys)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            raise SeedingError(
                f"seeding failed: {exc}; override the offending column with generators={{'table.column': fn}}"
            ) from exc
        return counts

    def _make_rows(
        self,
        schema: Schema,
        table: Table,
        wanted: int,
        rng: random.Random,
        keys: dict[tuple[str, tuple[str | None, ...]], list[tuple[object, ...]]],
    ) -> list[tuple[object, ...]]:
        columns = [c for c in table.columns if not c.hidden]
        if not columns or wanted == 0:
            return []
        checks = table.column_checks()
        unique_cols = {s[0].lower() for s in table.unique_sets if len(s) == 1}
        fk_of = {fk.columns[0].lower(): fk for fk in table.foreign_keys if len(fk.columns) == 1}
        own_keys: list[object] = []
        producers = [
            self._producer(table, c, checks.get(c.name.lower()), unique_cols, fk_of, schema, keys, own_keys)
            for c in columns
        ]
        pk = table.primary_key
        pk_index = next((n for n, c in enumerate(columns) if pk and c.name == pk[0]), None)
        rows: list[tuple[object, ...]] = []
        for i in range(wanted):
            row = [produce(rng, i) for produce in producers]
            if _SKIP in row:
                continue
            rows.append(tuple(row))
            own_keys.append(row[pk_index] if pk_index is not None else len(rows))
        return rows

    def _insert(
        self,
        conn: sqlite3.Connection,
        schema: Schema,
        table: Table,
        rows: list[tuple[object, ...]],
        keys: dict[tuple[str, tuple[str | None, ...]], list[tuple[object, ...]]],
    ) -> int:
        """Insert ``rows``; remember the keys child tables will reference."""
        if not rows:
            return 0
        columns = [c for c in table.columns if not c.hidden]
        names = ", ".join(f'"{c.name}"' for c in columns)
        marks = ", ".join("?" for _ in columns)
        quoted = table.name.replace('"', '""')
        before = conn.total_changes
        conn.executemany(f'INSERT OR IGNORE INTO "{quoted}" ({names}) VALUES ({marks})', rows)
        inserted = conn.total_changes - before
        for other in schema.tables.values():
            for fk in other.foreign_keys:
                if fk.ref_table.lower() == table.name.lower():
                    ref = (
                        fk.ref_columns
                        if fk.ref_columns[0] is not None
                        else tuple(table.primary_key) or ("rowid",)
                    )
                    cols = ", ".join(f'"{c}"' for c in ref)
                    keys[(table.name.lower(), fk.ref_columns)] = conn.execute(
                        f'SELECT {cols} FROM "{quoted}"'
                    ).fetchall()
        return inserted

    def _producer(
        self,
        table: Table,
        column: Column,
        check: ColumnCheck | None,
        unique_cols: set[str],
        fk_of: dict[str, ForeignKey],
        schema: Schema,
        keys: dict[tuple[str, tuple[str | None, ...]], list[tuple[object, ...]]],
        own_keys: list[object],
    ) -> Callable[[random.Random, int], object]:
        """How to make this column's value for row ``i``: decided once per table, not per value."""
        lower = column.name.lower()
        if lower == (table.rowid_alias or "").lower():
            return lambda rng, i: i + 1
        if lower in fk_of:
            fk = fk_of[lower]
            return lambda rng, i: self._reference(fk, table, column, schema, keys, own_keys, rng)
        make = self._maker(table, column, check, lower in unique_cols)
        if column.notnull or column.pk or lower in unique_cols:
            return make
        return lambda rng, i: None if rng.random() < NULL_RATE else make(rng, i)

    def _reference(
        self,
        fk: ForeignKey,
        table: Table,
        column: Column,
        schema: Schema,
        keys: dict[tuple[str, tuple[str | None, ...]], list[tuple[object, ...]]],
        own_keys: list[object],
        rng: random.Random,
    ) -> object:
        if fk.ref_table.lower() == table.name.lower():
            if not column.notnull and (not own_keys or rng.random() < 0.5):
                return None
            return rng.choice(own_keys) if own_keys else _SKIP
        parents = keys.get((fk.ref_table.lower(), fk.ref_columns), [])
        if not parents or (not column.notnull and rng.random() < NULL_RATE):
            return None if not column.notnull else _SKIP
        return rng.choice(parents)[0]

    def _user_maker(self, fn: ColumnGenerator) -> Callable[[random.Random, int], object]:
        return lambda _rng, i: fn(self.faker, i)

    def _maker(
        self, table: Table, column: Column, check: ColumnCheck | None, unique: bool
    ) -> Callable[[random.Random, int], object]:
        for key in (f"{table.name}.{column.name}".lower(), column.name.lower()):
            for name, fn in self.generators.items():
                if name.lower() == key:
                    return self._user_maker(fn)
        if check is not None and check.choices:
            choices = list(check.choices)
            return lambda rng, i: rng.choice(choices)
        kind = value_kind(column)
        base = self._base_maker(kind, check)
        if not unique:
            return base
        return _uniquify(base, kind)

    def _base_maker(self, kind: str, check: ColumnCheck | None) -> Callable[[random.Random, int], object]:
        low = check.low if check and check.low is not None else None
        high = check.high if check and check.high is not None else None
        if kind in {"int", "small_int", "bool", "money", "real"}:
            default_low, default_high = {
                "int": (0, 100_000),
                "small_int": (0, 10),
                "bool": (0, 1),
                "money": (0, 10_000),
                "real": (0, 1_000),
            }[kind]
            lo = default_low if low is None else low
            hi = default_high if high is None else high
            if hi < lo:
                hi = lo
            if kind in {"money", "real"}:
                return lambda rng, i: round(rng.uniform(lo, hi), 2)
            ilo, ihi = math.ceil(lo), math.floor(hi)
            return lambda rng, i: rng.randint(ilo, max(ilo, ihi))
        if kind == "uuid":
            return lambda rng, i: str(uuid.UUID(int=rng.getrandbits(128), version=4))
        if kind == "blob":
            return lambda rng, i: rng.randbytes(rng.randint(0, 32))
        pool = self.pool(kind)
        max_length = check.max_length if check else None
        if max_length is not None:
            return lambda rng, i: str(rng.choice(pool))[:max_length]
        return lambda rng, i: rng.choice(pool)


_FAKER: list[Faker] = []


def _shared_faker() -> Faker:
    if not _FAKER:
        from faker import Faker

        _FAKER.append(Faker())
    return _FAKER[0]


class _Skip:
    """Marks a row that cannot be made (e.g. a NOT NULL reference to an empty table)."""


_SKIP = _Skip()


def _uniquify(
    base: Callable[[random.Random, int], object], kind: str
) -> Callable[[random.Random, int], object]:
    """Wrap ``base`` so row ``i`` never repeats a value of an earlier row."""

    def make(rng: random.Random, i: int) -> object:
        value = base(rng, i)
        if kind == "uuid":
            return value
        if isinstance(value, bool | int):
            return i
        if isinstance(value, float):
            return float(i)
        if isinstance(value, bytes):
            return value + i.to_bytes(4, "big")
        text = str(value)
        if kind == "email" and "@" in text:
            local, _, domain = text.partition("@")
            return f"{local}.{i}@{domain}"
        return f"{text}-{i}"

    return make
