"""Speed targets of pytest-tenantdb, measured as ratios against a baseline in the same process."""
