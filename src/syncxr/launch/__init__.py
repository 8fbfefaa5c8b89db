"""Running syncxr on clusters: distributed set-up inside submitit/SLURM jobs (see conf/hydra/launcher/)."""
