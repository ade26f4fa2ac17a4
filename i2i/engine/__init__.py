"""Training engine: Accelerate loop, checkpoints, tracking, optimizers/schedulers."""
from . import optim  # noqa: F401
