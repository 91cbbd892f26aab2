"""A pull-request report: the workspace's results against a git ref, in Markdown.

    python -m src.report --ref main        (or: make report REF=main)

Writes `reports/pr_report.md` and prints it: the per-model metric changes
(`dvc metrics diff --md`), the parameter changes (`dvc params diff --md`), the current
comparison table, and the figures that changed, the way a reviewer reads them. The CML
workflow posts it as a pull-request comment.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import pandas as pd

from src.cli import StageError, run_stage
from src.compare import markdown_table
from src.files import write_text

REPORT = Path("reports/pr_report.md")
FIGURES = Path("reports/figures")
METRICS = "reports/metrics"  # the four scores per model; timings and data facts are not metrics


def _run(*args: str) -> str:
    result = subprocess.run(args, capture_output=True, text=True)
    if result.returncode != 0:
        raise StageError(f"`{' '.join(args)}` failed: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout.strip()


def changed_figures(ref: str) -> list[Path]:
    """PNG files under reports/figures that differ from `ref` or are new."""
    changed = _run("git", "diff", "--name-only", ref, "--", str(FIGURES)).splitlines()
    untracked = _run("git", "ls-files", "--others", "--exclude-standard", "--", str(FIGURES)).splitlines()
    return sorted(
        Path(name) for name in {*changed, *untracked} if name.endswith(".png") and Path(name).exists()
    )


def build_report(ref: str) -> str:
    _run("git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    # scores and dataset facts; training times vary run to run and would only add noise here
    metrics = _run("dvc", "metrics", "diff", ref, "--md", "--precision", "4", "--targets", METRICS)
    params = _run("dvc", "params", "diff", ref, "--md")
    comparison = Path("reports/comparison.csv")
    sections = [
        f"# Results against `{ref}`",
        "## Metrics (test set, per model)",
        metrics or "_No metric changed._",
        "## Parameters",
        params or "_No parameter changed._",
    ]
    if comparison.exists():
        sections += ["## Comparison in this branch", markdown_table(pd.read_csv(comparison))]
    figures = changed_figures(ref)
    sections.append("## Changed figures")
    if figures:
        # paths relative to the report, so the images show beside it and CML uploads them
        sections += [
            f"### {path.stem}\n\n![{path.stem}]({path.relative_to(REPORT.parent)})" for path in figures
        ]
    else:
        sections.append("_No figure changed._")
    return "\n\n".join(sections) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", default="main", help="git ref to compare the workspace against")
    args = parser.parse_args()
    text = build_report(args.ref)
    write_text(REPORT, text)
    print(text, end="")


if __name__ == "__main__":
    run_stage(main)
