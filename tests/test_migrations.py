"""Schema migrations: fresh and existing databases, the models/migrations agreement, where
the migrations folder is found, and failed or newer migrations leaving the database alone."""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import faceapp
from faceapp.errors import StoreError
from faceapp.store import Store, current_revision, head_revision, make_engine, migrations_dir, upgrade_to_head
from faceapp.store.migrate import alembic_config
from faceapp.store.models import Base

TABLES = {"alembic_version", "people", "templates", "events", "meta"}


def _tables(db: Path) -> set[str]:
    with sqlite3.connect(db) as con:
        return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def _copy_migrations(tmp_path: Path) -> Path:
    target = tmp_path / "migrations"
    shutil.copytree(migrations_dir(), target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def _add_revision(folder: Path, body: str) -> None:
    (folder / "versions" / "0002_test.py").write_text(
        textwrap.dedent(
            '''
            import sqlalchemy as sa
            from alembic import op

            revision = "0002"
            down_revision = "0001"
            branch_labels = None
            depends_on = None


            def upgrade():
            '''
        )
        + textwrap.indent(textwrap.dedent(body), "    ")
        + "\n\ndef downgrade():\n    pass\n"
    )


def test_head_is_the_initial_revision():
    assert head_revision() == "0001"


def test_fresh_file_is_created_at_head(tmp_path):
    db = tmp_path / "sub" / "faceapp.db"
    engine = make_engine(f"sqlite:///{db}")
    assert current_revision(engine) is None
    assert upgrade_to_head(engine) == "0001"
    assert current_revision(engine) == "0001"
    assert _tables(db) == TABLES
    engine.dispose()


def test_upgrading_twice_keeps_existing_data(tmp_path):
    url = f"sqlite:///{tmp_path / 'faceapp.db'}"
    with Store(url) as store:
        store.add_person("alice", embedding=np.ones(4), model_id="m", quality=1.0, face_jpeg=b"j")
    engine = make_engine(url)
    assert upgrade_to_head(engine) == "0001"
    assert upgrade_to_head(engine) == "0001"
    engine.dispose()
    with Store(url) as store:  # reopening an existing database at head
        assert [p.name for p in store.list_people()] == ["alice"]
        assert store.info()["revision"] == "0001"


def test_models_and_migrations_agree(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'faceapp.db'}")
    upgrade_to_head(engine)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(ctx, Base.metadata) == []
    engine.dispose()


def test_memory_database_is_upgraded_once_and_shared():
    engine = make_engine("sqlite:///:memory:")
    upgrade_to_head(engine)
    upgrade_to_head(engine)
    assert current_revision(engine) == "0001"
    engine.dispose()


def test_database_from_a_newer_faceapp_is_refused(tmp_path):
    db = tmp_path / "faceapp.db"
    engine = make_engine(f"sqlite:///{db}")
    upgrade_to_head(engine)
    with sqlite3.connect(db) as con:
        con.execute("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(StoreError, match="newer faceapp"):
        upgrade_to_head(engine)
    engine.dispose()


def test_foreign_database_with_clashing_table_is_refused_and_left_alone(tmp_path):
    db = tmp_path / "other.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE people (x INTEGER)")
    engine = make_engine(f"sqlite:///{db}")
    with pytest.raises(StoreError, match="cannot upgrade"):
        upgrade_to_head(engine)
    engine.dispose()
    assert _tables(db) == {"people"}  # no alembic_version, no half schema


def test_failed_migration_changes_nothing(tmp_path, monkeypatch):
    folder = _copy_migrations(tmp_path)
    _add_revision(
        folder,
        """
        op.create_table("scratch", sa.Column("id", sa.Integer, primary_key=True))
        op.execute("DELETE FROM people")
        raise RuntimeError("boom")
        """,
    )
    url = f"sqlite:///{tmp_path / 'faceapp.db'}"
    with Store(url) as store:  # at 0001, with one person
        store.add_person("alice", embedding=np.ones(4), model_id="m", quality=1.0, face_jpeg=b"")
    monkeypatch.setenv("FACEAPP_MIGRATIONS_DIR", str(folder))
    engine = make_engine(url)
    with pytest.raises(StoreError, match="RuntimeError: boom"):
        upgrade_to_head(engine)
    assert current_revision(engine) == "0001"
    engine.dispose()
    assert "scratch" not in _tables(tmp_path / "faceapp.db")
    monkeypatch.delenv("FACEAPP_MIGRATIONS_DIR")
    with Store(url) as store:
        assert store.has_person("alice")


def test_batch_migration_of_people_keeps_templates(tmp_path, monkeypatch):
    # A batch ("copy and move") migration drops and recreates `people`; with foreign keys
    # on, that drop would cascade-delete every template.
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
        store.add_person("alice", embedding=np.ones(4), model_id="m", quality=1.0, face_jpeg=b"")
        store.add_template("alice", embedding=np.ones(4), model_id="m", quality=1.0, face_jpeg=b"")
    monkeypatch.setenv("FACEAPP_MIGRATIONS_DIR", str(folder))
    engine = make_engine(url)
    assert upgrade_to_head(engine) == "0002"
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM templates").scalar() == 2
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_alembic_command_line_path_uses_the_same_env(tmp_path):
    # `alembic -x url=... upgrade head`: env.py opens the database itself.
    db = tmp_path / "cli.db"
    cfg = alembic_config()
    cfg.cmd_opts = argparse.Namespace(x=[f"url=sqlite:///{db}"])
    command.upgrade(cfg, "head")
    assert _tables(db) == TABLES


def test_migrations_dir_defaults_to_the_repository_folder(monkeypatch):
    monkeypatch.delenv("FACEAPP_MIGRATIONS_DIR", raising=False)
    assert migrations_dir() == Path(faceapp.__file__).resolve().parents[1] / "migrations"


def test_migrations_dir_from_environment(tmp_path, monkeypatch):
    folder = _copy_migrations(tmp_path)
    monkeypatch.setenv("FACEAPP_MIGRATIONS_DIR", str(folder))
    assert migrations_dir() == folder
    engine = make_engine("sqlite://")
    assert upgrade_to_head(engine) == "0001"
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
