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
    """The settings in force: file, environment, then this command's flags, all parsed strictly."""
    from faceapp.config import load_settings, override

    flags = {"db_url": ("db", "--db"), "device": ("device", "--device"),
             "threshold": ("threshold", "--threshold"), "model": ("model", "--model"),
             "threads": ("threads", "--threads")}
    settings = override(
        load_settings(),
        {name: getattr(args, attr, None) for name, (attr, _) in flags.items()},
        {name: flag for name, (_, flag) in flags.items()},
    )
    if getattr(args, "threshold", None) is not None and not getattr(args, "_threshold_warned", False):
        args._threshold_warned = True
        _warn_threshold(settings)
    if (settings.threshold is not None and settings.threshold_for(settings.model) is None
            and not getattr(args, "_threshold_noted", False)):
        args._threshold_noted = True
        print(f"faceapp: note: the threshold {settings.threshold:g} was set for {settings.threshold_model}; "
              f"{settings.model} uses its own calibrated threshold", file=sys.stderr)
    return settings


def _warn_threshold(settings) -> None:
    """One line on stderr when --threshold lets in more than 1 stranger in 100 (the model's
    calibration curve), or is looser than a model without a curve was measured at."""
    from faceapp.embed.weights import load_spec
    from faceapp.threshold_guard import assess

    try:
        spec = load_spec(settings.model)
    except FaceAppError:
        return  # the command itself reports a missing model
    text = assess(spec, settings.threshold).warning()
    if text:
        print(f"faceapp: warning: --threshold: {text}", file=sys.stderr)


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
            res = svc.enroll(args.name, args.image, largest=args.largest, force=args.force, replace=args.replace,
                             add=args.add)
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
        if res.warning:  # a look-alike: near, but not near enough to be taken for them
            print(f"faceapp: warning: {res.warning}", file=sys.stderr)
        elif res.similar_to:
            print(f"faceapp: warning: the face matches {res.similar_to} (distance {res.similar_distance:.3f}); enrolled anyway (--force)", file=sys.stderr)
        payload = {
            "enrolled": True,
            "name": res.person.name,
            "replaced": res.replaced,
            "added": args.add,
            "templates": res.person.template_count,
            "model_id": svc.engine.model_id,
            "quality": _quality_dict(res.quality),
            "similar_to": res.similar_to,
        }
        done = (f"added a photo to {res.person.name} ({res.person.template_count} photos)" if args.add
                else f"enrolled {res.person.name}")
        _emit(args, payload, f"{done} (quality: {res.quality.describe()})")
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


def _identify_text(r) -> str:
    """The first line of ``faceapp identify``: the decision, the distance, the threshold in force
    for this gallery size (and tau, its cap) and the margin to the second-nearest person."""
    if r.decision.value not in ("match", "not_recognized"):
        return r.decision.value.upper().replace("_", " ") + (f": {r.quality.describe()}" if r.quality else "")
    if r.distance is None:
        return f"NOT RECOGNIZED (nobody is enrolled; threshold {r.threshold:.4f})"
    people = f"the threshold for {r.people} {'person' if r.people == 1 else 'people'}" if r.people else "the threshold"
    tau = f"; tau {r.tau:.4f}" if r.tau is not None else ""
    if r.decision.value == "match":
        second = r.candidates[1].name if len(r.candidates) > 1 else "the second-nearest"
        margin = f"; margin {r.margin:.4f} to {second}" if r.margin is not None else ""
        return f"RECOGNIZED: {r.name} (distance {_fmt(r.distance)} <= {r.threshold:.4f}, {people}{margin}{tau})"
    if r.ambiguous:
        first = r.candidates[0].name
        second = r.candidates[1].name if len(r.candidates) > 1 else "the second-nearest"
        return (f"NOT RECOGNIZED ({first} {_fmt(r.distance)} and {second} {_fmt(r.second)}: nearest within "
                f"{r.threshold:.4f}, {people}, but margin {r.margin:.4f} < {r.min_margin:.4f}{tau})")
    return f"NOT RECOGNIZED (nearest distance {_fmt(r.distance)} > {r.threshold:.4f}, {people}{tau})"


def cmd_identify(args: argparse.Namespace) -> int:
    with _service(args) as svc:
        r = svc.identify(args.image, largest=args.largest, top_k=args.top_k)
        payload = {
            "decision": r.decision.value,
            "granted": r.granted,
            "name": r.name,
            "distance": r.distance,
            "threshold": r.threshold,  # the recognize threshold for this gallery size
            "tau": r.tau,
            "people": r.people,
            "second": r.second,
            "margin": r.margin,
            "min_margin": r.min_margin,
            "ambiguous": r.ambiguous,
            "candidates": [{"name": c.name, "distance": c.distance} for c in r.candidates],
            "quality": _quality_dict(r.quality),
        }
        text = _identify_text(r)
        if r.candidates and not args.json:
            text += "\n" + "\n".join(f"  {i + 1}. {c.name:30s} {c.distance:.4f}" for i, c in enumerate(r.candidates))
        _emit(args, payload, text)
        return int(DECISION_EXIT[r.decision])


def _store(args: argparse.Namespace):
    from faceapp.storage import open_store

    return open_store(_settings(args).resolved_db_url)


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
            answer = input(f"Remove {args.name} and their face data? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("nothing removed")
                return int(Exit.OK)
        n = svc.remove(args.name)
        _emit(args, {"removed": args.name, "templates": n}, f"removed {args.name}: {n} template(s) and their face photos erased; their logged events are kept")
    return int(Exit.OK)


def cmd_events(args: argparse.Namespace) -> int:
    from faceapp.types import Decision

    if args.action == "verify":
        from faceapp.cli.data_commands import verify_events

        return verify_events(args)
    store = _store(args)
    try:
        events = store.events(
            person=args.person,
            decision=Decision(args.decision) if args.decision else None,
            since=args.since,
            until=args.until,
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
    if args.action == "rotate-key":
        from faceapp.cli.data_commands import rotate_key

        return rotate_key(args)
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

    from faceapp.config import render_settings, settings_path, shown

    s = _settings(args)
    if args.json:
        print(json.dumps({"path": str(settings_path()), **{k: shown(k, v) for k, v in asdict(s).items()}}, indent=2))
    else:
        print(f"# file: {settings_path()}\n" + render_settings(s, redact=True))
    return int(Exit.OK)


def _read_new_pin() -> str:
    """The new admin PIN: typed twice without echo at a terminal, else the first line of stdin."""
    from faceapp.errors import ConfigError

    if sys.stdin is not None and sys.stdin.isatty():
        import getpass

        pin = getpass.getpass("New admin PIN: ")
        if getpass.getpass("The same PIN again: ") != pin:
            raise ConfigError("the two PINs differ: nothing was changed")
        return pin
    line = sys.stdin.readline() if sys.stdin is not None else ""
    if not line:
        raise ConfigError("no PIN on stdin: nothing was changed")
    return line.rstrip("\r\n")


def cmd_admin(args: argparse.Namespace) -> int:
    """``faceapp admin set-pin`` / ``clear-pin``: the PIN the kiosk and the admin pages ask for."""
    from faceapp.admin import ADMIN_EVENT_KIND, AdminPin

    pin = AdminPin()
    if args.action == "set-pin":
        had = pin.is_set
        pin.set(_read_new_pin())
        what = "admin PIN changed" if had else "admin PIN set"
        payload = {"pin_set": True, "path": str(pin.path)}
    else:
        removed = pin.clear()
        what = "admin PIN cleared" if removed else "admin PIN cleared (none was set)"
        payload = {"pin_set": False, "removed": removed, "path": str(pin.path)}
    try:  # the access log says who changed the lock-down, as far as it can be opened
        store = _store(args)
        try:
            store.log_event(ADMIN_EVENT_KIND, detail=f"{what} from the command line")
        finally:
            store.close()
    except FaceAppError as exc:
        print(f"faceapp: warning: {what}, but it could not be logged: {_one_line(exc, 200)}", file=sys.stderr)
    _emit(args, payload, f"{what} ({pin.path})")
    return int(Exit.OK)


# -- argument types (a bad value is a usage error: exit 2, one line) ----------------------------
def _int_in(low: int, high: int | None = None) -> Callable[[str], int]:
    allowed = f"an integer from {low} to {high}" if high is not None else f"an integer, at least {low}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {allowed}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{text!r} is not {allowed}")
        return value

    parse.__name__ = "integer"
    return parse


def _iso_time(text: str):
    """An ISO date or date/time; a time without a zone is UTC."""
    from datetime import datetime, timezone

    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO date/time (e.g. 2026-11-01, 2026-11-01T08:30 or 2026-11-01T08:30+01:00)"
        ) from None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _int_list(text: str) -> str:
    """Comma-separated positive integers (kept as the text the command splits)."""
    parts = [p.strip() for p in text.split(",")]
    if not parts or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of positive integers")
    return text


def _output_file(text: str) -> str:
    """A file to write: its folder must exist, and it must not be a folder itself."""
    from pathlib import Path

    path = Path(text)
    try:
        if path.is_dir():
            raise argparse.ArgumentTypeError(f"{text!r} is a folder, not a file")
        parent = path.parent
        if not parent.is_dir():
            raise argparse.ArgumentTypeError(f"{text!r}: the folder {str(parent)!r} does not exist")
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"{text[:80]!r}...: {exc.strerror or exc}") from None
    if not os.access(parent, os.W_OK):
        raise argparse.ArgumentTypeError(f"{text!r}: the folder {str(parent)!r} is not writable")
    return text


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error as ONE line on stderr (exit 2): scripts read the last line."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(int(Exit.USAGE), f"{self.prog}: {message} (see {self.prog} --help)\n")


def _lazy(module: str, func: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        import importlib

        return getattr(importlib.import_module(module), func)(args)

    return run


# -- parser ----------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--db", metavar="URL", help="database URL (default: env FACEAPP_DB, then the settings, then the user's data folder)")
    common.add_argument("--json", action="store_true", help="print machine-readable JSON")
    common.add_argument("--device", choices=["auto", "cpu", "cuda"], help="where networks run (default: auto)")
    common.add_argument("--model", help="embedding model id (default: the settings' model)")
    common.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")

    p = _Parser(
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
    how = sp.add_mutually_exclusive_group()
    how.add_argument("--replace", action="store_true", help="re-enroll an existing person with this photo")
    how.add_argument("--add", action="store_true",
                     help="add this photo to an enrolled person (verify and identify use their nearest photo)")

    sp = add("verify", cmd_verify, "1:1 - is the face in IMAGE the enrolled NAME? (exit 0 only on a match)")
    sp.add_argument("name")
    sp.add_argument("image")
    sp.add_argument("--threshold", metavar="TAU", help="max squared distance for a match, 0..4 (default: the model's calibrated value)")
    sp.add_argument("--largest", action="store_true", help="use the largest face when there are several")

    sp = add("identify", cmd_identify, "1:K - who is the face in IMAGE? (exit 0 only when recognized; decided as the "
             "door decides: the threshold for the gallery's size, and a margin to the second-nearest)")
    sp.add_argument("image")
    sp.add_argument("--threshold", metavar="TAU",
                    help="tau, 0..4: the cap of the recognize threshold, which is lower for larger galleries")
    sp.add_argument("--top-k", type=_int_in(1, 50), default=None, help="how many nearest people to list, 1..50 (default: the settings' top_k)")
    sp.add_argument("--largest", action="store_true", help="use the largest face when there are several")

    sp = add("people", cmd_people, "list the enrolled people")
    sp.add_argument("--search", help="case-insensitive part of a name")

    sp = add("remove", cmd_remove, "remove a person and all of their data")
    sp.add_argument("name")
    sp.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")

    sp = add("events", cmd_events, "the decision log: list it (default), or verify that nobody rewrote it")
    sp.add_argument("action", nargs="?", choices=["list", "verify"], default="list",
                    help="list (default) or verify: check the log's hash chain; exit 15 naming the first event "
                    "that was edited, deleted or inserted")
    sp.add_argument("--person")
    sp.add_argument("--decision", choices=[d.value for d in __import__("faceapp.types", fromlist=["Decision"]).Decision])
    sp.add_argument("--since", type=_iso_time, help="ISO date/time, e.g. 2026-11-01 (UTC unless a zone is given)")
    sp.add_argument("--until", type=_iso_time, help="ISO date/time")
    sp.add_argument("--limit", type=_int_in(1), help="at most this many events, newest first")
    sp.add_argument("--csv", metavar="FILE", type=_output_file, help="also write the events to a CSV file")

    sp = add("db", cmd_db, "database maintenance: upgrade (to the latest schema), info, reembed (with the current "
             "model), rotate-key (a new site key for the sealed faces; back the key file up afterwards)")
    sp.add_argument("action", choices=["upgrade", "info", "reembed", "rotate-key"])

    add("settings", cmd_settings, "show the settings in force, with what each one means")

    sp = add("admin", cmd_admin, "the admin PIN that the door kiosk asks for before it can be left, and faceapp gui "
             "before it opens: set-pin (typed twice without echo, or the first line of stdin) or clear-pin")
    sp.add_argument("action", choices=["set-pin", "clear-pin"])

    for name, func, text in (
        ("gui", "cmd_gui", "start the desktop app"),
        ("door", "cmd_door", "start straight into the door screen, full screen (--headless: a door without a screen)"),
    ):
        sp = add(name, _lazy("faceapp.gui.app", func), text)
        sp.add_argument("--camera", metavar="SRC", help="device index, video file or image folder (default: the settings' camera)")
        sp.add_argument("--windowed", action="store_true", help="door: do not go full screen")
        sp.add_argument("--mode", choices=["verify", "recognize"], help="door: start in this mode")
        if name == "door":  # and the door without a screen (faceapp/cli/door_headless.py)
            from faceapp.cli.door_headless import add_arguments as add_door_arguments

            add_door_arguments(sp)

    from faceapp.cli.cnn_commands import add_parsers as add_cnn_parsers

    add_cnn_parsers(add)

    from faceapp.cli.data_commands import add_parsers as add_data_parsers

    add_data_parsers(add)

    sp = add("eval", _lazy("faceapp.cli.evaluate", "cmd_eval"), "accuracy on LFW or on any list of pairs")
    sp.add_argument("dataset", choices=["lfw", "pairs"])
    sp.add_argument("pairs_file", nargs="?", help="for 'pairs': a CSV with path_a,path_b,same[,fold]")
    sp.add_argument("--view", choices=["devtest", "devtrain", "10fold"], default="devtest", help="LFW protocol (default devtest)")
    sp.add_argument("--lfw", metavar="DIR", help="LFW folder (default: $FACEAPP_DATASETS/lfw)")
    sp.add_argument("--plot", metavar="PNG", help="write the ROC curve here (and the distance histograms beside it)")
    sp.add_argument("--limit", type=_int_in(1), help="use only the first N pairs (quick checks)")
    sp.add_argument("--no-cache", action="store_true", help="do not read or write the aligned-face cache")
    sp.add_argument("--compare-to", metavar="MODEL", help="also score the pairs with MODEL (A) and test whether --model (B) "
                    "differs from it beyond noise: exact McNemar test, exact 95%% interval of the accuracy difference, "
                    "paired bootstrap 95%% interval of the TAR@FAR1e-2 difference")
    sp.add_argument("--resamples", type=_int_in(1), default=2000, help="bootstrap resamples for --compare-to (default 2000)")

    sp = add("train", _lazy("faceapp.cli.train", "cmd_train"), "train, export and calibrate embedding models (faceapp train ACTION --help)")
    sp.add_argument("action", choices=["cache", "fit", "head", "export", "calibrate", "shard", "merge"])
    sp.add_argument("rest", nargs=argparse.REMAINDER, help="the action's arguments")

    from faceapp.cli.landmarks import add_arguments as _landmark_arguments

    sp = add("landmarks", _lazy("faceapp.cli.landmarks", "cmd_landmarks"), "the 68-point landmark CNN: train it, or eval it on 300-W (vs dlib)")
    _landmark_arguments(sp)

    sp = add("benchmark", _lazy("faceapp.cli.benchmark", "cmd_benchmark"), "latency of the pipeline and of gallery search on this machine")
    sp.add_argument("--runs", type=_int_in(1), default=20, help="timed runs per measurement (median reported)")
    sp.add_argument("--sizes", type=_int_list, default="1000,100000,1000000", help="gallery sizes for identify timing")
    sp.add_argument("--image", help="a face photo to place in the 640x480 frame (default: an LFW photo from $FACEAPP_DATASETS)")
    sp.add_argument("--video", help="a video (any size) for the live-loop measurement (default: 640x480, made from --image)")
    sp.add_argument("--frames", type=_int_in(1), default=60, help="frames of the live loop to time")
    sp.add_argument("--liveness", action="store_true", help="live loop: also the 68 landmarks per frame (liveness on)")
    sp.add_argument("--no-track", action="store_true", help="live loop: scan every frame whole (no face tracking)")
    sp.add_argument("--threads", type=_int_in(0, 256), help="CPU threads for the networks (the setting threads; 0: every core)")
    return p


def _check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Rules between arguments (usage errors, exit 2)."""
    since, until = getattr(args, "since", None), getattr(args, "until", None)
    if since is not None and until is not None and since > until:
        prog = f"{parser.prog} {args.command}"
        parser.exit(int(Exit.USAGE), f"{prog}: --since ({since.isoformat()}) is after --until ({until.isoformat()}) "
                                     f"(see {prog} --help)\n")


def _one_line(text: object, limit: int = 500) -> str:
    """One line of at most ``limit`` characters; a long one keeps its start and its end (the reason)."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else f"{text[: limit * 2 // 3]} ... {text[-(limit // 3):]}"


def _crash_log(exc: BaseException, argv: Sequence[str] | None) -> str:
    """Write the traceback to a new file in the data folder's log/ (else the temp folder); its path."""
    import tempfile
    import time
    import traceback
    from pathlib import Path

    from faceapp import paths

    stamp = time.strftime("%Y%m%d-%H%M%S")
    text = (
        f"faceapp {__version__} internal error at {time.strftime('%Y-%m-%d %H:%M:%S %z')}\n"
        f"python {sys.version.split()[0]} on {sys.platform}\n"
        f"argv: {list(sys.argv[:1]) + list(argv if argv is not None else sys.argv[1:])!r}\n\n"
        + "".join(traceback.format_exception(exc))
    )
    errors = []
    for folder in (lambda: paths.data_dir() / "log", lambda: Path(tempfile.gettempdir())):
        try:
            path = folder() / f"faceapp-crash-{stamp}-{os.getpid()}.log"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            return str(path)
        except Exception as write_exc:  # noqa: BLE001 - the crash report must not crash
            errors.append(_one_line(write_exc, 100))
    return f"nowhere (the log could not be written: {'; '.join(errors)})"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the faceapp command; returns its exit code (see :mod:`faceapp.cli.exit_codes`).

    Every failure ends in one line on stderr: a FaceAppError with its own exit code, a usage
    error with 2, and anything unexpected (a bug) with 70 and its traceback in a log file,
    never 1 (which scripts read as "no match")."""
    import errno

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        _check_args(parser, args)
        level = logging.WARNING - 10 * min(getattr(args, "verbose", 0), 2)
        logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
        if not getattr(args, "func", None):
            parser.print_help()
            return int(Exit.OK)
        return int(args.func(args))
    except FaceAppError as exc:
        print(f"faceapp: {_one_line(exc)}", file=sys.stderr)
        return int(for_error(exc))
    except KeyboardInterrupt:
        print("faceapp: interrupted", file=sys.stderr)
        return int(Exit.INTERRUPTED)
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            name = str(exc.filename or "")
            short = name if len(name) <= 120 else f"{name[:60]}...{name[-40:]} ({len(name)} characters)"
            print(f"faceapp: {short}: the file name is too long", file=sys.stderr)
            return int(Exit.BAD_INPUT)
        return _internal_error(exc, argv)
    except Exception as exc:  # noqa: BLE001 - a bug: exit 70, never a traceback that reads as an answer
        return _internal_error(exc, argv)


def _internal_error(exc: BaseException, argv: Sequence[str] | None) -> int:
    where = _crash_log(exc, argv)
    log.debug("internal error", exc_info=exc)
    print(f"faceapp: internal error: {type(exc).__name__}: {_one_line(exc, 200)}; details in {where}", file=sys.stderr)
    return int(Exit.SOFTWARE)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
