"""The backward-compatibility checker: rules over each migration step and over old app queries.

Each step is linted against the schema just before it (never a whole history at once). For
SQLite both schemas are introspected while the history is walked in one database; for postgres
they are built from the DDL (``ddl.py``). Either way they are the same
:class:`~pytest_tenantdb.schema.Schema` and :class:`~pytest_tenantdb.schema.SchemaDiff` the fleet
and the property checks use.
"""
