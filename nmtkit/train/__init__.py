"""Training: the loop, loss, optimizers, checkpoints and distributed setup."""
