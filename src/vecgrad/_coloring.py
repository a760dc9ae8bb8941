"""Distance-2 colourings of a sparsity pattern's columns, vectorised over its nonzeros.

A pattern is given by the coordinates ``(groups[e], members[e])`` of its nonzeros, in any
order, without repeats. Members are coloured so that no group holds two members
of one colour: with groups = rows and members = columns, columns of one colour never share a
row and one Jacobian-vector product gives all of them at once (forward mode); with the roles
swapped, rows of one colour never share a column and one vector-Jacobian product gives them
(reverse mode). A member in no group needs no product and gets colour -1. No colouring has
fewer colours than the lower bound, the size of the largest group (its members are pairwise
neighbours).

First a quick path: the modular colourings below with exactly as many colours as the lower
bound, their parameters read off a few groups of the largest size in plain Python, each
candidate checked on the whole pattern in a few vectorised passes. On bands, block diagonals and
5- and 9-point stencils it succeeds with the first or second candidate, and as no colouring has
fewer colours, nothing else is tried. Then a band that wraps around (a periodic tridiagonal
pattern, say), whose length the bound need not divide: blocks of ``k`` and ``k + 1`` colours
(:func:`_cyclic`), one colour above the bound, kept when it is valid. Otherwise three kinds of
colouring are tried, and the one with the fewest colours kept:

- flat modular, ``c(j) = j mod k`` for the smallest valid ``k`` from the lower bound up:
  optimal for bands and block diagonals. Its validity needs only the set of differences
  ``b - a`` between members of one group.
- strided modular, ``c(j) = (j mod s + t (j div s)) mod k``: the colouring
  ``(x + t y) mod k`` of a grid of rows of ``s`` members, with ``s`` taken from the
  differences. It is optimal for 5-point (``t = 2, k = 5``) and 9-point (``t = 3, k = 9``)
  stencils in the flattened order, whatever the grid's width. Its validity needs the set of
  steps ``(dx, dy)`` between members of one group.
- Jones-Plassmann greedy with largest-first priorities, for irregular patterns, run only when
  the modular colourings do not reach the lower bound. Each round colours every uncoloured
  member whose priority beats that of all its uncoloured neighbours, with the smallest colour
  none of its coloured neighbours has. On a dense graph (a few members per colour) a round
  colours only a few members; the few thousand left are then coloured one at a time from a
  dense adjacency matrix, with the same result, instead of in thousands of rounds.

Everything is deterministic: the same pattern gives the same colours on every call.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import combinations

import torch
from torch import Tensor

# Modular colourings are tried for k from the lower bound L up to max(2 L, L + _MODULAR_SPAN).
_MODULAR_SPAN = 32
# Candidates are found on a sample of about 2 * _SAMPLE nonzeros (whole groups, from the start
# and the middle), and only those valid there are checked on the whole pattern, at most
# _CHECKS of each kind. A sample with more than _SAMPLE_PAIRS pairs of members (a dense group)
# gives no candidates; then only k = L, ..., L + _CHECKS - 1 and the identity are checked.
_SAMPLE = 2**15
_SAMPLE_PAIRS = 2**22
_CHECKS = 4
# Strided colourings are tried when the sample's differences take at most _MAX_DIFFERENCES
# values, for at most _STRIDES widths s whose steps (dx, dy) take at most _STEPS values.
_MAX_DIFFERENCES = 64
_STRIDES = 8
_STEPS = 64
# The quick path reads its candidates off at most _QUICK_GROUPS groups of the largest size,
# spread over the pattern, when that size is at most _QUICK_BOUND (the strided candidates:
# _QUICK_STRIDED_BOUND), and checks at most _QUICK_CHECKS of them on the whole pattern.
_QUICK_GROUPS = 8
_QUICK_BOUND = 256
_QUICK_STRIDED_BOUND = 32
_QUICK_CHECKS = 4
# Colours are checked 63 at a time as bits of an int64 (see _is_valid).
_BITS = 63
# The greedy colouring is skipped when the lower bound is above this: it needs at least L rounds
# (the members of a group of size L are pairwise neighbours), each a pass over the pattern.
_GREEDY_MAX_BOUND = 256
# The greedy colouring finishes one member at a time (_sequential) once a round colours under
# 1 / _DENSE_SHARE of the nonzeros left, at most _DENSE_MEMBERS members are left and the dense
# matrices it needs hold at most _DENSE_CELLS entries.
_DENSE_SHARE = 64
_DENSE_MEMBERS = 2**14
_DENSE_CELLS = 2**27
# The seed of the greedy colouring's tie-breaking permutation.
_SEED = 0


def color(
    groups: Tensor, members: Tensor, sizes: Tensor, counts: Tensor
) -> tuple[Tensor, int, int]:
    """Colours of the members (-1 for a member in no group), their number and the lower bound.

    ``sizes`` holds the nonzeros of each group, ``counts`` those of each member (the bincounts
    of ``groups`` and ``members``, which colouring both ways shares).
    """
    num_groups, num_members = sizes.numel(), counts.numel()
    colors = torch.full((num_members,), -1, dtype=torch.long, device=members.device)
    if members.numel() == 0:
        return colors, 0, 0
    bound = int(sizes.max())
    used = counts > 0
    quick = _quick(groups, members, sizes, bound, used)
    if quick is not None:
        return quick, bound, bound
    cyclic = _cyclic(groups, members, sizes, bound, used)
    if cyclic is not None:
        # bound + 1 colours, or bound when it divides the length (j mod bound, with p = n).
        return cyclic, int(cyclic.max()) + 1, bound
    modular = _modular(groups, members, sizes, bound, used)
    if modular is None or (modular[0] > bound and bound <= _GREEDY_MAX_BOUND):
        greedy, _ = _greedy(groups, members, sizes, num_groups, num_members, used)
        count = int(greedy.max()) + 1
        if modular is None or count < modular[0]:
            return greedy, count, bound
    k, modular_colors = modular
    return modular_colors, k, bound


def is_valid(groups: Tensor, members: Tensor, colors: Tensor, num_groups: int) -> bool:
    """Whether no group holds two members of one colour, and every member in a group has one."""
    if members.numel() == 0:
        return True
    if bool((colors[members] < 0).any()):
        return False
    sizes = torch.bincount(groups, minlength=num_groups)
    return _is_valid(groups, members, sizes, colors, int(colors.max()) + 1)


def _modular_colors(j: Tensor, k: int, t: int, s: int) -> Tensor:
    """``j mod k`` (``s = 0``), or ``(j mod s + t (j div s)) mod k``."""
    return j % k if s == 0 else (j % s + t * (j // s)) % k


def _is_valid(groups: Tensor, members: Tensor, sizes: Tensor, colors: Tensor, k: int) -> bool:
    """Whether the ``colors`` of the members (in ``range(k)``) differ within each group.

    When there are few pairs (group, colour), each is counted, and none may be counted twice:
    a few passes over the nonzeros. Otherwise colours are added as bits, ``2 ** c``, per group
    and block of 63 colours: a repeated colour makes a carry, and each carry leaves one bit
    fewer set than there are nonzeros (also when the sum wraps around), so the colours differ
    exactly when the bits set equal the count. Work is done per member where it can, as there
    are several nonzeros per member.
    """
    limit = 4 * members.numel() + 2**20
    if sizes.numel() * k <= limit:
        return int(torch.bincount(groups * k + colors.index_select(0, members)).max()) <= 1
    blocks = -(-k // _BITS)
    slots = sizes.numel() * blocks
    if slots > limit:
        keys = groups * k + colors.index_select(0, members)
        return int(torch.unique(keys).numel()) == keys.numel()
    used = colors.clamp(min=0)  # colour -1 marks a member in no group: never gathered
    bit = torch.bitwise_left_shift(torch.ones_like(used), used % _BITS)
    if blocks > 1:
        slot = groups * blocks + (used // _BITS)[members]
        count = torch.bincount(slot, minlength=slots)
    else:
        slot, count = groups, sizes
    total = torch.zeros(slots, dtype=torch.long, device=colors.device)
    total.index_add_(0, slot, bit.index_select(0, members))
    return bool((_popcount(total) == count).all())


def _popcount(x: Tensor) -> Tensor:
    """Bits set in each int64, read as unsigned (SWAR; the masks undo arithmetic shifts)."""
    x = x - ((x >> 1) & 0x5555555555555555)
    x = (x & 0x3333333333333333) + ((x >> 2) & 0x3333333333333333)
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0F
    return (x * 0x0101010101010101) >> 56


def _quick(
    groups: Tensor, members: Tensor, sizes: Tensor, bound: int, used: Tensor
) -> Tensor | None:
    """A modular colouring with exactly ``bound`` colours, or None if none is found quickly.

    The candidates are those valid on a few groups of size ``bound`` (their pairs of members
    listed in plain Python, as they are few): ``j mod bound``, then for each width ``s`` among
    their differences the smallest ``t`` for which ``(j mod s + t (j div s)) mod bound`` is
    valid there. Each is checked on the whole pattern, the first valid one kept.
    """
    if bound > _QUICK_BOUND:
        return None
    largest = (sizes == bound).nonzero().flatten()
    last = largest.numel() - 1
    spread = [last * i // (_QUICK_GROUPS - 1) for i in range(_QUICK_GROUPS)]
    picked = largest[torch.tensor(sorted(set(spread)), device=sizes.device)]
    keep = torch.isin(groups, picked).nonzero().flatten()
    by_group: dict[int, list[int]] = {}
    for group, member in zip(
        groups.index_select(0, keep).tolist(), members.index_select(0, keep).tolist(), strict=True
    ):
        by_group.setdefault(group, []).append(member)
    pairs = [pair for found in by_group.values() for pair in combinations(sorted(found), 2)]
    candidates = [(0, 0)] if all((b - a) % bound for a, b in pairs) else []
    if bound <= _QUICK_STRIDED_BOUND:
        for s in sorted({b - a for a, b in pairs if b - a >= 3}):
            # Two members a step (dx, dy) apart share a colour when bound divides dx + t dy.
            steps = {(b % s - a % s, b // s - a // s) for a, b in pairs}
            t = next(
                (t for t in range(bound) if all((dx + t * dy) % bound for dx, dy in steps)), None
            )
            if t is not None:
                candidates.append((t, s))
            if len(candidates) >= _QUICK_CHECKS:
                break
    checks = [(groups, members, sizes)]
    if members.numel() > 2 * _SAMPLE:
        # A candidate is first checked on the first groups holding about _SAMPLE nonzeros,
        # where a wrong width soon shows, before the pass over the whole pattern.
        first = int(torch.searchsorted(torch.cumsum(sizes, 0), _SAMPLE)) + 1
        head = (groups < first).nonzero().flatten()
        checks.insert(
            0, (groups.index_select(0, head), members.index_select(0, head), sizes[:first])
        )
    j = torch.arange(used.numel(), device=members.device)
    for t, s in candidates[:_QUICK_CHECKS]:
        colors = torch.where(used, _modular_colors(j, bound, t, s), -1)
        if all(_is_valid(g, m, n, colors, bound) for g, m, n in checks):
            return colors
    return None


def _cyclic(
    groups: Tensor, members: Tensor, sizes: Tensor, bound: int, used: Tensor
) -> Tensor | None:
    """A colouring of a band that wraps around with ``bound + 1`` colours, or None.

    ``j mod k`` (``k = bound``) on the members ``[0, p)`` and ``(j - p) mod (k + 1)`` on
    ``[p, n)``, with ``k`` dividing ``p`` and ``k + 1`` dividing ``n - p``: the colours run
    ``0, ..., k - 1`` and ``0, ..., k`` in blocks, so any ``k`` members in a row, also across
    the wrap from ``n - 1`` to ``0``, have distinct colours. ``p`` is the largest such value
    (``n - p = (k + 1) (n mod k)``); there is none when ``n < (k + 1) (n mod k)``. One pass
    over the pattern checks it.
    """
    n = used.numel()
    k = bound
    p = n - (k + 1) * (n % k)
    if p < 0 or k + 1 > n:
        return None
    j = torch.arange(n, device=members.device)
    colors = torch.where(j < p, j % k, (j - p) % (k + 1))
    colors = torch.where(used, colors, -1)
    return colors if _is_valid(groups, members, sizes, colors, k + 1) else None


def _modular(
    groups: Tensor, members: Tensor, sizes: Tensor, bound: int, used: Tensor
) -> tuple[int, Tensor] | None:
    """The valid modular colouring with fewest colours found: ``(k, colours)``; None if none.

    Candidates come from a sample of the pattern (:func:`_sample`) and each is checked on the
    whole pattern; ``s = 0`` stands for the flat colouring ``j mod k``.
    """
    num_members = used.numel()
    top = min(num_members, max(2 * bound, bound + _MODULAR_SPAN))
    j = torch.arange(num_members, device=members.device)

    def check(k: int, t: int, s: int) -> tuple[int, Tensor] | None:
        colors = torch.where(used, _modular_colors(j, k, t, s), -1)
        return (k, colors) if _is_valid(groups, members, sizes, colors, k) else None

    def first(candidates: list[tuple[int, int, int]]) -> tuple[int, Tensor] | None:
        return next(filter(None, (check(*c) for c in candidates[:_CHECKS])), None)

    sample = _sample(groups, members, sizes, num_members)
    if sample is None:
        flat = [(k, 0, 0) for k in range(bound, min(bound + _CHECKS, top + 1))]
        best = first(flat)
        # With k above every member, j mod k is j itself: valid however dense the pattern.
        identity = int(members.max()) + 1
        return best if best is not None or identity > top else check(identity, 0, 0)
    sample_groups, sample_members, sample_sizes = sample
    seen = _differences(sample_groups, sample_members, sample_sizes, num_members)
    # c(a) == c(b) under j mod k exactly when k divides b - a.
    best = first(
        [(k, 0, 0) for k in range(bound, top + 1) if k >= num_members or not seen[k::k].any()]
    )
    differences = seen.nonzero().flatten()
    if (best is not None and best[0] == bound) or differences.numel() > _MAX_DIFFERENCES:
        return best
    checks = 0
    for s in differences[differences >= 3][:_STRIDES].tolist():
        limit = top if best is None else best[0] - 1
        found = _strided(sample_groups, sample_members, sample_sizes, s, bound, limit)
        if found is None:
            continue
        checks += 1
        best = check(found[0], found[1], s) or best
        if (best is not None and best[0] == bound) or checks == _CHECKS:
            break
    return best


def _sample(
    groups: Tensor, members: Tensor, sizes: Tensor, num_members: int
) -> tuple[Tensor, Tensor, Tensor] | None:
    """Whole groups holding about ``2 * _SAMPLE`` nonzeros, from the start and the middle.

    Sorted by group, then member, as :func:`_pairs` needs them; None when their pairs of
    members are too many to list (a dense group).
    """
    nnz = members.numel()
    if nnz > 2 * _SAMPLE:
        # Groups [0, a) and [b, c), each the first groups to hold _SAMPLE nonzeros from there.
        ends = torch.cumsum(sizes, 0)
        a = int(torch.searchsorted(ends, _SAMPLE)) + 1
        b = int(torch.searchsorted(ends, nnz // 2))
        c = int(torch.searchsorted(ends, ends[b] - sizes[b] + _SAMPLE)) + 1
        keep = (groups < a) | ((groups >= b) & (groups < c))
        groups, members = groups[keep], members[keep]
        sizes = torch.bincount(groups, minlength=sizes.numel())
    if int((sizes * (sizes - 1) // 2).sum()) > _SAMPLE_PAIRS:
        return None
    order = torch.argsort(groups * num_members + members)
    return groups[order], members[order], sizes


def _pairs(groups: Tensor, members: Tensor, sizes: Tensor) -> Iterator[tuple[Tensor, Tensor]]:
    """Every pair ``a < b`` of members of one group, as arrays ``(a, b)``, a few at a time.

    Offset t pairs each nonzero with the one t places after it in its group; the nonzeros that
    have such a partner shrink as t grows, so the work is the number of pairs.
    """
    nnz = members.numel()
    starts = torch.cumsum(sizes, 0) - sizes
    index = torch.arange(nnz, device=members.device)
    after = sizes[groups] - (index - starts[groups]) - 1  # later nonzeros in the same group
    live, offset = index, 1
    while True:
        live = live[after[live] >= offset]
        if live.numel() == 0:
            return
        yield members[live], members[live + offset]
        offset += 1


def _differences(groups: Tensor, members: Tensor, sizes: Tensor, num_members: int) -> Tensor:
    """Which differences ``b - a`` occur between members ``a < b`` of one group (a bool vector)."""
    seen = torch.zeros(num_members, dtype=torch.bool, device=members.device)
    for a, b in _pairs(groups, members, sizes):
        seen[b - a] = True
    return seen


def _strided(
    groups: Tensor, members: Tensor, sizes: Tensor, s: int, bound: int, limit: int
) -> tuple[int, int] | None:
    """Smallest ``(k, t)``, ``k`` in ``[bound, limit]``, for which ``(x + t y) mod k`` is valid.

    ``x = j mod s`` and ``y = j div s`` place member ``j`` on a grid of rows of width ``s``;
    two members of one group a step ``(dx, dy)`` apart get one colour exactly when ``k``
    divides ``dx + t dy``. None when there is none, or when the steps take so many values that
    ``s`` is no grid width of the pattern.
    """
    if limit < bound:
        return None
    width = 2 * s - 1
    steps = torch.zeros(
        ((int(members.max()) // s + 1) * width,), dtype=torch.bool, device=members.device
    )
    for a, b in _pairs(groups, members, sizes):
        # b > a, so dy >= 0 and dx lies in (-s, s).
        steps[(b // s - a // s) * width + (b % s - a % s + s - 1)] = True
        if int(steps.sum()) > _STEPS:
            return None
    keys = steps.nonzero().flatten()
    dy, dx = keys // width, keys % width - (s - 1)
    for k in range(bound, limit + 1):
        t = torch.arange(k, device=members.device)
        fits = ((dx[None, :] + t[:, None] * dy[None, :]) % k != 0).all(dim=1)
        if bool(fits.any()):
            return k, int(fits.nonzero()[0, 0])
    return None


def _greedy(
    groups: Tensor,
    members: Tensor,
    sizes: Tensor,
    num_groups: int,
    num_members: int,
    used: Tensor,
) -> tuple[Tensor, int]:
    """Jones-Plassmann colouring with largest-first priorities; -1 for unused members.

    Returns the colours and the number of rounds. Each round colours an independent set of
    the uncoloured members, so a near-complete graph (a few members per colour) would take
    about one round per colour class: when a round colours under ``1 / _DENSE_SHARE`` of the
    at most ``_DENSE_MEMBERS`` members left, they are coloured by :func:`_sequential` instead,
    which gives the same colours (the colouring is the sequential greedy one in priority order
    either way) from a dense adjacency matrix.
    """
    device = members.device
    # Degree estimate: neighbours counted once per shared group (exact for most patterns).
    degree = torch.zeros(num_members, dtype=torch.long, device=device)
    degree.index_add_(0, members, sizes[groups] - 1)
    generator = torch.Generator(device=device).manual_seed(_SEED)
    ties = torch.randperm(num_members, generator=generator, device=device)
    # Unique priorities: the larger degree first, then the permutation.
    priority = degree * num_members + ties
    colors = torch.full((num_members,), -1, dtype=torch.long, device=device)
    none = torch.full((num_groups,), -1, dtype=torch.long, device=device)
    # The colours taken in each group, as bits: a sum of distinct powers of two (an OR), while
    # there are at most 64 colours; None after that.
    taken: Tensor | None = torch.zeros(num_groups, dtype=torch.long, device=device)
    # The nonzeros whose member is still uncoloured.
    g, m = groups, members
    rounds = 0
    while m.numel() > 0:
        rounds += 1
        p = priority[m]
        top = none.scatter_reduce(0, g, p, "amax")
        is_top = p == top[g]
        second = none.scatter_reduce(0, g, torch.where(is_top, -1, p), "amax")
        # The largest priority among a nonzero's uncoloured neighbours through its group.
        rival = torch.where(is_top, second[g], top[g])
        best_rival = torch.full_like(priority, -1).scatter_reduce(0, m, rival, "amax")
        chosen = used & (colors < 0) & (priority > best_rival)
        here = chosen[m]
        new_g, new_m = g[here], m[here]
        if taken is not None:
            colors[chosen] = _smallest_free_bits(taken, new_g, new_m, colors, chosen)
            if int(colors.max()) < 64:
                taken.index_add_(0, new_g, torch.bitwise_left_shift(1, colors[new_m]))
            else:
                taken = None
        else:
            # Chosen members share no group: each group holds at most one of them.
            in_group = none.index_copy(0, new_g, new_m)
            colors[chosen] = _smallest_free(groups, members, colors, in_group, chosen)
        g, m = g[~here], m[~here]
        left = used & (colors < 0)
        count = int(left.sum())
        if 0 < count <= _DENSE_MEMBERS and int(here.sum()) * _DENSE_SHARE < g.numel():
            width = int(colors.max()) + count + 1
            if count * (count + width) <= _DENSE_CELLS:
                _sequential(groups, members, colors, left, priority, num_groups, width)
                break
    return colors, rounds


def _sequential(
    groups: Tensor,
    members: Tensor,
    colors: Tensor,
    left: Tensor,
    priority: Tensor,
    num_groups: int,
    width: int,
) -> None:
    """Colour the members ``left`` greedily one by one, by decreasing priority, in place.

    Each takes the smallest colour (at most ``width``) that none of its neighbours has. The
    neighbours among them are a dense ``count x count`` matrix, the colours forbidden to
    them a dense ``width x count`` one, so each step is a few operations on vectors, without
    any transfer to the host (the loop runs over the members, but only for a few thousand).
    """
    device = members.device
    order = left.nonzero().flatten()
    order = order[torch.argsort(priority[order], descending=True)]
    count = order.numel()
    place = torch.full_like(colors, -1)
    place[order] = torch.arange(count, device=device)
    # Nonzeros of the members left, sorted by group, and their neighbours among them.
    keep = left[members].nonzero().flatten()
    g, p = groups[keep], place[members[keep]]
    by_group = torch.argsort(g * count + p)
    g, p = g[by_group], p[by_group]
    sizes = torch.bincount(g, minlength=num_groups)
    adjacent = torch.zeros(count, count, dtype=torch.bool, device=device)
    flat = adjacent.view(-1)
    for a, b in _pairs(g, p, sizes):
        flat.index_fill_(0, torch.cat([a * count + b, b * count + a]), True)
    # forbidden[c, i]: a coloured neighbour of the i-th member left has colour c. Pairs
    # (coloured nonzero, nonzero left) of one group, found group by group.
    fixed = (colors[members] >= 0).nonzero().flatten()
    fixed = fixed[torch.argsort(groups[fixed])]
    taken = colors[members[fixed]]
    fixed_sizes = torch.bincount(groups[fixed], minlength=num_groups)
    starts = torch.cumsum(fixed_sizes, 0) - fixed_sizes
    # Each nonzero left is repeated once per coloured nonzero of its group; `at` is that one.
    repeats = fixed_sizes[g]
    who = torch.repeat_interleave(p, repeats)
    first = torch.cumsum(repeats, 0) - repeats
    at = torch.arange(who.numel(), device=device) - torch.repeat_interleave(
        first - starts[g], repeats
    )
    forbidden = torch.zeros(width + 1, count, dtype=torch.bool, device=device)
    forbidden[taken[at], who] = True
    new = torch.empty(count, dtype=torch.long, device=device)
    for i in range(count):
        c = torch.argmin(forbidden[:, i].to(torch.uint8)).view(1)
        new[i : i + 1] = c
        forbidden.index_copy_(0, c, forbidden.index_select(0, c) | adjacent[i : i + 1])
    colors[order] = new


def _smallest_free_bits(
    taken: Tensor, g: Tensor, m: Tensor, colors: Tensor, chosen: Tensor
) -> Tensor:
    """For each chosen member (in order), the smallest colour not in ``taken`` of its groups.

    ``(g, m)`` are the nonzeros of the chosen members; ``taken[i]`` holds the colours of
    group ``i`` as bits, all below ``width``, the number of colours used so far (at most 64).
    """
    width = int(colors.max()) + 1
    index = torch.full_like(chosen, -1, dtype=torch.long)
    count = int(chosen.sum())
    index[chosen] = torch.arange(count, device=m.device)
    bits = (taken[g, None] >> torch.arange(width, device=m.device)) & 1
    forbidden = torch.zeros(count, width + 1, dtype=torch.long, device=m.device)
    forbidden[:, :width].index_add_(0, index[m], bits)
    # The first colour no group forbids; column `width` is always free.
    return (forbidden == 0).int().argmax(dim=1)


def _smallest_free(
    groups: Tensor, members: Tensor, colors: Tensor, in_group: Tensor, chosen: Tensor
) -> Tensor:
    """For each chosen member (in order), the smallest colour none of its neighbours has.

    ``in_group[i]`` is the chosen member of group ``i`` (or -1). Every coloured member of that
    group forbids its colour to it.
    """
    device = members.device
    owner = in_group[groups]
    taken = colors[members]
    pick = (owner >= 0) & (taken >= 0)
    owner, taken = owner[pick], taken[pick]
    index = torch.full_like(colors, -1)
    count = int(chosen.sum())
    index[chosen] = torch.arange(count, device=device)
    if owner.numel() == 0:
        return torch.zeros(count, dtype=torch.long, device=device)
    width = int(taken.max()) + 1
    # Sorted distinct (chosen member, forbidden colour) pairs.
    pairs = torch.unique(index[owner] * width + taken)
    who, forbidden = pairs // width, pairs % width
    found = torch.bincount(who, minlength=count)
    starts = torch.cumsum(found, 0) - found
    rank = torch.arange(pairs.numel(), device=device) - starts[who]
    # Colours are sorted within a member's run: the first place where the colour is not its
    # rank is the smallest gap; a run without a gap is followed by the colour `found`.
    gaps = torch.where(forbidden != rank, rank, width)
    return found.scatter_reduce(0, who, gaps, "amin")


# -- Star colourings of a symmetric pattern (sparse Hessians) ------------------------------------


def star(rows: Tensor, cols: Tensor, n: int) -> tuple[Tensor, int, int]:
    """A star colouring of the symmetric pattern ``(rows, cols)`` of an ``n x n`` matrix.

    The graph has a vertex per row and an edge per off-diagonal pair ``(i, j)``; the entries
    are sorted row by row and distinct, and ``(j, i)`` is one whenever ``(i, j)`` is. Returns
    the colours (-1 for a vertex in no entry), their number and a lower bound
    (:func:`star_bound`).

    Greedy in largest-first order (Gebremedhin, Manne and Pothen, SIAM Review 47, 2005): each
    vertex ``v`` takes the smallest colour that makes no bicoloured path on four vertices
    through it, given the colours already taken. Besides its neighbours' colours, that forbids
    the colour of every coloured ``x`` two steps away through a coloured ``w`` when ``v`` (the
    path ``y - v - w - x``) or ``x`` (the path ``v - w - x - y``) has another neighbour ``y``
    of the colour of ``w``. A Python loop over vertices: per vertex it reads sets kept up to
    date as colours are taken, so a vertex of high degree (an arrow's) is not rescanned.
    """
    colors = torch.full((n,), -1, dtype=torch.long, device=rows.device)
    if rows.numel() == 0:
        return colors, 0, 0
    off = rows != cols
    r, c = rows[off], cols[off]
    degree = torch.bincount(r, minlength=n)
    used = torch.bincount(rows, minlength=n) > 0
    # Largest degree first; ties in index order (stable sort), vertices in no entry left out.
    ranked = torch.argsort(-degree, stable=True)
    order = ranked[used[ranked]].tolist()
    starts = (torch.cumsum(degree, 0) - degree).tolist()
    ends = torch.cumsum(degree, 0).tolist()
    neighbours = c.tolist()
    color = [-1] * n
    # seen[u][a]: how many coloured neighbours of u have colour a.
    seen: list[dict[int, int]] = [{} for _ in range(n)]
    # flagged[w][b]: how many coloured neighbours x of w, of colour b, have another neighbour
    # of the colour of w (coloured w only): then a path v - w - x - y would be bicoloured.
    flagged: list[dict[int, int]] = [{} for _ in range(n)]
    for v in order:
        around = neighbours[starts[v] : ends[v]]
        mine = seen[v]
        forbidden = set(mine)
        for w in around:
            a = color[w]
            if a < 0:
                continue
            # Two neighbours of v of colour a: any colour next to w closes y - v - w - x.
            forbidden.update(seen[w] if mine[a] >= 2 else flagged[w])
        k = 0
        while k in forbidden:
            k += 1
        color[v] = k
        for w in around:  # v joins the x that are flagged for its neighbours w
            a = color[w]
            if a >= 0 and mine.get(a, 0) >= 2:
                _bump(flagged[w], k)
        for u in around:
            count = seen[u].get(k, 0) + 1
            seen[u][k] = count
            b = color[u]
            if b < 0 or count < 2:
                continue
            if count == 2:  # u now has two neighbours of colour k: flag it for both
                for w in neighbours[starts[u] : ends[u]]:
                    if color[w] == k:
                        _bump(flagged[w], b)
            else:
                _bump(flagged[v], b)
    result = torch.tensor(color, dtype=torch.long, device=rows.device)
    count = max(color) + 1
    return result, count, star_bound(r, n, count)


def _bump(counter: dict[int, int], key: int) -> None:
    counter[key] = counter.get(key, 0) + 1


def star_bound(r: Tensor, n: int, most: int) -> int:
    """Fewest colours a star colouring of a pattern can have, by counting edges; at most ``most``.

    The edges between two colour classes of sizes :math:`n_a, n_b` form a forest of stars,
    with at most :math:`n_a + n_b - 1` edges; summed over pairs of classes, :math:`k` colours
    on the :math:`n'` vertices that have an edge allow at most :math:`(k - 1)(n' - k / 2)`
    edges. ``r`` holds the row of each off-diagonal entry (two per edge).
    """
    edges = r.numel() // 2
    if edges == 0:
        return min(most, 1)
    vertices = int((torch.bincount(r, minlength=n) > 0).sum())
    k = 2
    while k < most and 2 * (k - 1) * vertices - (k - 1) * k < 2 * edges:
        k += 1
    return k


def star_take(rows: Tensor, cols: Tensor, colors: Tensor, n: int, k: int) -> Tensor:
    r"""Where each entry ``(i, j)`` of a star-coloured symmetric matrix lies in ``B = H S``.

    ``S`` holds the sums of one-hot columns of each colour, so :math:`B_{ic} = \sum_{c(l) = c}
    H_{il}`, a ``(k, n)`` matrix flattened as ``c * n + i``. :math:`H_{ij}` is
    :math:`B_{i, c(j)}` when ``j`` is the only neighbour of ``i`` of its colour (always for
    ``i = j``); otherwise ``i`` is the centre of a bicoloured star, ``i`` is the only
    neighbour of ``j`` of colour :math:`c(i)`, and :math:`H_{ij} = H_{ji} = B_{j, c(i)}`.
    """
    ci, cj = colors.index_select(0, rows), colors.index_select(0, cols)
    alone = _alone(rows, cj, k)
    return torch.where(alone, cj * n + rows, ci * n + cols)


def _alone(rows: Tensor, cj: Tensor, k: int) -> Tensor:
    """Whether each entry ``(i, j)`` is the only one of row ``i`` with the colour ``c(j)``."""
    if rows.numel() == 0:
        return torch.ones(0, dtype=torch.bool, device=rows.device)
    _, inverse, counts = torch.unique(rows * k + cj, return_inverse=True, return_counts=True)
    alone: Tensor = counts.index_select(0, inverse) == 1
    return alone


def is_star(rows: Tensor, cols: Tensor, colors: Tensor, n: int, k: int) -> bool:
    """Whether ``colors`` (all in ``range(k)`` on the entries) star-colour the symmetric pattern.

    Distance-1, and for each edge ``(i, j)`` one end is the only neighbour of the other of its
    colour: otherwise ``i`` has another neighbour ``j'`` of colour ``c(j)`` and ``j`` another
    ``i'`` of colour ``c(i)``, and ``j' - i - j - i'`` is a bicoloured path on four vertices
    (and every such path has an edge like that in its middle).
    """
    if rows.numel() == 0:
        return True
    ci, cj = colors.index_select(0, rows), colors.index_select(0, cols)
    if bool((ci < 0).any()) or bool(((ci == cj) & (rows != cols)).any()):
        return False
    alone = _alone(rows, cj, k)
    # The entry (j, i) of each (i, j): the entries are sorted by flat position i * n + j.
    flat = rows * n + cols
    transposed = torch.searchsorted(flat, cols * n + rows)
    return bool((alone | alone.index_select(0, transposed)).all())
