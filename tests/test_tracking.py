"""Scaled detection and face tracking for live frames (issue 16 item 6): boxes and landmarks found
on a downscaled crop map back to the full frame, the tracker follows one face, notices when it
leaves, finds a new face within its scan cadence, and a large face detected on a downscaled
region embeds as it does from full-resolution detection."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from faceapp.tracking import FaceTracker, detect_scaled, map_back
from faceapp.types import BBox, Detection, Landmarks

# the 5 MTCNN points as fractions of a box (eyes, nose, mouth corners)
FRACTIONS = np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.6], [0.35, 0.8], [0.65, 0.8]])


def _square_detector(calls: list | None = None):
    """A stand-in detector: every bright square blob is a 'face' (its exact pixel box, the 5
    points at fixed fractions of it). Records the shape of each image it is given."""

    def detect(image: np.ndarray) -> list[Detection]:
        if calls is not None:
            calls.append(image.shape[:2])
        mask = (image[..., 0] > 128).astype(np.uint8)
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        out = []
        for x, y, w, h, _area in stats[1:n]:
            pts = FRACTIONS * [w, h] + [x, y]
            out.append(Detection(BBox(float(x), float(y), float(x + w), float(y + h)), 0.99,
                                 Landmarks(pts.astype(np.float32))))
        return sorted(out, key=lambda d: d.bbox.area, reverse=True)

    return detect


def _frame(*squares, size=(1080, 1920)) -> np.ndarray:
    frame = np.full((*size, 3), 40, np.uint8)
    for x, y, s in squares:
        frame[y : y + s, x : x + s] = 230
    return frame


def test_map_back_divides_by_the_scale_and_adds_the_offset():
    d = Detection(BBox(10, 20, 30, 50), 0.9, Landmarks(np.array([[10, 20]] * 5, np.float32)))
    m = map_back(d, 0.25, (100, 7))
    assert (m.bbox.x1, m.bbox.y1, m.bbox.x2, m.bbox.y2) == (140, 87, 220, 207)
    assert np.allclose(m.landmarks.points, [[140, 87]] * 5) and m.score == pytest.approx(0.9)
    m2 = map_back(d, (0.5, 0.25), (0, 0))  # one factor per axis
    assert (m2.bbox.x1, m2.bbox.y1) == (20, 80)


def test_a_face_found_on_a_downscaled_crop_maps_back_exactly():
    frame = _frame((800, 400, 240))
    full = _square_detector()(frame)[0]
    calls: list = []
    scaled = detect_scaled(_square_detector(calls), frame, 0.25, region=(600, 200, 1200, 840))
    assert calls == [(160, 150)]  # a 600x640 region at a quarter of its size was all that was scanned
    assert len(scaled) == 1
    got, want = scaled[0], full
    assert (got.bbox.x1, got.bbox.y1, got.bbox.x2, got.bbox.y2) == (want.bbox.x1, want.bbox.y1, want.bbox.x2, want.bbox.y2)
    assert np.allclose(got.landmarks.points, want.landmarks.points, atol=1e-4)


def test_the_tracker_keeps_the_face_and_scans_on_its_cadence():
    calls: list = []
    tracker = FaceTracker(_square_detector(calls), detector_min_face=30, min_face=30, full_every=5)
    modes = []
    for i in range(10):
        found = tracker.detect(_frame((800 + 4 * i, 400, 240)))  # the face drifts a little
        assert len(found) == 1
        # the stand-in finds whole pixels of the downscaled crop: exact to one of its pixels
        assert abs(found[0].bbox.x1 - (800 + 4 * i)) <= 1 / tracker.last.scale
        modes.append(tracker.last.mode)
    assert modes == ["scan", "track", "track", "track", "track"] * 2
    assert calls[0] == (1080, 1920)  # the scan: the whole frame (the smallest face that counts is the detector's minimum)
    assert max(calls[1]) < 200  # a track frame: the region around the face, downscaled (face about 60 px)


def test_the_tracker_loses_a_face_that_leaves_and_finds_a_new_one_within_the_cadence():
    tracker = FaceTracker(_square_detector(), detector_min_face=30, min_face=30, full_every=6)
    assert len(tracker.detect(_frame((800, 400, 240)))) == 1
    assert len(tracker.detect(_frame((810, 400, 240)))) == 1 and tracker.last.mode == "track"
    # the face leaves: that frame is scanned at once and says so
    assert tracker.detect(_frame()) == [] and (tracker.last.mode, tracker.last.reason) == ("scan", "lost")
    assert tracker.detect(_frame()) == [] and tracker.last.reason == "no track"
    # one face tracked; a second walks in far away: a track frame does not see it, the next scan does
    tracker.detect(_frame((200, 300, 200)))
    assert tracker.last.mode == "scan"
    seen_at = None
    for i in range(1, 7):
        found = tracker.detect(_frame((200, 300, 200), (1500, 500, 150)))
        if len(found) == 2:
            seen_at = i
            break
    # it came right after a scan: the worst case, seen on its full_every-th frame, not later
    assert seen_at == tracker.full_every
    assert tracker.last.reason == "cadence"
    assert len(tracker.detect(_frame((200, 300, 200), (1500, 500, 150)))) == 2  # now both are tracked
    assert tracker.last.mode == "track"


def test_scans_are_downscaled_when_only_large_faces_count():
    calls: list = []
    tracker = FaceTracker(_square_detector(calls), detector_min_face=30, min_face=120, full_every=3)
    found = tracker.detect(_frame((800, 400, 240)))
    assert tracker.scan_scale == pytest.approx(0.25) and calls[0] == (270, 480)
    assert found[0].bbox.x1 == 800 and found[0].bbox.x2 == 1040  # mapped back to the full frame


def test_a_large_face_in_1080p_embeds_the_same_through_scaled_detection(engine, lfw_image):
    from faceapp.imageio import load_image

    face = cv2.resize(load_image(lfw_image("Aaron_Eckhart", 1)), (750, 750), interpolation=cv2.INTER_CUBIC)
    frame = np.full((1080, 1920, 3), 110, np.uint8)
    frame[150:900, 600:1350] = face
    full = engine.relevant(engine.detect(frame))
    assert len(full) == 1
    tracker = FaceTracker(engine.detect, detector_min_face=engine.detector_min_face,
                          min_face=engine.settings.min_face_size / 2)
    tracker.detect(frame)
    scaled = engine.relevant(tracker.detect(frame))
    assert tracker.last.mode == "track" and tracker.last.scale < 0.5  # detected on a downscaled region
    assert len(scaled) == 1
    a = engine.observe(frame, full)[0].embedding
    b = engine.observe(frame, scaled)[0].embedding
    distance = float(((a - b) ** 2).sum())
    assert distance < 0.1 * engine.threshold, distance  # the same face, far inside the threshold


def test_the_pipeline_tracks_by_default_and_can_scan_every_frame(engine, lfw_image):
    from faceapp.imageio import load_image
    from faceapp.match.gallery import Gallery
    from faceapp.pipeline import FacePipeline

    frame = np.full((480, 640, 3), 110, np.uint8)
    frame[100:350, 200:450] = load_image(lfw_image("Aaron_Eckhart", 1))
    gallery = Gallery.empty(engine.spec.embedding_dim)
    tracked = FacePipeline(engine, lambda: gallery)
    results = list(tracked.run([frame] * 3))
    assert [len(r.faces) for r in results] == [1, 1, 1] and tracked.tracker.last.mode == "track"
    plain = FacePipeline(engine, lambda: gallery, track=False)
    assert plain.tracker is None and len(plain.process(frame).faces) == 1


def test_a_camera_that_changes_size_is_scanned_whole_not_tracked_off_its_frame():
    """A camera reopened at a smaller size (or a video of another size on the same stream): the
    last track lies outside the new frame, so the frame is scanned, not cropped to nothing."""
    tracker = FaceTracker(_square_detector(), detector_min_face=30, min_face=30, full_every=10)
    assert len(tracker.detect(_frame((1500, 800, 200)))) == 1  # a face low right in 1080p
    found = tracker.detect(_frame((100, 80, 120), size=(480, 640)))
    assert tracker.last.mode == "scan" and tracker.last.reason == "new frame size"
    assert len(found) == 1 and abs(found[0].bbox.x1 - 100) <= 2


# -- tracking by MTCNN's last stage alone (refine) ------------------------------------------------


def test_square_crops_equal_mtcnn_crops_inside_and_pad_grey_outside():
    """Inside the image a box's crop is exactly the one MTCNN's stages take (facenet-pytorch's
    clipped slice, 'area' resampled); a box that leaves the image is padded with grey 128
    instead of being clipped, so the face in it is not stretched."""
    from faceapp.runtime.onnx_mtcnn import _crops, square_crops

    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    inside = np.array([[20.4, 30.7, 68.4, 78.7]], np.float32)
    ours = square_crops(image, inside, 48)
    theirs, ok = _crops(image.transpose(2, 0, 1)[None].astype(np.float32), np.zeros(1, np.int64), inside, 48)
    assert ok.all()
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    # a box hanging 24 px over the left edge: its left half is grey (0.0039 after normalising)
    # and the image's pixels keep their place in the right half (no stretching)
    flat = np.full((120, 160, 3), 200, np.uint8)
    left = square_crops(flat, np.array([[-23.0, 10.0, 24.0, 57.0]], np.float32), 48)[0]
    assert np.allclose(left[:, :, :23], (128 - 127.5) / 128, atol=1e-6)
    assert np.allclose(left[:, :, 25:], (200 - 127.5) / 128, atol=1e-6)


def test_refine_runs_the_last_stage_on_squared_boxes_and_drops_low_scores():
    """The ONet step on given boxes: each box made square around its centre, the network's
    regression and landmarks applied as in MTCNN's third stage; a box scoring under the
    threshold is gone. Checked with a stand-in network of known outputs."""
    from faceapp.runtime.onnx_mtcnn import refine

    seen = []

    def onet(crops):
        seen.append(crops.shape)
        k = len(crops)
        reg = np.tile(np.array([[0.1, 0.0, 0.1, 0.0]], np.float32), (k, 1))  # move right by 10%
        lms = np.tile(np.array([[0.3, 0.7, 0.5, 0.35, 0.65, 0.4, 0.4, 0.6, 0.8, 0.8]], np.float32), (k, 1))
        prob = np.array([[0.01, 0.99], [0.9, 0.1]], np.float32)[:k]
        return reg, lms, prob

    image = np.zeros((200, 300, 3), np.uint8)
    boxes, points = refine(onet, image, np.array([[50, 40, 89, 99], [200, 50, 240, 90]], np.float32), 0.7)
    assert seen == [(2, 3, 48, 48)]
    assert len(boxes) == 1 and boxes[0, 4] == pytest.approx(0.99)  # the second box scored 0.1: gone
    # squared: the 39x59 box becomes 59x59 around its centre (x 40..99), then moved right by
    # 0.1 of its 60-pixel width (MTCNN's inclusive pixel count)
    np.testing.assert_allclose(boxes[0, :4], [40 + 6, 40, 99 + 6, 99], atol=1e-4)
    np.testing.assert_allclose(points[0, 0], [60 * 0.3 + 40 - 1, 60 * 0.4 + 40 - 1], atol=1e-4)
    assert refine(onet, image, np.empty((0, 4), np.float32), 0.7)[0].shape == (0, 5)


def test_the_tracker_refines_tracked_faces_instead_of_detecting_and_scans_when_all_are_lost():
    calls: list = []
    refined: list = []

    def refine(frame, previous):
        refined.append(len(previous))
        return _square_detector()(frame)  # stand-in: the squares, wherever they are now

    tracker = FaceTracker(_square_detector(calls), detector_min_face=30, min_face=30, full_every=5, refine=refine)
    tracker.detect(_frame((300, 300, 100)))
    assert tracker.last.mode == "scan" and len(calls) == 1
    found = tracker.detect(_frame((310, 305, 100)))
    assert tracker.last.mode == "track" and len(calls) == 1 and refined == [1]  # no detection run
    assert found[0].bbox.x1 == 310
    tracker.detect(_frame(size=(1080, 1920)))  # the face is gone: nothing refined, so a scan
    assert tracker.last.mode == "scan" and tracker.last.reason == "lost" and len(calls) == 2


def test_a_detector_without_the_refine_step_is_tracked_by_region_detection():
    calls: list = []
    tracker = FaceTracker(_square_detector(calls), detector_min_face=30, min_face=30, full_every=5,
                          refine=lambda frame, previous: None)
    tracker.detect(_frame((300, 300, 100)))
    tracker.detect(_frame((310, 305, 100)))
    assert tracker.last.mode == "track" and len(calls) == 2 and calls[1] != (1080, 1920)  # a region


def _lfw_in_frame(lfw_image, dx=0, dy=0, size=(480, 640)):
    from faceapp.imageio import load_image

    frame = np.full((*size, 3), 110, np.uint8)
    frame[100 + dy : 350 + dy, 200 + dx : 450 + dx] = load_image(lfw_image("Aaron_Eckhart", 1))
    return frame


@pytest.mark.datasets
def test_refine_follows_a_real_face_that_moved_and_embeds_as_a_full_detection(engine, lfw_image):
    """MTCNN's ONet alone, given the face's box of the previous frame (the face has since moved
    by 12 and 8 pixels), finds it again: its box within a few pixels of a whole detection's on
    the new frame, the embedding far inside the threshold of the one from that detection."""
    before = engine.relevant(engine.detect(_lfw_in_frame(lfw_image)))
    frame = _lfw_in_frame(lfw_image, 12, 8)
    full = engine.relevant(engine.detect(frame))
    found = engine.refine(frame, before)
    assert len(before) == len(full) == len(found) == 1
    a, b = full[0].bbox, found[0].bbox
    assert max(abs(a.x1 - b.x1), abs(a.y1 - b.y1), abs(a.x2 - b.x2), abs(a.y2 - b.y2)) < 0.08 * a.width
    assert found[0].score > 0.9
    ea = engine.observe(frame, full)[0].embedding
    eb = engine.observe(frame, found)[0].embedding
    assert float(((ea - eb) ** 2).sum()) < 0.1 * engine.threshold
    # where the face was, on a frame without it: nothing
    assert engine.refine(np.full((480, 640, 3), 110, np.uint8), before) == []
