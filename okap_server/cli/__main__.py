"""``python -m okap_server.cli``: the same as the ``okap-server`` command."""

import sys

from okap_server.cli import main

sys.exit(main())
