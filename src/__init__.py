"""The study's code, in layers that import downwards only: stages (what dvc.yaml runs) and
running (make repro, SLURM, CI) on top; evidence and learning below them; ground at the bottom.
"""
