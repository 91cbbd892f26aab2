"""A pull-request report (`python -m src.evidence.report --ref main`, `make report`): the
workspace's results against a git ref, with a task-level verdict for every model whose scores
changed, Holm-corrected, and the metric, param and figure changes, in reports/pr_report.md.
Details: docs/internals.md#report.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from src.evidence import mermaid, verdicts
from src.evidence.stats import format_p
from src.evidence.tables import markdown_table, probability
from src.ground import commands, dvc_command, git
from src.ground import predictions as run_predictions
from src.ground.cli import StageError, run_stage
from src.ground.files import write_text
from src.ground.paths import (
    COMPARISON_CSV,
    CURVES,
    FIGURES,
    METRICS_DIR,
    PR_REPORT,
    PREDICTIONS_DIR,
    STATISTICS,
    split_run_name,
)

REPORT = PR_REPORT


def _run(*args: str) -> str:
    return commands.output(args)


def changed_figures(ref: str) -> list[Path]:
    """PNG files under reports/figures that differ from `ref` or are new."""
    changed = _run("git", "diff", "--name-only", ref, "--", str(FIGURES)).splitlines()
    untracked = _run("git", "ls-files", "--others", "--exclude-standard", "--", str(FIGURES)).splitlines()
    return sorted(
        Path(name) for name in {*changed, *untracked} if name.endswith(".png") and Path(name).exists()
    )


def _at(ref: str | None, path: Path) -> str | None:
    """A file's text at a git ref (None: the workspace), or None where it does not exist."""
    if ref is None:
        return path.read_text() if path.is_file() else None
    return git.show(ref, path)


def _listed(ref: str | None, directory: Path, suffix: str) -> list[str]:
    """Names (without suffix) of the files in a directory at a git ref or in the workspace."""
    if ref is None:
        names = [path.name for path in directory.glob(f"*{suffix}")]
    else:
        names = git.listed(ref, directory)
    return sorted(name.removesuffix(suffix) for name in names if name.endswith(suffix))


def _scores(ref: str | None, model_id: str) -> dict[str, float] | None:
    """A model's four scores at a git ref (None: the workspace), or None where it had none."""
    text = _at(ref, METRICS_DIR / f"{model_id}.json")
    return None if text is None else json.loads(text)


def _labels(ref: str | None, model_id: str) -> dict[int, tuple[np.ndarray, np.ndarray, str]]:
    """Per seed, the model's (true, predicted) test classes at `ref` (None: the workspace), with
    the file they came from."""
    runs = {}
    for name in _listed(ref, PREDICTIONS_DIR, ".csv"):
        run = split_run_name(name)
        if run is not None and run[0] == model_id:
            path = PREDICTIONS_DIR / f"{name}.csv"
            text = _at(ref, path)
            if text is not None:
                where = f"{path} at {ref}" if ref else f"{path} (workspace)"
                runs[run[1]] = (*run_predictions.parse(text, where), where)
    return runs


def _correct(before: dict, after: dict) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Which test images each run got right, once every file is checked to hold the same test
    images (count and labels) as the first; else one line naming the file."""
    files = [*before.values(), *after.values()]
    if not files:
        return {}, {}
    truth, first = files[0][0], files[0][2]
    for labels, _, where in files:
        if len(labels) == 0:
            raise StageError(f"{where} holds no test predictions: restore it or rerun `dvc repro compare`")
        if len(labels) != len(truth) or not np.array_equal(labels, truth):
            raise StageError(
                f"{where} is not of the same test images as {first} ({len(labels):,} against "
                f"{len(truth):,} images, or other labels): a truncated or foreign predictions file; "
                "restore it or rerun `dvc repro compare`"
            )
    return ({seed: y == p for seed, (y, p, _) in before.items()},
            {seed: y == p for seed, (y, p, _) in after.items()})  # fmt: skip


def seed_spread(ref: str | None, model_id: str) -> float | None:
    """The model's accuracy standard deviation over seeds in statistics.json at `ref` (None: the
    workspace), or None where that run had one seed."""
    text = _at(ref, STATISTICS)
    if text is None:
        return None
    model = json.loads(text).get("models", {}).get(model_id, {})
    return model.get("accuracy", {}).get("sd")


def model_verdicts(ref: str) -> tuple[list[dict[str, Any]], str]:
    """For every model whose scores differ from `ref`: the accuracy change and whether it is
    beyond the noise of retraining (`verdicts.judge`), the verdicts Holm-corrected together
    (`verdicts.family`); and the line that says what error rate they hold to."""
    rows: list[dict[str, Any]] = []
    judged: list[verdicts.Judgement] = []
    for model_id in _listed(None, METRICS_DIR, ".json"):
        old, new = (_scores(revision, model_id) for revision in (ref, None))
        if old is None and new is not None:
            added = f"– → {new['accuracy']:.4f}"
            rows.append({"model": model_id, "accuracy": added, "verdict": f"no scores at {ref}"})
            continue
        if old is None or new is None or old == new:
            continue
        before, after = _correct(_labels(ref, model_id), _labels(None, model_id))
        row: dict[str, Any] = {
            "model": model_id,
            "accuracy": f"{old['accuracy']:.4f} → {new['accuracy']:.4f}",
            "change": f"{100 * (new['accuracy'] - old['accuracy']):+.2f} pts",
        }
        if not before or not after:
            rows.append(row | {"verdict": "not tested: no predictions to compare"})
            continue
        if set(after) <= set(before) and all(np.array_equal(after[s], before[s]) for s in after):
            continue  # the same runs, fewer of them (a quick experiment with one seed): nothing changed
        spread = seed_spread(ref, model_id) or seed_spread(None, model_id)
        rows.append(row | {"judgement": len(judged)})
        # the same model on both sides: equal seeds share initial weights, data order and draws
        judged.append(verdicts.judge(after, before, spread_hint=spread, paired=True))
    corrected = verdicts.family(judged)
    for row in rows:
        if "judgement" in row:
            row.update(_verdict_columns(corrected[row.pop("judgement")]))
    return rows, verdicts.family_line(judged)


def _verdict_columns(judged: verdicts.Judgement) -> dict[str, str]:
    interval = judged.interval
    mcnemar = "–" if judged.mcnemar is None else f"{format_p(judged.mcnemar[0])} ({judged.mcnemar[1]})"
    return {
        "seeds (new, old)": f"{judged.seeds[0]}, {judged.seeds[1]}",
        "test": judged.test,
        "interval": "–"
        if interval is None
        else f"[{100 * interval[0]:+.2f}, {100 * interval[1]:+.2f}] pts ({100 * (1 - judged.alpha):.1f}%)",
        "P(new > old)": probability(judged.p_better, judged.seed_pairs),
        "verdict": judged.verdict(),
        "McNemar p (test set only)": mcnemar,
    }


def _check_ref(ref: str) -> None:
    found = commands.run(["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], check=False)
    if found.returncode == 0:
        return
    shallow = _run("git", "rev-parse", "--is-shallow-repository") == "true"
    hint = (
        "this clone is shallow: `git fetch --unshallow` (in CI, checkout with fetch-depth: 0)"
        if shallow
        else f"fetch it first (`git fetch origin {ref}`, then REF=origin/{ref}) or check the spelling"
    )
    raise StageError(f"no commit named {ref!r} in this repository: {hint}")


def _figures(ref: str, figures_at: str | None) -> list[str]:
    """The changed figures: embedded beside the report locally; on a pull-request page, where
    relative images resolve to nothing, named with the link to where they are (`figures_at`)."""
    figures = changed_figures(ref)
    if not figures:
        return ["_No figure changed._"]
    if figures_at:
        names = ", ".join(f"`{path.relative_to(REPORT.parent)}`" for path in sorted(figures))
        return [f"{names}: in {figures_at}"]
    return [f"### {path.stem}\n\n![{path.stem}]({path.relative_to(REPORT.parent)})" for path in figures]


def _charts() -> list[str]:
    """This branch's scores and curves as Mermaid charts, which GitHub draws in the comment."""
    if not COMPARISON_CSV.exists():
        return []
    charts = ["## Charts", mermaid.scores_chart(pd.read_csv(COMPARISON_CSV))]
    return charts + ([mermaid.curves_chart(pd.read_csv(CURVES))] if CURVES.exists() else [])


def build_report(ref: str, figures_at: str | None = None) -> str:
    _check_ref(ref)
    # the four scores per model only: timings vary run to run and data facts are not scores
    metrics = dvc_command.run(
        "metrics", "diff", ref, "--md", "--precision", "4", "--targets", str(METRICS_DIR)
    )
    params = dvc_command.run("params", "diff", ref, "--md")
    comparison = COMPARISON_CSV
    rows, family = model_verdicts(ref)
    sections = [
        f"# Results against `{ref}`",
        "## Beyond noise?",
        f"{pd.DataFrame(rows).to_markdown(index=False)}\n\n{family}"
        if rows
        else "_No model's scores changed._",
        "## Metrics (test set, per model)",
        metrics or "_No metric changed._",
        "## Parameters",
        params or "_No parameter changed._",
    ]
    if comparison.exists():
        sections += ["## Comparison in this branch", markdown_table(pd.read_csv(comparison))]
    sections += [*_charts(), "## Changed figures", *_figures(ref, figures_at)]
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
