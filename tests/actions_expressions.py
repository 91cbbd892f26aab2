"""GitHub's expression syntax as the workflow stand-in (tests/actions_runner.py) evaluates it:
contexts, `fromJSON`, `==`, `!=`, `!`, `&&`, `||`, and the status functions with GitHub's implicit
`success() &&` in an `if:` that names none.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

STATUS_FUNCTIONS = ("always()", "success()", "failure()", "cancelled()")


def _context(name: str, contexts: dict[str, Any]) -> Any:
    value: Any = contexts
    for part in name.split("."):
        value = value.get(part, "") if isinstance(value, dict) else ""
    return value


@dataclass(frozen=True)
class Status:
    """What GitHub's status functions see: the needs' (or earlier steps') results, and whether
    the run was cancelled."""

    succeeded: bool = True
    failed: bool = False
    cancelled: bool = False

    def functions(self) -> dict[str, Any]:
        return {
            "always": lambda: True,
            "success": lambda: self.succeeded and not self.cancelled,
            "failure": lambda: self.failed,
            "cancelled": lambda: self.cancelled,
        }


def evaluate(expression: str, contexts: dict[str, Any], status: Status | None = None) -> Any:
    """One `${{ }}` expression (without the braces): contexts, `fromJSON`, `==`, `!=`, `!`, `&&`,
    `||`, parentheses, and the status functions."""
    python = expression.replace("&&", " and ").replace("||", " or ")
    python = re.sub(r"!(?!=)", " not ", python)
    python = re.sub(
        r"(?<!['\w.])([a-z_]+(?:\.[A-Za-z_][\w-]*)+)",
        lambda match: f"_c({match.group(1)!r})",
        python,
    )
    names = {"_c": lambda name: _context(name, contexts), "fromJSON": json.loads}
    return eval(python, {**names, **(status or Status()).functions()})


def runs(condition: str, contexts: dict[str, Any], status: Status) -> bool:
    """Whether a job or step with this `if:` runs: without a status function GitHub puts
    `success() &&` in front of it."""
    text = condition.strip()
    if text.startswith("${{") and text.endswith("}}"):
        text = text[3:-2].strip()
    if not text:
        text = "success()"
    elif not any(function in text for function in STATUS_FUNCTIONS):
        text = f"success() && ({text})"
    return bool(evaluate(text, contexts, status))


def substitute(text: str, contexts: dict[str, Any]) -> str:
    return re.sub(r"\$\{\{(.+?)\}\}", lambda match: str(evaluate(match.group(1).strip(), contexts)), text)
