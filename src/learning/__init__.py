"""The learning machinery: the model registry and its layers, how a model is fitted, its
callbacks, resumable training, the run records, the model file, and the speed levers (src.learning.speed,
the only code that touches private Keras or TensorFlow names). May import src.ground only.
"""
