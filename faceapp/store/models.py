"""The database schema as SQLAlchemy ORM classes.

These rows never leave :mod:`faceapp.store`; the repository turns them into the domain
types of :mod:`faceapp.types`. A schema change is a new Alembic revision in ``migrations/``
(``tests/test_migrations.py`` checks that the migrations and these classes agree).

Embeddings are stored as float32 little-endian bytes (``dim`` values), each with the id of
the model that made it. Times are stored as UTC and come back timezone-aware.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Boolean,
    LargeBinary,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# Every constraint and index gets a predictable name, so that migrations (including
# SQLite batch "copy and move" migrations) can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

NAME_LENGTH = 200  # characters in a person's name
MODEL_ID_LENGTH = 200  # characters in an embedding model id
GENERATION_KEY = "generation"  # meta key: counter bumped by every change to people/templates
EVENT_HEAD_KEY = "event_head"  # meta key: "<id> <hash>" of the newest event (the chain's end)
SITE_KEY_ID_KEY = "site_key_id"  # meta key: id (not the key) of the site key sealing face data
# meta key: "v2 <people> <templates> <mac>", a MAC over the live people (id, name key, name,
# created_at) and template ids (schema 0004, v1 without created_at; v2 since 0005; blank until
# faceapp's first open of a database from before 0004 fills it)
GALLERY_HEAD_KEY = "gallery_head"


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive datetime is taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    SQLite has no time zones: values are converted to UTC and stored without an offset, and
    read back with ``tzinfo=UTC``. A naive datetime given to the database is taken as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        value = as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else as_utc(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


class PersonRow(Base):
    """A person. ``name`` is the spelling shown; ``name_key`` (the normalised, case-folded
    name) is what is unique and what lookups use. ``data_key`` is the person's data key
    wrapped by the site key: it seals their templates, so deleting the row erases them
    even from pages a database keeps. Ids are never reused (an event's ``person_id`` keeps
    pointing at nobody rather than at a later person)."""

    __tablename__ = "people"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    name_key: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    data_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    templates: Mapped[list[TemplateRow]] = relationship(
        back_populates="person", cascade="all, delete-orphan", passive_deletes=True
    )


class TemplateRow(Base):
    __tablename__ = "templates"
    __table_args__ = (
        CheckConstraint("dim > 0", name="dim_positive"),
        CheckConstraint("sealed OR length(embedding) = 4 * dim", name="embedding_size"),
        # ids are never reused: a re-embed writing what it read of template N, or an
        # enrollment guard checking the templates after id N, must never meet someone else's
        # newer template under that id
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    # float32 little-endian, dim values; sealed (AES-GCM under the person's data key) when ``sealed``
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
    dim: Mapped[int] = mapped_column(Integer)
    model_id: Mapped[str] = mapped_column(String(MODEL_ID_LENGTH), index=True)
    face_jpeg: Mapped[bytes] = mapped_column(LargeBinary)  # the kept face (faceapp.stored_face), for re-embedding (sealed too)
    sealed: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    quality: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    person: Mapped[PersonRow] = relationship(back_populates="templates")


class EventRow(Base):
    """One entry of the access log. The log is append-only (database triggers refuse UPDATE
    and DELETE) and hash-chained: ``hash`` is a keyed hash of ``prev_hash`` and the row's
    content (:mod:`faceapp.store.eventlog`). ``claimed`` / ``decided`` are the names as they
    were then; ``person_id`` is the person's id then (no foreign key: removing a person keeps
    their events)."""

    __tablename__ = "events"
    # a person's removals, found by id (the gallery's check that nobody removed is in it again)
    __table_args__ = (Index("ix_events_kind_person_id", "kind", "person_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(32))
    decision: Mapped[str | None] = mapped_column(String(32))
    claimed: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    decided: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    person_id: Mapped[int | None] = mapped_column(Integer, index=True)
    distance: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float | None] = mapped_column(Float)
    detail: Mapped[str] = mapped_column(Text, default="", server_default="")
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))
    # set by a door that decided while its server was unreachable: delivering the queued event
    # again (after a crash) finds it by this id instead of logging it twice
    uid: Mapped[str | None] = mapped_column(String(64), unique=True)


class MetaRow(Base):
    """Small key/value facts about the database (e.g. the gallery generation counter)."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
