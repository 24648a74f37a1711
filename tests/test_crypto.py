"""Envelope encryption of faces at rest: site key file, wrapped data keys, sealed data."""

from __future__ import annotations

import base64
import logging
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from faceapp import paths
from faceapp.errors import StoreError
from faceapp.store import crypto
from faceapp.store.crypto import DecryptionError, SiteKey

posix_only = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")

FIXED_KEY = bytes(range(32))
AAD = b"faceapp/template/7/face"


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def key_line(key: bytes) -> str:
    return f"faceapp-key v1 {base64.b64encode(key).decode()}\n"


@pytest.fixture
def embedding() -> bytes:
    return np.random.default_rng(0).standard_normal(128).astype("<f4").tobytes()


# -- sealing and wrapping ------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 512, 10_000])
def test_seal_round_trip(size):
    dek = crypto.new_data_key()
    data = os.urandom(size)
    blob = crypto.seal(dek, data, aad=AAD)
    assert len(blob) == size + crypto.OVERHEAD
    assert crypto.unseal(dek, blob, aad=AAD) == data


def test_sealed_embedding_reveals_nothing_and_is_fresh_each_time(embedding):
    dek = crypto.new_data_key()
    a = crypto.seal(dek, embedding, aad=AAD)
    b = crypto.seal(dek, embedding, aad=AAD)
    assert a != b  # random nonce
    assert embedding not in a and embedding[:16] not in a


def test_wrap_round_trip():
    site = SiteKey.generate()
    dek = crypto.new_data_key()
    blob = site.wrap(dek, aad=b"faceapp/person/3")
    assert len(blob) == crypto.WRAPPED_KEY_BYTES == 61
    assert site.unwrap(blob, aad=b"faceapp/person/3") == dek


def test_data_keys_are_32_random_bytes():
    keys = {crypto.new_data_key() for _ in range(10)}
    assert len(keys) == 10 and all(len(k) == 32 for k in keys)


def test_wrong_data_key_fails(embedding):
    blob = crypto.seal(crypto.new_data_key(), embedding, aad=AAD)
    with pytest.raises(DecryptionError):
        crypto.unseal(crypto.new_data_key(), blob, aad=AAD)


def test_wrong_site_key_fails():
    blob = SiteKey.generate().wrap(crypto.new_data_key(), aad=AAD)
    with pytest.raises(DecryptionError):
        SiteKey.generate().unwrap(blob, aad=AAD)


@pytest.mark.parametrize("where", [0, 1, 12, 13, 200, -1])  # version, nonce, last nonce byte, ciphertext, tag
def test_a_flipped_bit_anywhere_fails(embedding, where):
    dek = crypto.new_data_key()
    blob = bytearray(crypto.seal(dek, embedding, aad=AAD))
    blob[where] ^= 0x01
    with pytest.raises(DecryptionError):
        crypto.unseal(dek, bytes(blob), aad=AAD)


@pytest.mark.parametrize("cut", [0, 5, crypto.OVERHEAD - 1, crypto.OVERHEAD + 3])
def test_truncated_blob_fails(cut):
    dek = crypto.new_data_key()
    blob = crypto.seal(dek, b"0123456789", aad=AAD)
    with pytest.raises(DecryptionError):
        crypto.unseal(dek, blob[:cut], aad=AAD)


def test_blob_moved_to_another_row_fails(embedding):
    """The AAD names the place: template 7's face does not open as template 8's."""
    dek = crypto.new_data_key()
    blob = crypto.seal(dek, embedding, aad=b"faceapp/template/7/face")
    with pytest.raises(DecryptionError):
        crypto.unseal(dek, blob, aad=b"faceapp/template/8/face")
    site = SiteKey.generate()
    wrapped = site.wrap(dek, aad=b"faceapp/person/1")
    with pytest.raises(DecryptionError):
        site.unwrap(wrapped, aad=b"faceapp/person/2")


def test_a_wrapped_key_does_not_open_as_sealed_data_under_the_same_bytes():
    """Wrapping and sealing are domain-separated even when the key bytes are the same."""
    site = SiteKey(FIXED_KEY)
    wrapped = site.wrap(crypto.new_data_key(), aad=AAD)
    with pytest.raises(DecryptionError):
        crypto.unseal(FIXED_KEY, wrapped, aad=AAD)
    sealed = crypto.seal(FIXED_KEY, os.urandom(32), aad=AAD)
    with pytest.raises(DecryptionError):
        site.unwrap(sealed, aad=AAD)


def test_decryption_error_is_a_one_line_store_error_without_secrets():
    dek = crypto.new_data_key()
    blob = crypto.seal(dek, b"secret face", aad=AAD)
    with pytest.raises(DecryptionError) as info:
        crypto.unseal(crypto.new_data_key(), blob, aad=AAD)
    msg = str(info.value)
    assert isinstance(info.value, StoreError)
    assert "\n" not in msg and msg
    assert dek.hex() not in msg and base64.b64encode(dek).decode() not in msg
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_keys_of_the_wrong_size_are_refused():
    with pytest.raises(ValueError):
        crypto.seal(b"short", b"x", aad=AAD)
    with pytest.raises(ValueError):
        SiteKey(b"\x00" * 16)
    with pytest.raises(ValueError):
        SiteKey.generate().wrap(b"\x00" * 31, aad=AAD)


# -- key id --------------------------------------------------------------------------------


def test_key_id_is_stable_known_and_short():
    # Known answer: sha256(b"faceapp/key-id/v1\0" + key)[:16 hex]; the database stores it, so it
    # must never change between versions.
    assert SiteKey(FIXED_KEY).key_id == "b2c7aef36b298cba"
    assert SiteKey(FIXED_KEY).key_id == SiteKey(bytes(FIXED_KEY)).key_id


def test_key_id_differs_per_key_and_repr_hides_the_key():
    a, b = SiteKey.generate(), SiteKey.generate()
    assert a.key_id != b.key_id
    assert repr(a) == f"SiteKey(key_id={a.key_id!r})"
    assert FIXED_KEY.hex() not in repr(SiteKey(FIXED_KEY))


# -- the key file --------------------------------------------------------------------------


@posix_only
def test_created_key_file_is_0600_in_a_0700_folder(tmp_path):
    path = tmp_path / "conf" / "sub" / "faceapp.key"
    old = os.umask(0)  # a permissive umask must not matter
    try:
        key = SiteKey.load_or_create(path)
    finally:
        os.umask(old)
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700 and mode(path.parent.parent) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["faceapp.key"]  # no temp file left
    assert SiteKey.load(path) == key


def test_key_file_format_is_printable_text_with_version(tmp_path):
    path = tmp_path / "faceapp.key"
    SiteKey(FIXED_KEY).save(path)
    text = path.read_text("ascii")
    assert key_line(FIXED_KEY) in text
    assert SiteKey(FIXED_KEY).key_id in text  # the comment names the id, for the admin
    assert SiteKey.from_text(text) == SiteKey(FIXED_KEY)


def test_load_or_create_reuses_the_existing_key(tmp_path):
    path = tmp_path / "faceapp.key"
    first = SiteKey.load_or_create(path)
    assert SiteKey.load_or_create(path) == first


def test_default_key_lives_in_the_config_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEAPP_HOME", str(tmp_path))
    key = SiteKey.load_or_create()
    assert crypto.default_key_path() == paths.default_key_file() == paths.config_dir() / "faceapp.key"
    assert SiteKey.load(paths.config_dir() / "faceapp.key") == key
    if os.name == "posix":
        assert mode(paths.config_dir()) == 0o700


def test_save_never_replaces_a_key_file(tmp_path):
    path = tmp_path / "faceapp.key"
    first = SiteKey.generate()
    first.save(path)
    with pytest.raises(StoreError, match="already exists"):
        SiteKey.generate().save(path)
    assert SiteKey.load(path) == first


def test_missing_key_file_is_a_store_error(tmp_path):
    with pytest.raises(StoreError, match="not found"):
        SiteKey.load(tmp_path / "nope.key")


@posix_only
@pytest.mark.parametrize("bits", [0o644, 0o640, 0o604, 0o620])
def test_key_file_accessible_by_others_is_refused_and_left_alone(tmp_path, bits):
    path = tmp_path / "faceapp.key"
    SiteKey.generate().save(path)
    os.chmod(path, bits)
    with pytest.raises(StoreError, match="chmod 600") as info:
        SiteKey.load(path)
    assert f"{bits:04o}" in str(info.value) and "\n" not in str(info.value)
    assert mode(path) == bits  # refused, not silently fixed
    with pytest.raises(StoreError):
        SiteKey.load_or_create(path)  # never replaced by a new key either


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "malformed"),
        ("# only a comment\n", "malformed"),
        ("not a key file at all\n", "malformed"),
        (f"other-key v1 {base64.b64encode(FIXED_KEY).decode()}\n", "malformed"),
        (f"faceapp-key v2 {base64.b64encode(FIXED_KEY).decode()}\n", "unsupported format version"),
        ("faceapp-key v1 ***not-base64***\n", "not valid base64"),
        (f"faceapp-key v1 {base64.b64encode(FIXED_KEY[:16]).decode()}\n", "not 32 bytes"),
        (key_line(FIXED_KEY) * 2, "malformed"),
    ],
)
def test_malformed_key_file_is_refused_without_echoing_it(tmp_path, text, match):
    path = tmp_path / "faceapp.key"
    path.write_text(text)
    os.chmod(path, 0o600)
    with pytest.raises(StoreError, match=match) as info:
        SiteKey.load(path)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg
    assert base64.b64encode(FIXED_KEY).decode() not in msg


def test_binary_or_huge_key_file_is_malformed(tmp_path):
    path = tmp_path / "faceapp.key"
    path.write_bytes(b"\xff\xfe" * 10)
    os.chmod(path, 0o600)
    with pytest.raises(StoreError, match="not text"):
        SiteKey.load(path)
    path.write_text("#" * 10_000)
    with pytest.raises(StoreError, match="too long"):
        SiteKey.load(path)


def test_a_folder_is_not_a_key_file(tmp_path):
    with pytest.raises(StoreError):
        SiteKey.load(tmp_path)


# -- rotation ------------------------------------------------------------------------------


def test_rewrap_moves_a_data_key_to_the_new_site_key():
    old, new = SiteKey.generate(), SiteKey.generate()
    dek = crypto.new_data_key()
    blob = old.wrap(dek, aad=b"faceapp/person/1")
    rewrapped = crypto.rewrap(blob, old, new, aad=b"faceapp/person/1")
    assert new.unwrap(rewrapped, aad=b"faceapp/person/1") == dek
    with pytest.raises(DecryptionError):
        old.unwrap(rewrapped, aad=b"faceapp/person/1")
    with pytest.raises(DecryptionError):
        crypto.rewrap(blob, new, old, aad=b"faceapp/person/1")  # not wrapped with `new`


@posix_only
def test_install_key_keeps_the_old_key_0600_until_commit(tmp_path):
    path = tmp_path / "faceapp.key"
    old = SiteKey.load_or_create(path)
    new = SiteKey.generate()
    backup = crypto.install_key(path, new)
    assert SiteKey.load(path) == new and mode(path) == 0o600
    assert backup.name.startswith("faceapp.key.old-")
    assert SiteKey.load(backup) == old and mode(backup) == 0o600
    assert crypto.find_key(old.key_id, path) == old  # a crash before commit loses nothing
    crypto.commit_rotation(backup)
    assert not backup.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["faceapp.key"]


def test_abort_rotation_restores_the_old_key_and_keeps_the_new_aside(tmp_path):
    path = tmp_path / "faceapp.key"
    old = SiteKey.load_or_create(path)
    new = SiteKey.generate()
    backup = crypto.install_key(path, new)
    aside = crypto.abort_rotation(path, backup)
    assert SiteKey.load(path) == old
    assert not backup.exists()
    assert aside.name.startswith("faceapp.key.new-") and SiteKey.load(aside) == new
    assert crypto.find_key(new.key_id, path) == new


def test_install_key_refuses_an_unreadable_current_key(tmp_path):
    path = tmp_path / "faceapp.key"
    path.write_text("garbage\n")
    os.chmod(path, 0o600)
    with pytest.raises(StoreError, match="malformed"):
        crypto.install_key(path, SiteKey.generate())
    assert path.read_text() == "garbage\n"


def test_find_key_names_a_missing_key(tmp_path, caplog):
    path = tmp_path / "faceapp.key"
    SiteKey.generate().save(path)
    with caplog.at_level(logging.WARNING), pytest.raises(StoreError, match="no key file with id 0123456789abcdef"):
        crypto.find_key("0123456789abcdef", path)


def test_two_rotations_in_one_second_keep_both_backups(tmp_path):
    path = tmp_path / "faceapp.key"
    k0 = SiteKey.load_or_create(path)
    k1, k2 = SiteKey.generate(), SiteKey.generate()
    b1 = crypto.install_key(path, k1)
    b2 = crypto.install_key(path, k2)
    assert b1 != b2
    assert {SiteKey.load(b1), SiteKey.load(b2)} == {k0, k1}
    assert crypto.find_key(k0.key_id, path) == k0


def test_a_rotation_after_an_interrupted_one_leaves_only_the_new_key(tmp_path):
    """A crash after install_key leaves the database on the old key, found among the
    leftovers; the next completed rotation must retire that key too, not only the backup of
    the never-used key that was in the file."""
    path = tmp_path / "faceapp.key"
    used = SiteKey.load_or_create(path)
    crypto.install_key(path, SiteKey.generate())  # the rotation crashed before the database committed
    assert crypto.find_key(used.key_id, path) == used
    new = SiteKey.generate()
    backup = crypto.install_key(path, new)
    crypto.commit_rotation(backup)  # the database now records new.key_id
    assert sorted(p.name for p in tmp_path.iterdir()) == ["faceapp.key"]
    assert SiteKey.load(path) == new
