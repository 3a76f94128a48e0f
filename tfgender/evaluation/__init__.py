"""Evaluation: metrics, the evaluation program's library, prediction, export."""
