"""The backward-compatibility checker: rules over each migration step and over old app queries.

Each step is linted against the schema just before it (never a whole history at once), with
both schemas introspected from the cached templates: the same :class:`~pytest_tenantdb.schema.Schema`
and :class:`~pytest_tenantdb.schema.SchemaDiff` the fleet and the property checks use.
"""
