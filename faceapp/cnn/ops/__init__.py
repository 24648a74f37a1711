"""The course's convolution building blocks, from scratch in NumPy.

Channels-last batches ``(m, n_H, n_W, n_C)``, weights ``(f, f, n_C_prev, n_C)``, biases
``(1, 1, 1, n_C)``; ``hparameters`` dicts as in the course's week-1 assignment. Everything is
vectorised with NumPy stride tricks (a windowed view of the input and one matrix product) and
agrees with ``torch.nn.functional`` to float64 precision. What deep learning calls
"convolution" is cross-correlation: the filter is not mirrored.

* :mod:`~faceapp.cnn.ops.conv`: ``conv_single_step``, ``conv_forward`` / ``conv_backward``,
  1-D and 3-D versions, 1x1, depthwise and depthwise-separable convolution;
* :mod:`~faceapp.cnn.ops.pool`: ``pool_forward`` / ``pool_backward`` (max and average);
* :mod:`~faceapp.cnn.ops.transpose`: transposed convolution (U-Net's up-sampling);
* :mod:`~faceapp.cnn.ops.gradcheck`: numerical gradient checking;
* sizes: ``output_size``, ``zero_pad``.
"""

from faceapp.cnn.ops._shapes import output_size, resolve_padding, zero_pad, zero_pad_nd
from faceapp.cnn.ops.conv import (
    conv1d_backward,
    conv1d_forward,
    conv1x1_forward,
    conv3d_backward,
    conv3d_forward,
    conv_backward,
    conv_forward,
    conv_nd_backward,
    conv_nd_forward,
    conv_single_step,
    depthwise_conv_forward,
    depthwise_separable_conv_forward,
)
from faceapp.cnn.ops.gradcheck import gradient_check, numerical_gradient, relative_difference
from faceapp.cnn.ops.pool import POOL_MODES, create_mask_from_window, distribute_value, pool_backward, pool_forward
from faceapp.cnn.ops.transpose import conv_transpose_backward, conv_transpose_forward, conv_transpose_output_size

__all__ = [
    "output_size",
    "resolve_padding",
    "zero_pad",
    "zero_pad_nd",
    "conv_single_step",
    "conv_forward",
    "conv_backward",
    "conv1d_forward",
    "conv1d_backward",
    "conv3d_forward",
    "conv3d_backward",
    "conv_nd_forward",
    "conv_nd_backward",
    "conv1x1_forward",
    "depthwise_conv_forward",
    "depthwise_separable_conv_forward",
    "POOL_MODES",
    "pool_forward",
    "pool_backward",
    "create_mask_from_window",
    "distribute_value",
    "conv_transpose_output_size",
    "conv_transpose_forward",
    "conv_transpose_backward",
    "numerical_gradient",
    "relative_difference",
    "gradient_check",
]
