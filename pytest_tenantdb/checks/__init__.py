"""Built-in property checks of a migration set, offered as pytest items (``--tenantdb-checks``)."""
