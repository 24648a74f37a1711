"""Semantic segmentation with U-Net: the model, a synthetic shapes data set and a training loop.

images, masks = synthetic_shapes(200, size=32)
model = UNet(num_classes=len(SHAPE_CLASSES), base_channels=16, depth=3)
for progress in train_segmentation(model, images, masks, epochs=5):
    print(progress.epoch, progress.loss, progress.train_accuracy)
"""

from faceapp.cnn.segmentation.data import SHAPE_CLASSES, synthetic_shapes
from faceapp.cnn.segmentation.train import SegmentationProgress, evaluate_pixel_accuracy, train_segmentation
from faceapp.cnn.segmentation.unet import DoubleConv, UNet, majority_baseline, pixel_accuracy, pixel_loss

__all__ = [
    "SHAPE_CLASSES",
    "synthetic_shapes",
    "SegmentationProgress",
    "evaluate_pixel_accuracy",
    "train_segmentation",
    "DoubleConv",
    "UNet",
    "majority_baseline",
    "pixel_accuracy",
    "pixel_loss",
]
