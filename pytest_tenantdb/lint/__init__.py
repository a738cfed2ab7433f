"""The backward-compatibility checker: rules over each migration step and over old app queries.

Each step is linted against the schema just before it (never a whole history at once). For
SQLite each step runs on a scratch database of what it touches and the result is introspected
(``walker.py``); for postgres schemas are built from the DDL (``ddl.py``). Either way they are the same
:class:`~pytest_tenantdb.schema.Schema` and :class:`~pytest_tenantdb.schema.SchemaDiff` the fleet
and the property checks use.
"""
