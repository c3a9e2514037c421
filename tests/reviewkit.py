"""Helpers for the review tests: a store with real evidence JPEGs, users, and logging a client in."""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
from sqlalchemy import select

from streetwatch.cases import tables as t
from streetwatch.cases.evidence import save_evidence
from streetwatch.cases.evidence_tiers import RAW_KEYS, REDACTED
from streetwatch.cases.store import CaseStore
from streetwatch.detector.config import load_taxonomy
from streetwatch.review.users import add_user
from tests.builders import sighting

TAX = load_taxonomy()
PASSWORDS = {"alice": "alice-secret-1", "bob": "bob-secret-22", "root": "root-secret-333"}


def street_image(seed: int, size=(320, 240)) -> np.ndarray:
    """A small picture with some structure (so JPEGs differ), cheap to make."""
    rng = np.random.default_rng(seed)
    img = np.full((size[1], size[0], 3), 90 + seed * 7 % 100, np.uint8)
    for _ in range(6):
        x, y = int(rng.integers(0, size[0] - 40)), int(rng.integers(0, size[1] - 40))
        cv2.rectangle(img, (x, y), (x + 40, y + 30), tuple(int(v) for v in rng.integers(0, 255, 3)), -1)
    return img


def file_sighting(store: CaseStore, evidence_dir: Path, key: str, image: np.ndarray | None = None, **kw):
    """Record a sighting with evidence files written from `image` (a synthetic picture by default)."""
    s = sighting(key, size=(320, 240), **kw)
    s = replace(s, image=street_image(len(key) + sum(map(ord, key))) if image is None else image)
    if image is not None:
        s = replace(s, frame_size=(image.shape[1], image.shape[0]))
    return store.record_sighting(s, TAX, save_evidence(s, evidence_dir), None)


def seed_queue(store: CaseStore, evidence_dir: Path, n: int = 4, t0: float = 1_800_000_000.0) -> list[int]:
    """`n` separate cases on one camera (different places in the image), one sighting each, newest last."""
    ids = []
    for i in range(n):
        x = 10 + i * 75
        ids.append(file_sighting(store, evidence_dir, f"q{i}", xyxy=(x, 100, x + 50, 160), first_seen=t0 + i * 60).case_id)
    return ids


def add_users(store: CaseStore) -> None:
    with store.sessions.begin() as ses:
        add_user(ses, "alice", PASSWORDS["alice"], "analyst")
        add_user(ses, "bob", PASSWORDS["bob"], "analyst")
        add_user(ses, "root", PASSWORDS["root"], "admin")


def login_form_token(client) -> str:
    page = client.get("/login")
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def login(client, user: str, password: str | None = None):
    """Log in through the form; returns the response (303 on success)."""
    token = login_form_token(client)
    return client.post("/login", data={"username": user, "password": password or PASSWORDS[user], "csrf_token": token,
                                       "next": "/cases"}, follow_redirects=False)


def csrf_of(client) -> str:
    return client.get("/api/session").json()["csrf_token"]


def add_redacted(store: CaseStore, evidence_dir: Path, case_id: int) -> None:
    """Give a case and its sightings redacted copies the way the evidence writer files them: a blurred JPEG
    beside each raw-tier file, under `redacted_<key>` (with a summary on `redacted_raw`)."""
    with store.sessions.begin() as ses:
        rows = [ses.get(t.Case, case_id), *ses.scalars(select(t.Sighting).where(t.Sighting.case_id == case_id))]
        for row in rows:
            ev = dict(row.evidence)
            for key in RAW_KEYS:
                rel = ev[key]["path"].removesuffix(".jpg") + "_redacted.jpg"
                image = cv2.imdecode(np.fromfile(evidence_dir / ev[key]["path"], np.uint8), cv2.IMREAD_COLOR)
                data = cv2.imencode(".jpg", cv2.GaussianBlur(image, (31, 31), 0))[1].tobytes()
                (evidence_dir / rel).write_bytes(data)
                ev[REDACTED[key]] = {"path": rel, "sha256": hashlib.sha256(data).hexdigest()}
            ev["redacted_raw"]["redaction"] = {"faces": 1, "plates": 0}
            row.evidence = ev
