"""faceapp.cnn: the Convolutional Neural Networks course as a tested, standalone library.

It imports nothing else from ``faceapp`` (an import-linter contract checks it), so it can be
read, tested and reused on its own. Subpackages, one per part of the course:

* :mod:`faceapp.cnn.ops`: convolution, pooling and transposed convolution from scratch (NumPy);
* :mod:`faceapp.cnn.nets`: LeNet-5, AlexNet, VGG-16, ResNet-50, Inception/GoogLeNet,
  MobileNet v1/v2, EfficientNet (PyTorch) and a convolution cost calculator;
* :mod:`faceapp.cnn.detection`: localisation targets, sliding windows, YOLO, IoU, NMS;
* :mod:`faceapp.cnn.segmentation`: U-Net, a synthetic shapes data set and a training loop;
* :mod:`faceapp.cnn.style`: neural style transfer with any convolutional backbone;
* :mod:`faceapp.cnn.visualize`: the nine patches that most activate a unit;
* :mod:`faceapp.cnn.augment` and :mod:`faceapp.cnn.transfer`: data augmentation and transfer learning.

Importing ``faceapp.cnn`` itself loads nothing heavy; ``faceapp.cnn.ops`` needs only NumPy.
See ``docs/cnn.md`` for a tour.
"""
