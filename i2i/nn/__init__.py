"""Networks; importing a module registers its classes."""
from . import blocks, dcgan, mlp, patchgan, resnet_generator, seg_adversary, segmentor, srresnet, unet, vgg_style  # noqa: F401
