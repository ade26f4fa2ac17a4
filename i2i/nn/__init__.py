"""Networks; importing a module registers its classes."""
from . import (  # noqa: F401
    blocks,
    dcgan,
    mlp,
    msrresnet,
    patchgan,
    resnet_generator,
    rrdbnet,
    seg_adversary,
    segmentor,
    srresnet,
    srvgg,
    unet,
    unet_discriminator,
    vgg_style,
)
