"""Jobs shared by the tests of the jobs app."""

import pytest

from .factories import SMALL_PHOTO, make_job


@pytest.fixture
def job(alice):
    """A small job of alice's, submitted and not yet started: SMALL_PHOTO blurred, in 6 tiles of 64."""
    return make_job(alice, SMALL_PHOTO)
