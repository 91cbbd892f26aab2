"""dvc.yaml stays in step with the code and params.yaml: stage deps, params, outputs, plots."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
PACKAGE = "src"


def _module_file(module: str, root: Path = ROOT) -> Path:
    path = root.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _is_module(name: str, root: Path) -> bool:
    path = root.joinpath(*name.split("."))
    return path.is_dir() or path.with_suffix(".py").is_file()


def imported_modules(path: Path, package: str = PACKAGE, root: Path = ROOT) -> set[str]:
    """The project modules a file imports anywhere in it (top level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from src.pkg import x` imports src.pkg and, where x is a module, src.pkg.x
            submodules = [f"{node.module}.{alias.name}" for alias in node.names]
            names = [node.module, *(name for name in submodules if _is_module(name, root))]
        elif isinstance(node, ast.ImportFrom):
            raise AssertionError(f"{path}: use absolute imports (from {package}.x import ...)")
        else:
            continue
        found.update(name for name in names if name == package or name.startswith(f"{package}."))
    return found


def import_closure(module: str, root: Path = ROOT) -> set[str]:
    """Files of every project module that running `python -m <module>` imports, the package's
    __init__ files included, as paths relative to the repository."""
    seen: set[str] = set()
    pending = [module]
    while pending:
        name = pending.pop()
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__.py, a/b/__init__.py
            prefix = ".".join(parts[:depth])
            if prefix in seen:
                continue
            seen.add(prefix)
            pending.extend(imported_modules(_module_file(prefix, root), root=root) - seen)
    return {_module_file(name, root).relative_to(root).as_posix() for name in seen}


def _stages() -> dict[str, dict]:
    stages = {}
    for name, stage in DVC["stages"].items():
        stages[name] = stage["do"] if "foreach" in stage else stage  # matrix stages are flat
    return stages


def _stage_module(cmd: str) -> str:
    match = re.fullmatch(r"python -m ([\w.]+)( .*)?", cmd)
    assert match, f"stage command {cmd!r} is not `python -m <module> ...`: cannot compute its imports"
    return match.group(1)


@pytest.mark.parametrize("stage", list(_stages()))
def test_stage_deps_are_exactly_the_modules_it_imports(stage: str) -> None:
    spec = _stages()[stage]
    imported = import_closure(_stage_module(spec["cmd"]))
    declared = {dep for dep in spec["deps"] if dep.startswith(f"{PACKAGE}/")}
    missing, extra = sorted(imported - declared), sorted(declared - imported)
    assert not missing, f"stage {stage!r} imports {missing} but dvc.yaml does not list them as deps"
    assert not extra, (
        f"stage {stage!r} lists {extra} as deps but never imports them (they rerun it needlessly)"
    )


def test_the_closure_follows_imports_through_other_modules(tmp_path: Path) -> None:
    package = tmp_path / PACKAGE
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "stage.py").write_text("from src.helper import x\n")
    (package / "helper.py").write_text("def x():\n    from src import deep\n")
    (package / "sub").mkdir()
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "leaf.py").write_text("")
    (package / "deep.py").write_text("from src.sub import leaf\n")
    (package / "unused.py").write_text("")
    assert import_closure("src.stage", tmp_path) == {
        "src/__init__.py",
        "src/stage.py",
        "src/helper.py",
        "src/deep.py",
        "src/sub/__init__.py",
        "src/sub/leaf.py",
    }


def test_no_module_imports_by_name_at_run_time() -> None:
    """import_closure reads import statements; a dynamic import would hide a dependency."""
    for path in (ROOT / PACKAGE).rglob("*.py"):
        text = path.read_text()
        assert "importlib.import_module" not in text and "__import__(" not in text, path


def test_one_training_stage_per_model_and_seed_declaring_only_its_own_model() -> None:
    train = DVC["stages"]["train"]
    assert train["matrix"] == {"model": "${models}", "seed": "${seeds}"}
    assert train["cmd"] == "python -m src.stages.train ${item.model} --seed ${item.seed}"
    assert train["params"] == ["train", "models.${item.model}"]  # the seed is in the command
    run = "${item.model}-${item.seed}"
    assert set(train["outs"]) == {f"models/{run}.keras", f"reports/train/{run}"}
    assert all(not isinstance(out, dict) for out in train["outs"])  # cached: keeps the run-cache


def _outputs(stage: dict, kind: str) -> dict[str, dict]:
    return {
        next(iter(entry)) if isinstance(entry, dict) else entry: next(iter(entry.values()))
        if isinstance(entry, dict)
        else {}
        for entry in stage.get(kind, [])
    }


def test_only_the_scores_are_metrics_and_the_reports_are_tracked_in_git() -> None:
    compare = DVC["stages"]["compare"]
    assert compare["params"] == ["models", "seeds", "compare"]
    assert _outputs(compare, "metrics") == {"reports/metrics": {"cache": False}}
    outs = _outputs(compare, "outs")
    assert {"reports/curves.csv", "reports/predictions", "reports/figures"} <= set(outs)
    assert all(spec == {"cache": False} for spec in outs.values())
    prepare = DVC["stages"]["prepare"]
    assert "metrics" not in prepare  # dataset counts are facts, not scores to diff
    assert _outputs(prepare, "outs")["reports/data.json"] == {"cache": False}


def test_curves_are_plotted_as_a_mean_and_band_per_model() -> None:
    curves = [next(iter(entry.values())) for entry in DVC["plots"] if isinstance(entry, dict)]
    by_model = [spec for spec in curves if spec.get("template") == "by_model"]
    assert {next(iter(spec["y"].values())) for spec in by_model} == {
        f"{split}_{metric}" for split in ("train", "val") for metric in ("accuracy", "loss")
    }
    assert all(spec["x"] == "epoch" and list(spec["y"]) == ["reports/curves.csv"] for spec in by_model)
    template = json.loads((ROOT / ".dvc" / "plots" / "by_model.json").read_text())
    assert template["encoding"]["color"]["field"] == "model"  # both layers in the model's colour
    band, line = template["layer"]  # the spread over seeds, then the mean; revisions by dashes
    assert band["mark"]["type"] == "errorband" and band["mark"]["extent"] == "stdev"
    assert line["encoding"]["y"]["aggregate"] == "mean" and line["encoding"]["strokeDash"]["field"] == "rev"
