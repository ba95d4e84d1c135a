"""`python -m agent_tools` runs the command line."""

import sys

from agent_tools.cli import main

sys.exit(main())
