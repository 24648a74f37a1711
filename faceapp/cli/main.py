"""``faceapp`` command line: enroll, verify, identify, people, remove, events, db, eval, benchmark.

Every command takes ``--db URL`` and ``--json``. Exit codes: see :mod:`faceapp.cli.exit_codes`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from faceapp import __version__
from faceapp.cli.exit_codes import DECISION_EXIT, Exit, for_error
from faceapp.errors import AlreadyEnrolled, FaceAppError, FaceRejected

log = logging.getLogger("faceapp.cli")

EXIT_CODES_HELP = "exit codes: " + ", ".join(f"{int(e)}={e.name.lower()}" for e in Exit)


# -- helpers ---------------------------------------------------------------------------------
def _settings(args: argparse.Namespace):
    from faceapp.config import load_settings

    s = load_settings()
    return s.replace(
        db_url=getattr(args, "db", None),
        device=getattr(args, "device", None),
        threshold=getattr(args, "threshold", None),
        model=getattr(args, "model", None),
    )


def _service(args: argparse.Namespace):
    from faceapp.services import FaceService

    return FaceService(_settings(args))


def _emit(args: argparse.Namespace, payload: dict[str, Any], text: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(payload, indent=2, default=str))
    else:
        print(text)


def _quality_dict(q) -> dict[str, Any] | None:
    if q is None:
        return None
    return {
        "ok": q.ok,
        "issues": [i.value for i in q.issues],
        "face_size": round(q.face_size, 1),
        "brightness": round(q.brightness, 1),
        "sharpness": round(q.sharpness, 1),
        "score": round(q.score, 4),
    }


def _fmt(d: float | None) -> str:
    return "-" if d is None else f"{d:.4f}"


# -- commands --------------------------------------------------------------------------------
def cmd_enroll(args: argparse.Namespace) -> int:
    with _service(args) as svc:
        try:
            res = svc.enroll(args.name, args.image, largest=args.largest, force=args.force, replace=args.replace)
        except FaceRejected as exc:
            payload = {"enrolled": False, "decision": exc.decision.value, "error": str(exc), "quality": _quality_dict(exc.quality)}
            if args.json:
                print(json.dumps(payload, indent=2))
            print(f"faceapp: not enrolled: {exc}", file=sys.stderr)
            return int(DECISION_EXIT[exc.decision])
        except AlreadyEnrolled as exc:
            if args.json:
                print(json.dumps({"enrolled": False, "error": str(exc), "matches": exc.name, "distance": exc.distance}, indent=2))
            print(f"faceapp: not enrolled: {exc}", file=sys.stderr)
            return int(Exit.ALREADY_ENROLLED)
        if res.similar_to:
            print(f"faceapp: warning: the face matches {res.similar_to} (distance {res.similar_distance:.3f}); enrolled anyway (--force)", file=sys.stderr)
        payload = {
            "enrolled": True,
            "name": res.person.name,
            "replaced": res.replaced,
            "model_id": svc.engine.model_id,
            "quality": _quality_dict(res.quality),
            "similar_to": res.similar_to,
        }
        _emit(args, payload, f"enrolled {res.person.name} (quality: {res.quality.describe()})")
    return int(Exit.OK)


def cmd_verify(args: argparse.Namespace) -> int:
    with _service(args) as svc:
        r = svc.verify(args.name, args.image, largest=args.largest)
        payload = {
            "decision": r.decision.value,
            "granted": r.granted,
            "name": r.claimed,
            "distance": r.distance,
            "threshold": r.threshold,
            "quality": _quality_dict(r.quality),
        }
        text = {
            "match": f"MATCH: {r.claimed} (distance {_fmt(r.distance)} <= {r.threshold:.4f})",
            "no_match": f"NO MATCH: not {r.claimed} (distance {_fmt(r.distance)} > {r.threshold:.4f})",
        }.get(r.decision.value, f"{r.decision.value.upper().replace('_', ' ')}" + (f": {r.quality.describe()}" if r.quality else ""))
        _emit(args, payload, text)
        return int(DECISION_EXIT[r.decision])


def cmd_identify(args: argparse.Namespace) -> int:
    with _service(args) as svc:
        r = svc.identify(args.image, largest=args.largest, top_k=args.top_k)
        payload = {
            "decision": r.decision.value,
            "granted": r.granted,
            "name": r.name,
            "distance": r.distance,
            "threshold": r.threshold,
            "candidates": [{"name": c.name, "distance": c.distance} for c in r.candidates],
            "quality": _quality_dict(r.quality),
        }
        if r.decision.value == "match":
            text = f"RECOGNIZED: {r.name} (distance {_fmt(r.distance)} <= {r.threshold:.4f})"
        elif r.decision.value == "not_recognized":
            text = f"NOT RECOGNIZED (nearest distance {_fmt(r.distance)} > {r.threshold:.4f})"
        else:
            text = r.decision.value.upper().replace("_", " ") + (f": {r.quality.describe()}" if r.quality else "")
        if r.candidates and not args.json:
            text += "\n" + "\n".join(f"  {i + 1}. {c.name:30s} {c.distance:.4f}" for i, c in enumerate(r.candidates))
        _emit(args, payload, text)
        return int(DECISION_EXIT[r.decision])


def _store(args: argparse.Namespace):
    from faceapp.store.repository import Store

    return Store(_settings(args).resolved_db_url)


def cmd_people(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        people = store.list_people(args.search)
        payload = {
            "people": [
                {"name": p.name, "templates": p.template_count, "enrolled": p.created_at.isoformat()} for p in people
            ]
        }
        lines = [f"{p.name:30s} {p.template_count} template(s)  enrolled {p.created_at:%Y-%m-%d %H:%M}" for p in people]
        _emit(args, payload, "\n".join(lines) if lines else "nobody is enrolled")
    finally:
        store.close()
    return int(Exit.OK)


def cmd_remove(args: argparse.Namespace) -> int:
    with _service(args) as svc:
        svc.store.get_person(args.name)
        if not args.yes and sys.stdin.isatty():
            answer = input(f"Remove {args.name} and all of their data? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("nothing removed")
                return int(Exit.OK)
        n = svc.remove(args.name)
        _emit(args, {"removed": args.name, "templates": n}, f"removed {args.name} ({n} template(s), their face crops and events)")
    return int(Exit.OK)


def cmd_events(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    from faceapp.types import Decision

    def when(s: str | None):
        if not s:
            return None
        dt = datetime.fromisoformat(s)
        return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)

    store = _store(args)
    try:
        events = store.events(
            person=args.person,
            decision=Decision(args.decision) if args.decision else None,
            since=when(args.since),
            until=when(args.until),
            limit=args.limit,
        )
    finally:
        store.close()
    rows = [
        {
            "time": e.time.isoformat(),
            "kind": e.kind,
            "decision": e.decision.value if e.decision else None,
            "claimed": e.claimed,
            "decided": e.decided,
            "distance": e.distance,
            "threshold": e.threshold,
            "detail": e.detail,
        }
        for e in events
    ]
    if args.csv:
        import csv

        with open(args.csv, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["time"])
            w.writeheader()
            w.writerows(rows)
    lines = [
        f"{r['time'][:19]}  {r['kind']:8s} {r['decision'] or '-':15s} claimed={r['claimed'] or '-'} decided={r['decided'] or '-'} d={_fmt(r['distance'])} {r['detail']}"
        for r in rows
    ]
    _emit(args, {"events": rows}, "\n".join(lines) if lines else "no events")
    return int(Exit.OK)


def cmd_db(args: argparse.Namespace) -> int:
    if args.action == "reembed":
        with _service(args) as svc:
            n = svc.reembed()
            _emit(args, {"reembedded": n}, f"re-embedded {n} template(s) with {svc.engine.model_id}")
        return int(Exit.OK)
    store = _store(args)  # opening the store upgrades the schema to head
    try:
        info = store.info()
    finally:
        store.close()
    if args.action == "upgrade":
        _emit(args, info, f"database at revision {info.get('revision')} (head {info.get('head')})")
    else:
        _emit(args, info, "\n".join(f"{k}: {v}" for k, v in info.items()))
    return int(Exit.OK)


def cmd_settings(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from faceapp.config import render_settings, settings_path

    s = _settings(args)
    if args.json:
        print(json.dumps({"path": str(settings_path()), **asdict(s)}, indent=2))
    else:
        print(f"# file: {settings_path()}\n" + render_settings(s))
    return int(Exit.OK)


def _lazy(module: str, func: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        import importlib

        return getattr(importlib.import_module(module), func)(args)

    return run


# -- parser ----------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", metavar="URL", help="database URL (default: env FACEAPP_DB, then the settings, then the user's data folder)")
    common.add_argument("--json", action="store_true", help="print machine-readable JSON")
    common.add_argument("--device", choices=["auto", "cpu", "cuda"], help="where networks run (default: auto)")
    common.add_argument("--model", help="embedding model id (default: the settings' model)")
    common.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")

    p = argparse.ArgumentParser(
        prog="faceapp",
        description="Face verification (1:1) and recognition (1:K) from one-photo enrollments.",
        epilog=EXIT_CODES_HELP,
    )
    p.add_argument("--version", action="version", version=f"faceapp {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, func, help: str, **kw) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, parents=[common], help=help, description=help, epilog=EXIT_CODES_HELP, **kw)
        sp.set_defaults(func=func)
        return sp

    sp = add("enroll", cmd_enroll, "enroll a person from ONE photo")
    sp.add_argument("name")
    sp.add_argument("image")
    sp.add_argument("--largest", action="store_true", help="use the largest face when there are several")
    sp.add_argument("--force", action="store_true", help="enroll even if the face already matches another person")
    sp.add_argument("--replace", action="store_true", help="re-enroll an existing person with this photo")

    sp = add("verify", cmd_verify, "1:1 - is the face in IMAGE the enrolled NAME? (exit 0 only on a match)")
    sp.add_argument("name")
    sp.add_argument("image")
    sp.add_argument("--threshold", type=float, help="max squared distance for a match (default: the model's calibrated value)")
    sp.add_argument("--largest", action="store_true", help="use the largest face when there are several")

    sp = add("identify", cmd_identify, "1:K - who is the face in IMAGE? (exit 0 only when recognized)")
    sp.add_argument("image")
    sp.add_argument("--threshold", type=float, help="max squared distance for a match")
    sp.add_argument("--top-k", type=int, default=None, help="how many nearest people to list (default 5)")
    sp.add_argument("--largest", action="store_true", help="use the largest face when there are several")

    sp = add("people", cmd_people, "list the enrolled people")
    sp.add_argument("--search", help="case-insensitive part of a name")

    sp = add("remove", cmd_remove, "remove a person and all of their data")
    sp.add_argument("name")
    sp.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")

    sp = add("events", cmd_events, "the decision log")
    sp.add_argument("--person")
    sp.add_argument("--decision", choices=[d.value for d in __import__("faceapp.types", fromlist=["Decision"]).Decision])
    sp.add_argument("--since", help="ISO date/time, e.g. 2026-11-01")
    sp.add_argument("--until", help="ISO date/time")
    sp.add_argument("--limit", type=int)
    sp.add_argument("--csv", metavar="FILE", help="also write the events to a CSV file")

    sp = add("db", cmd_db, "database maintenance: upgrade (to the latest schema), info, reembed (with the current model)")
    sp.add_argument("action", choices=["upgrade", "info", "reembed"])

    add("settings", cmd_settings, "show the settings in force, with what each one means")

    for name, func, text in (
        ("gui", "cmd_gui", "start the desktop app"),
        ("door", "cmd_door", "start straight into the door screen, full screen"),
    ):
        sp = add(name, _lazy("faceapp.gui.app", func), text)
        sp.add_argument("--camera", metavar="SRC", help="device index, video file or image folder (default: the settings' camera)")
        sp.add_argument("--windowed", action="store_true", help="door: do not go full screen")
        sp.add_argument("--mode", choices=["verify", "recognize"], help="door: start in this mode")

    from faceapp.cli.cnn_commands import add_parsers as add_cnn_parsers

    add_cnn_parsers(add)

    sp = add("eval", _lazy("faceapp.cli.evaluate", "cmd_eval"), "accuracy on LFW or on any list of pairs")
    sp.add_argument("dataset", choices=["lfw", "pairs"])
    sp.add_argument("pairs_file", nargs="?", help="for 'pairs': a CSV with path_a,path_b,same[,fold]")
    sp.add_argument("--view", choices=["devtest", "devtrain", "10fold"], default="devtest", help="LFW protocol (default devtest)")
    sp.add_argument("--lfw", metavar="DIR", help="LFW folder (default: $FACEAPP_DATASETS/lfw)")
    sp.add_argument("--plot", metavar="PNG", help="write the ROC curve here (and the distance histograms beside it)")
    sp.add_argument("--limit", type=int, help="use only the first N pairs (quick checks)")
    sp.add_argument("--no-cache", action="store_true", help="do not read or write the aligned-face cache")
    sp.add_argument("--compare-to", metavar="MODEL", help="also score the pairs with MODEL (A) and test whether --model (B) "
                    "differs from it beyond noise: exact McNemar test, exact 95%% interval of the accuracy difference, "
                    "paired bootstrap 95%% interval of the TAR@FAR1e-2 difference")
    sp.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples for --compare-to (default 2000)")

    sp = add("train", _lazy("faceapp.cli.train", "cmd_train"), "train, export and calibrate embedding models (faceapp train ACTION --help)")
    sp.add_argument("action", choices=["cache", "fit", "head", "export", "calibrate", "shard", "merge"])
    sp.add_argument("rest", nargs=argparse.REMAINDER, help="the action's arguments")

    from faceapp.cli.landmarks import add_arguments as _landmark_arguments

    sp = add("landmarks", _lazy("faceapp.cli.landmarks", "cmd_landmarks"), "the 68-point landmark CNN: train it, or eval it on 300-W (vs dlib)")
    _landmark_arguments(sp)

    sp = add("benchmark", _lazy("faceapp.cli.benchmark", "cmd_benchmark"), "latency of the pipeline and of gallery search on this machine")
    sp.add_argument("--runs", type=int, default=20, help="timed runs per measurement (median reported)")
    sp.add_argument("--sizes", default="1000,100000,1000000", help="gallery sizes for identify timing")
    sp.add_argument("--image", help="a face photo to place in the 640x480 frame (default: an LFW photo from $FACEAPP_DATASETS)")
    sp.add_argument("--video", help="a 640x480 video for the live-loop measurement (default: one made from --image)")
    sp.add_argument("--frames", type=int, default=60, help="frames of the live loop to time")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(getattr(args, "verbose", 0), 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return int(Exit.OK)
    try:
        return int(args.func(args))
    except FaceAppError as exc:
        print(f"faceapp: {exc}", file=sys.stderr)
        return int(for_error(exc))
    except KeyboardInterrupt:
        print("faceapp: interrupted", file=sys.stderr)
        return int(Exit.INTERRUPTED)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
