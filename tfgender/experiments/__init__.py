"""Experiment drivers built on the pipeline: sweeps, cross-validation, studies."""
