"""The course's classic and efficient CNNs in PyTorch, by name.

Every network is a :class:`~faceapp.cnn.nets.Network` with ``forward_features`` (the
convolutional trunk) and ``forward_head`` (pooling and classifier), built by a keyword-only
builder and registered by name::

    from faceapp.cnn.nets import available, build, count_parameters
    model = build("resnet50", num_classes=10)
    with torch.device("meta"):                    # count without allocating memory
        count_parameters(build("vgg16"))          # 138,357,544

=================  ===========  =======================================================
name               parameters   module
=================  ===========  =======================================================
lenet5                 62,006   :mod:`~faceapp.cnn.nets.lenet` (the notes' table)
alexnet            62,378,344   :mod:`~faceapp.cnn.nets.alexnet`
vgg16 / vgg19     138.4M/143.7M :mod:`~faceapp.cnn.nets.vgg`
resnet50           25,557,032   :mod:`~faceapp.cnn.nets.resnet` (identity/conv blocks)
googlenet          ~7.0M + aux  :mod:`~faceapp.cnn.nets.inception`
mobilenet_v1        4,231,976   :mod:`~faceapp.cnn.nets.mobilenet`
mobilenet_v2        3,504,872   :mod:`~faceapp.cnn.nets.mobilenet`
efficientnet_b0-7   5,288,548   :mod:`~faceapp.cnn.nets.efficientnet` (B0; compound scaling)
=================  ===========  =======================================================

:mod:`~faceapp.cnn.nets.cost` counts the multiplications of normal and depthwise separable
convolutions.
"""

from faceapp.cnn.nets._base import Network, count_parameters
from faceapp.cnn.nets._registry import available, build, register
from faceapp.cnn.nets.alexnet import AlexNet, alexnet
from faceapp.cnn.nets.cost import (
    SeparableCost,
    conv_cost,
    conv_output_shape,
    depthwise_separable_cost,
    separable_cost_ratio,
)
from faceapp.cnn.nets.efficientnet import CompoundScaling, EfficientNet, MBConv, compound_scaling, efficientnet
from faceapp.cnn.nets.inception import (
    GoogLeNet,
    GoogLeNetOutputs,
    InceptionAux,
    InceptionModule,
    googlenet,
    googlenet_loss,
)
from faceapp.cnn.nets.lenet import LeNet5, lenet5
from faceapp.cnn.nets.mobilenet import (
    DepthwiseSeparableConv,
    InvertedResidual,
    MobileNetV1,
    MobileNetV2,
    mobilenet_v1,
    mobilenet_v2,
)
from faceapp.cnn.nets.resnet import ConvolutionalBlock, IdentityBlock, ResNet50, resnet50
from faceapp.cnn.nets.vgg import VGG, vgg16, vgg19

__all__ = [
    "Network",
    "count_parameters",
    "available",
    "build",
    "register",
    "LeNet5",
    "lenet5",
    "AlexNet",
    "alexnet",
    "VGG",
    "vgg16",
    "vgg19",
    "IdentityBlock",
    "ConvolutionalBlock",
    "ResNet50",
    "resnet50",
    "InceptionModule",
    "InceptionAux",
    "GoogLeNet",
    "GoogLeNetOutputs",
    "googlenet",
    "googlenet_loss",
    "DepthwiseSeparableConv",
    "InvertedResidual",
    "MobileNetV1",
    "MobileNetV2",
    "mobilenet_v1",
    "mobilenet_v2",
    "CompoundScaling",
    "compound_scaling",
    "MBConv",
    "EfficientNet",
    "efficientnet",
    "SeparableCost",
    "conv_cost",
    "conv_output_shape",
    "depthwise_separable_cost",
    "separable_cost_ratio",
]
