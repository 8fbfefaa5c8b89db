"""Shards of generated rows: each committed atomically, and retried where a backend failed.

Shard k is its record `shard_{k:05d}.json`, written atomically and last (the commit point), and the
files the record names: `rows_{k:05d}.r{round}.parquet` (the rows made, in plan order) and
`rejects_{k:05d}.r{round}.jsonl` (the rejected answers, for inspection). The record holds
  counters   named groups of counts (e.g. content counters of the finished samples, backend
             counters of every run that worked on the shard), summed over rounds
  retryable  the ids given up on because a backend failed, with the failure: not made, not dropped
  retried    how many ids were retryable in an earlier round and have since been made or dropped
  made_by    the host:pid of the process that made each round
A later run works on exactly the retryable ids and merges what it makes into round r+1. Files of
other rounds are removed once the new record is in place, so a run killed anywhere leaves each
shard as it was last committed. Each shard is worked on under its own file lock, so several
processes (the workers of a split generation, a training job that needs the same data) never make
one shard twice.
"""

from __future__ import annotations

import json
import os
import socket
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd
from filelock import FileLock

from ..data.durable import write_json_atomic, write_parquet_atomic, write_text_atomic


class IncompleteGeneration(RuntimeError):
    """A generation that ended with samples a backend failed on (or shards not made yet): nothing
    was dropped for it, and re-running the same command works on exactly what is left."""

    def __init__(self, directory: Path, retryable: int, planned: int, reasons: Counter, missing_shards: int = 0):
        self.directory, self.retryable, self.planned = Path(directory), retryable, planned
        self.reasons, self.missing_shards = reasons, missing_shards
        why = ", ".join(f"{r}: {n}" for r, n in reasons.most_common(4)) or "-"
        parts = (
            [f"{retryable} of {planned} samples were not made because a backend failed ({why})"] if retryable else []
        )
        if missing_shards:
            parts.append(f"{missing_shards} shard(s) are not made yet")
        super().__init__(
            f"{directory}: generation incomplete: {'; '.join(parts)}. Nothing was dropped for it; "
            "re-running the same command retries exactly these"
        )


def _counter_groups(*groups: dict) -> dict[str, dict[str, int]]:
    out: dict[str, Counter] = {}
    for g in groups:
        for name, counts in (g or {}).items():
            out.setdefault(name, Counter()).update({k: int(v) for k, v in counts.items()})  # keeps zeros
    return {name: dict(sorted(c.items())) for name, c in sorted(out.items())}


class ShardStore:
    def __init__(self, directory: Path):
        self.dir = Path(directory)

    def _record_path(self, k: int) -> Path:
        return self.dir / f"shard_{k:05d}.json"

    def _file(self, k: int, what: str, rnd: int, ext: str) -> Path:
        return self.dir / f"{what}_{k:05d}.r{rnd}.{ext}"

    def lock(self, k: int) -> FileLock:
        return FileLock(str(self.dir / f".shard_{k:05d}.lock"))

    def record(self, k: int) -> dict | None:
        path = self._record_path(k)
        return json.loads(path.read_text()) if path.is_file() else None

    def todo(self, k: int, ids: Iterable[str]) -> list[str]:
        """The ids of shard k still to make: all of them before its first commit, else its retryable ones."""
        rec = self.record(k)
        return list(ids) if rec is None else [i for i in ids if i in rec["retryable"]]

    def rows(self, k: int) -> pd.DataFrame:
        rec = self.record(k)
        return pd.DataFrame() if rec is None else pd.read_parquet(self._file(k, "rows", rec["round"], "parquet"))

    def rejects(self, k: int) -> list[dict]:
        rec = self.record(k)
        if rec is None:
            return []
        text = self._file(k, "rejects", rec["round"], "jsonl").read_text()
        return [json.loads(line) for line in text.splitlines() if line]

    def commit(
        self,
        k: int,
        order: list[str],
        rows: list[dict],
        counters: dict[str, Counter],
        retryable: dict[str, str],
        rejects: list[dict],
        reject_key: Callable[[dict], tuple],
    ) -> dict:
        """Adds what a run made of shard k to what earlier runs made of it. `order`: all the shard's ids,
        in plan order (rows are kept in it); `retryable`: the ids this run's backends failed on;
        `reject_key` orders the rejects as one uninterrupted run would have written them."""
        old = self.record(k)
        rnd = 0 if old is None else old["round"] + 1
        frames = [f for f in (self.rows(k), pd.DataFrame(rows)) if len(f)]
        merged = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        if len(merged):
            pos = {sid: i for i, sid in enumerate(order)}
            merged = merged.iloc[merged["id"].map(pos).argsort(kind="stable")].reset_index(drop=True)
        all_rejects = sorted(self.rejects(k) + rejects, key=reject_key)
        still = dict(sorted(retryable.items()))
        was = (old or {}).get("retryable", {})
        record = {
            "round": rnd,
            "counters": _counter_groups(old and old["counters"], counters),
            "retryable": still,
            "retried": (old["retried"] if old else 0) + sum(i not in still for i in was),
            # which process made each round (host:pid): provenance for split runs
            "made_by": (old or {}).get("made_by", []) + [f"{socket.gethostname()}:{os.getpid()}"],
        }
        write_parquet_atomic(self._file(k, "rows", rnd, "parquet"), merged)
        write_text_atomic(
            self._file(k, "rejects", rnd, "jsonl"), "".join(json.dumps(r, default=str) + "\n" for r in all_rejects)
        )
        write_json_atomic(self._record_path(k), record)  # the commit point
        for what, ext in (("rows", "parquet"), ("rejects", "jsonl")):
            for stale in self.dir.glob(f"{what}_{k:05d}.r*.{ext}"):
                if stale.name != self._file(k, what, rnd, ext).name:
                    stale.unlink(missing_ok=True)
        return record

    def summary(self, n_shards: int) -> dict:
        """Missing shards, retryable ids (with their reasons) and summed counters over shards 0..n-1."""
        records = [self.record(k) for k in range(n_shards)]
        reasons = Counter(r for rec in records if rec for r in rec["retryable"].values())
        return {
            "missing": [k for k, rec in enumerate(records) if rec is None],
            "retryable": sum(len(rec["retryable"]) for rec in records if rec),
            "reasons": reasons,
            "retried": sum(rec["retried"] for rec in records if rec),
            "counters": _counter_groups(*(rec["counters"] for rec in records if rec)),
        }
