"""The newsdesk daemon entry point.

    python scheduler.py [--config newsdesk.toml] [--log-json]

is the same as `newsdesk [--config ...] daemon`: it builds the scheduler from the config and runs
it until SIGTERM or Ctrl-C.
"""

import sys

from newsdesk.cli import main

if __name__ == "__main__":
    # Options such as --config belong to the command group, so they go before "daemon".
    main([*sys.argv[1:], "daemon"], prog_name="scheduler.py")
