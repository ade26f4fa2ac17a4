"""Networks; importing a module registers its classes."""
from . import blocks, dcgan, mlp  # noqa: F401
