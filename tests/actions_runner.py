"""A small stand-in for a GitHub Actions runner: runs a workflow's jobs from the workflow file.

The jobs run in an order their `needs` allow, a matrix job once per combination of its matrix
(expressions over `needs` outputs evaluated), each job's and step's `if:` as GitHub evaluates
it, and a run can be cancelled after any job.

Each job gets a fresh clone (what `actions/checkout` does), a PATH without the project's
environment but with a Python first on it (`actions/setup-python`), and its `run:` steps run in
order with the shell GitHub picks for each (`shell_command`), with $GITHUB_OUTPUT,
$GITHUB_ENV, $GITHUB_PATH and $GITHUB_STEP_SUMMARY honoured between steps. `${{ }}` expressions
cover GitHub's operators (`!`, `==`, `!=`, `&&`, `||`), contexts, `fromJSON` and the status
functions (`success()`, `failure()`, `cancelled()`, `always()`); an `if:` without a status
function gets GitHub's implicit `success() &&`. Artifacts go through a folder
(`upload-artifact` refuses a second artifact of one name unless `overwrite`); `gh` is a stand-in
that records what it was asked to post. After the checkout the project's environment is restored
in .venv, up to date, so that `make setup` has nothing to do; for the jobs named in `real_setup`
nothing is restored, and `make setup` builds the environment for real (with uv where setup-uv put
it on PATH, from the machine's uv cache or the package index).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.actions_expressions import Status, evaluate, runs, substitute

# `gh pr comment`'s flags (gh's manual, 2.x): the stand-in refuses any other, as gh does
GH_STAND_IN = """#!{python}
import shutil, sys
from pathlib import Path
args = sys.argv[1:]
takes_value = {{"-b", "--body", "-F", "--body-file", "-R", "--repo"}}
switches = {{"--create-if-none", "--delete-last", "--edit-last", "-e", "--editor", "-w", "--web", "--yes"}}
if args[:2] != ["pr", "comment"]:
    sys.exit(f"gh stand-in: only `gh pr comment` is expected, got {{args}}")
rest, positional, index = args[2:], [], 0
while index < len(rest):
    arg = rest[index]
    name = arg.split("=", 1)[0]
    if name in takes_value:
        index += 1 if "=" in arg else 2
    elif arg in switches:
        index += 1
    elif arg.startswith("-"):
        sys.exit(f"unknown flag: {{arg}}")
    else:
        positional.append(arg)
        index += 1
if len(positional) > 1:
    sys.exit(f"accepts at most 1 arg(s), received {{len(positional)}}")
posted = Path("{posted}")
posted.mkdir(parents=True, exist_ok=True)
(posted / "args").write_text("\\n".join(args) + "\\n")
if "--body-file" in args:
    shutil.copy(args[args.index("--body-file") + 1], posted / "body.md")
"""


@dataclass
class JobResult:
    result: str  # "success", "failure" or "skipped"
    outputs: dict[str, str] = field(default_factory=dict)
    log: str = ""


@dataclass
class _JobRun:
    """One job while it runs: its folder, environment, PATH additions, log and result so far."""

    name: str
    job: dict[str, Any]
    folder: Path
    contexts: dict[str, Any]
    leg_env: dict[str, str]
    files: dict[str, Path] = field(default_factory=dict)  # $GITHUB_OUTPUT, $GITHUB_ENV, ...
    env: dict[str, str] = field(default_factory=dict)
    path: list[str] = field(default_factory=list)  # setup actions' and $GITHUB_PATH's folders
    log: list[str] = field(default_factory=list)
    result: str = "success"


def _read_pairs(path: Path) -> dict[str, str]:
    """KEY=value lines and KEY<<DELIMITER blocks, as GitHub reads $GITHUB_OUTPUT and $GITHUB_ENV."""
    pairs, lines = {}, path.read_text().splitlines() if path.exists() else []
    index = 0
    while index < len(lines):
        line = lines[index]
        if "<<" in line and "=" not in line.split("<<")[0]:
            key, delimiter = line.split("<<", 1)
            end = lines.index(delimiter, index + 1)
            pairs[key] = "\n".join(lines[index + 1 : end])
            index = end + 1
            continue
        if "=" in line:
            key, value = line.split("=", 1)
            pairs[key] = value
        index += 1
    return pairs


class Runner:
    def __init__(
        self, workflow: Path, origin: Path, work: Path, venv_bin: Path, github: dict[str, Any]
    ) -> None:
        self.workflow = yaml.safe_load(workflow.read_text())
        self.origin, self.work, self.venv_bin, self.github = origin, work, venv_bin, github
        self.secrets: dict[str, str] = {}
        self.vars: dict[str, str] = {}
        self.artifacts = work / "artifacts"
        self.posted = work / "posted"
        self.tools = work / "tools"  # setup-python's Python
        self.preinstalled = work / "preinstalled"  # what every runner has: here, the gh stand-in
        for folder in (self.tools, self.preinstalled):
            folder.mkdir(parents=True, exist_ok=True)
        for name in ("python", "python3", "python3.11"):
            (self.tools / name).unlink(missing_ok=True)
            (self.tools / name).symlink_to(Path(sys.base_prefix) / "bin" / "python3")
        (self.preinstalled / "gh").write_text(GH_STAND_IN.format(posted=self.posted, python=sys.executable))
        (self.preinstalled / "gh").chmod(0o755)
        self.real_setup: set[str] = set()  # jobs whose checkout restores no environment
        self.runs = 0
        self.cancelled = False  # set when the run is cancelled (a newer push to the pull request)

    def _checkout(self, folder: Path, restore_environment: bool = True) -> None:
        """A clone at the run's commit; with `restore_environment`, the project's environment
        in .venv, up to date, so that `make setup` has nothing to do (a job in `real_setup`
        gets none, and its `make setup` builds one)."""
        subprocess.run(["git", "clone", "-q", str(self.origin), str(folder)], check=True)
        subprocess.run(["git", "-C", str(folder), "checkout", "-q", self.github["sha"]], check=True)
        if not restore_environment:
            return
        venv = folder / ".venv"
        (venv / "bin").mkdir(parents=True)
        real = self.venv_bin.parent
        shutil.copy(real / "pyvenv.cfg", venv / "pyvenv.cfg")
        (venv / "lib").symlink_to(real / "lib")
        for tool in self.venv_bin.iterdir():
            (venv / "bin" / tool.name).symlink_to(tool)
        for stamp in (".installed", ".installed-s3"):
            (venv / stamp).touch()

    def _upload(self, folder: Path, spec: dict[str, Any]) -> str:
        """upload-artifact's inputs name, path, overwrite and if-no-files-found; its warning, if any."""
        target = self.artifacts / spec["name"]
        if target.exists() and not spec.get("overwrite"):
            raise RuntimeError(f"an artifact named {spec['name']} exists (409 Conflict): set overwrite")
        shutil.rmtree(target, ignore_errors=True)
        paths = [folder / line.strip() for line in str(spec["path"]).splitlines() if line.strip()]
        base = Path(os.path.commonpath([str(p) if p.is_dir() else str(p.parent) for p in paths]))
        for path in paths:
            if path.is_dir():
                shutil.copytree(path, target / path.relative_to(base), dirs_exist_ok=True)
            elif path.exists():
                (target / path.relative_to(base)).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, target / path.relative_to(base))
        if not target.exists():  # if-no-files-found: warn (the default), error or ignore
            if spec.get("if-no-files-found", "warn") == "error":
                raise RuntimeError(f"no files found for artifact {spec['name']}")
            return (
                f"No files were found with the provided path: {spec['path']}. No artifacts will be uploaded."
            )
        return ""

    def _setup_python(self, inputs: dict[str, Any]) -> None:
        """The stand-in has one Python: a workflow asking for another is not what it can test."""
        wanted, here = (
            str(inputs.get("python-version", "")),
            f"{sys.version_info.major}.{sys.version_info.minor}",
        )
        if wanted and wanted != here:
            raise RuntimeError(f"setup-python asks for {wanted}; this stand-in provides {here}")

    def _setup_uv(self, inputs: dict[str, Any]) -> Path:
        """setup-uv puts the uv of its `version` input on PATH: here the project's own uv, so a
        workflow asking for another version fails. Its cache is the machine's uv cache."""
        uv = self.venv_bin / "uv"
        here = subprocess.run(
            [str(uv), "--version"], capture_output=True, text=True, check=True
        ).stdout.split()[1]
        wanted = str(inputs.get("version", ""))
        if wanted != here:
            raise RuntimeError(f"setup-uv asks for uv {wanted or '(latest)'}; this stand-in provides {here}")
        unknown = set(inputs) - {"version", "enable-cache", "cache-dependency-glob"}
        if unknown:
            raise RuntimeError(f"setup-uv inputs this stand-in does not emulate: {sorted(unknown)}")
        folder = self.work / "uv"
        folder.mkdir(exist_ok=True)
        (folder / "uv").unlink(missing_ok=True)
        (folder / "uv").symlink_to(uv)
        return folder

    def _download(self, folder: Path, spec: dict[str, Any]) -> None:
        if "name" in spec and not (self.artifacts / spec["name"]).is_dir():
            raise RuntimeError(f"Unable to download artifact(s): Artifact not found for name: {spec['name']}")
        pattern = re.compile(
            "^" + re.escape(spec.get("pattern", spec.get("name", ""))).replace(r"\*", ".*") + "$"
        )
        for artifact in sorted(self.artifacts.iterdir()) if self.artifacts.exists() else []:
            if pattern.match(artifact.name):
                into = (
                    folder / spec["path"]
                    if spec.get("merge-multiple") or "name" in spec
                    else folder / spec["path"] / artifact.name
                )
                shutil.copytree(artifact, into, dirs_exist_ok=True)

    def run_job(
        self,
        name: str,
        needs: dict[str, JobResult],
        matrix: dict[str, Any] | None = None,
        index: int = 0,
        leg_env: dict[str, str] | None = None,
        dry: bool = False,
    ) -> JobResult:
        """One job (one matrix leg); `dry`: only whether it would run ("skipped" if not)."""
        job = self.workflow["jobs"][name]
        contexts = {**self._contexts(needs), "matrix": matrix or {}, "strategy": {"job-index": index}}
        contexts["steps"] = {}
        status = Status(
            succeeded=all(result.result == "success" for result in needs.values()),
            failed=any(result.result == "failure" for result in needs.values()),
            cancelled=self.cancelled,
        )
        if not runs(str(job.get("if", "")), contexts, status):
            return JobResult("skipped")
        if dry:
            return JobResult("success")
        self.runs += 1
        run = _JobRun(name, job, self.work / f"{name}-{self.runs}", contexts, leg_env or {})
        run.folder.mkdir(parents=True)  # $GITHUB_WORKSPACE exists before any step, checkout or not
        run.files = {
            key: self.work / f"{name}-{self.runs}.{key.lower()}"
            for key in ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH", "GITHUB_STEP_SUMMARY")
        }
        run.env = self._job_env(run)
        for number, step in enumerate(job["steps"]):
            self._step(run, number, step)
        outputs = {
            key: str(substitute(str(value), contexts)) for key, value in job.get("outputs", {}).items()
        }
        return JobResult(run.result, outputs, "\n".join(run.log))

    def _job_env(self, run: _JobRun) -> dict[str, str]:
        """What a runner's job starts with: the runner's variables, then the workflow's and the
        job's `env:`, then a test's override."""
        env = {
            "PATH": f"{self.preinstalled}:/usr/local/bin:/usr/bin:/bin",
            "HOME": os.environ.get("HOME", "/root"),
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_REPOSITORY": self.github["repository"],
            "GITHUB_EVENT_NAME": self.github["event_name"],
            "GITHUB_EVENT_PATH": str(self.github["event_path"]),
            "GITHUB_RUN_ID": str(self.github["run_id"]),
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_WORKSPACE": str(run.folder),
            **{key: str(path) for key, path in run.files.items()},
            **_network_settings(),
        }
        for key, value in {**self.workflow.get("env", {}), **run.job.get("env", {})}.items():
            env[key] = str(substitute(str(value), run.contexts))
        return env | run.leg_env

    def _step(self, run: _JobRun, number: int, step: dict[str, Any]) -> None:
        """One step, if its `if:` holds; then its outputs, $GITHUB_ENV and $GITHUB_PATH."""
        status = Status(run.result == "success", run.result == "failure", self.cancelled)
        if not runs(str(step.get("if", "")), run.contexts, status):
            return
        # each step writes its outputs to a file of its own, as on GitHub
        run.files["GITHUB_OUTPUT"] = self.work / f"{run.name}-{self.runs}.step{number}.github_output"
        run.env["GITHUB_OUTPUT"] = str(run.files["GITHUB_OUTPUT"])
        try:
            if step.get("uses"):
                self._action(run, step)
            else:
                self._script(run, step)
        except (RuntimeError, subprocess.CalledProcessError) as err:
            run.log.append(f"FAILED: {err}")
            run.result = "success" if step.get("continue-on-error") else "failure"
        if "id" in step:
            run.contexts["steps"][step["id"]] = {"outputs": _read_pairs(run.files["GITHUB_OUTPUT"])}
        run.env.update(_read_pairs(run.files["GITHUB_ENV"]))
        if run.files["GITHUB_PATH"].exists():
            run.path = [*reversed(run.files["GITHUB_PATH"].read_text().split()), *run.path]
            run.files["GITHUB_PATH"].unlink()

    def _action(self, run: _JobRun, step: dict[str, Any]) -> None:
        """The actions the workflows use, emulated with the inputs they are given."""
        uses, inputs = step["uses"], dict(step.get("with") or {})
        if uses.startswith("actions/checkout"):
            self._checkout(run.folder, restore_environment=run.name not in self.real_setup)
        elif uses.startswith("actions/setup-python"):
            self._setup_python(inputs)
            run.path.insert(0, str(self.tools))
        elif uses.startswith("astral-sh/setup-uv"):
            run.path.insert(0, str(self._setup_uv(inputs)))
        elif uses.startswith("actions/upload-artifact"):
            spec = {k: substitute(str(v), run.contexts) for k, v in inputs.items()}
            warning = self._upload(run.folder, spec | {"overwrite": inputs.get("overwrite", False)})
            run.log.append(f"::warning::{warning}" if warning else "")
        elif uses.startswith("actions/download-artifact"):
            spec = {
                k: (v if isinstance(v, bool) else substitute(str(v), run.contexts)) for k, v in inputs.items()
            }
            self._download(run.folder, spec)
        else:
            raise RuntimeError(f"this stand-in does not emulate {uses}")

    def _script(self, run: _JobRun, step: dict[str, Any]) -> None:
        """A `run:` step in the shell GitHub picks for it, with the step's `env:`."""
        step_env = {
            **run.env,
            **{k: str(substitute(str(v), run.contexts)) for k, v in step.get("env", {}).items()},
        }
        step_env.update(run.leg_env)  # a test's override beats the workflow's env
        step_env["PATH"] = ":".join([*run.path, run.env["PATH"]])
        script = self.work / "step.sh"
        script.write_text(substitute(step["run"], run.contexts))
        done = subprocess.run(
            shell_command(self._shell(run.job, step), script),
            cwd=run.folder,
            env=step_env,
            capture_output=True,
            text=True,
        )
        run.log.append(done.stdout + done.stderr)
        if done.returncode != 0:
            raise RuntimeError(f"step {step.get('name', step['run'][:40])!r} exited {done.returncode}")

    def _shell(self, job: dict[str, Any], step: dict[str, Any]) -> str | None:
        """The step's `shell:`, else the job's or the workflow's `defaults.run.shell`."""
        for source in (
            step,
            (job.get("defaults") or {}).get("run") or {},
            (self.workflow.get("defaults") or {}).get("run") or {},
        ):
            if "shell" in source:
                return str(source["shell"])
        return None

    def _contexts(self, needs: dict[str, JobResult]) -> dict[str, Any]:
        return {
            "github": self.github,
            "secrets": self.secrets,
            "vars": self.vars,
            "needs": {
                need: {"result": result.result, "outputs": result.outputs} for need, result in needs.items()
            },
        }

    def _order(self) -> list[str]:
        """The workflow's jobs in an order their `needs` allow (GitHub's graph, run one at a time)."""
        jobs, done = self.workflow["jobs"], list[str]()
        while len(done) < len(jobs):
            ready = [n for n, job in jobs.items() if n not in done and set(_needs(job)) <= set(done)]
            if not ready:
                raise RuntimeError(f"the jobs' needs form a cycle: {sorted(set(jobs) - set(done))}")
            done.append(ready[0])
        return done

    def _matrix(self, name: str, needs: dict[str, JobResult]) -> list[dict[str, Any]] | None:
        """The job's matrix combinations (values may be expressions over `needs`); None without one."""
        spec = (self.workflow["jobs"][name].get("strategy") or {}).get("matrix")
        if spec is None:
            return None
        axes: dict[str, list[Any]] = {}
        for key, value in spec.items():
            text = str(value).strip()
            if text.startswith("${{") and text.endswith("}}"):
                value = evaluate(text[3:-2].strip(), self._contexts(needs))
            axes[key] = list(value)
        combinations: list[dict[str, Any]] = [{}]
        for key, values in axes.items():
            combinations = [{**done, key: value} for done in combinations for value in values]
        return combinations if all(axes.values()) else []

    def run_workflow(
        self, leg_env: dict[int, dict[str, str]] | None = None, cancel_after: str | None = None
    ) -> dict[str, Any]:
        """Every job of the workflow, in the order of its `needs`; a matrix job once per
        combination (its result: failure if any leg failed, skipped if all were). `cancel_after`
        cancels the run once that job ends, as a newer push does. Results by job name; the
        matrix job's legs under "legs"."""
        results: dict[str, Any] = {"legs": []}
        for name in self._order():
            needs = {need: results[need] for need in _needs(self.workflow["jobs"][name])}
            combinations = self._matrix(name, needs)
            if combinations is None:
                results[name] = self.run_job(name, needs)
            else:
                legs = [
                    self.run_job(name, needs, combination, index, (leg_env or {}).get(index))
                    for index, combination in enumerate(combinations)
                ] or [self._empty_matrix(name, needs)]
                results["legs"] = legs
                results[name] = JobResult(
                    "failure"
                    if any(leg.result == "failure" for leg in legs)
                    else "skipped"
                    if all(leg.result == "skipped" for leg in legs)
                    else "success"
                )
            if name == cancel_after:
                self.cancelled = True
        return results

    def _empty_matrix(self, name: str, needs: dict[str, JobResult]) -> JobResult:
        """A job whose matrix came out empty: skipped where its `if:` is false, else failed, as
        GitHub fails it ("Matrix vector ... does not contain any values")."""
        skipped = self.run_job(name, needs, dry=True)
        return skipped if skipped.result == "skipped" else JobResult("failure", log="empty matrix")


def _network_settings() -> dict[str, str]:
    """This machine's proxies and certificate authorities, which a runner on it would have too:
    without them an install behind a TLS-inspecting proxy fails."""
    names = re.compile(
        r"(?i)^(https?_proxy|no_proxy|all_proxy|ssl_cert_file|ssl_cert_dir|requests_ca_bundle)$"
    )
    return {key: value for key, value in os.environ.items() if names.match(key)}


def shell_command(shell: str | None, script: Path) -> list[str]:
    """How a Linux runner runs a `run:` script: no `shell:` is `bash -e {0}` (no pipefail);
    `shell: bash` adds --noprofile --norc and pipefail; sh and python as GitHub documents them;
    any other is a template with {0}."""
    known = {
        None: "bash -e {0}",
        "bash": "bash --noprofile --norc -eo pipefail {0}",
        "sh": "sh -e {0}",
        "python": "python {0}",
    }
    return known.get(shell, shell or "").replace("{0}", str(script)).split()


def _needs(job: dict[str, Any]) -> list[str]:
    needs = job.get("needs", [])
    return [needs] if isinstance(needs, str) else list(needs)
