"""The face a template keeps, so that it can be encoded again when the model changes.

A template stores, beside its encoding, the face it was made from (``face_jpeg``, sealed with it).
At a change of model :meth:`faceapp.services.FaceService.reembed` re-encodes every template from
that face, so nobody has to enroll again.

**The old way: the model's own chip.** Until 4 December 2026 the kept face was the model's
aligned chip (its template, its input size). A new model with a wider framing than the old one
then saw a filled band where the old chip ended: the fused models' 184x184 canvas holds SFace's
crop, which reaches higher up the forehead and wider than dlib's 150x150 chip. Measured on LFW
DevTest (``scripts/eval_reembed.py --old dlib-resnet-v1 --new fused-flip-v1``): TAR at FAR
1e-3 98.8% for faces enrolled after the switch, 94.0% for templates re-encoded from dlib's chip;
false rejects at tau 1.2% -> 2.6%.

**Now: a wide crop that does not depend on the model** (:data:`WIDE_SIZE` x :data:`WIDE_SIZE`,
:data:`WIDE_TEMPLATE`): SFace's ArcFace template at 1.5 times its scale, shifted by (28, 21),
so it holds the fused canvas with a margin of 20 pixels on every side, and every shipped model's
chip at about its own pixel scale (dlib's 150x150 chip and SFace's crop included). The crop is
filled outside the photo as the enrolling model fills its chips (its ``border``). The JPEG
carries a comment segment :data:`MARK` that says so; the JPEG is sealed with the template
(AES-GCM), so the mark cannot be changed apart from the face. A kept face without the mark is an
old model chip, read as before (:func:`model_chip`).

The framing is fixed for ever (the numbers, not a formula of a spec that could change): stored
crops are read with it years later.
"""

from __future__ import annotations

import io

import numpy as np

from faceapp.types import AlignedFace, BBox, Detection, Landmarks

# (faceapp.detect and faceapp.imageio are imported where they are used: the store imports this
# module for the mark alone)

__all__ = ["WIDE_SIZE", "WIDE_TEMPLATE", "MARK", "keep", "is_wide", "is_wide_image", "model_chip"]

WIDE_SIZE = 224
#: SFace's ArcFace 112x112 template (sface-v1's spec) times 1.5, plus (28, 21)
WIDE_TEMPLATE = np.array(
    [[85.4419, 98.54445], [138.2977, 98.2521], [112.0378, 128.6049], [90.32395, 159.54825], [134.09485, 159.30615]],
    dtype=np.float64,
)
MARK = b"faceapp-face wide-v1"
JPEG_QUALITY = 90


def keep(image: np.ndarray, detection: Detection, border: str = "replicate") -> bytes:
    """The JPEG a template keeps of the face ``detection`` in ``image`` (RGB uint8): the wide,
    model-independent crop, marked. ``border``: the enrolling model's fill outside the photo."""
    from faceapp.detect.align import align_face
    from faceapp.imageio import encode_jpeg

    return encode_jpeg(align_face(image, detection, WIDE_TEMPLATE, WIDE_SIZE, border).image, quality=JPEG_QUALITY,
                       comment=MARK)


def is_wide(jpeg: bytes) -> bool:
    """Whether a kept face is the wide crop (its JPEG carries :data:`MARK`)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(bytes(jpeg))) as im:
            return is_wide_image(im)
    except Exception:  # noqa: BLE001 - not an image: the caller's decode reports it
        return False


def is_wide_image(im) -> bool:
    """:func:`is_wide` of an opened PIL image (its header only: nothing is decoded)."""
    return im.format == "JPEG" and im.info.get("comment") == MARK and im.size == (WIDE_SIZE, WIDE_SIZE)


def model_chip(face: np.ndarray, *, wide: bool, old, engine) -> AlignedFace:
    """A kept face (decoded RGB) as ``engine``'s model (a :class:`faceapp.pipeline.FaceEngine`)
    wants its chip.

    ``wide``: the face is the wide crop (:func:`is_wide`), whose landmarks sit on
    :data:`WIDE_TEMPLATE`: the engine's own :meth:`~faceapp.pipeline.FaceEngine.align` (its warp
    and its brightness rule) makes the chip, which is therefore the one the engine makes of the
    same photo, up to the JPEG. Otherwise it is model spec ``old``'s chip (brightened when it was
    made): the old template points are where the landmarks sit in it, so it is warped onto the
    engine's template exactly, and what it did not hold is filled as the engine's model fills its
    borders."""
    from faceapp.detect.align import align_face

    s = float(face.shape[0])
    points, size = (WIDE_TEMPLATE, WIDE_SIZE) if wide else (np.asarray(old.template, np.float64), old.input_size)
    det = Detection(BBox(0, 0, s, s), 1.0, Landmarks((points * (s / size)).astype(np.float32)))
    if wide:
        return engine.align(face, det)
    spec = engine.spec
    return align_face(face, det, spec.template, spec.input_size, spec.border)
