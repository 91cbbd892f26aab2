"""Running runs: the study side by side in worktrees (`python -m src.running.study`), on SLURM,
in CI (`python -m src.running.ci`), and the DVC remote. May import src.evidence and
src.ground; never the stages or src.learning (it runs them through DVC).
"""
