from . import adversarial  # noqa: F401  (registers GAN objectives and the wrapper)
