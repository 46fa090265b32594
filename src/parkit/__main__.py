"""``python -m parkit info [--json]``: see :mod:`parkit._info`."""

import sys

from ._info import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
