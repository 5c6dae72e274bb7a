"""`hydra/launcher=slurm`: Hydra's `submitit_slurm` settings, with the defaults a ganneal run wants on a cluster.

Registered only where the submitit launcher is installed (`pip install 'ganneal[cluster]'`)."""

from dataclasses import dataclass

from hydra.core.config_store import ConfigStore

try:
    from hydra_plugins.hydra_submitit_launcher.config import SlurmQueueConf
except ImportError:  # the cluster extra is not installed: no `slurm` launcher, and no warning from Hydra's scan
    SlurmQueueConf = None

if SlurmQueueConf is not None:

    @dataclass
    class GannealSlurmConf(SlurmQueueConf):
        _target_: str = "hydra_plugins.ganneal_slurm_launcher.launcher.GannealSlurmLauncher"
        # A job that reaches its time limit checkpoints on submitit's signal and is requeued, up to this many
        # times (submitit's own default, 0, ends a 100k-step run at its first time limit). Preemptions do not count.
        max_num_timeout: int = 20
        # Seconds before the time limit that SLURM signals the job: a checkpoint takes about a second; the rest is
        # room for a step in flight and a slow file system.
        signal_delay_s: int = 120
        # false: submit, record the job ids and return (log out; `ganneal runs`/`table` show the jobs as they end)
        wait: bool = True

    ConfigStore.instance().store(group="hydra/launcher", name="slurm", node=GannealSlurmConf(),
                                 provider="ganneal")
