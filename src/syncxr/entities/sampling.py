"""Entity draws for synthetic reports: balanced with a per-entity cap τ_max, or long-tailed.

Balanced (SynCXR): each sample takes k entities from the four finding types and m from ANATOMY,
uniformly; an entity that has reached τ_max is redrawn, the others are kept. The loop is sequential
by nature (the cap depends on earlier samples) but touches only Python ints, with the uniform
numbers drawn in vectorised blocks (see bench/generation.py for its speed).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..phantom.vocabulary import ANATOMY

SAMPLINGS = ("balanced", "longtail")


def subset_vocabulary(vocab: pd.DataFrame, ratio: float, seed: int) -> pd.DataFrame:
    """A seeded fraction `ratio` of each entity type (at least one entity per present type)."""
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"entity_ratio must be in (0, 1], got {ratio}")
    if ratio == 1.0:
        return vocab.reset_index(drop=True)
    rng = np.random.default_rng([seed, 17])
    keep = []
    for _, group in vocab.groupby("type", sort=True):
        n = max(1, math.ceil(ratio * len(group)))
        keep.extend(group.index[np.sort(rng.choice(len(group), size=n, replace=False))])
    return vocab.loc[sorted(keep)].reset_index(drop=True)


def _pools(vocab: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    is_anatomy = (vocab["type"] == ANATOMY).to_numpy()
    return np.flatnonzero(~is_anatomy), np.flatnonzero(is_anatomy)


def balanced_draws(
    vocab: pd.DataFrame, n: int, k: int, m: int, tau_max: int, rng: np.random.Generator
) -> list[list[int]]:
    """Row indices into `vocab` for each of `n` samples (k findings + m anatomy, no name twice)."""
    findings, anatomy = _pools(vocab)
    if k > len(findings) or m > len(anatomy):
        raise ValueError(
            f"cannot draw k={k} findings / m={m} anatomy entities from a vocabulary "
            f"with {len(findings)} / {len(anatomy)}"
        )
    capacity_f, capacity_a = len(findings) * tau_max, len(anatomy) * tau_max
    if n * k > capacity_f or n * m > capacity_a:
        raise ValueError(
            f"tau_max={tau_max} is too small for {n} samples: at most {capacity_f // max(k, 1)} "
            f"(findings) / {capacity_a // max(m, 1)} (anatomy)"
        )
    names = vocab["name"].tolist()
    counts = [0] * len(vocab)
    # Entities still under the cap, per pool; a capped entity is swap-removed, so a draw never
    # lands on it again (no rejection loop that slows down as the vocabulary fills up).
    open_lists = {"f": findings.tolist(), "a": anatomy.tolist()}
    where = {key: {e: i for i, e in enumerate(lst)} for key, lst in open_lists.items()}
    uniforms = iter(())

    def take(key: str, how_many: int, chosen: list[int], used: set[str]):
        nonlocal uniforms
        lst, pos = open_lists[key], where[key]
        got = tries = 0
        while got < how_many:
            if not lst or tries > 50 * (how_many + 1):
                raise ValueError(f"balanced draw ran out of entities under tau_max={tau_max}")
            u = next(uniforms, None)
            if u is None:
                uniforms = iter(rng.random(65536).tolist())
                continue
            tries += 1
            idx = lst[int(u * len(lst))]
            if names[idx] in used:
                continue
            counts[idx] += 1
            chosen.append(idx)
            used.add(names[idx])
            got += 1
            if counts[idx] >= tau_max:
                i, last = pos.pop(idx), lst.pop()
                if last != idx:
                    lst[i], pos[last] = last, i

    out = []
    for _ in range(n):
        chosen: list[int] = []
        used: set[str] = set()
        take("f", k, chosen, used)
        take("a", m, chosen, used)
        out.append(chosen)
    return out


def longtail_draws(vocab: pd.DataFrame, n: int, k: int, m: int, rng: np.random.Generator) -> list[list[int]]:
    """Like `balanced_draws`, but entities are drawn in proportion to their corpus frequency."""
    out = []
    pools = _pools(vocab)
    counts = vocab["count"].to_numpy(dtype=float)
    draws = []
    for pool, how_many in zip(pools, (k, m)):
        if how_many > len(pool):
            raise ValueError(f"cannot draw {how_many} entities from a pool of {len(pool)}")
        p = counts[pool] / counts[pool].sum()
        # Gumbel top-k: a weighted draw without replacement for all samples at once.
        keys = np.log(p)[None, :] - np.log(-np.log(rng.random((n, len(pool)))))
        draws.append(
            pool[np.argpartition(-keys, how_many - 1, axis=1)[:, :how_many]]
            if how_many
            else np.zeros((n, 0), dtype=int)
        )
    for f, a in zip(*draws):
        out.append([int(i) for i in f] + [int(i) for i in a])
    return out


def tau_max_for(n: int, k: int, n_findings: int, slack: float) -> int:
    """The cap that a perfectly balanced draw would need, times `slack` (>= 1)."""
    return max(1, math.ceil(n * k / max(n_findings, 1) * slack))
