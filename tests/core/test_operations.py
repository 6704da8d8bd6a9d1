import math

import pytest

from imagepipe.core.operations import (
    MAX_CHAIN_LENGTH,
    ChainError,
    chain_halo,
    chain_output_mode,
    parse_chain,
)


def test_it_parses_a_chain_with_defaults_filled_in():
    steps = parse_chain([{"op": "grayscale"}, {"op": "gaussian_blur"}])
    assert [step.to_dict() for step in steps] == [{"op": "grayscale"}, {"op": "gaussian_blur", "radius": 2.0}]


def test_the_chain_halo_is_the_sum_of_its_steps():
    steps = parse_chain(
        [{"op": "gaussian_blur", "radius": 4}, {"op": "grayscale"}, {"op": "gaussian_blur", "radius": 1.5}]
    )
    assert chain_halo(steps) == 3 * (4 + 1) + 3 * (math.ceil(1.5) + 1)


def test_grayscale_turns_the_output_mode_to_l():
    assert chain_output_mode("RGB", parse_chain([{"op": "grayscale"}])) == "L"
    assert chain_output_mode("RGB", parse_chain([{"op": "gaussian_blur", "radius": 1}])) == "RGB"


@pytest.mark.parametrize(
    "chain,message",
    [
        ([], "non-empty list"),
        ({"op": "grayscale"}, "non-empty list"),
        (["grayscale"], "must be an object"),
        ([{"op": "sharpen_everything"}], "unknown operation 'sharpen_everything'"),
        ([{"op": "gaussian_blur", "radius": 51}], "between 0 and 50"),
        ([{"op": "gaussian_blur", "radius": -1}], "between 0 and 50"),
        ([{"op": "gaussian_blur", "radius": "4"}], "must be a number"),
        ([{"op": "gaussian_blur", "radius": True}], "must be a number"),
        ([{"op": "gaussian_blur", "radius": float("nan")}], "'radius' must be a finite number"),
        ([{"op": "gaussian_blur", "radius": float("-inf")}], "'radius' must be a finite number"),
        ([{"op": "posterize", "bits": float("nan")}], "'bits' must be a finite number"),
        ([{"op": "posterize", "bits": float("inf")}], "'bits' must be a finite number"),
        ([{"op": "posterize", "bits": 10**400}], "'bits' must be between 1 and 8"),
        ([{"op": "gaussian_blur", "sigma": 3}], "unexpected parameter(s) 'sigma'"),
        ([{"op": "grayscale"}] * (MAX_CHAIN_LENGTH + 1), "at most 10 operations"),
    ],
)
def test_it_rejects_bad_chains_with_a_clear_message(chain, message):
    with pytest.raises(ChainError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_chain(chain)


@pytest.mark.parametrize("chain", [[{"op": "\ud800"}], [{"op": "invert", "\udfff": 1}]])
def test_a_message_quotes_the_clients_text_so_it_can_always_be_sent(chain):
    with pytest.raises(ChainError) as refused:
        parse_chain(chain)
    str(refused.value).encode("utf-8")  # a lone surrogate, echoed raw, would fail here
