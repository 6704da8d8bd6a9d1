"""Tile codecs through the real broker: raw pixels + producer lz4 vs PNG level 1.

Cuts a 6000 x 4000 photo-like image into 512 px tiles with a 15 px halo, then
for each codec: encode + produce + flush, consume everything back from the
beginning (fresh group, partitions assigned directly so no rebalance is timed)
and decode.  raw with no / zstd compression run too, for reference.  Prints a
markdown table.  Run: ``.venv/bin/python -m bench.codec``.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import cast

import django
from confluent_kafka import OFFSET_BEGINNING, KafkaError, Message, TopicPartition
from confluent_kafka.admin import NewTopic
from PIL import Image

from bench.photo import photo_like
from imagepipe.core import codec, png
from imagepipe.core.pipeline import cut_tile
from imagepipe.core.tiling import tile_grid
from imagepipe.processes import role_env
from pipeline import kafka

PARTITIONS = 4
KAFKA_DATA = Path(__file__).resolve().parent.parent / "var" / "kafka" / "data"


@dataclass(frozen=True)
class Codec:
    name: str
    compression: str  # the producer's compression.type
    encode: Callable[[Image.Image], bytes]
    decode: Callable[[bytes], Image.Image]

    @property
    def label(self) -> str:
        return f"{self.name}-{self.compression}"


CODECS = [
    Codec("raw", "lz4", codec.encode_raw, codec.decode_raw),
    Codec(
        "png", "none", lambda tile: png.encode_png(tile, threads=1), lambda data: Image.open(io.BytesIO(data))
    ),
    Codec("raw", "none", codec.encode_raw, codec.decode_raw),
    Codec("raw", "zstd", codec.encode_raw, codec.decode_raw),
]


def _png_tile(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image


@dataclass
class Run:
    encode_ms: float  # per tile
    decode_ms: float  # per tile
    payload_mb: float  # sum of encoded sizes
    disk_mb: float  # the topic's log segments: what the broker stored, after compression
    produce_s: float  # encode + produce + flush
    consume_s: float  # consume + decode
    total_s: float


def run_once(c: Codec, tiles: list[Image.Image], topic: str) -> Run:
    producer = kafka.producer(**{"compression.type": c.compression})
    errors: list[KafkaError] = []

    def delivered(err: KafkaError | None, msg: Message) -> None:
        if err:
            errors.append(err)

    encode_s, payload = 0.0, 0
    started = time.perf_counter()
    for index, tile in enumerate(tiles):
        t = time.perf_counter()
        value = c.encode(tile)
        encode_s += time.perf_counter() - t
        payload += len(value)
        while True:
            try:
                producer.produce(
                    topic,
                    value,
                    partition=index % PARTITIONS,
                    on_delivery=delivered,
                )
                break
            except BufferError:  # local queue full: let deliveries drain
                producer.poll(0.1)
    if producer.flush(60) or errors:
        raise RuntimeError(f"produce failed: {errors[:1] or 'timeout'}")
    produced = time.perf_counter()

    consumer = kafka.consumer(f"{topic}-reader", **{"enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    decoded: dict[int, Image.Image] = {}
    decode_s = 0.0
    while len(decoded) < len(tiles):
        message = consumer.poll(10)
        if message is None or message.error():
            raise RuntimeError(
                f"{topic}: {len(decoded)}/{len(tiles)} tiles back; {message and message.error()}"
            )
        t = time.perf_counter()
        # Partition p holds tiles p, p+4, ... in order: that gives each tile's index.
        offset, partition = cast(int, message.offset()), cast(int, message.partition())  # fetched: set
        decoded[offset * PARTITIONS + partition] = c.decode(cast(bytes, message.value()))
        decode_s += time.perf_counter() - t
    finished = time.perf_counter()
    consumer.close()
    for index, tile in enumerate(tiles):  # lossless, or the numbers mean nothing
        if decoded[index].tobytes() != tile.tobytes():
            raise AssertionError(f"{c.label}: tile {index} came back different")
    disk = sum(f.stat().st_size for f in KAFKA_DATA.glob(f"{topic}-*/*.log"))
    return Run(
        encode_s * 1000 / len(tiles),
        decode_s * 1000 / len(tiles),
        payload / 1e6,
        disk / 1e6,
        produced - started,
        finished - produced,
        finished - started,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="6000x4000")
    parser.add_argument("--tile-size", type=int, default=512)
    parser.add_argument("--halo", type=int, default=15)
    parser.add_argument("--repeat", type=int, default=3, help="runs per codec; medians shown")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imagepipe.settings")
    os.environ.update(role_env("admin"))  # its topics are made and read as the broker's admin
    django.setup()

    width, height = (int(v) for v in args.size.split("x"))
    image = photo_like(width, height)
    tiles = [cut_tile(image, spec) for spec in tile_grid(width, height, args.tile_size, args.halo)]
    prefix = f"bench-codec-{uuid.uuid4().hex[:8]}"
    admin = kafka.admin()
    topics: list[str] = []
    results: dict[str, list[Run]] = {c.label: [] for c in CODECS}
    try:
        for attempt in range(args.repeat):
            shift = attempt % len(CODECS)  # rotate who goes first
            for c in CODECS[shift:] + CODECS[:shift]:
                topics.append(f"{prefix}-{c.label}-{attempt}")
                admin.create_topics(
                    [
                        NewTopic(
                            topics[-1], num_partitions=PARTITIONS, config={"max.message.bytes": "33619968"}
                        )
                    ]
                )[topics[-1]].result()
                results[c.label].append(run_once(c, tiles, topics[-1]))
    finally:
        for name, future in admin.delete_topics(topics).items() if topics else ():
            if future.exception():  # best effort: report and go on
                print(f"could not delete topic {name}: {future.exception()}")

    pixels = sum(t.width * t.height * len(t.getbands()) for t in tiles) / 1e6
    print(
        f"{len(tiles)} tiles of {args.tile_size} px + {args.halo} px halo from a {width}x{height} "
        f"photo-like image, {pixels:.1f} MB of pixels; medians of {args.repeat} run(s)\n"
    )
    print(
        "| codec | producer compression | encode ms/tile | decode ms/tile | payload MB "
        "| on broker disk MB | encode+produce s | consume+decode s | round trip s |"
    )
    print("|---|---|" + "---:|" * 7)
    for c in CODECS:
        r = [statistics.median(getattr(run, f.name) for run in results[c.label]) for f in fields(Run)]
        print(f"| {c.name} | {c.compression} | " + " | ".join(f"{v:.2f}" for v in r) + " |")


if __name__ == "__main__":
    main()
