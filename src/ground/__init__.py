"""The ground every layer stands on: params.yaml's schema, every path and file name, atomic
file writes, data facts, the predictions file format, the command-line error contract and
the one runner of external commands. Imports nothing of the project above it.
"""
