"""tfgender: a TensorFlow data and performance toolkit for face gender classification."""

__version__ = "0.1.0"
