"""Big images end to end: wall time, the peak memory and processor time of every process, 24 MP to 1 GP.

For each size a fresh system (web, collector, dispatcher, ``--workers`` workers, on private topics
and database) takes one job through the API; its result is checked against Pillow window by window
(``--windows`` windows, the corners among them: the whole reference of a gigapixel image would not
fit one process either), then the same chain runs in one libvips process (``bench/vips.py``'s way:
open, the operation, PNG at compression 1) for the comparison. The inputs are synthetic but
photo-like (gradients, noise), made by libvips a band at a time and kept in ``var/bench/``.

    .venv/bin/python -m bench.gigapixel --sizes 24,250,1000 --chain median5 [--format tiff]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
import uuid
from pathlib import Path

import django
import pyvips
from PIL import Image

from bench.e2e import (
    bench_session,
    broker_seconds,
    cleanup,
    cpu_seconds,
    peak_memory,
    until_ended,
    use_private_database,
    wait_for_workers,
)
from bench.vips import RUN as VIPS_RUN
from imagepipe.processes import BASE_DIR, MANAGE, start_system

SIZES = {24: (6000, 4000), 250: (20000, 12500), 1000: (40000, 25000)}
# name: (ImagePipe's chain, the libvips operation, the halo a window check reads)
CHAINS: dict[str, tuple[list[dict], str, int]] = {
    "grayscale": ([{"op": "grayscale"}], "image.colourspace('b-w')", 0),
    "gaussian_blur4": ([{"op": "gaussian_blur", "radius": 4}], "image.gaussblur(4)", 16),
    "median5": ([{"op": "median", "size": 5}], "image.median(5)", 2),
    # A global and a geometric step: the windows' reference takes the whole image's histogram.
    "equalize_rotate90": (
        [{"op": "equalize"}, {"op": "rotate", "angle": 90}],
        # Two passes and a turn need random access (libvips turns clockwise, Pillow anticlockwise).
        "pyvips.Image.new_from_file(sys.argv[1]).hist_equal().rot270()",
        0,
    ),
}
INPUTS = BASE_DIR / "var" / "bench"
MB = 1 << 20


def make_input(width: int, height: int, fmt: str) -> Path:
    """A photo-like RGB image: two gradients, a coarse blurred texture and grain, by libvips."""
    path = INPUTS / f"giga-{width}x{height}.{fmt}"
    if path.exists():
        return path
    INPUTS.mkdir(parents=True, exist_ok=True)
    xy = pyvips.Image.xyz(width, height)
    x, y = xy[0], xy[1]
    texture = pyvips.Image.gaussnoise(-(-width // 64), -(-height // 64), sigma=40, mean=0)
    texture = texture.resize(64, kernel="linear").crop(0, 0, width, height)
    grain = pyvips.Image.gaussnoise(width, height, sigma=6, mean=0)
    red = x * (200 / width) + texture + grain
    green = y * (200 / height) + texture * 0.5 + grain
    blue = (x + y) * (120 / (width + height)) + 60 - texture + grain
    image = red.bandjoin([green, blue]).cast("uchar")  # clipped to 0..255
    temporary = path.with_suffix(".part" + path.suffix)
    if fmt == "jpg":
        image.jpegsave(str(temporary), Q=90)
    else:
        image.tiffsave(
            str(temporary),
            tile=True,
            tile_width=512,
            tile_height=512,
            compression="deflate",
            bigtiff=width * height * 3 > 3 << 30,
        )
    temporary.rename(path)
    return path


def reference_window(chain: list[dict], image, box: tuple[int, int, int, int], halo: int):
    """Pillow's chain on the window of the original ``image`` and its halo (clipped at the image's
    edges, as the whole image's filters are), cropped to the window: what the whole-image
    reference holds there. (libvips decodes the original as Pillow does: tests/core/test_bands.py.)"""
    from tests.core.reference import reference

    left, top, right, bottom = box
    size = (image.width, image.height)
    padded = (
        max(left - halo, 0),
        max(top - halo, 0),
        min(right + halo, size[0]),
        min(bottom + halo, size[1]),
    )
    region = image.crop(padded[0], padded[1], padded[2] - padded[0], padded[3] - padded[1])
    pixels = Image.frombytes("RGB", (region.width, region.height), region.write_to_memory())
    done = reference(pixels, chain)
    return done.crop((left - padded[0], top - padded[1], right - padded[0], bottom - padded[1]))


def windows(size: tuple[int, int], count: int, side: int = 512) -> list[tuple[int, int, int, int]]:
    width, height = size
    rng = random.Random(0)
    corners = [(0, 0), (width - side, 0), (0, height - side), (width - side, height - side)]
    picked = corners + [(rng.randrange(width - side), rng.randrange(height - side)) for _ in range(count)]
    return [(x, y, x + side, y + side) for x, y in picked[: max(count, 4)]]


def equalized_window(image, tables: list[int], box: tuple[int, int, int, int]) -> Image.Image:
    """``equalize`` then ``rotate`` 90 (anticlockwise) of the whole ``image``, at ``box`` of the
    result: the window it comes from, through the whole image's ``equalize_tables``, turned."""
    left, top, right, bottom = box  # of the turned result: its x is the original's y
    source = (image.width - bottom, left, image.width - top, right)
    region = image.crop(source[0], source[1], source[2] - source[0], source[3] - source[1])
    pixels = Image.frombytes("RGB", (region.width, region.height), region.write_to_memory())
    return pixels.point(tables).transpose(Image.Transpose.ROTATE_90)


def equalize_tables(image) -> list[int]:
    """The table Pillow's ``ImageOps.equalize`` makes from the whole image's histogram (its
    algorithm, written out), from libvips' histogram of each band."""
    tables: list[int] = []
    for band in range(image.bands):
        counts = [int(count) for count in image[band].hist_find().tolist()[0]]
        used = [count for count in counts if count]
        step = (sum(used) - used[-1]) // 255 if len(used) > 1 else 0
        if not step:
            tables += range(256)
            continue
        running = step // 2
        for count in counts:
            tables.append(running // step)
            running += count
    return tables


def check(result: Path, original: Path, chain: list[dict], halo: int, count: int) -> int:
    """How many of the windows differ from the reference (0: every one is identical)."""
    image = pyvips.Image.new_from_file(str(result), access="random")
    source = pyvips.Image.new_from_file(str(original), access="random")
    wrong = 0
    tables = equalize_tables(source) if chain == CHAINS["equalize_rotate90"][0] else []
    for box in windows((image.width, image.height), count):
        got = image.crop(box[0], box[1], box[2] - box[0], box[3] - box[1])
        if tables:
            expected = equalized_window(source, tables, box)
        else:
            expected = reference_window(chain, source, box, halo)
        mode = {1: "L", 3: "RGB", 4: "RGBA"}[got.bands]
        wrong += Image.frombytes(mode, expected.size, got.write_to_memory()).tobytes() != expected.tobytes()
    return wrong


def vips_seconds(original: Path, operation: str, out: Path) -> float:
    script = VIPS_RUN.format(operation=operation)
    done = subprocess.run(
        [sys.executable, "-c", script, str(original), str(out)], check=True, capture_output=True, text=True
    )
    return float(done.stdout)


def run_size(args, megapixels: int, env: dict) -> dict:
    width, height = SIZES[megapixels]
    original = make_input(width, height, args.format)
    chain, operation, halo = CHAINS[args.chain]
    subprocess.run([*MANAGE, "kafka_topics"], cwd=BASE_DIR, check=True, stdout=subprocess.DEVNULL)
    system = start_system(
        env=env, workers=args.workers, port=args.port, log_dir=BASE_DIR / "var" / "log" / "bench"
    )
    job_id = None
    try:
        api = bench_session(system)
        wait_for_workers(system, api, args.workers)
        started, broker = time.perf_counter(), broker_seconds()
        from jobs.remote import Remote  # (Django is set up by now)

        # As the submit page and manage.py submit send a file over MAX_REQUEST_BYTES: resumable.
        remote = Remote(system.url, api.headers["Authorization"].split()[1], note=lambda _: None, timeout=600)
        job = remote.submit(remote.upload(original), {"operations": chain, "tile_size": 512})
        job_id = job["id"]
        job = until_ended(system, api, job, 0.5)
        seconds = time.perf_counter() - started
        if job["status"] != "done":
            raise RuntimeError(f"job {job_id} {job['status']}: {job['error']}")
        peaks, cpu = peak_memory(system), cpu_seconds(system)
        cpu["broker"] = broker_seconds() - broker
        result = INPUTS / f"result-{job_id}.png"
        with api.get(f"{system.url}/api/jobs/{job_id}/result/", stream=True, timeout=3600) as download:
            download.raise_for_status()
            with result.open("wb") as out:
                for piece in download.iter_content(8 * MB):
                    out.write(piece)
    finally:
        cleanup(system, [job_id] if job_id else [])
    wrong = check(result, original, chain, halo, args.windows)
    result.unlink()
    vips = vips_seconds(original, operation, INPUTS / "vips-out.png") if args.vips else None
    (INPUTS / "vips-out.png").unlink(missing_ok=True)
    return {
        "megapixels": megapixels,
        "size": f"{width}x{height}",
        "file MB": original.stat().st_size / MB,
        "tiles": job["tiles_total"],
        "seconds": seconds,
        "vips seconds": vips,
        "windows wrong": wrong,
        "peak MB": {name: round(peak) for name, peak in peaks.items()},
        "cpu s": {name: round(spent, 1) for name, spent in cpu.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="24,250,1000", help="megapixels, of " + ", ".join(map(str, SIZES)))
    parser.add_argument("--chain", default="median5", choices=sorted(CHAINS))
    parser.add_argument("--format", default="jpg", choices=["jpg", "tif"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--windows", type=int, default=12, help="windows checked against Pillow")
    parser.add_argument("--no-vips", dest="vips", action="store_false")
    parser.add_argument("--port", type=int, default=8101)
    args = parser.parse_args()
    env = {
        "KAFKA_TOPIC_PREFIX": f"giga-{uuid.uuid4().hex[:8]}-",
        "DJANGO_SETTINGS_MODULE": "imagepipe.settings",
        "WORKER_HEARTBEAT_SECONDS": "1",
        "MAX_UPLOAD_BYTES": str(4 << 30),
        "MAX_IMAGE_PIXELS": str(1_100_000_000),
    }
    os.environ.update(env)
    env["DATABASE_URL"] = use_private_database("imagepipe_giga")
    django.setup()
    demo = "ensure_demo_user --username bench --password bench-pass --staff"
    subprocess.run([*MANAGE, *demo.split()], cwd=BASE_DIR, check=True, stdout=subprocess.DEVNULL)
    for megapixels in (int(value) for value in args.sizes.split(",")):
        print(json.dumps(run_size(args, megapixels, env)), flush=True)


if __name__ == "__main__":
    main()
