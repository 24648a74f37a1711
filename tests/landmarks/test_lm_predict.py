"""The shipped model: its spec and checksum, its accuracy on a few HELEN test faces, the CLI."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from faceapp.errors import WeightsError
from faceapp.landmarks.spec import LandmarkSpec, load_landmark_spec


@pytest.fixture(scope="module")
def predictor():
    import torch

    torch.set_num_threads(2)
    from faceapp.landmarks.predict import LandmarkPredictor

    return LandmarkPredictor(device="cpu")


@pytest.fixture(scope="module")
def helen(w300_dir):
    return w300_dir


def test_the_shipped_spec_is_small_and_checks_its_weights(tmp_path):
    spec = load_landmark_spec()
    assert spec.model_id == "landmarks-v1" and spec.input_size == 160
    assert spec.file.stat().st_size < 5_000_000  # a few MB
    assert spec.card is not None and spec.card.is_file()
    spec.load_state_dict()  # checksum and weights_only load
    shutil.copy(spec.file, tmp_path / spec.file.name)
    (tmp_path / "landmarks_v1.toml").write_text(spec.to_toml().replace(spec.sha256, "0" * 64))
    with pytest.raises(WeightsError, match="corrupt or replaced"):
        LandmarkSpec.from_toml(tmp_path / "landmarks_v1.toml").load_state_dict()


def test_no_face_list_gives_an_empty_array(predictor):
    out = predictor.predict_many(np.zeros((100, 100, 3), np.uint8), [])
    assert out.shape == (0, 68, 2)
    with pytest.raises(ValueError):
        predictor.predict(np.zeros((100, 100, 3), np.uint8), (1, 2, 3))


@pytest.mark.datasets
def test_accuracy_on_a_few_helen_test_faces(predictor, helen):
    from faceapp.imageio import load_image
    from faceapp.landmarks.data import MTCNN_OFFSETS, box_from_points, list_split
    from faceapp.landmarks.points import nme

    paths, truth = list_split(helen, "test")
    paths, truth = paths[:12], truth[:12]
    boxes = box_from_points(truth, MTCNN_OFFSETS)  # MTCNN-like boxes without running MTCNN
    pred = np.stack([predictor.predict(load_image(p), b) for p, b in zip(paths, boxes, strict=True)])
    errors = nme(pred, truth)
    assert errors.mean() < 0.05 and errors.max() < 0.10
    flipped = load_image(paths[0])[:, ::-1].copy()  # a mirrored face: the mirrored points
    from faceapp.landmarks.points import mirror_points

    w = flipped.shape[1]
    box = boxes[0].copy()
    box[[0, 2]] = w - 1 - boxes[0][[2, 0]]
    again = mirror_points(predictor.predict(flipped, box), w)
    assert float(nme(again, truth[0])) < 0.06


@pytest.mark.datasets
def test_cli_eval_prints_the_json_keys(helen, capsys):
    from faceapp.cli.main import main

    rc = main(["landmarks", "eval", "--data", str(helen), "--limit", "6", "--no-dlib", "--json", "--threads", "2"])
    payload = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert {"nme", "failure_rate", "ms_per_face"} <= payload.keys()
    assert payload["faces"] == 6 and payload["nme"] < 0.08 and payload["ms_per_face"] > 0


@pytest.mark.datasets
def test_the_analyzer_gives_points_and_a_verdict_for_a_frontal_face(predictor, helen):
    from faceapp.config import Settings
    from faceapp.imageio import load_image
    from faceapp.landmarks.analyze import LandmarkAnalyzer
    from faceapp.landmarks.data import MTCNN_OFFSETS, box_from_points, list_split
    from faceapp.types import BBox, Detection, Landmarks

    paths, truth = list_split(helen, "test")
    box = box_from_points(truth[1], MTCNN_OFFSETS)
    det = Detection(BBox(*box), 0.99, Landmarks(np.zeros((5, 2))))
    face = LandmarkAnalyzer(Settings(), predictor=predictor).analyze(load_image(paths[1]), det)
    assert face.points.shape == (68, 2) and face.detection is det
    assert 0.15 < face.quality.eye_aspect_ratio < 0.45 and abs(face.quality.pose.yaw) < 45


@pytest.mark.datasets
def test_cli_train_writes_loadable_weights_and_spec(helen, tmp_path, capsys):
    from faceapp.cli.main import main
    from faceapp.landmarks.predict import LandmarkPredictor

    rc = main(["landmarks", "train", "--data", str(helen), "--limit", "4", "--epochs", "2", "--freeze-epochs", "1",
               "--batch-size", "2", "--device", "cpu", "--threads", "2", "--out", str(tmp_path), "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["epochs"] == 2 and np.isfinite(out["final_train_nme"])
    spec = LandmarkSpec.from_toml(tmp_path / "landmarks_v1.toml")
    assert spec.extra["training"]["epochs"] == 2 and spec.extra["data"]["faces"] == 4
    pts = LandmarkPredictor(spec=spec).predict(np.zeros((64, 64, 3), np.uint8), (10, 10, 50, 50))
    assert pts.shape == (68, 2)
