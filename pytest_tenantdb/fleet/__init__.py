"""Tenant fleets: templates, fake data, cloning, migrating, reporting."""
