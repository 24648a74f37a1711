"""The streamed gallery load (Store.gallery reads in batches into one preallocated matrix)
gives what the old load gave: the templates in id order, decoded one by one and stacked."""

from __future__ import annotations

import numpy as np
import pytest

from faceapp.errors import StoreError
from faceapp.store import repository
from faceapp.store.repository import Store, _GalleryBuilder

JPEG = b"\xff\xd8\xff\xe0fake-jpeg\xff\xd9"


def unit(rng: np.random.Generator, dim: int = 8) -> np.ndarray:
    v = rng.normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


def old_load(store: Store, model_id: str):
    """The load before streaming: every template read and opened, then stacked, in id order."""
    ts = sorted(store.templates(model_id), key=lambda t: t.id)
    return [t.person_name for t in ts], np.array([t.person_id for t in ts], np.int64), np.stack([t.embedding for t in ts])


@pytest.fixture
def store(db_url):
    with Store(db_url) as s:
        yield s


@pytest.mark.parametrize("batch", [1, 3, 2048])
def test_streamed_gallery_equals_the_old_load(store, monkeypatch, batch):
    rng = np.random.default_rng(0)
    for i in range(7):
        store.add_person(f"person {i}", embedding=unit(rng), model_id="m1", quality=0.9, face_jpeg=JPEG)
    for i in (2, 5, 2):  # templates of one person far apart in id order
        store.add_template(f"person {i}", embedding=unit(rng), model_id="m1", quality=0.9, face_jpeg=JPEG)
    store.add_person("other model", embedding=unit(rng), model_id="m2", quality=0.9, face_jpeg=JPEG)
    store.remove_person("person 4")
    monkeypatch.setattr(repository, "GALLERY_BATCH", batch)
    names, pids, matrix = store.gallery("m1", strict=False)
    want_names, want_pids, want_matrix = old_load(store, "m1")
    assert names == want_names and len(names) == 9
    np.testing.assert_array_equal(pids, want_pids)
    assert matrix.dtype == np.float32 and matrix.flags.c_contiguous and matrix.flags.writeable
    np.testing.assert_array_equal(matrix, want_matrix)


def test_the_builder_grows_past_its_count_and_shrinks_in_place():
    """More rows than counted (an enrollment between the count and the read), and fewer
    (templates left out): the gallery holds exactly the rows appended."""
    rows = [np.full(4, i, np.float32) for i in range(5)]
    grow = _GalleryBuilder(2, "m1")
    for i, r in enumerate(rows):
        grow.append(f"p{i}", i, r)
    g = grow.gallery()
    assert g.names == [f"p{i}" for i in range(5)] and g.person_ids.tolist() == list(range(5))
    np.testing.assert_array_equal(g.embeddings, np.stack(rows))
    shrink = _GalleryBuilder(10, "m1")
    shrink.append("p0", 0, rows[0])
    assert shrink.gallery().embeddings.shape == (1, 4)
    assert _GalleryBuilder(3, "m1").gallery().embeddings.shape == (0, 0)


def test_the_builder_refuses_mixed_sizes():
    b = _GalleryBuilder(2, "m1")
    b.append("a", 1, np.ones(4, np.float32))
    with pytest.raises(StoreError, match=r"different sizes \[3, 4\].*reembed"):
        b.append("b", 2, np.ones(3, np.float32))
