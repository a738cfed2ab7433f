"""``python -m pytest_tenantdb``: the same as the ``tenantdb`` command."""

import sys

from pytest_tenantdb.cli import main

sys.exit(main())
