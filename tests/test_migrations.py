"""Schema migrations: fresh and existing databases, the models/migrations agreement, where
the migrations folder is found, failed or newer migrations leaving the database alone, and
several processes opening a fresh database at once.

Tests that take ``db_url`` run on SQLite and on PostgreSQL; the SQLite-only ones (in-memory
databases, batch "copy and move" migrations) say so in their names."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

import faceapp
from faceapp.errors import StoreError
from faceapp.store import Store, current_revision, head_revision, make_engine, migrations_dir, upgrade_to_head
from faceapp.store.migrate import alembic_config
from faceapp.store.models import Base

TABLES = {"alembic_version", *Base.metadata.tables}
TEST_REVISION = "9001"  # the revision the tests add on top of the shipped ones


def _tables(url: str) -> set[str]:
    """The database's tables, seen through a connection of its own."""
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _execute(url: str, sql: str) -> None:
    """One statement through a connection of its own, committed."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(sql)
    finally:
        engine.dispose()


def _copy_migrations(tmp_path: Path) -> Path:
    target = tmp_path / "migrations"
    shutil.copytree(migrations_dir(), target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def _add_revision(folder: Path, body: str) -> None:
    """A revision TEST_REVISION on top of the shipped head, whose upgrade() is ``body``."""
    (folder / "versions" / f"{TEST_REVISION}_test.py").write_text(
        textwrap.dedent(
            f'''
            import sqlalchemy as sa
            from alembic import op

            revision = "{TEST_REVISION}"
            down_revision = "{head_revision()}"
            branch_labels = None
            depends_on = None


            def upgrade():
            '''
        )
        + textwrap.indent(textwrap.dedent(body), "    ")
        + "\n\ndef downgrade():\n    pass\n"
    )


def test_revisions_form_one_line_from_the_initial_revision_to_head():
    revisions = list(ScriptDirectory.from_config(alembic_config()).walk_revisions())  # head first
    assert revisions[0].revision == head_revision() and revisions[-1].revision == "0001"
    assert [r.down_revision for r in revisions] == [r.revision for r in revisions[1:]] + [None]


def test_fresh_database_is_created_at_head(db_url):
    engine = make_engine(db_url)
    assert current_revision(engine) is None
    assert upgrade_to_head(engine) == head_revision()
    assert current_revision(engine) == head_revision()
    assert _tables(db_url) == TABLES
    engine.dispose()


def test_upgrading_twice_keeps_existing_data(db_url):
    with Store(db_url) as store:
        store.add_person("alice", embedding=np.full(4, 0.5), model_id="m", quality=1.0, face_jpeg=b"j")
    engine = make_engine(db_url)
    assert upgrade_to_head(engine) == head_revision()
    assert upgrade_to_head(engine) == head_revision()
    engine.dispose()
    with Store(db_url) as store:  # reopening an existing database at head
        assert [p.name for p in store.list_people()] == ["alice"]
        assert store.info()["revision"] == head_revision()


def test_models_and_migrations_agree(db_url):
    engine = make_engine(db_url)
    upgrade_to_head(engine)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(ctx, Base.metadata) == []
    engine.dispose()


def test_sqlite_autoincrement_is_where_the_models_declare_it(tmp_path):
    """SQLite only. Alembic's compare_metadata does not compare sqlite_autoincrement; without
    it SQLite gives a new row the id of the newest deleted one (a removed person's events, or
    a re-embed's write, would land on someone else)."""
    url = f"sqlite:///{tmp_path / 'faceapp.db'}"
    engine = make_engine(url)
    upgrade_to_head(engine)
    with engine.connect() as conn:
        sql = dict(conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'table'").all())
    engine.dispose()
    declared = {name for name, t in Base.metadata.tables.items() if t.kwargs.get("sqlite_autoincrement")}
    assert {"people", "templates"} <= declared
    assert {name for name in Base.metadata.tables if "AUTOINCREMENT" in sql[name].upper()} == declared


def test_sqlite_upgrade_from_0002_keeps_the_data_and_never_reuses_ids(tmp_path, monkeypatch):
    """SQLite only: a database at 0002 (people and templates without AUTOINCREMENT) with rows,
    a removed person among them, upgraded to head: every row, face and event survives, and
    new rows get ids above every id used before (also the removed person's)."""
    folder = _copy_migrations(tmp_path)
    for path in (folder / "versions").glob("*.py"):
        if not path.name.startswith(("0001", "0002")):
            path.unlink()
    url = f"sqlite:///{tmp_path / 'faceapp.db'}"
    monkeypatch.setenv("FACEAPP_MIGRATIONS_DIR", str(folder))
    with Store(url) as store:
        assert store.info()["revision"] == "0002"
        for i, name in enumerate(["alice", "bob", "mallory"]):
            store.add_person(name, embedding=np.eye(4)[i], model_id="m", quality=1.0, face_jpeg=b"face-" + name.encode())
        store.add_template("alice", embedding=np.eye(4)[3], model_id="m", quality=1.0, face_jpeg=b"second")
        removed = store.get_person("mallory").id
        last_template = max(t.id for t in store.templates())
        store.remove_person("mallory")
        before = [(t.id, t.person_name, t.embedding.tolist(), t.face_jpeg) for t in store.templates()]
    monkeypatch.delenv("FACEAPP_MIGRATIONS_DIR")
    with Store(url) as store:
        assert store.info()["revision"] == head_revision()
        assert [(t.id, t.person_name, t.embedding.tolist(), t.face_jpeg) for t in store.templates()] == before
        assert store.verify_events().ok
        carol = store.add_person("carol", embedding=np.eye(4)[2], model_id="m", quality=1.0, face_jpeg=b"c")
        assert carol.id > removed
        assert max(t.id for t in store.templates()) > last_template
        assert [e.kind for e in store.events(person="carol")] == []


def test_sqlite_memory_database_is_upgraded_once_and_shared():
    """SQLite only."""
    engine = make_engine("sqlite:///:memory:")
    upgrade_to_head(engine)
    upgrade_to_head(engine)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_database_from_a_newer_faceapp_is_refused(db_url):
    engine = make_engine(db_url)
    upgrade_to_head(engine)
    _execute(db_url, "UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(StoreError, match="newer faceapp"):
        upgrade_to_head(engine)
    engine.dispose()


def test_foreign_database_with_clashing_table_is_refused_and_left_alone(db_url):
    _execute(db_url, "CREATE TABLE people (x INTEGER)")
    engine = make_engine(db_url)
    with pytest.raises(StoreError, match="cannot upgrade"):
        upgrade_to_head(engine)
    engine.dispose()
    assert _tables(db_url) == {"people"}  # no alembic_version, no half schema


def test_failed_migration_changes_nothing(db_url, tmp_path, monkeypatch):
    folder = _copy_migrations(tmp_path)
    _add_revision(
        folder,
        """
        op.create_table("scratch", sa.Column("id", sa.Integer, primary_key=True))
        op.execute("DELETE FROM templates")
        raise RuntimeError("boom")
        """,
    )
    with Store(db_url) as store:  # at head, with one person
        store.add_person("alice", embedding=np.full(4, 0.5), model_id="m", quality=1.0, face_jpeg=b"")
    head = head_revision()
    monkeypatch.setenv("FACEAPP_MIGRATIONS_DIR", str(folder))
    engine = make_engine(db_url)
    with pytest.raises(StoreError, match="RuntimeError: boom"):
        upgrade_to_head(engine)
    assert current_revision(engine) == head
    engine.dispose()
    assert "scratch" not in _tables(db_url)
    monkeypatch.delenv("FACEAPP_MIGRATIONS_DIR")
    with Store(db_url) as store:
        assert store.get_person("alice").template_count == 1


def test_sqlite_batch_migration_of_people_keeps_templates(tmp_path, monkeypatch):
    """SQLite only: a batch ("copy and move") migration drops and recreates `people`; with
    foreign keys on, that drop would cascade-delete every template."""
    folder = _copy_migrations(tmp_path)
    _add_revision(
        folder,
        """
        with op.batch_alter_table("people", recreate="always") as batch:
            batch.add_column(sa.Column("note", sa.Text(), nullable=True))
        """,
    )
    url = f"sqlite:///{tmp_path / 'faceapp.db'}"
    with Store(url) as store:
        store.add_person("alice", embedding=np.full(4, 0.5), model_id="m", quality=1.0, face_jpeg=b"")
        store.add_template("alice", embedding=np.full(4, 0.5), model_id="m", quality=1.0, face_jpeg=b"")
    monkeypatch.setenv("FACEAPP_MIGRATIONS_DIR", str(folder))
    engine = make_engine(url)
    assert upgrade_to_head(engine) == TEST_REVISION
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM templates").scalar() == 2
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_alembic_command_line_path_uses_the_same_env(db_url):
    # `alembic -x url=... upgrade head`: env.py opens the database itself.
    cfg = alembic_config()
    cfg.cmd_opts = argparse.Namespace(x=[f"url={db_url}"])
    command.upgrade(cfg, "head")
    assert _tables(db_url) == TABLES


# Forks argv[2] processes that open the database argv[1] at the same moment (each a Store of
# its own, released together through one pipe once all are forked) and prints one line for
# each: "ok <revision>" or "error <exception>". Forking after the imports keeps it fast.
_OPEN_AT_ONCE = """
import os, sys
import sqlalchemy as sa
from faceapp.store import Store
url, n = sys.argv[1], int(sys.argv[2])
sa.create_engine(url).dispose()  # imports the database driver before the fork
go_r, go_w = os.pipe()
children = []
for _ in range(n):
    out_r, out_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(go_w)
        os.close(out_r)
        os.read(go_r, 1)
        try:
            with Store(url) as store:
                line = "ok " + store.info()["revision"]
        except BaseException as exc:
            line = f"error {type(exc).__name__}: {exc}"
        os.write(out_w, " ".join(line.split()).encode())
        os._exit(0)
    os.close(out_w)
    children.append((pid, out_r))
os.write(go_w, b"x" * n)
for pid, out_r in children:
    with os.fdopen(out_r, "rb") as f:
        print(f.read().decode())
    os.waitpid(pid, 0)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_processes_opening_a_fresh_database_at_once_all_succeed(db_url):
    """Six processes open a fresh database at the same moment: one creates the schema, the
    others wait for it (BEGIN IMMEDIATE on SQLite, an advisory lock on PostgreSQL) and then
    find it at head. Without the lock, PostgreSQL fails them with duplicate-key errors."""
    res = subprocess.run(
        [sys.executable, "-c", _OPEN_AT_ONCE, db_url, "6"], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [f"ok {head_revision()}"] * 6
    engine = make_engine(db_url)
    assert current_revision(engine) == head_revision()
    engine.dispose()
    assert _tables(db_url) == TABLES


def test_migrations_dir_defaults_to_the_repository_folder(monkeypatch):
    monkeypatch.delenv("FACEAPP_MIGRATIONS_DIR", raising=False)
    assert migrations_dir() == Path(faceapp.__file__).resolve().parents[1] / "migrations"


def test_migrations_dir_from_environment(tmp_path, monkeypatch):
    folder = _copy_migrations(tmp_path)
    monkeypatch.setenv("FACEAPP_MIGRATIONS_DIR", str(folder))
    assert migrations_dir() == folder
    engine = make_engine("sqlite://")
    assert upgrade_to_head(engine) == head_revision()
    engine.dispose()


def test_migrations_dir_from_environment_must_exist(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEAPP_MIGRATIONS_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(StoreError, match="FACEAPP_MIGRATIONS_DIR"):
        migrations_dir()


def test_migrations_dir_inside_a_frozen_bundle(tmp_path, monkeypatch):
    monkeypatch.delenv("FACEAPP_MIGRATIONS_DIR", raising=False)
    _copy_migrations(tmp_path)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert migrations_dir() == tmp_path / "migrations"


def test_missing_migrations_dir_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("FACEAPP_MIGRATIONS_DIR", raising=False)
    monkeypatch.setattr(faceapp, "__file__", str(tmp_path / "site" / "faceapp" / "__init__.py"))
    with pytest.raises(StoreError, match="migrations folder is missing") as info:
        migrations_dir()
    assert "\n" not in str(info.value)


def test_a_database_sealed_with_an_empty_log_still_verifies_after_the_upgrade(db_url, tmp_path, monkeypatch):
    """Before 0003 sealing left the record of an empty log blank, which is now tampering: the
    upgrade (faceapp's, in the migration's commit) gives it the MAC'd record of an empty log."""
    folder = _copy_migrations(tmp_path)
    for path in (folder / "versions").glob("*.py"):
        if not path.name.startswith(("0001", "0002")):
            path.unlink()
    monkeypatch.setenv("FACEAPP_MIGRATIONS_DIR", str(folder))
    with Store(db_url) as store:
        assert store.info()["revision"] == "0002"
    _execute(db_url, "UPDATE meta SET value = '' WHERE key = 'event_head'")  # as sealing wrote it then
    monkeypatch.delenv("FACEAPP_MIGRATIONS_DIR")
    with Store(db_url) as store:
        assert store.verify_events().ok
        store.log_event("verify")
        assert store.verify_events().ok


@pytest.mark.parametrize("names", [
    ["Bob", "bob", "bob (2)"],  # the renamed duplicate would take a name still to come
    ["bob (2)", "Bob", "bob"],  # ...or one already taken
    ["Bob", "BOB", "bob", "bob (2)", "Bob (3)"],
])
def test_the_0002_upgrade_gives_duplicate_names_names_that_collide_with_nothing(db_url, names):
    """Schema 0001 allowed names differing only in case; 0002 makes names unique ignoring
    case and renames the later duplicates "<name> (n)". Such a new name must collide neither
    with a name nor with a (case-folded) name of another row, earlier or later."""
    engine = make_engine(db_url)
    from faceapp.store.migrate import migration_connection

    with migration_connection(engine) as conn:
        command.upgrade(alembic_config(conn), "0001")
    with engine.begin() as conn:
        for i, name in enumerate(names, 1):
            conn.execute(sa.text("INSERT INTO people (id, name, created_at, updated_at) VALUES "
                                 "(:i, :n, '2026-01-01 00:00:00', '2026-01-01 00:00:00')"), {"i": i, "n": name})
    engine.dispose()
    with Store(db_url) as store:
        people = {p.id: p.name for p in store.list_people()}
    assert len(people) == len(names)
    assert len({n.casefold() for n in people.values()}) == len(names)
    for i, name in enumerate(names, 1):  # the first of each spelling keeps it; a unique name is never changed
        if sum(n.casefold() == name.casefold() for n in names[:i - 1]) == 0:
            assert people[i] == name


def _only_revisions_up_to_0002(tmp_path: Path, monkeypatch) -> None:
    """FACEAPP_MIGRATIONS_DIR holding revisions 0001 and 0002 only: the schema of an older faceapp."""
    folder = _copy_migrations(tmp_path)
    for path in (folder / "versions").glob("*.py"):
        if not path.name.startswith(("0001", "0002")):
            path.unlink()
    monkeypatch.setenv("FACEAPP_MIGRATIONS_DIR", str(folder))


def _cli_upgrade(db_url: str) -> None:
    """`alembic -x url=... upgrade head`, the path alembic.ini and migrations/env.py document."""
    cfg = alembic_config()
    cfg.cmd_opts = argparse.Namespace(x=[f"url={db_url}"])
    command.upgrade(cfg, "head")


def _a_0001_database(db_url: str) -> tuple[bytes, bytes]:
    """Schema 0001 with one person, one template (in the clear) and one unchained event."""
    from faceapp.store.migrate import migration_connection

    engine = make_engine(db_url)
    with migration_connection(engine) as conn:
        command.upgrade(alembic_config(conn), "0001")
    plain, face = np.eye(4, dtype="<f4")[0].tobytes(), b"face of alice"
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO people (id, name, created_at, updated_at) VALUES "
                             "(1, 'alice', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"))
        conn.execute(sa.text("INSERT INTO templates (person_id, embedding, dim, model_id, face_jpeg, quality, "
                             "created_at) VALUES (1, :e, 4, 'm', :f, 0.9, '2026-01-01 00:00:00')"),
                     {"e": plain, "f": face})
        conn.execute(sa.text("INSERT INTO events (time, kind, decided, person_id, detail) VALUES "
                             "('2026-01-01 00:00:00', 'verify', 'alice', 1, '')"))
    engine.dispose()
    return plain, face


@pytest.mark.parametrize("how", ["stopped-before-sealing", "alembic-cli"])
def test_a_database_from_before_sealing_upgraded_without_faceapp_is_sealed_at_first_open(
        db_url, tmp_path, monkeypatch, how):
    """An older faceapp ran the 0001 -> 0002 upgrade and was stopped before its sealing commit
    (or the schema was upgraded with the alembic command line): no key records, templates in
    the clear, events unchained. Nothing in it was altered: the first open seals it."""
    plain, face = _a_0001_database(db_url)
    if how == "stopped-before-sealing":
        _only_revisions_up_to_0002(tmp_path, monkeypatch)
        engine = make_engine(db_url)
        assert upgrade_to_head(engine) == "0002"  # the older faceapp's first commit
        engine.dispose()
        monkeypatch.delenv("FACEAPP_MIGRATIONS_DIR")
    else:
        _cli_upgrade(db_url)
    with Store(db_url) as store:
        assert store.info()["revision"] == head_revision()
        [t] = store.templates()
        assert t.embedding.astype("<f4").tobytes() == plain and t.face_jpeg == face
        report = store.verify_events()
        assert report.ok and report.checked == 1
        store.log_event("verify")
        assert store.verify_events().ok


def test_a_database_sealed_with_an_empty_log_logs_after_an_alembic_command_line_upgrade(
        db_url, tmp_path, monkeypatch):
    """The blank record of an empty log (sealing before 0003) is given its MAC'd form when the
    store opens, also when the upgrade was made by the alembic command line (no Store)."""
    _only_revisions_up_to_0002(tmp_path, monkeypatch)
    with Store(db_url) as store:
        assert store.info()["revision"] == "0002"
    _execute(db_url, "UPDATE meta SET value = '' WHERE key = 'event_head'")  # as sealing wrote it then
    monkeypatch.delenv("FACEAPP_MIGRATIONS_DIR")
    _cli_upgrade(db_url)
    with Store(db_url) as store:
        assert store.verify_events().ok
        store.log_event("verify")
        assert store.verify_events().ok


def test_a_database_sealed_with_an_empty_log_logs_after_the_upgrade_with_a_rotation_leftover_key(
        db_url, tmp_path, monkeypatch):
    """The same after a key rotation interrupted by a crash: the database's key is the key
    file's rotation leftover when the upgrade runs."""
    from faceapp.store import crypto

    key_file = tmp_path / "keys" / "faceapp.key"
    key_file.parent.mkdir()
    _only_revisions_up_to_0002(tmp_path, monkeypatch)
    with Store(db_url, key_file=key_file) as store:
        assert store.info()["revision"] == "0002"
        old_id = store.site_key_id
    _execute(db_url, "UPDATE meta SET value = '' WHERE key = 'event_head'")
    monkeypatch.delenv("FACEAPP_MIGRATIONS_DIR")
    key_file.rename(key_file.with_name("faceapp.key.old-20261201T000000"))
    crypto.SiteKey.load_or_create(key_file)
    with Store(db_url, key_file=key_file) as store:
        assert store.site_key_id == old_id
        assert store.verify_events().ok
        store.log_event("verify")
        assert store.verify_events().ok


def test_a_blank_end_record_is_not_repaired_while_the_log_has_events(db_url):
    """Only the blank record of an empty log is the pre-0003 form; with events it is tampering."""
    with Store(db_url) as store:
        store.log_event("verify")
    _execute(db_url, "UPDATE meta SET value = '' WHERE key = 'event_head'")
    with Store(db_url) as store:
        assert "blanked" in (store.verify_events().problem or "")
        with pytest.raises(StoreError, match="blanked"):
            store.log_event("verify")
