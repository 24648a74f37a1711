"""The command line: exit codes, JSON, and bad input that leaves the database exactly as it was."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from faceapp.cli.exit_codes import Exit
from faceapp.cli.main import main


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_version_through_python_dash_m():
    out = subprocess.run([sys.executable, "-m", "faceapp", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip().startswith("faceapp 0.")


def test_db_upgrade_and_info_on_a_fresh_file(capsys, db_url):
    code, out, _ = run(capsys, "db", "upgrade", "--db", db_url, "--json")
    info = json.loads(out)
    assert code == 0 and info["revision"] == info["head"]
    code, out, _ = run(capsys, "people", "--db", db_url)
    assert code == 0 and "nobody" in out


def _snapshot(db_url):
    from faceapp.store.repository import Store

    with Store(db_url) as s:
        return (
            [(p.name, p.template_count) for p in s.list_people()],
            [(t.person_name, t.embedding.tobytes(), t.model_id) for t in s.templates()],
            [(e.kind, e.decision, e.claimed, e.decided, e.distance) for e in s.events()],
        )


@pytest.fixture
def enrolled(capsys, db_url, lfw_image):
    code, _, err = run(capsys, "enroll", "George_W_Bush", lfw_image("George_W_Bush", 1), "--db", db_url, "--device", "cpu")
    assert code == 0, err
    return db_url


def _bad_inputs(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "notes.jpg"
    text.write_text("this is not an image")
    Image.new("RGB", (400, 400), (200, 150, 100)).save(tmp_path / "full.jpg")
    cut = tmp_path / "truncated.jpg"
    cut.write_bytes((tmp_path / "full.jpg").read_bytes()[:300])
    huge = tmp_path / "huge.png"  # 16000x16000 = 256 Mpx > MAX_PIXELS: refused from the header
    Image.new("1", (16, 16)).save(huge)
    data = bytearray(huge.read_bytes())
    data[16:24] = (16000).to_bytes(4, "big") * 2  # IHDR width, height (+ its CRC below)
    data[29:33] = __import__("zlib").crc32(bytes(data[12:29])).to_bytes(4, "big")
    huge.write_bytes(bytes(data))
    return {"missing": tmp_path / "nope.jpg", "folder": tmp_path, "empty": empty, "text": text, "truncated": cut,
            "long_name": tmp_path / ("x" * 1000 + ".jpg"), "huge": huge}


@pytest.mark.datasets
@pytest.mark.parametrize("kind", ["missing", "folder", "empty", "text", "truncated", "long_name", "huge"])
@pytest.mark.parametrize("command", ["enroll", "verify", "identify"])
def test_bad_input_is_one_line_and_changes_nothing(capsys, enrolled, tmp_path, kind, command):
    bad = _bad_inputs(tmp_path)[kind]
    before = _snapshot(enrolled)
    argv = {"enroll": ["enroll", "Somebody", bad], "verify": ["verify", "George_W_Bush", bad], "identify": ["identify", bad]}[command]
    code, out, err = run(capsys, *argv, "--db", enrolled, "--device", "cpu")
    assert code == Exit.BAD_INPUT
    assert err.count("\n") == 1 and err.startswith("faceapp: ")
    assert _snapshot(enrolled) == before


@pytest.mark.datasets
def test_verify_exit_codes_and_json(capsys, enrolled, lfw_image):
    code, out, _ = run(capsys, "verify", "George_W_Bush", lfw_image("George_W_Bush", 2), "--db", enrolled, "--json", "--device", "cpu")
    r = json.loads(out)
    assert code == Exit.OK and r["decision"] == "match" and r["distance"] <= r["threshold"]
    code, out, _ = run(capsys, "verify", "George_W_Bush", lfw_image("Colin_Powell", 1), "--db", enrolled, "--json", "--device", "cpu")
    assert code == Exit.NO_MATCH and json.loads(out)["decision"] == "no_match"


@pytest.mark.datasets
def test_identify_json_names_the_person(capsys, enrolled, lfw_image):
    code, out, _ = run(capsys, "identify", lfw_image("George_W_Bush", 3), "--db", enrolled, "--json", "--device", "cpu")
    r = json.loads(out)
    assert code == Exit.OK and r["name"] == "George_W_Bush" and r["decision"] == "match"
    assert {"distance", "threshold", "candidates"} <= set(r)


@pytest.mark.datasets
def test_unknown_person_several_faces_no_face(capsys, enrolled, lfw_image, tmp_path):
    code, _, err = run(capsys, "verify", "Nobody_Here", lfw_image("George_W_Bush", 2), "--db", enrolled)
    assert code == Exit.UNKNOWN_PERSON and "Nobody_Here" in err
    code, _, _ = run(capsys, "verify", "George_W_Bush", lfw_image("John_Ashcroft", 2), "--db", enrolled, "--device", "cpu")
    assert code == Exit.MULTIPLE_FACES
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((200, 200, 3), 90, np.uint8)).save(blank)
    code, _, _ = run(capsys, "identify", blank, "--db", enrolled, "--device", "cpu")
    assert code == Exit.NO_FACE


@pytest.mark.datasets
def test_enrolling_a_known_face_warns_and_needs_force(capsys, enrolled, lfw_image):
    code, _, err = run(capsys, "enroll", "Someone_Else", lfw_image("George_W_Bush", 2), "--db", enrolled, "--device", "cpu")
    assert code == Exit.ALREADY_ENROLLED and "George_W_Bush" in err
    code, _, err = run(capsys, "enroll", "Someone_Else", lfw_image("George_W_Bush", 2), "--db", enrolled, "--force", "--device", "cpu")
    assert code == Exit.OK and "warning" in err


@pytest.mark.datasets
def test_remove_then_people_and_events(capsys, enrolled, lfw_image):
    run(capsys, "verify", "George_W_Bush", lfw_image("George_W_Bush", 2), "--db", enrolled, "--device", "cpu")
    code, out, _ = run(capsys, "events", "--db", enrolled, "--json")
    assert [e["kind"] for e in json.loads(out)["events"]] == ["verify", "enroll"]
    code, out, _ = run(capsys, "remove", "George_W_Bush", "--db", enrolled, "--yes")
    assert code == 0
    code, out, _ = run(capsys, "people", "--db", enrolled, "--json")
    assert json.loads(out)["people"] == []
    code, out, _ = run(capsys, "events", "--db", enrolled, "--json")
    events = json.loads(out)["events"]  # the access log is append-only: removal is one more event
    assert [e["kind"] for e in events] == ["remove", "verify", "enroll"]
    assert events[0]["decided"] == "George_W_Bush"


def test_bad_setting_is_a_config_error(capsys, monkeypatch):
    monkeypatch.setenv("FACEAPP_THRESHOLD", "9")
    code, _, err = run(capsys, "people")
    assert code == Exit.CONFIG and "threshold" in err
    monkeypatch.delenv("FACEAPP_THRESHOLD")
    monkeypatch.setenv("FACEAPP_LIVENESS", "ture")  # a typo used to turn liveness off without a word
    code, _, err = run(capsys, "people")
    assert code == Exit.CONFIG and err.count("\n") == 1 and "'ture' (from FACEAPP_LIVENESS)" in err


@pytest.mark.datasets
def test_eval_pairs_from_a_csv(capsys, lfw_image, tmp_path):
    rows = ["path_a,path_b,same"]
    people = ["George_W_Bush", "Colin_Powell", "Tony_Blair", "Donald_Rumsfeld"]
    for p in people:
        rows.append(f"{lfw_image(p, 1)},{lfw_image(p, 2)},1")
    for a, b in zip(people, people[1:] + people[:1]):
        rows.append(f"{lfw_image(a, 1)},{lfw_image(b, 2)},0")
    csv = tmp_path / "pairs.csv"
    csv.write_text("\n".join(rows) + "\n")
    code, out, _ = run(capsys, "eval", "pairs", csv, "--json", "--device", "cpu", "--plot", tmp_path / "roc.png")
    r = json.loads(out)
    assert code == 0 and r["pairs"] == 8 and r["same_pairs"] == 4
    assert {"accuracy", "auc", "eer", "tar_at_far_1e-3", "threshold"} <= set(r)
    assert r["accuracy"] == 1.0 and r["auc"] == 1.0  # four easy pairs each way
    assert (tmp_path / "roc.png").is_file() and (tmp_path / "roc-distances.png").is_file()
    code, _, err = run(capsys, "eval", "pairs", tmp_path / "missing.csv")
    assert code == Exit.BAD_INPUT and "missing.csv" in err
    code, _, err = run(capsys, "eval", "pairs", csv, "--compare-to", "dlib-resnet-flip-v1")
    assert code == Exit.BAD_INPUT and "10 same and 10 different" in err


@pytest.mark.datasets
def test_eval_compare_to_another_model(capsys, lfw_dir, tmp_path):
    from faceapp.evaluation.protocols import read_lfw_pairs

    pairs = read_lfw_pairs(lfw_dir, "devtest")
    pick = [p for p in pairs if p.same][:10] + [p for p in pairs if not p.same][:10]
    csv = tmp_path / "pairs.csv"
    csv.write_text("path_a,path_b,same\n" + "".join(f"{p.path_a},{p.path_b},{int(p.same)}\n" for p in pick))
    code, out, _ = run(capsys, "eval", "pairs", csv, "--json", "--device", "cpu", "--model", "dlib-resnet-flip-v1",
                       "--compare-to", "dlib-resnet-v1", "--resamples", "50")
    r = json.loads(out)
    c = r["comparison"]
    assert code == 0 and c["a"] == "dlib-resnet-v1" and c["b"] == "dlib-resnet-flip-v1" and c["pairs"] == 20
    assert c["accuracy_b"] == pytest.approx(r["accuracy"])  # B is the evaluated model
    assert 0 <= c["mcnemar_p"] <= 1 and c["resamples"] == 50
    lo, hi = c["accuracy_diff_ci95"]
    assert lo <= c["accuracy_diff"] <= hi
    code, out, _ = run(capsys, "eval", "pairs", csv, "--device", "cpu", "--compare-to", "dlib-resnet-v1", "--resamples", "20")
    assert code == 0 and "exact McNemar p = 1" in out  # a model against itself


@pytest.mark.datasets
def test_enroll_add_gives_a_person_another_photo(capsys, enrolled, lfw_image):
    code, _, err = run(capsys, "enroll", "Nobody_Here", lfw_image("George_W_Bush", 2), "--add", "--db", enrolled, "--device", "cpu")
    assert code == Exit.UNKNOWN_PERSON and "Nobody_Here" in err
    code, out, err = run(capsys, "enroll", "George_W_Bush", lfw_image("George_W_Bush", 2), "--add", "--json",
                         "--db", enrolled, "--device", "cpu")
    assert code == Exit.OK, err
    assert json.loads(out)["templates"] == 2 and json.loads(out)["added"]
    code, _, err = run(capsys, "enroll", "Colin_Powell", lfw_image("Colin_Powell", 1), "--db", enrolled, "--device", "cpu")
    assert code == Exit.OK, err
    code, _, err = run(capsys, "enroll", "George_W_Bush", lfw_image("Colin_Powell", 2), "--add", "--db", enrolled, "--device", "cpu")
    assert code == Exit.ALREADY_ENROLLED and "Colin_Powell" in err
    code, out, _ = run(capsys, "people", "--db", enrolled, "--json")
    assert {p["name"]: p["templates"] for p in json.loads(out)["people"]} == {"George_W_Bush": 2, "Colin_Powell": 1}


@pytest.mark.datasets
def test_a_saved_threshold_of_another_model_does_not_carry_to_model(capsys, monkeypatch, enrolled, lfw_image, tmp_path):
    """A threshold saved for sface-v1 (1.2, stricter than its own 1.26) used with --model
    dlib-resnet-v1 (tau 0.15) would accept anyone: the command uses dlib's calibrated value and
    says why on stderr."""
    from faceapp.embed.weights import load_spec

    settings = tmp_path / "settings.toml"
    settings.write_text('model = "sface-v1"\nthreshold = 1.2\n')
    monkeypatch.setenv("FACEAPP_SETTINGS", str(settings))
    code, out, err = run(capsys, "verify", "George_W_Bush", lfw_image("Colin_Powell", 1), "--db", enrolled, "--json",
                         "--device", "cpu", "--model", "dlib-resnet-v1")
    r = json.loads(out)
    assert code == Exit.NO_MATCH and r["decision"] == "no_match"
    assert r["threshold"] == pytest.approx(load_spec("dlib-resnet-v1").threshold)
    assert "threshold 1.2 was set for sface-v1" in err and "dlib-resnet-v1" in err
