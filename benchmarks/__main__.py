"""`python -m benchmarks <name> [flags]`: run one benchmark (`--help` after the name lists its flags).
Flags without a name are the speed benchmark's: `python -m benchmarks --levers`."""

from __future__ import annotations

import os
import sys

from benchmarks import accuracy, prepare, queue, scaling, speed, task, verdicts

BENCHMARKS = {
    "speed": speed.main,
    "accuracy": accuracy.main,
    "prepare": prepare.main,
    "verdicts": verdicts.main,
    "scaling": scaling.main,
    "queue": queue.main,
    "task": task.main,
}


def main(argv: list[str]) -> None:
    if argv and argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv = ["speed", *argv]
    if not argv or argv[0] not in BENCHMARKS:
        names = ", ".join(BENCHMARKS)
        print(f"usage: python -m benchmarks {{{names}}} [flags]\n\n{sys.modules['benchmarks'].__doc__}")
        sys.exit(0 if argv[:1] in (["-h"], ["--help"]) else 2)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    BENCHMARKS[argv[0]](argv[1:])


if __name__ == "__main__":
    main(sys.argv[1:])
