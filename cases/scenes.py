"""A camera's scenes in the database: loaded before analysis, registered when footage shows a new one.

The analysis core (`detector.scene_segment`) numbers the scenes it meets from the camera's `SceneBook`; a
scene it met first carries its reference view with its sightings (`Sighting.scene_view`). Registering is
race-safe: under a per-camera lock, a view already stored (same digest) is found again, a view of a scene
that another worker registered meanwhile is added to THAT scene (with its homography), and only a view no
stored scene matches becomes a new scene, numbered after the camera's others. Called inside the caller's
transaction; never commits.
"""

from __future__ import annotations

import base64
import hashlib

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from streetwatch.cases import locks
from streetwatch.cases import tables as t
from streetwatch.detector.scene import Scene, SceneBook, SceneView, scene_id_for

RACE_WINDOW = 100  # newest scenes a view being registered is compared with (`register`)
MAX_VIEWS = 8  # views kept per scene: enough for day, night and a few workers; more would slow identification


def load_book(ses: Session, camera_id: str, newest: int | None = None) -> SceneBook:
    """The camera's stored scenes (every view), as the analysis core uses them; only the `newest` numbers when
    given (a folder of photos gains a scene per place reported, and decoding a view costs ~3 ms)."""
    scenes: dict[int, Scene] = {}
    query = select(t.SceneRef).where(t.SceneRef.camera_id == camera_id).order_by(t.SceneRef.id)
    if newest is not None:
        numbers = ses.scalars(select(t.SceneRef.number).where(t.SceneRef.camera_id == camera_id).distinct()
                              .order_by(t.SceneRef.number.desc()).limit(newest)).all()
        query = query.where(t.SceneRef.number.in_(numbers))
    for row in ses.scalars(query):
        view, to_ref = SceneView.decode(row.data), np.array(row.to_ref["h"], np.float64)
        scene = scenes.get(row.number)
        if scene is None:
            scenes[row.number] = Scene(camera_id, row.number, [view], [to_ref], stored=True)
        else:
            scene.views.append(view)
            scene.to_ref.append(to_ref)
    return SceneBook(camera_id, sorted(scenes.values(), key=lambda s: s.number))


def _number(scene_id: str) -> int | None:
    tail = scene_id.rpartition("/preset-")[2]
    return int(tail) if tail.isdigit() else None


def register(ses: Session, camera_id: str, proposed: str, view: SceneView,
             data: bytes | None = None) -> tuple[str, np.ndarray, tuple[int, int]]:
    """The stored scene `view` (proposed as scene `proposed` by the analysis) is: its id, the homography from
    `view`'s pixels onto that scene's reference, and the reference's size. Registers what is new."""
    data = data if data is not None else view.encode()
    digest = hashlib.sha256(data).hexdigest()
    if ses.get_bind().dialect.name == "postgresql":
        locks.hold(ses, f"streetwatch:scenes:{camera_id}")
    row = ses.scalars(select(t.SceneRef).where(t.SceneRef.camera_id == camera_id, t.SceneRef.digest == digest)).first()
    if row is not None:
        return row.scene_id, np.array(row.to_ref["h"], np.float64), _ref_size(ses, camera_id, row.number)
    # The analysis compared the view with the scenes it loaded; what it could not know are scenes registered
    # since, by other workers: the newest numbers. Not reading them all keeps registering cheap in a folder of
    # photos, which gains a scene per place reported.
    book = load_book(ses, camera_id, newest=RACE_WINDOW)
    match = book.identify(view)
    if match is not None:  # another worker (or an earlier session) registered this place first
        scene = match.scene
        if len(scene.views) < MAX_VIEWS:
            _add(ses, camera_id, scene.number, view, match.to_ref, digest, data)
        return scene.scene_id, match.to_ref, scene.reference.size
    number = _number(proposed)
    if number is None or any(s.number == number for s in book.scenes):
        number = book.next_number()
    _add(ses, camera_id, number, view, np.eye(3), digest, data)
    return scene_id_for(camera_id, number), np.eye(3), view.size


def add_view(ses: Session, camera_id: str, number: int, view: SceneView, to_ref: np.ndarray) -> bool:
    """Keep `view` (a photo of stored scene `number` from elsewhere, `to_ref` onto its reference) as another view
    of that scene, so later photos may match it; False when the scene is gone, full or has this view already."""
    data = view.encode()
    digest = hashlib.sha256(data).hexdigest()
    if ses.get_bind().dialect.name == "postgresql":
        locks.hold(ses, f"streetwatch:scenes:{camera_id}")
    rows = ses.scalars(select(t.SceneRef.digest).where(t.SceneRef.camera_id == camera_id,
                                                       t.SceneRef.number == number)).all()
    if not rows or len(rows) >= MAX_VIEWS or digest in rows:
        return False
    _add(ses, camera_id, number, view, to_ref, digest, data)
    return True


def register_text(ses: Session, camera_id: str, proposed: str,
                  text: str) -> tuple[str, np.ndarray, tuple[int, int], tuple[int, int]]:
    """`register` for a view that travelled as text in a sighting; also returns the view's own size."""
    data = base64.b64decode(text)
    view = SceneView.decode(data)
    scene_id, h, ref_size = register(ses, camera_id, proposed, view, data)
    return scene_id, h, ref_size, view.size


def _ref_size(ses: Session, camera_id: str, number: int) -> tuple[int, int]:
    ref = ses.scalars(select(t.SceneRef).where(t.SceneRef.camera_id == camera_id, t.SceneRef.number == number)
                      .order_by(t.SceneRef.id)).first()
    assert ref is not None
    return (ref.width, ref.height)


def _add(ses: Session, camera_id: str, number: int, view: SceneView, to_ref: np.ndarray, digest: str,
         data: bytes) -> None:
    ses.add(t.SceneRef(camera_id=camera_id, number=number, scene_id=scene_id_for(camera_id, number),
                       width=view.size[0], height=view.size[1], to_ref={"h": np.asarray(to_ref).tolist()},
                       digest=digest, data=data))
    ses.flush()
