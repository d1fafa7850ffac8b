"""A private single-node SLURM cluster for the tests: munge, slurmctld and slurmd on this machine.

The daemons are Debian's (``tests/install-slurm.sh`` installs them when missing). Everything
they write - keys, configuration, state, spool, logs - lives in one folder, and they run in
the foreground as children of this process, so they are stopped by the PIDs started here and
nothing outside that folder changes. Two fake GPUs (character devices, as SLURM's gres plugin
needs a ``File=``) let ``--gpus=1`` jobs schedule on a machine without one.

Without slurmdbd there is no job accounting: the executor plugin polls ``squeue`` instead of
``sacct`` (``slurm-status-command: squeue``), and finished jobs stay in the controller's memory
for ``MinJobAge`` seconds, long enough for a test to read their records with ``scontrol``.

Run by hand: ``python tests/slurm_cluster.py DIR`` starts a cluster in DIR and stops it on
Ctrl-C, printing the environment a shell needs to submit to it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd", "sinfo", "sbatch", "squeue", "scontrol", "srun")
PORTS = (6817, 6818)
LOCK_FILE = Path(tempfile.gettempdir()) / "synergyseg-test-slurm.lock"
N_FAKE_GPUS = 2
# Finished jobs stay listed this long; the executor plugin needs >= 3 x its initial wait.
MIN_JOB_AGE_S = 7200


def unavailable_reason() -> str | None:
    """Why a cluster cannot be started here, or None when it can."""
    missing = [name for name in DAEMONS if shutil.which(name) is None]
    if missing:
        return (
            f"SLURM/munge not installed ({', '.join(missing)} missing; see tests/install-slurm.sh)"
        )
    if os.geteuid() != 0:
        return "starting slurmd needs root"
    for port in PORTS:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return f"port {port} is in use (another SLURM runs on this machine)"
    return None


def node_fields() -> dict[str, str]:
    """This machine as ``slurmd -C`` sees it (NodeName is the name slurmd will look for)."""
    out = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout
    return dict(item.split("=", 1) for item in out.splitlines()[0].split())


def node_line(memory_mb: int | None = None) -> str:
    """The node's line in slurm.conf, declaring a little less memory than it has."""
    fields = node_fields()
    real = int(fields["RealMemory"])
    memory_mb = min(real - 512, memory_mb) if memory_mb else real - 512
    keep = ("CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore")
    hardware = " ".join(f"{key}={fields[key]}" for key in keep if key in fields)
    return (
        f"NodeName={fields['NodeName']} NodeAddr=127.0.0.1 {hardware} "
        f"RealMemory={memory_mb} Gres=gpu:{N_FAKE_GPUS} State=UNKNOWN"
    )


class SlurmCluster:
    """Start, use and stop a private cluster rooted at ``root``."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.conf = self.root / "etc" / "slurm.conf"
        self.bin = self.root / "bin"
        self.processes: dict[str, subprocess.Popen] = {}
        self._lock = None

    # --- lifecycle -------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> SlurmCluster:
        self._lock = open(LOCK_FILE, "a")  # noqa: SIM115 - held for the cluster's lifetime
        deadline = time.monotonic() + timeout
        while True:  # one cluster per machine (fixed ports): wait a while for another to stop
            try:
                fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    self._lock.close()
                    self._lock = None
                    raise TimeoutError(f"another test cluster holds {LOCK_FILE}") from None
                time.sleep(1)
        try:
            self._write_files()
            self._spawn("munged", ["munged", "-F", "--force", *self._munge_args()])
            self._wait_for(
                lambda: (self.root / "munge" / "munge.socket").exists(), timeout, "munged"
            )
            self._spawn("slurmctld", ["slurmctld", "-D", "-c", "-f", str(self.conf)])
            self._spawn("slurmd", ["slurmd", "-D", "-f", str(self.conf)])
            self._wait_for(self._node_idle, timeout, "the node to become idle")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Cancel every job left (the cluster is private), then stop the daemons this object
        started (by PID), slurmd first: job processes outlive a stopped slurmd otherwise."""
        if self.processes.get("slurmctld") and self.processes["slurmctld"].poll() is None:
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                self.run("scancel", "--partition=main")
                deadline = time.monotonic() + 30
                while self.run("squeue", "--noheader").strip() and time.monotonic() < deadline:
                    time.sleep(0.5)
        for name in ("slurmd", "slurmctld", "munged"):
            process = self.processes.pop(name, None)
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    def __enter__(self) -> SlurmCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- use -------------------------------------------------------------------------------
    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """Environment for submitting: the private config, and ``srun`` that finds it inside
        jobs too (the executor's job step strips every ``SLURM_*`` variable before ``srun``)."""
        env = dict(os.environ if base is None else base)
        env["SLURM_CONF"] = str(self.conf)
        env["PATH"] = os.pathsep.join([str(self.bin), env.get("PATH", "")])
        return env

    def run(self, *command: str) -> str:
        return subprocess.run(
            command, env=self.env(), capture_output=True, text=True, check=True, timeout=60
        ).stdout

    def jobs(self) -> list[dict[str, str]]:
        """Every job the controller remembers (running, pending, or finished < MinJobAge ago),
        as ``scontrol show job`` fields."""
        out = self.run("scontrol", "show", "job", "--oneliner")
        if "No jobs in the system" in out:
            return []
        return [parse_fields(line) for line in out.splitlines() if line.strip()]

    def cancel(self, job_id: str) -> None:
        self.run("scancel", job_id)

    def log(self, daemon: str) -> str:
        path = self.root / "log" / f"{daemon}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # --- internals -------------------------------------------------------------------------
    def _munge_args(self) -> list[str]:
        munge = self.root / "munge"
        return [
            f"--socket={munge / 'munge.socket'}",
            f"--pid-file={munge / 'munged.pid'}",
            f"--key-file={munge / 'munge.key'}",
            f"--log-file={self.root / 'log' / 'munged.log'}",
            f"--seed-file={munge / 'munged.seed'}",
        ]

    def _write_files(self) -> None:
        for sub in ("etc", "state", "spool", "log", "run", "munge", "dev", "bin"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)
        os.chmod(self.root / "munge", 0o755)  # the socket's folder must be world-executable
        key = self.root / "munge" / "munge.key"
        if not key.exists():
            key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o400)
        devices = []
        for index in range(N_FAKE_GPUS):
            device = self.root / "dev" / f"fakegpu{index}"
            if not device.exists():
                os.mknod(device, 0o666 | 0o020000, os.makedev(1, 3))  # like /dev/null
            devices.append(device)
        host = node_fields()["NodeName"]
        root = self.root
        self.conf.write_text(
            "\n".join(
                [
                    "ClusterName=synergyseg-test",
                    f"SlurmctldHost={host}(127.0.0.1)",
                    "SlurmUser=root",
                    f"AuthInfo=socket={root / 'munge' / 'munge.socket'}",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_Core_Memory",
                    "GresTypes=gpu",
                    "AccountingStorageType=accounting_storage/none",
                    "JobAcctGatherType=jobacct_gather/none",
                    "MpiDefault=none",
                    "ReturnToService=2",
                    f"MinJobAge={MIN_JOB_AGE_S}",
                    "MailProg=/bin/true",
                    f"StateSaveLocation={root / 'state'}",
                    f"SlurmdSpoolDir={root / 'spool'}",
                    f"SlurmctldPidFile={root / 'run' / 'slurmctld.pid'}",
                    f"SlurmdPidFile={root / 'run' / 'slurmd.pid'}",
                    f"SlurmctldLogFile={root / 'log' / 'slurmctld.log'}",
                    f"SlurmdLogFile={root / 'log' / 'slurmd.log'}",
                    "SchedulerParameters=sched_interval=1",
                    node_line(),
                    f"PartitionName=main Nodes={host} Default=YES MaxTime=INFINITE State=UP",
                    "",
                ]
            )
        )
        (self.root / "etc" / "gres.conf").write_text(
            "AutoDetect=off\n"
            + "".join(f"NodeName={host} Name=gpu File={device}\n" for device in devices)
        )
        srun = self.bin / "srun"
        srun.write_text(
            "#!/bin/sh\n"
            f"export SLURM_CONF={shlex.quote(str(self.conf))}\n"
            f'exec {shlex.quote(shutil.which("srun"))} "$@"\n'
        )
        srun.chmod(0o755)

    def _spawn(self, name: str, command: list[str]) -> None:
        log = open(self.root / "log" / f"{name}.out", "ab")  # noqa: SIM115 - owned by the child
        self.processes[name] = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env(),
            start_new_session=True,
        )
        log.close()

    def _node_idle(self) -> bool:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited ({process.returncode}):\n{self._tail(name)}")
        try:
            state = self.run("sinfo", "--noheader", "--format=%T").split()
        except subprocess.CalledProcessError:
            return False
        return state == ["idle"]

    def _tail(self, name: str) -> str:
        texts = [self.log(name)]
        out = self.root / "log" / f"{name}.out"
        if out.exists():
            texts.append(out.read_text(errors="replace"))
        return "\n".join(text[-3000:] for text in texts if text)

    def _wait_for(self, ready, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if time.monotonic() > deadline:
                logs = "\n".join(self._tail(name) for name in self.processes)
                raise TimeoutError(f"timed out waiting for {what}:\n{logs}")
            time.sleep(0.2)


def parse_fields(line: str) -> dict[str, str]:
    """``Key=value Key=value`` (values may contain '=' but not spaces) as a dict."""
    fields = {}
    for item in line.split():
        if "=" in item:
            key, value = item.split("=", 1)
            fields[key] = value
    return fields


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} DIR")
    reason = unavailable_reason()
    if reason:
        sys.exit(f"cannot start SLURM here: {reason}")
    with SlurmCluster(Path(sys.argv[1]).resolve()) as cluster:
        env = cluster.env()
        print(f"export SLURM_CONF={env['SLURM_CONF']} PATH={env['PATH']}", flush=True)
        print("SLURM is up; Ctrl-C stops it.", flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
