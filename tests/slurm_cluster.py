"""A one-machine SLURM cluster for the tests: munged, slurmctld and slurmd on this host.

Debian's `slurm-wlm` and `munge` packages (`.ci/run` installs them); the daemons run as root
(munged as munge), their config, state and munge socket live in a temporary folder (SLURM_CONF
points the commands at it), and they listen on this host only. Configured as real clusters are
where it matters: finished jobs are forgotten after MinJobAge (5 s here, 300 by default), no
accounting, a requeued job waits `cred_expire` before it starts again (10 s here, 120 by
default: the wait is kept, shorter). `start` waits until the node is idle; `stop` ends the
processes this cluster started, by their pids, and no other: another cluster on the same host
is left alone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
REQUIRE = "CIFAR_STUDY_REQUIRE_SLURM"  # set by .ci/run: a missing SLURM fails there instead of skipping


def missing() -> str | None:
    """Why no cluster can be started here, or None."""
    absent = [
        name
        for name in (*DAEMONS, "sbatch", "squeue")
        if shutil.which(name, path=f"/usr/sbin:{os.environ['PATH']}") is None
    ]
    if absent:
        return f"SLURM is not installed ({', '.join(absent)} not found): apt-get install slurm-wlm munge"
    if os.geteuid() != 0:
        return "starting slurmctld and slurmd for the tests needs root"
    return None


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


class Cluster:
    def __init__(self, folder: Path, cpus: int = 2, min_job_age: int = 5) -> None:
        self.folder = folder
        self.host = socket.gethostname()
        self.conf = folder / "slurm.conf"
        # munged (as user munge) must reach its folder: not under a root-only temporary folder
        self.munge = Path(tempfile.mkdtemp(prefix="study-munge-", dir="/tmp"))
        self.processes: list[subprocess.Popen] = []
        self.ports = _free_ports(2)
        controller, node = self.ports
        for sub in ("state", "spool", "log"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        self.conf.write_text(
            f"ClusterName=study\nSlurmctldHost={self.host}\nSlurmctldPort={controller}\nSlurmdPort={node}\n"
            "SlurmUser=root\nSlurmdUser=root\nAuthType=auth/munge\nProctrackType=proctrack/linuxproc\n"
            f"AuthInfo=socket={self.munge / 'munge.socket'},cred_expire=10\n"
            "TaskPlugin=task/none\nSelectType=select/cons_tres\nSelectTypeParameters=CR_Core\n"
            f"SchedulerType=sched/backfill\nMpiDefault=none\nReturnToService=2\nMinJobAge={min_job_age}\n"
            f"StateSaveLocation={folder / 'state'}\nSlurmdSpoolDir={folder / 'spool'}\n"
            f"SlurmctldPidFile={folder / 'slurmctld.pid'}\nSlurmdPidFile={folder / 'slurmd.pid'}\n"
            f"SlurmctldLogFile={folder / 'log/slurmctld.log'}\nSlurmdLogFile={folder / 'log/slurmd.log'}\n"
            "AccountingStorageType=accounting_storage/none\nJobAcctGatherType=jobacct_gather/none\n"
            f"NodeName={self.host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=4000 State=UNKNOWN\n"
            f"PartitionName=debug Nodes={self.host} Default=YES MaxTime=INFINITE State=UP\n"
        )
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    def _refuse_taken(self) -> None:
        for port in self.ports:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    raise RuntimeError(f"port {port} is taken on this host: another SLURM? not starting")
        if (self.munge / "munge.socket").exists():
            raise RuntimeError(f"{self.munge / 'munge.socket'} exists: a munged runs there; not starting")

    def start(self, timeout: float = 60) -> None:
        self._refuse_taken()
        shutil.chown(self.munge, "munge", "munge")
        self.munge.chmod(0o700)
        self.processes.append(
            subprocess.Popen(
                ["runuser", "-u", "munge", "--", "/usr/sbin/munged", "--foreground", "--force",
                 f"--socket={self.munge / 'munge.socket'}", f"--pid-file={self.munge / 'munged.pid'}",
                 f"--log-file={self.munge / 'munged.log'}", f"--seed-file={self.munge / 'munged.seed'}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not (self.munge / "munge.socket").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        for daemon in ("slurmctld", "slurmd"):
            self.processes.append(
                subprocess.Popen([f"/usr/sbin/{daemon}", "-D", "-f", str(self.conf)], env=self.env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )  # fmt: skip
        while time.monotonic() < deadline:
            state = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, env=self.env)
            if state.returncode == 0 and state.stdout.strip() in ("idle", "mix", "alloc"):
                return
            time.sleep(0.5)
        self.stop()
        logs = "".join(path.read_text()[-1500:] for path in sorted((self.folder / "log").glob("*.log")))
        raise RuntimeError(f"the SLURM node did not come up within {timeout:.0f} s:\n{logs}")

    def _job_steps(self) -> list[int]:
        """slurmstepd processes of this cluster's jobs: their environment names its slurm.conf."""
        mine = f"SLURM_CONF={self.conf}".encode()
        pids = []
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                if (proc / "comm").read_text().strip() == "slurmstepd" and mine in (
                    proc / "environ"
                ).read_bytes():
                    pids.append(int(proc.name))
            except OSError:
                continue
        return pids

    def stop(self, timeout: float = 20) -> None:
        """End what this cluster started (daemons, then job steps left behind), by pid."""
        slurm_daemons = self.processes[1:]
        for process in slurm_daemons:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in slurm_daemons:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for pid in self._job_steps():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        munge_pid = self.munge / "munged.pid"
        if munge_pid.is_file():  # runuser's child, the daemon itself
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(munge_pid.read_text().strip()), signal.SIGTERM)
        for process in self.processes[:1]:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
        shutil.rmtree(self.munge, ignore_errors=True)
