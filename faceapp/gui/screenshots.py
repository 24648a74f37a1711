"""Drive the real app through every screen and save a screenshot of each (docs/screenshots).

``python -m faceapp.gui.screenshots OUT_DIR`` (run by ``scripts/screenshots.sh`` under Xvfb).
It needs LFW (``$FACEAPP_DATASETS/lfw``) for the faces; everything it writes (database,
settings, videos) goes to a temp folder, never to the user's data. On an X display the
screen is captured with ImageMagick's ``import -window root`` when it is installed, else
with ``QWidget.grab()``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

log = logging.getLogger("faceapp.screenshots")

W, H = 1280, 800
# (person, photo): enrollment photos that face the camera (Tony_Blair_0001 and Jennifer_Aniston_0001 look aside: refused)
ENROLLED = [("Colin_Powell", 1), ("Serena_Williams", 1), ("Donald_Rumsfeld", 1), ("Jennifer_Aniston", 2), ("Tony_Blair", 2)]


def _lfw(name: str, n: int = 1) -> Path:
    root = os.environ.get("FACEAPP_DATASETS")
    path = Path(root or "") / "lfw" / "images" / name / f"{name}_{n:04d}.jpg"
    if not root or not path.is_file():
        raise SystemExit(f"screenshots need LFW: {path} not found (set FACEAPP_DATASETS)")
    return path


def _video(path: Path, photos: list[Path], frames: int = 400, fps: float = 10.0, scale: float = 1.0) -> Path:
    """An MJPG .avi: the photos side by side in a 640x480 frame, repeated."""
    import cv2

    from faceapp.imageio import load_image

    frame = np.full((480, 640, 3), 88, np.uint8)
    imgs = [load_image(p) for p in photos]
    if scale != 1.0:
        imgs = [cv2.resize(i, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) for i in imgs]
    gap = (640 - sum(i.shape[1] for i in imgs)) // (len(imgs) + 1)
    x = gap
    for img in imgs:
        h, w = img.shape[:2]
        y = (480 - h) // 2
        frame[y : y + h, x : x + w] = img
        x += w + gap
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (640, 480))
    bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    for _ in range(frames):
        writer.write(bgr)
    writer.release()
    return path


def _pump(seconds: float) -> None:
    from PySide6.QtCore import QCoreApplication

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QCoreApplication.processEvents()
        time.sleep(0.01)


def _wait(cond, timeout: float, what: str) -> None:
    from PySide6.QtCore import QCoreApplication

    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise SystemExit(f"screenshots: timed out waiting for {what}")
        QCoreApplication.processEvents()
        time.sleep(0.01)


def _shot(widget, out: Path, name: str) -> Path:
    _pump(0.4)
    path = out / f"{name}.png"
    if os.environ.get("DISPLAY") and shutil.which("import") and os.environ.get("QT_QPA_PLATFORM", "xcb") == "xcb":
        subprocess.run(["import", "-window", "root", str(path)], check=True)
    else:
        widget.grab().save(str(path))
    print(f"wrote {path}")
    return path


def _place(win) -> None:
    win.move(0, 0)
    win.resize(W, H)
    win.show()
    win.raise_()
    win.activateWindow()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="folder for the PNG files")
    ap.add_argument(
        "--raw",
        action="store_true",
        help="keep the faces as they are (default: pixelate every face, since the pictures come from LFW "
        "and dataset images are not ours to publish)",
    )
    args = ap.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    work = Path(tempfile.mkdtemp(prefix="faceapp-shots-"))
    os.environ["FACEAPP_HOME"] = str(work / "home")
    os.environ["FACEAPP_SETTINGS"] = str(work / "settings.toml")
    logging.basicConfig(level=logging.WARNING)
    try:
        code = _run(out, work)
        if code == 0 and not args.raw:
            for png in sorted(out.glob("*.png")):
                n = pixelate_faces(png)
                print(f"pixelated {n} face(s) in {png.name}")
        return code
    finally:
        shutil.rmtree(work, ignore_errors=True)


def pixelate_faces(path: Path, *, blocks: int = 7, margin: float = 0.05) -> int:
    """Find faces in a screenshot with the product's own detector and replace each (with a
    margin) by a coarse mosaic, in place. Returns the number of faces pixelated."""
    import numpy as np
    from PIL import Image

    from faceapp.detect.detector import FaceDetector

    img = np.asarray(Image.open(path).convert("RGB")).copy()
    detector = FaceDetector(device="cpu", min_face_size=20, thresholds=(0.6, 0.6, 0.6))
    faces = detector.detect(img)
    h, w = img.shape[:2]
    for d in faces:
        mx, my = d.bbox.width * margin, d.bbox.height * margin
        x1, y1 = max(0, int(d.bbox.x1 - mx)), max(0, int(d.bbox.y1 - my))
        x2, y2 = min(w, int(d.bbox.x2 + mx)), min(h, int(d.bbox.y2 + my))
        region = img[y1:y2, x1:x2]
        if region.size == 0:
            continue
        block = max(4, int(max(d.bbox.width, d.bbox.height) / blocks))  # ~7 blocks across a face
        small = Image.fromarray(region).resize((max(1, region.shape[1] // block), max(1, region.shape[0] // block)), Image.Resampling.BILINEAR)
        img[y1:y2, x1:x2] = np.asarray(small.resize((region.shape[1], region.shape[0]), Image.Resampling.NEAREST))
    Image.fromarray(img).save(path)
    return len(faces)


def _run(out: Path, work: Path) -> int:
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    from faceapp.config import Settings
    from faceapp.door import DoorMode
    from faceapp.gui.app import _qt_app, build
    from faceapp.gui.window import MainWindow

    live_video = _video(work / "live.avi", [_lfw("Colin_Powell", 2), _lfw("Gerhard_Schroeder", 1)])
    door_video = _video(work / "door.avi", [_lfw("Serena_Williams", 2)])
    stranger_video = _video(work / "stranger.avi", [_lfw("Gerhard_Schroeder", 2)])
    far_video = _video(work / "far.avi", [_lfw("Serena_Williams", 2)], scale=0.45)

    # The "camera" here is a video of a still LFW photo, which the anti-spoofing check rightly
    # calls a photo (ACCESS DENIED, "Photo or screen detected"); the walk-through shows the other
    # screens, so it runs without that check (docs/antispoof.md has what the check does).
    settings = Settings(
        device="cpu", db_url=f"sqlite:///{work / 'faceapp.db'}", camera=str(live_video),
        door_frames=3, door_timeout_s=20.0, door_reset_s=60.0, antispoof=False,
    )
    app = _qt_app()
    ctx, win = build(settings)
    _place(win)
    ctx.start()
    _wait(lambda: ctx.ready, 180, "the face models")
    for name, n in ENROLLED:
        ctx.service.enroll(name.replace("_", " "), _lfw(name, n))
    ctx.people_changed.emit()

    # Live: one enrolled person and one stranger.
    win.show_page(win.live)
    _wait(lambda: ctx.camera.last is not None and len(ctx.camera.last.result.faces) == 2, 60, "live frames")
    _pump(2.0)
    _shot(win, out, "live")

    # Live with the 68-point landmarks, head pose and eye opening.
    win.live.landmarks_box.setChecked(True)
    _wait(lambda: ctx.camera.last is not None and ctx.camera.last.landmarks is not None, 60, "landmarks")
    _pump(2.0)
    _shot(win, out, "live_landmarks")
    win.live.landmarks_box.setChecked(False)

    # Enroll: a new person's photo, checked, with a name typed.
    page = win.enroll
    win.show_page(page)
    done = []
    page.analysed.connect(lambda p: done.append(p))
    page.load_file(_lfw("Gerhard_Schroeder", 1))
    _wait(lambda: done, 60, "the photo check")
    page.name_edit.setText("Gerhard Schroeder")
    _shot(win, out, "enroll")

    win.show_page(win.people)
    win.people.select("Jennifer Aniston")
    _shot(win, out, "people")

    win.show_page(win.settings)
    _shot(win, out, "settings")

    # Door (kiosk), recognize mode: granted, then a stranger denied.
    win.show_page(win.log)  # no camera page in the main window while the kiosk runs
    win.hide()
    ctx.settings = dataclasses.replace(ctx.settings, camera=str(door_video))
    kiosk = MainWindow(ctx, kiosk=True, door_mode=DoorMode.RECOGNIZE)
    decided = []
    kiosk.door.decided.connect(lambda o: decided.append(o))
    _place(kiosk)
    _wait(lambda: decided, 60, "the door's decision")
    _shot(kiosk, out, "door")

    ctx.camera.stop(wait=True)
    ctx.camera.start(str(stranger_video))
    kiosk.door.cancel()
    _wait(lambda: len(decided) == 2, 60, "the door's second decision")
    _shot(kiosk, out, "door_denied")

    # Door, recognize mode, while it watches: someone too far away is told to come closer.
    ctx.camera.stop(wait=True)
    ctx.camera.start(str(far_video))
    kiosk.door.cancel()
    _wait(lambda: kiosk.door.prompt.text() == "Please come closer", 60, "the 'come closer' message")
    _pump(1.0)
    _shot(kiosk, out, "door_watch")

    # Door, verify mode: the name field with completion.
    kiosk.door.set_mode(DoorMode.VERIFY)
    ctx.camera.stop(wait=True)
    ctx.camera.start(str(door_video))
    _pump(1.5)
    kiosk.door.name_edit.setFocus()
    QTest.keyClicks(kiosk.door.name_edit, "ser")
    _pump(0.5)
    _shot(kiosk, out, "door_verify")
    QTest.keyClick(kiosk.door.name_edit, Qt.Key.Key_Escape)

    # Door with liveness on: the challenge is asked for (a still photo cannot meet it).
    kiosk.door.set_mode(DoorMode.RECOGNIZE)
    ctx.camera.stop(wait=True)
    ctx.apply_settings(dataclasses.replace(ctx.settings, liveness=True, liveness_time_limit_s=15.0))
    ctx.camera.start(str(door_video))
    kiosk.door.cancel()
    _wait(lambda: kiosk.door.machine.state.confirmed, 60, "the identity before the liveness challenge")
    _pump(1.0)
    _shot(kiosk, out, "door_liveness")
    ctx.camera.stop(wait=True)
    ctx.apply_settings(dataclasses.replace(ctx.settings, liveness=False))
    kiosk.hide()

    _place(win)
    win.log.apply_filters()
    _shot(win, out, "log")
    win.close()
    ctx.shutdown()  # as the app does on exit: workers stopped, store closed, networks released
    app.processEvents()
    return 0


if __name__ == "__main__":
    sys.exit(main())
