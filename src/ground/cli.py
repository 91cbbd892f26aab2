"""What every stage's command line shares: one clear error line instead of a traceback."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable


class StageError(Exception):
    """A problem the user can fix (bad params, bad or missing data): reported without traceback."""


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage's main function; report StageErrors as `error: ...` and exit with status 1."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        main()
    except StageError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted: this command's outputs were not written; run it again", file=sys.stderr)
        sys.exit(130)
