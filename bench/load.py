"""The soak's users (``bench.soak``): mixed load through the HTTP API, each user at their own pace.

A user submits the committed photographs and synthetic images, small and medium, with one of
CHAINS (neighbourhood, global and point operations) in a tile size that suits the image, PNG out;
cancels some jobs within seconds, and retries half of those. Each runs in a thread of its own.
"""

from __future__ import annotations

import io
import json
import math
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import requests
from PIL import Image

from bench.photo import photo_like
from tests.images import DATA, encoded, noise

PACES = (6.0, 10.0, 16.0, 25.0)  # each user's mean seconds between submits (more users: again)
OPEN_MAX = 3  # a user's unfinished jobs at most; they wait for one to end before submitting more
CANCEL_SHARE, RETRY_SHARE = 0.15, 0.5  # of jobs submitted, cancelled; of those, retried
TICK = 2.0  # seconds between a user's looks at their jobs, unless a cancel or retry is due sooner
CHAINS = [
    [{"op": "median", "size": 3}, {"op": "equalize"}, {"op": "invert"}],
    [
        {"op": "autocontrast", "cutoff": 1},
        {"op": "gaussian_blur", "radius": 2},
        {"op": "posterize", "bits": 5},
    ],
    [{"op": "gaussian_blur", "radius": 1.5}, {"op": "grayscale"}],
    [{"op": "median", "size": 5}, {"op": "gaussian_blur", "radius": 2}],
    [{"op": "sepia"}, {"op": "equalize"}],
]
FINISHED = ("done", "failed", "cancelled")


@dataclass
class Upload:
    name: str
    data: bytes
    tile_sizes: tuple[int, ...]
    weight: float  # how often it is picked, relatively

    def image(self) -> Image.Image:
        with Image.open(io.BytesIO(self.data)) as image:
            image.load()
            return image


def uploads() -> list[Upload]:
    small, medium = (64, 128, 256), (256, 512)
    return [
        Upload("coffee.png", (DATA / "coffee.png").read_bytes(), small, 2),
        Upload("rocket.jpg", (DATA / "rocket.jpg").read_bytes(), small, 2),
        Upload("camera.png", (DATA / "camera.png").read_bytes(), small, 1),
        Upload("noise-rgba-320x240.png", encoded(noise(320, 240, "RGBA", seed=1)), small, 1),
        Upload("photo-1600x1200.png", encoded(photo_like(1600, 1200, seed=1), compress_level=1), medium, 1.5),
        Upload(
            "photo-2000x1500.jpg", encoded(photo_like(2000, 1500, seed=2), "JPEG", quality=90), medium, 1.5
        ),
    ]


@dataclass
class User:
    """One user's load: submit, cancel and retry through the API, at their own pace."""

    name: str
    url: str
    pace: float
    session: requests.Session = field(default_factory=requests.Session)
    open: set[str] = field(default_factory=set)  # submitted or retried, not yet seen finished
    cancels: dict[str, float] = field(default_factory=dict)  # job: when to cancel it
    retries: dict[str, float] = field(default_factory=dict)  # job: when to retry it
    counts: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.name)
        self.session.headers["Authorization"] = f"Token {login(self.url, self.name)}"

    def run(self, files: list[Upload], until: float, stop: threading.Event) -> None:
        next_submit = time.monotonic() + self.rng.uniform(0, self.pace)
        while time.monotonic() < until and not stop.is_set():
            try:
                self.follow()
                if time.monotonic() >= next_submit and len(self.open) < OPEN_MAX:
                    self.submit(self.rng.choices(files, [f.weight for f in files])[0])
                    next_submit = time.monotonic() + self.rng.expovariate(1 / self.pace)
                self.act()
            except requests.RequestException as exc:  # told at the end; the user carries on
                self.counts["HTTP errors"] += 1
                self.errors.append(f"{time.strftime('%H:%M:%S')} {exc}")
            stop.wait(self.pause())

    def pause(self) -> float:
        soonest = min([*self.cancels.values(), *self.retries.values()], default=math.inf)
        return max(0.05, min(TICK, soonest - time.monotonic()))

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        response = self.session.request(method, f"{self.url}/api/jobs/{path}", timeout=120, **kwargs)
        if response.status_code != 409:  # 409: the job is past what was asked (told by the caller)
            response.raise_for_status()
        return response

    def submit(self, upload: Upload) -> None:
        fields = {
            "operations": json.dumps(self.rng.choice(CHAINS)),
            "tile_size": str(self.rng.choice(upload.tile_sizes)),
            "output_format": "png",
        }
        job = self.call("POST", "", files={"image": (upload.name, upload.data)}, data=fields).json()["id"]
        self.open.add(job)
        self.counts["submitted"] += 1
        if self.rng.random() < CANCEL_SHARE:
            self.cancels[job] = time.monotonic() + self.rng.uniform(0.2, 4)

    def follow(self) -> None:
        for job in list(self.open):
            if self.call("GET", f"{job}/").json()["status"] in FINISHED:
                self.open.discard(job)

    def act(self) -> None:
        """The cancels and retries that are due."""
        now = time.monotonic()
        for job in due(self.cancels, now):
            if self.call("POST", f"{job}/cancel/").status_code == 409:
                self.counts["cancel too late"] += 1
                continue
            self.counts["cancelled"] += 1
            self.open.discard(job)
            if self.rng.random() < RETRY_SHARE:
                self.retries[job] = now + self.rng.uniform(2, 20)
        for job in due(self.retries, now):
            if self.call("POST", f"{job}/retry/").status_code == 409:
                self.counts["retry refused"] += 1
                continue
            self.counts["retried"] += 1
            self.open.add(job)


def due(schedule: dict[str, float], now: float) -> list[str]:
    """The jobs whose time in ``schedule`` has come, taken out of it."""
    jobs = [job for job, when in schedule.items() if when <= now]
    for job in jobs:
        del schedule[job]
    return jobs


def login(url: str, name: str) -> str:
    answer = requests.post(
        f"{url}/api/auth/token/", data={"username": name, "password": f"{name}-pass"}, timeout=30
    )
    answer.raise_for_status()
    return answer.json()["token"]
