"""Training of embedding networks: identity datasets and aligned-chip caches (:mod:`.data`),
the P x K batch sampler (:mod:`.sampler`), online triplet mining and losses (:mod:`.mining`,
:mod:`.losses`), batched on-device augmentation (:mod:`.augment`), networks trained here
(:mod:`.networks`), the training loop (:mod:`.trainer`) and evaluation helpers (:mod:`.evaluate`).

Nothing here imports the detector, the database or the GUI at module import time, so a
training run on a bare GPU machine needs only torch, numpy and OpenCV/Pillow.
"""
