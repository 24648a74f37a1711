"""Use cases shared by the CLI and the GUI: enroll, verify, identify, remove, re-embed.

:class:`FaceService` composes the settings, the store and the face engine. Outcomes are typed
results (``VerifyResult``, ``IdentifyResult``); failures are exceptions from
:mod:`faceapp.errors`. Every decision is written to the store's event log.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import weakref
from dataclasses import dataclass, field

import numpy as np

from faceapp import stored_face
from faceapp.config import Settings
from faceapp.embed.weights import available_specs
from faceapp.errors import AlreadyEnrolled, FaceRejected, ImageError, ModelMismatch, StoreError
from faceapp.imageio import ImageSource, decode_jpeg, encode_jpeg, load_image
from faceapp.match.gallery import Gallery
from faceapp.pipeline import FaceEngine, FaceObservation
from faceapp.types import Decision, Detection, IdentifyResult, Person, QualityReport, VerifyResult

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class EnrollResult:
    person: Person
    observation: FaceObservation
    replaced: bool = False
    similar_to: str | None = None  # an enrolled person the face matched (force was used) or looks like
    similar_distance: float | None = None
    warning: str = ""  # a look-alike was enrolled beside: says who, at what distance

    @property
    def quality(self) -> QualityReport:
        return self.observation.quality


@dataclass(frozen=True, eq=False)
class Probe:
    """The face a decision is about, or the reason there is none."""

    decision: Decision | None  # None: a usable face was found
    observation: FaceObservation | None
    faces: int
    detections: tuple[Detection, ...] = ()  # every face that counts (e.g. to draw them)
    landmarks: object = None  # faceapp.landmarks.analyze.FaceLandmarks of the face (check_landmarks)
    image: np.ndarray | None = field(default=None, repr=False)  # the photo as loaded (what enrollment keeps a crop of)


class FaceService:
    def __init__(
        self, settings: Settings | None = None, *, store=None, engine: FaceEngine | None = None, analyzer=None,
        offline=None,
    ) -> None:
        from faceapp.landmarks.analyze import LandmarkAnalyzer
        from faceapp.storage import open_store

        self.settings = settings or Settings()
        self.store = store if store is not None else open_store(self.settings.resolved_db_url)
        self.engine = engine or FaceEngine(self.settings)
        # the 68-point landmark CNN (loaded on first use): enrollment's eyes / head-pose checks
        self.analyzer = analyzer if analyzer is not None else LandmarkAnalyzer(self.settings)
        self._gallery: Gallery | None = None
        self._generation = None
        self._offline_behind = False  # the door's local copy misses the gallery generation served
        self._offline_retry_at = 0.0  # (monotonic) when a failed refresh of that copy is tried again
        self._offline_failing = False  # its last refresh failed (logged once per failure)
        self._gallery_lock = threading.Lock()
        # PostgreSQL pushes changes (LISTEN/NOTIFY): between pushes the gallery is trusted for
        # up to RECHECK_S instead of asking the database on every frame
        self._watcher = None
        self._changed = threading.Event()
        self._checked_at = 0.0
        # a faceapp.store.offline.OfflineCache: refreshed whenever the gallery changes, decided
        # from while the database server is unreachable
        self.offline = offline
        self.offline_since: float | None = None

    # -- settings-derived values ---------------------------------------------------------
    @property
    def threshold(self) -> float:
        return self.engine.threshold

    RECHECK_S = 5.0  # with a watcher: ask the database anyway after this long (a missed push)
    OFFLINE_RETRY_S = 5.0  # a door's local copy that could not be refreshed: tried again after this long

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.close()
            self._watcher = None
        self.store.close()

    def __enter__(self) -> FaceService:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the gallery ----------------------------------------------------------------------
    def gallery(self) -> Gallery:
        """The current model's templates as one matrix, rebuilt only when the store changed.
        With an offline cache, a server that cannot be reached serves the cache's last
        snapshot instead (logged once per outage); without one, the StoreError propagates."""
        try:
            gallery = self._server_gallery()
        except StoreError as exc:
            # only a server that cannot be reached sends the door to its copy: one that answers
            # with an error (the gallery altered, a site key this door does not hold) fails closed
            if self.offline is None:
                raise
            from faceapp.store.db import server_unreachable  # (here: the window loads no SQLAlchemy)

            if not server_unreachable(exc):
                raise
            if self.offline_since is None:
                self.offline_since = time.monotonic()
                log.error("database unreachable, deciding from the door's local copy: %s", exc)
            names, pids, matrix = self.offline.gallery(self.engine.model_id)
            return Gallery(names, pids, matrix, model_id=self.engine.model_id)
        if self.offline_since is not None:
            log.warning("database reachable again after %.0f s", time.monotonic() - self.offline_since)
            self.offline_since = None
            self._generation = None  # take a fresh snapshot below
        return gallery

    def _server_gallery(self) -> Gallery:
        with self._gallery_lock:
            if self._watcher is None and self._gallery is None:
                changed = self._changed  # (not self: a service nobody closes can still be collected)
                self._watcher = self.store.watch(lambda _generation: changed.set())
                if self._watcher is not None:
                    weakref.finalize(self, self._watcher.close, 0.0)
            now = time.monotonic()
            watched = self._watcher is not None and self._watcher.connected.is_set()
            if (self._gallery is not None and watched and not self._changed.is_set()
                    and now - self._checked_at < self.RECHECK_S):
                return self._gallery
            self._changed.clear()
            self._checked_at = now
            gen = self.store.generation()
            if self._gallery is None or gen != self._generation:
                names, pids, matrix = self.store.gallery(self.engine.model_id)
                self._gallery = Gallery(names, pids, matrix, model_id=self.engine.model_id)
                self._generation = gen
                self._offline_behind = self.offline is not None
                self._offline_retry_at = 0.0  # a change: the copy is taken at once
            if self._offline_behind and now >= self._offline_retry_at:
                # until the door's local copy holds this generation it is retried (every
                # OFFLINE_RETRY_S), not only at the next change: an outage would otherwise decide
                # from an older copy (a person removed since could get in)
                try:
                    self.offline.refresh(self.store)
                    self._offline_behind = False
                    if self._offline_failing:
                        log.warning("the door's local copy of the gallery is up to date again")
                    self._offline_failing = False
                except StoreError as exc:
                    self._offline_retry_at = now + self.OFFLINE_RETRY_S
                    if not self._offline_failing:  # once per failure, not once per frame
                        log.error("the door's local copy of the gallery could not be refreshed (retried every "
                                  "%.0f s): %s", self.OFFLINE_RETRY_S, exc)
                    self._offline_failing = True
            return self._gallery

    # -- faces ----------------------------------------------------------------------------
    def probe(self, image: ImageSource | np.ndarray, *, largest: bool = False, check_landmarks: bool = False,
              face: int | None = None) -> Probe:
        """Find the one face an image is about. No face, or several when ``largest`` is off,
        give a Decision instead of an observation. ``check_landmarks`` (enrollment): also run
        the 68-point landmarks and add their EYES_CLOSED / HEAD_TURNED issues to the face's
        quality (when the setting ``enroll_check_landmarks`` is on); ``Probe.landmarks`` keeps
        the points, the eye aspect ratio and the head pose. ``face``: the index (among
        ``Probe.detections`` of the same image) of the face to use in a group photo."""
        img = load_image(image, max_side=self.settings.max_image_side)
        detections = self.engine.relevant(self.engine.detect(img, still=True))
        if not detections:
            return Probe(Decision.NO_FACE, None, 0)
        if face is not None and not 0 <= face < len(detections):
            raise ValueError(f"face {face} was chosen, but the photo has {len(detections)} face(s)")
        if face is None and len(detections) > 1 and not largest:
            return Probe(Decision.MULTIPLE_FACES, None, len(detections), tuple(detections))
        chosen = detections[face if face is not None else 0]
        obs = self.engine.observe(img, [chosen])[0]
        face = None
        if check_landmarks and self.settings.enroll_check_landmarks:
            face = self.analyzer.analyze(img, chosen)
            if face.quality.issues:
                issues = tuple(obs.quality.issues) + tuple(i for i in face.quality.issues if i not in obs.quality.issues)
                obs = dataclasses.replace(obs, quality=dataclasses.replace(obs.quality, issues=issues))
        return Probe(None, obs, len(detections), tuple(detections), face, image=img)

    # -- use cases ------------------------------------------------------------------------
    def enroll(
        self,
        name: str,
        image: ImageSource,
        *,
        largest: bool = False,
        force: bool = False,
        replace: bool = False,
        add: bool = False,
        face: int | None = None,
    ) -> EnrollResult:
        """Enroll ``name`` from ONE photo (or re-enroll with ``replace``; or, with ``add``, add
        one more photo to an enrolled person: UnknownPerson if they are not; a face that
        matches that same person is welcome, one that matches someone else is refused as for
        enrollment; verify and identify use each person's nearest photo).

        Raises FaceRejected (no face / several faces / low quality), AlreadyEnrolled when the
        face already matches someone else and ``force`` is off, DuplicatePerson when the name
        exists and ``replace`` is off. Nothing is written unless it succeeds.

        "Already matches" is judged like the door's recognize mode
        (:class:`faceapp.match.open_set.OpenSetRule`): the face is refused when it is within the
        1:K threshold for the gallery it joins (so close that a stranger would be there by
        chance only ``recognize_far`` of the time: most likely the same person). A face within
        tau but beyond that threshold is a look-alike: enrolled, with ``EnrollResult.warning``
        (and ``similar_to``), since both enrolled the margin rule tells them apart."""
        name = name.strip()
        if replace and add:
            raise ValueError("replace and add exclude each other")
        if not (replace or add) and self.store.has_person(name):
            from faceapp.errors import DuplicatePerson

            raise DuplicatePerson(f"{name!r} is already enrolled (use re-enroll/--replace to change their photo)")
        if replace or add:
            name = self.store.get_person(name).name  # UnknownPerson before any work
        probe = self.probe(image, largest=largest, check_landmarks=True, face=face)
        if probe.decision is Decision.NO_FACE:
            raise FaceRejected("no face found in the photo", decision=Decision.NO_FACE)
        if probe.decision is Decision.MULTIPLE_FACES:
            raise FaceRejected(
                f"{probe.faces} faces found; enrollment needs exactly one (or pick the largest)",
                decision=Decision.MULTIPLE_FACES,
            )
        obs = probe.observation
        assert obs is not None
        if not obs.quality.ok:
            raise FaceRejected(f"face quality too low: {obs.quality.describe()}", decision=Decision.LOW_QUALITY, quality=obs.quality)
        gallery = self.gallery()
        seen_up_to = self._generation[4] if self._generation is not None else None  # newest template in it
        found = self._look_alike(name, obs.embedding, gallery, force=force)
        later: dict = {}

        def guard(newer) -> None:
            """Inside the write transaction, under the enrollment lock: the templates stored
            since our copy of the gallery was read (another door's enrollment a moment ago)."""
            if len(newer.names):
                later.update(self._look_alike(name, obs.embedding, Gallery(*newer, model_id=self.engine.model_id),
                                              force=force, joining=len(gallery.people - {name}) + 1))

        kwargs = dict(
            embedding=obs.embedding,
            model_id=self.engine.model_id,
            quality=float(obs.quality.sharpness),
            # the wide, model-independent crop (faceapp.stored_face): a later model re-encodes from it
            face_jpeg=stored_face.keep(probe.image, obs.aligned.detection, self.engine.spec.border),
        )
        detail_for = lambda f: ("re-enrolled" if replace else "enrolled") + (  # noqa: E731
            f"; forced although it matched {f['similar']} at {f['distance']:.3f}" if f.get("forced")
            else f"; looks like {f['similar']} at {f['distance']:.3f}" if f.get("warning") else "")
        # the event is written in the enrollment's transaction; its detail covers what the guard may add
        if add:
            detail = "photo added" + (detail_for(found)[len("enrolled"):] if found else "")
            self.store.add_template(name, **kwargs, guard=guard, guard_after_id=seen_up_to, event=detail)
            person = self.store.get_person(name)
        elif replace:
            self.store.replace_templates(name, **kwargs, guard=guard, guard_after_id=seen_up_to,
                                         event=detail_for(found))
            person = self.store.get_person(name)
        else:
            person = self.store.add_person(name, **kwargs, guard=guard, guard_after_id=seen_up_to,
                                           event=detail_for(found))
        result = later if later.get("similar") and not found.get("similar") else found
        similar, similar_d, warning = result.get("similar"), result.get("distance"), result.get("warning", "")
        return EnrollResult(person, obs, replaced=replace, similar_to=similar, similar_distance=similar_d, warning=warning)

    def recognize_rule(self):
        """The 1:K rule in force (:class:`faceapp.match.open_set.OpenSetRule`): the settings
        ``recognize_far`` / ``recognize_margin``, the model's calibration curve, capped at tau."""
        from faceapp.match.open_set import OpenSetRule

        key = (self.settings.recognize_far, self.settings.recognize_margin, self.threshold, self.engine.spec.model_id)
        cached = getattr(self, "_rule", None)
        if cached is None or cached[0] != key:  # built once, not per frame (the Live page reads every face)
            cached = self._rule = (key, OpenSetRule.from_settings(self.settings, self.engine.spec, cap=self.threshold))
        return cached[1]

    def _look_alike(self, name: str, embedding, gallery: Gallery, *, force: bool, joining: int | None = None) -> dict:
        """Whether a face to enroll as ``name`` already belongs to someone in ``gallery``:
        AlreadyEnrolled (unless ``force``) when within the recognize threshold for the gallery
        it joins; a look-alike within tau but beyond that is enrolled with a warning. Returns
        {similar, distance, warning, forced} (empty when nobody is near)."""
        nearest = [c for c in gallery.nearest(embedding, 2) if c.name != name]
        if not nearest or nearest[0].distance > self.threshold:
            return {}
        similar, similar_d = nearest[0].name, nearest[0].distance
        people = joining if joining is not None else len(gallery.people - {name}) + 1  # the gallery this face joins
        tau_k = self.recognize_rule().threshold(people)
        if similar_d <= tau_k:
            if not force:
                raise AlreadyEnrolled(
                    f"this face already matches {similar!r} (distance {similar_d:.3f} <= {tau_k:.3f}, the "
                    f"recognize threshold for {people} people); use force to enroll anyway",
                    name=similar,
                    distance=similar_d,
                )
            return {"similar": similar, "distance": similar_d, "forced": True, "warning": ""}
        warning = (f"this face looks like {similar!r} (distance {similar_d:.3f} <= tau {self.threshold:.3f}, "
                   f"but above the recognize threshold {tau_k:.3f} for {people} people); enrolled beside them")
        log.warning("%s: %s", name, warning)
        return {"similar": similar, "distance": similar_d, "forced": False, "warning": warning}

    def verify(
        self, name: str, image: ImageSource, *, largest: bool = False, threshold: float | None = None, kind: str = "verify"
    ) -> VerifyResult:
        """1:1: is the face in ``image`` the enrolled ``name``? MATCH iff distance <= threshold."""
        person = self.store.get_person(name)  # UnknownPerson before any work
        tau = self.threshold if threshold is None else float(threshold)
        probe = self.probe(image, largest=largest)
        return self.verify_probe(person.name, probe, threshold=tau, kind=kind)

    def verify_probe(self, name: str, probe: Probe, *, threshold: float, kind: str = "verify") -> VerifyResult:
        obs = probe.observation
        if probe.decision is not None:
            result = VerifyResult(probe.decision, name, None, threshold)
        elif not obs.quality.ok:
            result = VerifyResult(Decision.LOW_QUALITY, name, None, threshold, obs.quality)
        else:
            distance = self.gallery().distance_to(name, obs.embedding)
            if distance is None:
                raise ModelMismatch(
                    f"{name!r} has no template made by model {self.engine.model_id}; "
                    "run `faceapp db reembed` or enroll them again"
                )
            decision = Decision.MATCH if distance <= threshold else Decision.NO_MATCH
            result = VerifyResult(decision, name, distance, threshold, obs.quality)
        self.store.log_event(
            kind,
            decision=result.decision,
            claimed=name,
            decided=name if result.decision is Decision.MATCH else None,
            distance=result.distance,
            threshold=threshold,
            detail=result.quality.describe() if result.quality and not result.quality.ok else "",
        )
        return result

    def identify(
        self,
        image: ImageSource,
        *,
        largest: bool = False,
        threshold: float | None = None,
        top_k: int | None = None,
        kind: str = "identify",
    ) -> IdentifyResult:
        """1:K: who is this? Decided as the door decides (:meth:`recognize`): the nearest person
        when within the recognize threshold for the gallery's size and clear of the
        second-nearest by the margin, else NOT_RECOGNIZED. ``threshold``: tau, the cap of the
        size-adjusted threshold (default: the threshold in force)."""
        probe = self.probe(image, largest=largest)
        return self.identify_probe(probe, threshold=threshold, top_k=top_k or self.settings.top_k, kind=kind)

    def identify_probe(self, probe: Probe, *, threshold: float | None = None, top_k: int,
                       kind: str = "identify") -> IdentifyResult:
        """:meth:`identify` of a face already found; the decision is logged."""
        obs = probe.observation
        tau = self.threshold if threshold is None else float(threshold)
        detail = ""
        if probe.decision is not None:
            result = IdentifyResult(probe.decision, None, None, tau, tau=tau)
        elif not obs.quality.ok:
            result = IdentifyResult(Decision.LOW_QUALITY, None, None, tau, quality=obs.quality, tau=tau)
        else:
            gallery = self.gallery()
            cands = tuple(gallery.nearest(obs.embedding, max(2, top_k)))  # the second-nearest for the margin
            result = self.recognize(cands, len(gallery.people), threshold=threshold)
            result = dataclasses.replace(result, candidates=cands[:top_k], quality=obs.quality)
            if result.ambiguous:
                detail = (f"{cands[0].name} {cands[0].distance:.3f} and {cands[1].name} {cands[1].distance:.3f}: "
                          f"closer to each other than the margin {result.min_margin:.3f}")
        if result.quality and not result.quality.ok:
            detail = result.quality.describe()
        self.store.log_event(
            kind,
            decision=result.decision,
            decided=result.name,
            distance=result.distance,
            threshold=result.threshold,
            detail=detail,
        )
        return result

    def recognize(self, candidates, people: int | None, *, threshold: float | None = None) -> IdentifyResult:
        """The 1:K reading of one face: ``candidates`` its nearest people, closest first (as
        :meth:`faceapp.match.gallery.Gallery.nearest` gives them, at least two for the margin),
        in a gallery of ``people`` people. The rule in force (:meth:`recognize_rule`, the
        door's): MATCH when the nearest is within the recognize threshold for ``people`` and
        at least the margin closer than the second-nearest, else NOT_RECOGNIZED (``ambiguous``
        when only the margin failed). ``threshold``: tau, the cap (default: the threshold in
        force); ``people`` None (unknown): tau itself, and the margin, as at the door.

        The one path for every 1:K answer outside the door: identify, the API, the Live view.
        Nothing is logged here (a live view reads every frame)."""
        from faceapp.match.open_set import OpenSetRule

        rule = self.recognize_rule()
        if threshold is not None:
            rule = dataclasses.replace(rule, cap=float(threshold))
        if people is None:
            rule = OpenSetRule(None, rule.attempt_far, rule.margin, rule.cap)
        cands = tuple(candidates)
        r = rule.read(cands, people or 1)
        return IdentifyResult(
            Decision.MATCH if r.name is not None else Decision.NOT_RECOGNIZED,
            r.name,
            r.distance,
            r.threshold,
            cands,
            people=people,
            second=r.second,
            min_margin=rule.margin,
            ambiguous=r.ambiguous,
            tau=rule.cap,
        )

    def remove(self, name: str) -> int:
        """Remove a person's biometric data (templates, face crops, their data key); their
        events stay, and the removal is logged naming them and the template count."""
        return self.store.remove_person(name)

    def reembed(self, *, progress=None) -> int:
        """Re-encode templates made by other models with the current model, from the faces they
        keep (:func:`faceapp.stored_face.model_chip`): a wide crop (enrolled since 4 December
        2026) is warped onto the current template and stays as it is; an old model's chip is
        re-aligned onto it exactly and replaced by the current model's chip. Refuses
        (ModelMismatch) old chips whose model spec is no longer available (a wide crop does not
        need it). A template removed, re-enrolled or re-embedded while this runs refuses the whole
        write (StoreError, nothing changed); templates of another model enrolled meanwhile are
        named in a ModelMismatch after the write (run it again)."""
        specs = available_specs()
        todo = [t for t in self.store.templates() if t.model_id != self.engine.model_id]
        wide = {t.id: stored_face.is_wide(t.face_jpeg) for t in todo}
        # a wide crop needs nothing of the model that made it; an old chip needs its template
        missing = sorted({t.model_id for t in todo if t.model_id not in specs and not wide[t.id]})
        if missing:
            raise ModelMismatch(
                f"templates of unknown model(s) {', '.join(missing)} cannot be re-embedded; enroll those people again"
            )
        items = []
        for i, t in enumerate(todo):
            old = specs.get(t.model_id)
            try:
                chip = decode_jpeg(t.face_jpeg)
            except ImageError as exc:
                raise StoreError(
                    f"template {t.id} of {t.person_name!r} holds no usable face photo ({exc}); nothing was re-embedded: "
                    "remove that person or enroll them again"
                ) from None
            new = stored_face.model_chip(chip, wide=wide[t.id], old=old, engine=self.engine)
            emb = self.engine.embedder.embed([new.image])[0]
            # the template as read: the write refuses it if it changed meanwhile (no lock is held here)
            items.append((t, emb) if wide[t.id] else (t, emb, encode_jpeg(new.image)))
            if progress:
                progress(i + 1, len(todo))
        self.store.update_embeddings(items, self.engine.model_id)  # all or nothing
        # another door still on an old model may have enrolled while this ran: never report
        # success over a gallery of mixed models (the current model's doors would refuse everyone)
        if set(self.store.model_ids()) - {self.engine.model_id}:
            left = [t for t in self.store.templates() if t.model_id != self.engine.model_id]
            names = ", ".join(f"template {t.id} ({t.person_name!r}, model {t.model_id!r})" for t in left[:5])
            more = f" and {len(left) - 5} more" if len(left) > 5 else ""
            raise ModelMismatch(
                f"re-embedded {len(todo)} template(s) with {self.engine.model_id}, but {len(left)} template(s) of "
                f"another model were enrolled meanwhile and are left as they were: {names}{more}; "
                "run `faceapp db reembed` again"
            )
        return len(todo)
