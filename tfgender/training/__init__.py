"""Training: the step, the loop around it, its state and actions, optimisers, precision and
strategy; ``TrainingError`` is what any of them raises for a run that cannot go on."""


class TrainingError(RuntimeError):
    """Training cannot start or continue; the message says why."""
