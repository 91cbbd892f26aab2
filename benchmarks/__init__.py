"""Benchmarks: one entry point, `python -m benchmarks <name> [flags]` (or `make bench ARGS="..."`).

- `speed`: training images/s, the study's way against the train stage's, per model; `--levers`
  adds one run per speed lever of src/learning/speed/ switched on its own; `--full` on all the images.
- `accuracy`: test scores of the study's own way of training beside the train stage's, on
  the prepared data (`--pipeline-order`, `--seeds`, `--onednn`: see its --help); about an hour.
- `prepare`: time and peak memory of the prepare stage on the downloaded tarball.
- `verdicts`: how often the report's verdicts call a change when nothing changed (A/A) and
  catch a real one (A/B), over many seeds of real training; docs/statistics.md has the table.

Each measurement runs in a fresh process. Results and their machines: docs/performance.md.
"""
