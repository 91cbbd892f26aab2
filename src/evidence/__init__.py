"""The evidence: statistics over seeds and test images, verdicts, tables, figures, and the
pull-request report (`python -m src.evidence.report`). May import src.ground only.
"""
