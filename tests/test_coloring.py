"""Colourings of patterns beyond the modular ones: bands that wrap around, dense graphs."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from test_sparse import MODES, assert_valid_sparse, coo_pattern, random_per_row

import vecgrad as vg
from vecgrad import _coloring


def periodic_band(n: int, half_width: int) -> torch.Tensor:
    """Row ``i`` reads columns ``i - w, ..., i + w`` modulo ``n`` (a band that wraps around)."""
    i = torch.arange(n)
    offsets = range(-half_width, half_width + 1)
    rows = torch.cat([i for _ in offsets])
    cols = torch.cat([(i + d) % n for d in offsets])
    return coo_pattern(rows, cols, n, n)


def periodic_stencil(height: int, width: int, points: int) -> torch.Tensor:
    """The 5- or 9-point stencil on a grid whose rows and columns wrap around."""
    steps = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    if points == 5:
        steps = [(dy, dx) for dy, dx in steps if dy == 0 or dx == 0]
    i = torch.arange(height * width)
    y, x = i // width, i % width
    cols = [((y + dy) % height) * width + (x + dx) % width for dy, dx in steps]
    return coo_pattern(torch.cat([i for _ in steps]), torch.cat(cols), i.numel(), i.numel())


@pytest.mark.parametrize("n", [99, 100, 101, 1001, 100_003])
@pytest.mark.parametrize("half_width", [1, 2])
def test_a_band_that_wraps_around_needs_at_most_one_colour_above_the_bound(
    n: int, half_width: int
) -> None:
    pattern = periodic_band(n, half_width)
    for mode in MODES:
        coloring = vg.color_jacobian(pattern, strategy=mode)
        assert_valid_sparse(coloring)
        assert coloring.lower_bound == 2 * half_width + 1
        assert coloring.num_colors <= coloring.lower_bound + 1
    # A length the bound divides needs no more than the bound.
    if n % (2 * half_width + 1) == 0:
        assert vg.color_jacobian(pattern, strategy="forward").num_colors == 2 * half_width + 1


@pytest.mark.parametrize(("height", "width", "points"), [(13, 11, 5), (10, 10, 5), (12, 11, 9)])
def test_stencils_that_wrap_around_are_coloured_validly(
    height: int, width: int, points: int
) -> None:
    pattern = periodic_stencil(height, width, points)
    for mode in MODES:
        coloring = vg.color_jacobian(pattern, strategy=mode)
        assert_valid_sparse(coloring)
        assert coloring.lower_bound == points


def count_rounds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the rounds of every greedy colouring made while the patch holds."""
    rounds: list[int] = []
    greedy = _coloring._greedy

    def spy(*args: Any) -> tuple[torch.Tensor, int]:
        colors, count = greedy(*args)
        rounds.append(count)
        return colors, count

    monkeypatch.setattr(_coloring, "_greedy", spy)
    return rounds


@pytest.mark.parametrize("mode", MODES)
def test_a_dense_intersection_graph_takes_few_greedy_rounds(
    monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    # Each column lies in about 24 of the 300 rows of 40: its neighbours are most columns.
    pattern = random_per_row(300, 500, 40, seed=0)
    rounds = count_rounds(monkeypatch)
    coloring = vg.color_jacobian(pattern, strategy=mode)
    assert_valid_sparse(coloring)
    assert coloring.num_colors > 2 * coloring.lower_bound  # far from any modular colouring
    assert len(rounds) == 1
    assert rounds[0] <= 4


@pytest.mark.parametrize("mode", MODES)
def test_finishing_one_member_at_a_time_gives_the_jones_plassmann_colours(
    monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    pattern = random_per_row(200, 300, 30, seed=1)
    finished = vg.color_jacobian(pattern, strategy=mode)
    rounds = count_rounds(monkeypatch)
    monkeypatch.setattr(_coloring, "_DENSE_MEMBERS", 0)  # rounds only, to the end
    by_rounds = vg.color_jacobian(pattern, strategy=mode)
    assert rounds[0] > 20
    assert torch.equal(finished.colors, by_rounds.colors)
    assert finished.num_colors == by_rounds.num_colors


@pytest.mark.parametrize(
    ("m", "n", "k", "seed"), [(60, 90, 12, 2), (120, 40, 9, 3), (400, 600, 5, 4), (50, 50, 50, 5)]
)
def test_random_patterns_are_coloured_validly_and_deterministically(
    m: int, n: int, k: int, seed: int
) -> None:
    pattern = random_per_row(m, n, k, seed)
    for mode in MODES:
        first = vg.color_jacobian(pattern, strategy=mode)
        assert_valid_sparse(first)
        second = vg.color_jacobian(pattern.to_sparse(), strategy=mode)
        assert torch.equal(first.colors, second.colors)


def test_a_wide_periodic_band_whose_bound_divides_its_length_takes_the_bound() -> None:
    # A lower bound of 301 is above the quick path's limit; j mod 301 is then the band colouring
    # with p = n, and its count is the colours used, not one more.
    pattern = periodic_band(602, 150)
    coloring = vg.color_jacobian(pattern, strategy="forward")
    assert coloring.num_colors == coloring.lower_bound == 301
    assert_valid_sparse(coloring)
