"""Usage, cost and subsidy per tenant from Slurm accounting (or the simulator's own history)."""
