"""The scheduling rule on its own: priorities first, then fair between users, then between jobs."""

from datetime import datetime, timedelta

from pipeline.scheduler import Queue, share, window

T0 = datetime(2026, 1, 1)


def queue(job, owner, queued, in_flight=0, priority=1, age=0, in_memory=True):
    return Queue(job, owner, priority, T0 + timedelta(seconds=age), queued, in_flight, in_memory)


def test_a_small_job_behind_a_big_one_gets_the_next_place():
    big, small = queue("big", owner=1, queued=90, in_flight=4), queue("small", owner=2, queued=1, age=5)
    assert share([big, small], 1, {1: 4}) == {"small": 1}


def test_users_share_the_places_whatever_the_size_of_their_jobs():
    queues = [queue("a1", 1, 50), queue("a2", 1, 50, age=1), queue("b", 2, 50, age=2)]
    assert share(queues, 6) == {"b": 3, "a1": 2, "a2": 1}


def test_a_users_tiles_in_flight_in_other_jobs_count_against_their_share():
    queues = [queue("a", 1, 10), queue("b", 2, 10, age=1)]
    assert share(queues, 4, {1: 3}) == {"b": 3, "a": 1}


def test_a_users_job_that_would_be_decoded_again_waits_behind_their_jobs_in_memory():
    queues = [queue("a-old", 1, 50, in_memory=False), queue("a-new", 1, 50, age=1)]
    assert share(queues, 3) == {"a-new": 3}


def test_between_users_fairness_comes_before_memory():
    queues = [queue("a", 1, 50), queue("b", 2, 50, age=1, in_memory=False)]
    assert share(queues, 4) == {"a": 2, "b": 2}


def test_higher_priority_fills_the_window_first():
    queues = [queue("normal", 1, 10), queue("low", 2, 10, priority=0), queue("high", 3, 3, priority=2, age=9)]
    assert share(queues, 5) == {"high": 3, "normal": 2}


def test_no_more_places_are_given_than_there_are_tiles_waiting():
    assert share([queue("a", 1, 2), queue("b", 2, 1)], 10) == {"a": 2, "b": 1}
    assert share([], 10) == {}
    assert share([queue("a", 1, 2)], 0) == {}


def test_the_window_keeps_every_live_worker_busy_and_has_a_floor():
    assert window(online_workers=3, per_worker=2, least=4) == 6
    assert window(online_workers=0, per_worker=2, least=4) == 4


def test_the_window_holds_the_work_each_worker_does_in_the_seconds_ahead():
    assert window(online_workers=2, per_worker=2, least=4, tile_seconds=0.02, ahead=1.0) == 100  # fast
    assert window(online_workers=2, per_worker=2, least=4, tile_seconds=0.7, ahead=1.0) == 4  # the floor
    assert window(online_workers=2, per_worker=2, least=4, tile_seconds=0.22, ahead=1.0) == 10  # 4.5 → 5
    assert window(online_workers=0, per_worker=2, least=4, tile_seconds=0.01, ahead=1.0) == 4
