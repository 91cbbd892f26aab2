"""The stages dvc.yaml runs, one module each (`python -m src.stages.<stage>`): download,
prepare, train, compare. Thin: each reads params.yaml, calls the layers below and writes its
outputs. May import src.learning, src.evidence and src.ground; nothing imports them.
"""
