"""ganneal's SLURM launcher for Hydra (`hydra/launcher=slurm`): Hydra's submitit SLURM launcher with ganneal's
cluster defaults, a ledger of submitted jobs, and a submit-and-leave mode (`hydra.launcher.wait=false`)."""
