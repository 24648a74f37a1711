"""scripts/train_fused.py's flip views (--flip): each backbone's mirrored chip, and flip TTA
as the embedder's ``flip_tta`` defines it (normalise(e(chip) + e(mirror)))."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from faceapp.embed.fused import CANVAS_SIZE, FusedNet
from script_module import load_script


@pytest.fixture(scope="module")
def tf():
    return load_script("train_fused")


@pytest.fixture(scope="module")
def net() -> FusedNet:
    torch.manual_seed(0)
    return FusedNet(load_backbones=False).eval()  # random backbones: only the plumbing is tested


def _canvases(n: int) -> torch.Tensor:
    g = np.random.default_rng(1)
    return torch.as_tensor(g.integers(0, 256, (n, 3, CANVAS_SIZE, CANVAS_SIZE)).astype(np.float32))


def test_flip_view_is_each_backbone_on_its_mirrored_chip(tf, net) -> None:
    x = _canvases(3)
    with torch.inference_mode():
        plain = tf.forward_views(net, x, False)
        both = tf.forward_views(net, x, True)
        xd, xs = net.branch_chips(x)
        ed = net.dlib((xd.flip(3) - net.mean_dlib) / net.scale_dlib)
        es = net.sface((xs.flip(3) - net.mean_sface) / net.scale_sface)
        canvas_mirror = net.forward_features(x.flip(3))
    assert plain.shape == (3, 1, 256) and both.shape == (3, 2, 256)
    np.testing.assert_allclose(both[:, 0].numpy(), net.forward_features(x).numpy(), atol=1e-5)
    np.testing.assert_allclose(plain[:, 0].numpy(), both[:, 0].numpy(), atol=1e-5)
    np.testing.assert_allclose(both[:, 1].numpy(), torch.cat([ed, es], 1).numpy(), atol=1e-5)
    # not the mirrored canvas: the branches' crops are not centred on the canvas
    assert not np.allclose(both[:, 1].numpy(), canvas_mirror.numpy(), atol=1e-4)


def test_flip_tta_embedding_is_normalised_sum_of_unit_encodings(tf) -> None:
    g = np.random.default_rng(2)
    f = g.normal(size=(5, 2, 256)).astype(np.float32)
    w = g.normal(size=(128, 256)).astype(np.float32)

    def unit(v):
        return v / np.linalg.norm(v, axis=-1, keepdims=True)

    np.testing.assert_allclose(tf._embed(f, "sface"), unit(f[:, 0, 128:]), atol=1e-6)
    np.testing.assert_allclose(tf._embed(f, "dlib", tta=True), unit(unit(f[:, 0, :128]) + unit(f[:, 1, :128])), atol=1e-6)
    np.testing.assert_allclose(tf._embed(f, "head", w, tta=True), unit(unit(f[:, 0] @ w.T) + unit(f[:, 1] @ w.T)), atol=1e-5)


def test_variants_and_tests(tf) -> None:
    assert [v[0] for v in tf._variants(False)] == ["dlib", "sface", "concat", "head"]
    names = [v[0] for v in tf._variants(True)]
    assert names == ["dlib", "dlib+flip", "sface", "sface+flip", "concat", "concat+flip",
                     "head", "head+flip", "head-flipaug", "head-flipaug+flip"]
    out = {"sface": {}, "head+flip": {}}
    tf._head_tests(out, {"sface": np.array([True, False, False]), "head+flip": np.array([True, True, True])})
    assert out["head+flip"]["mcnemar_vs_sface"] == {"only_head": 2, "only_other": 0, "p": 0.5}
    assert out["sface"] == {}


def _fold_val(scores: dict[str, float]) -> dict:
    return {"models": {m: {"tar_at_far_1e-3": v, "eer": 0.01} for m, v in scores.items()}}


def test_candidate_is_chosen_on_validation_alone_cheapest_on_a_tie(tf) -> None:
    """The model to test and ship comes from the fold heads' held-out validation identities
    (never the test pairs): the best mean TAR@FAR1e-3; a tie goes to the cheaper model."""
    folds = [_fold_val({"dlib": 0.99, "head": 0.97, "head+flip": 0.975, "head-flipaug": 0.96, "head-flipaug+flip": 0.98}),
             _fold_val({"dlib": 0.99, "head": 0.97, "head+flip": 0.975, "head-flipaug": 0.96, "head-flipaug+flip": 0.97})]
    c = tf.choose_candidate(folds)
    # head-flipaug+flip's mean (0.975) ties head+flip's: the one trained without mirrors wins
    assert c["candidate"] == "head+flip"
    assert c["mean_val_tar_at_far_1e-3"]["head-flipaug+flip"] == pytest.approx(0.975)
    folds[1]["models"]["head-flipaug+flip"]["tar_at_far_1e-3"] = 0.975
    assert tf.choose_candidate(folds)["candidate"] == "head-flipaug+flip"  # best alone by 0.0025
    for f in folds:  # all within 1e-4: the plain head, no flip TTA (half the time per face)
        for m in ("head", "head+flip", "head-flipaug", "head-flipaug+flip"):
            f["models"][m]["tar_at_far_1e-3"] = 0.98 + (0.00005 if m == "head-flipaug+flip" else 0.0)
    c = tf.choose_candidate(folds)
    assert c["candidate"] == "head"
    assert "dlib" not in c["mean_val_tar_at_far_1e-3"]  # only the project's own heads are candidates


def test_validation_metrics_on_separable_features(tf) -> None:
    """Features where each identity is its own direction: every model separates them, so the
    TAR at FAR 1e-3 is 1 and the EER 0; a head that maps everything to one point cannot."""
    rng = np.random.default_rng(0)
    ids = np.repeat(np.arange(20), 4)
    centres = rng.standard_normal((20, 256))
    f = centres[ids] + 0.01 * rng.standard_normal((80, 256))
    feats = np.stack([f, f], axis=1).astype(np.float32)  # (N, 2 views, 256)
    good = rng.standard_normal((128, 256)).astype(np.float32)
    bad = np.zeros((128, 256), np.float32)
    bad[0, 0] = 1.0  # every encoding is nearly the same
    out = tf.validation_metrics(feats, ids, [("concat", "concat", False), ("head", "head", False), ("bad", "bad", False)],
                                {"head": good, "bad": bad})
    assert out["genuine_pairs"] == 20 * 6 and out["impostor_pairs"] == 80 * 79 // 2 - 120
    assert out["models"]["concat"]["tar_at_far_1e-3"] == 1.0 and out["models"]["concat"]["eer"] == 0.0
    assert out["models"]["head"]["tar_at_far_1e-3"] == 1.0
    assert out["models"]["bad"]["eer"] > 0.2


def test_variant_pairs_are_scored_by_their_own_folds_heads(tf, tmp_path) -> None:
    """A variant's pair of LFW fold i is scored by fold i's head only (trained without fold i's
    people): a head that is perfect on fold 1's people and useless elsewhere shows up as such."""
    rng = np.random.default_rng(0)
    n_id, per = 40, 2
    centres = rng.standard_normal((n_id, 256))
    f = centres.repeat(per, 0) + 0.05 * rng.standard_normal((n_id * per, 256))
    paths = [str(tmp_path / f"img{i}.jpg") for i in range(n_id * per)]
    rows = ["path_a,path_b,same,fold"]
    for k in range(n_id):  # identity k: fold 1 for k < 20, fold 2 after
        fold = 1 if k < 20 else 2
        rows.append(f"img{2 * k}.jpg,img{2 * k + 1}.jpg,1,{fold}")
        j = (k + 1) % 20 + (0 if k < 20 else 20)
        rows.append(f"img{2 * k}.jpg,img{2 * j}.jpg,0,{fold}")
    csv = tmp_path / "tight-folds1-2.csv"
    csv.write_text("\n".join(rows) + "\n")
    feats = {"paths": np.array(paths), "feats": np.stack([f, f], 1).astype(np.float32),
             "no_face": np.zeros(len(paths), bool)}
    good = rng.standard_normal((128, 256)).astype(np.float32)
    bad = np.zeros((128, 256), np.float32)
    bad[0, 0] = 1.0
    bad += 1e-6 * rng.standard_normal((128, 256)).astype(np.float32)
    res, correct = tf.score_variant(csv, feats, [("concat", "concat", False), ("head", "head", False)],
                                    [{"head": good}, {"head": bad}] + [{"head": bad}] * 8)
    assert res["folds"] == [1, 2] and res["no_face"] == 0
    assert res["concat"]["accuracy"] == 1.0
    assert res["head"]["fold_accuracies"][0] == 1.0  # fold 1 by the good head
    assert res["head"]["fold_accuracies"][1] < 0.9  # fold 2 by the useless one
    assert res["head"]["mcnemar_vs_concat"]["only_other"] == int((~correct["head"]).sum())


def test_a_feature_cache_of_another_border_or_views_is_refused(tf, tmp_path) -> None:
    path = tmp_path / "features-lfw.npz"
    np.savez(path, feats=np.zeros((1, 2, 256), np.float32), views=np.array(("chip", "flip")), border=np.array("black"))
    z = np.load(path)
    tf._check_cache(z, path, ("chip", "flip"), "black")  # the same: accepted
    with pytest.raises(SystemExit, match="black border, not replicate"):
        tf._check_cache(z, path, ("chip", "flip"), "replicate")
    with pytest.raises(SystemExit, match="views"):
        tf._check_cache(z, path, ("chip",), "black")
    np.savez(path, feats=np.zeros((1, 1, 256), np.float32), views=np.array(("chip",)))  # before the border was recorded
    tf._check_cache(np.load(path), path, ("chip",), "replicate")
    with pytest.raises(SystemExit, match="replicate border"):
        tf._check_cache(np.load(path), path, ("chip",), "black")


def test_the_fused_canvas_spec_carries_the_border(tf) -> None:
    assert tf._fused_spec().border == "replicate" and tf._fused_spec("black").border == "black"
