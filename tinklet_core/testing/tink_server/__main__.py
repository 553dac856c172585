"""``python -m tinklet_core.testing.tink_server``: the test Tink server from a shell."""

import sys

from tinklet_core.testing.tink_server.cli import main

sys.exit(main())
