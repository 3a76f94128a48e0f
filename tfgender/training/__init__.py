"""Training: the step, the loop around it, optimisers, precision and strategy."""
