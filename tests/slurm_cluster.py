"""A one-machine SLURM cluster for the tests: munged, slurmctld and slurmd on this host.

Debian's `slurm-wlm` and `munge` packages (`.ci/run` installs them); the daemons run as root,
their config and state live in a temporary folder (SLURM_CONF points the commands at it), and
they listen on this host only. `start` waits until the node is idle; `stop` ends every daemon.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
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
    def __init__(self, folder: Path, cpus: int = 2) -> None:
        self.folder = folder
        self.host = socket.gethostname()
        self.conf = folder / "slurm.conf"
        self.processes: list[subprocess.Popen] = []
        controller, node = _free_ports(2)
        for sub in ("state", "spool", "log"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        self.conf.write_text(
            f"ClusterName=study\nSlurmctldHost={self.host}\nSlurmctldPort={controller}\nSlurmdPort={node}\n"
            "SlurmUser=root\nSlurmdUser=root\nAuthType=auth/munge\nProctrackType=proctrack/linuxproc\n"
            "TaskPlugin=task/none\nSelectType=select/cons_tres\nSelectTypeParameters=CR_Core\n"
            "SchedulerType=sched/backfill\nMpiDefault=none\nReturnToService=2\nMinJobAge=600\n"
            f"StateSaveLocation={folder / 'state'}\nSlurmdSpoolDir={folder / 'spool'}\n"
            f"SlurmctldPidFile={folder / 'slurmctld.pid'}\nSlurmdPidFile={folder / 'slurmd.pid'}\n"
            f"SlurmctldLogFile={folder / 'log/slurmctld.log'}\nSlurmdLogFile={folder / 'log/slurmd.log'}\n"
            "AccountingStorageType=accounting_storage/none\nJobAcctGatherType=jobacct_gather/none\n"
            f"NodeName={self.host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=4000 State=UNKNOWN\n"
            f"PartitionName=debug Nodes={self.host} Default=YES MaxTime=INFINITE State=UP\n"
        )
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    def start(self, timeout: float = 60) -> None:
        Path("/run/munge").mkdir(parents=True, exist_ok=True)
        shutil.chown("/run/munge", "munge", "munge")
        if subprocess.run(["pgrep", "-x", "munged"], capture_output=True).returncode != 0:
            subprocess.run(["runuser", "-u", "munge", "--", "/usr/sbin/munged"], check=True)
        for daemon in ("slurmctld", "slurmd"):
            self.processes.append(
                subprocess.Popen([f"/usr/sbin/{daemon}", "-D", "-f", str(self.conf)], env=self.env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, env=self.env)
            if state.returncode == 0 and state.stdout.strip() in ("idle", "mix", "alloc"):
                return
            time.sleep(0.5)
        self.stop()
        logs = "".join(path.read_text()[-1500:] for path in sorted((self.folder / "log").glob("*.log")))
        raise RuntimeError(f"the SLURM node did not come up within {timeout:.0f} s:\n{logs}")

    def stop(self, timeout: float = 20) -> None:
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
        for name in ("slurmstepd", "munged"):  # job steps left behind, then munge
            subprocess.run(["pkill", "-x", name], capture_output=True)
        while (
            time.monotonic() < deadline
            and subprocess.run(["pgrep", "-x", "munged|slurmstepd"], capture_output=True).returncode == 0
        ):
            time.sleep(0.1)
