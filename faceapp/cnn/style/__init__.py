"""Neural style transfer (Gatys et al., 2015) with any convolutional backbone.

    from faceapp.cnn.style import load_vgg16_features, run_style_transfer, save_image
    from faceapp.cnn.style.vgg import VGG16_STYLE_LAYERS, VGG16_CONTENT_LAYER, imagenet_normalize

    vgg = load_vgg16_features("vgg16-397923af.pth")
    for progress in run_style_transfer(content, style, vgg, VGG16_STYLE_LAYERS,
                                       content_layer=VGG16_CONTENT_LAYER, normalize=imagenet_normalize):
        ...
    save_image(progress.image, "generated.png")

* :mod:`~faceapp.cnn.style.cost`: content cost, Gram matrix, style costs, total cost;
* :mod:`~faceapp.cnn.style.features`: activations of named layers by forward hooks;
* :mod:`~faceapp.cnn.style.generate`: the optimisation loop over the generated image's pixels;
* :mod:`~faceapp.cnn.style.vgg`: a local VGG-16 weights file as the backbone;
* :mod:`~faceapp.cnn.style.output`: the generated image and the loss plot as PNGs.
"""

from faceapp.cnn.style.cost import content_cost, gram_matrix, layer_style_cost, style_cost, total_cost
from faceapp.cnn.style.features import FeatureExtractor
from faceapp.cnn.style.generate import StyleProgress, image_to_tensor, run_style_transfer, tensor_to_image
from faceapp.cnn.style.output import save_image, save_loss_plot
from faceapp.cnn.style.vgg import (
    VGG16_CONTENT_LAYER,
    VGG16_LAYERS,
    VGG16_STYLE_LAYERS,
    imagenet_normalize,
    load_vgg16_features,
)

__all__ = [
    "content_cost",
    "gram_matrix",
    "layer_style_cost",
    "style_cost",
    "total_cost",
    "FeatureExtractor",
    "StyleProgress",
    "image_to_tensor",
    "tensor_to_image",
    "run_style_transfer",
    "save_image",
    "save_loss_plot",
    "VGG16_CONTENT_LAYER",
    "VGG16_LAYERS",
    "VGG16_STYLE_LAYERS",
    "imagenet_normalize",
    "load_vgg16_features",
]
