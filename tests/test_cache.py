"""imagepipe.cache: the cache holds JSON; a pickle planted in Redis is a miss, never run."""

import pickle

from django.core.cache import cache

RAN: list[str] = []


class Planted:
    def __reduce__(self):
        return (RAN.append, ("the planted pickle ran",))


def test_what_the_project_caches_comes_back_as_it_went():
    cache.set("history", [1701.5, 1702.25])
    cache.set("count", 4)
    assert cache.get("history") == [1701.5, 1702.25]
    assert cache.incr("count") == 5 and cache.get("count") == 5


def test_a_pickle_planted_in_redis_is_a_miss_and_never_runs():
    redis = cache._cache.get_client(cache.make_key("session"), write=True)  # type: ignore[attr-defined]
    redis.set(cache.make_key("planted"), pickle.dumps(Planted()))
    assert cache.get("planted") is None
    assert RAN == []
