"""The study's pipeline: one module per DVC stage, and the modules they share."""
