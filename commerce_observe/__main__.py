"""``python -m commerce_observe`` is the ``commerce-observe`` command."""

import sys

from commerce_observe.monitor.cli import main

sys.exit(main())
