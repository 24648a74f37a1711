"""The data-integrity commands: ``faceapp gallery export|import``, ``faceapp events verify``
and ``faceapp db rotate-key`` (registered by :func:`add_parsers`; dispatched from main)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from faceapp.cli.exit_codes import Exit


def _store(args: argparse.Namespace):
    from faceapp.cli.main import _store as open_store

    return open_store(args)


def _emit(args: argparse.Namespace, payload: dict, text: str) -> None:
    print(json.dumps(payload, indent=2) if args.json else text)


def _signer(store, key_file: str | None):
    if not key_file:
        return None
    from faceapp.store.crypto import SiteKey

    return store.gallery_signer(SiteKey.load(Path(key_file)))


def cmd_gallery(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        signer = _signer(store, args.site_key)
        if args.action == "export":
            r = store.export_gallery(args.file, signer=signer)
            signed = (signer or store.gallery_signer()).key_id
            if r.left_out:
                print(f"faceapp: warning: left out {len(r.left_out)} enrolled with no templates (enroll them "
                      f"again): {', '.join(repr(n) for n in r.left_out)}", file=sys.stderr)
            _emit(args, {"path": str(r.path), "people": r.people, "templates": r.templates, "signed_by": signed,
                         "left_out": list(r.left_out)},
                  f"exported {r.people} people ({r.templates} template(s)) to {r.path}, signed by key {signed}; "
                  "the file holds their faces: keep it as safe as the database")
            return int(Exit.OK)
        if args.allow_unsigned:
            print("faceapp: warning: importing without checking a signature: the file may be forged", file=sys.stderr)
        r = store.import_gallery(args.file, on_conflict=args.on_conflict, signer=signer,
                                 allow_unsigned=args.allow_unsigned)
        if r.left_out:
            print(f"faceapp: warning: {args.file} lists {r.left_out} people with no templates; they were left out",
                  file=sys.stderr)
        _emit(args, {"added": r.added, "replaced": r.replaced, "skipped": r.skipped, "templates": r.templates,
                     "left_out": r.left_out},
              f"imported {args.file}: {r.added} added, {r.replaced} replaced, {r.skipped} already enrolled kept, "
              f"{r.templates} template(s)")
        return int(Exit.OK)
    finally:
        store.close()


def verify_events(args: argparse.Namespace) -> int:
    """``faceapp events verify``: exit 0 when the whole log verifies and the gallery matches its
    record (no person added, removed or renamed around faceapp), else LOG_TAMPERED."""
    store = _store(args)
    try:
        report = store.verify_events()
        gallery = store.verify_gallery()
    finally:
        store.close()
    _emit(args, {"ok": report.ok, "checked": report.checked, "first_bad_id": report.first_bad_id,
                 "problem": report.problem, "gallery_ok": gallery.ok, "gallery_people": gallery.people,
                 "gallery_templates": gallery.templates, "gallery_problem": gallery.problem},
          f"{report.describe()}\n{gallery.describe()}")
    return int(Exit.OK if report.ok and gallery.ok else Exit.LOG_TAMPERED)


def rotate_key(args: argparse.Namespace) -> int:
    """``faceapp db rotate-key``: a new site key; every data key re-wrapped in one transaction.

    Order (so that no crash can leave the database sealed with a key that is not on disk):
    the new key file is installed (the old one kept beside it), the database re-wraps and
    records the new key id, then the old key file is deleted; a failed re-wrap puts the
    old key file back."""
    from faceapp.errors import StoreError
    from faceapp.store import crypto

    store = _store(args)
    try:
        path = store.key_path
        if path is None:
            raise StoreError("this store was opened with a key given in code, not a key file; nothing to rotate")
        new = crypto.SiteKey.generate()
        old_id = store.site_key_id
        backup = crypto.install_key(path, new)
        try:
            n = store.rotate_site_key(new)
        except BaseException:
            crypto.abort_rotation(path, backup)
            raise
        crypto.commit_rotation(backup)
    finally:
        store.close()
    _emit(args, {"old_key_id": old_id, "new_key_id": new.key_id, "people": n, "key_file": str(path)},
          f"site key {old_id} replaced by {new.key_id} ({n} people's data keys re-wrapped); back up {path} now: "
          "without it the enrolled faces cannot be read")
    return int(Exit.OK)


def add_parsers(add) -> None:
    sp = add("gallery", cmd_gallery, "export or import the enrolled people (signed .zip; imports check every template)")
    sp.add_argument("action", choices=["export", "import"])
    sp.add_argument("file", help="the .zip file to write or read")
    sp.add_argument("--on-conflict", choices=["skip", "replace", "error"], default="skip",
                    help="import: for a name already enrolled keep ours (skip, default), replace ours, or import nothing")
    sp.add_argument("--allow-unsigned", action="store_true",
                    help="import: accept an archive with no signature (it may be forged; its templates are still checked)")
    sp.add_argument("--site-key", metavar="KEYFILE",
                    help="sign (export) or check (import) with another site's key file instead of this site's")
