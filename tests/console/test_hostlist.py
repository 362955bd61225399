"""Slurm hostlist expressions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from console.hostlist import HostlistError, compress, expand


def test_expand_brackets_commas_and_padding() -> None:
    assert expand("gpu[01-04,07],n1") == ["gpu01", "gpu02", "gpu03", "gpu04", "gpu07", "n1"]
    assert expand("n[9-11]") == ["n9", "n10", "n11"]
    assert expand("n[09-11]") == ["n09", "n10", "n11"]
    assert expand("r[1-2]-g[01-02]") == ["r1-g01", "r1-g02", "r2-g01", "r2-g02"]
    assert expand("") == [] and expand(None) == []
    assert expand("cpu01") == ["cpu01"]


@pytest.mark.parametrize("bad", ["gpu[01-", "gpu]01[", "gpu[a-b]", "gpu[5-1]", "n[[1]]"])
def test_malformed_expressions_raise(bad: str) -> None:
    with pytest.raises(HostlistError):
        expand(bad)


def test_huge_range_is_refused() -> None:
    with pytest.raises(HostlistError):
        expand("n[1-999999999]")


def test_compress() -> None:
    assert compress(["gpu01", "gpu02", "gpu03", "gpu04", "gpu07", "n1"]) == "gpu[01-04,07],n1"
    assert compress(["n9", "n10", "n11"]) == "n[9-11]"
    assert compress(["login", "gpu01"]) == "login,gpu01"
    assert compress([]) == ""


@given(st.sets(st.integers(0, 300), min_size=1, max_size=40), st.sampled_from([0, 2, 3]))
def test_compress_expand_round_trip(nums: set[int], width: int) -> None:
    names = [f"gpu{str(n).zfill(width)}" for n in sorted(nums)]
    assert expand(compress(names)) == names
