"""slurmrestd's ``GET /jobs`` turned into a `JobTable` while it arrives, on two cores if there are.

Why: at 50,000 jobs (170 MB of pretty-printed JSON) the poll is CPU-bound in the process that
receives it: decoding the jobs costs about twice the transfer, and building the table another
half of the decode (``benchmarks/bench_ingest.py``). The rows of the table are independent of
each other, so a run of whole items (what `ListStream` cuts the answer into) can become a
table of its own, and the tables joined in order (`concat_job_tables`) are exactly the table of
the whole list. That gives two gains:

* each run's table is built while its items are still in the CPU's cache, instead of
  fetching 50,000 decoded jobs back from memory at the end;
* runs can be handed to a second process (`decode_helper.TableHelper`), which decodes them and
  builds their tables on another core while this one receives and decodes the next run.

The helper takes a run only when it has a free slot, so neither side waits for the other, and
the stream works the same without one (one core, helper failed, or busy with another answer).
Whatever happens the value is the same: a run the helper could not decode makes the stream
give up, and the caller decodes the whole answer as before. Jobs the table cannot read (valid
JSON of another shape) are the answer's verdict, not a failure of the stream: the list becomes
a `slurm_parse.JobsRefused`, which the source reports as the whole answer's refusal would be.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from console.categories import FirstSeen
from console.model import JobTable
from console.sources import decode_helper
from console.sources.slurm_parse import JobsRefused, parse_jobs, table_of_run
from console.sources.stream_json import ListStream

__all__ = ["JobTableStream", "concat_job_tables"]

#: The list's first item up to its first key: ``[`` then (the group) whitespace, ``{``,
#: whitespace and the quoted key. Every job of one answer is written by the same serialiser,
#: so each job starts with the same bytes.
_FIRST_KEY = re.compile(rb'\[(\s*\{\s*"(?:[^"\\]|\\.)*")')
#: Bytes of whole jobs per run: large enough that a table per run costs little more than one
#: table of everything, small enough to stay in the CPU's cache while it is built.
TABLE_RUN = 1 << 20


def _remap(parts_codes: Sequence[np.ndarray], parts_values: Sequence[tuple[Any, ...]],
           ) -> tuple[np.ndarray, tuple[Any, ...]]:
    """Category codes of several tables joined in order, renumbered by first appearance.

    Each part numbers its values in order of first appearance within itself; walking the
    parts in order and each part's values in its own order therefore meets every value first
    where the whole column would (the same numbering as `category_codes` of the joined rows).
    """
    seen = FirstSeen()
    out = []
    for codes, values in zip(parts_codes, parts_values):
        to_global = np.fromiter(map(seen.__getitem__, values), np.int32, len(values))
        out.append(to_global[codes] if len(codes) else codes.astype(np.int32))
    return (np.concatenate(out).astype(np.int32, copy=False) if out else np.zeros(0, np.int32),
            tuple(seen))


def concat_job_tables(parts: Sequence[JobTable]) -> JobTable:
    """The tables of consecutive runs of jobs as one table, equal (values and dtypes) to the
    table `slurm_parse.parse_jobs` builds from all their jobs at once."""
    if len(parts) == 1:
        return parts[0]
    if not parts:
        return parse_jobs([])

    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(p, name) for p in parts])

    account, accounts = _remap([p.account for p in parts], [p.accounts for p in parts])
    partition, partitions = _remap([p.partition for p in parts], [p.partitions for p in parts])
    reason, reasons = _remap([p.reason for p in parts], [p.reasons for p in parts])
    alloc_node, alloc_names = _remap([p.alloc_node for p in parts],
                                     [p.alloc_node_names for p in parts])
    base = np.cumsum([0] + [len(p) for p in parts[:-1]])
    alloc_job = np.concatenate([p.alloc_job + np.int32(b) for p, b in zip(parts, base)])
    return JobTable(
        job_id=cat("job_id"), array_job_id=cat("array_job_id"), array_task_id=cat("array_task_id"),
        name=cat("name"), user=cat("user"), account=account, accounts=accounts,
        partition=partition, partitions=partitions, state=cat("state"), reason=reason,
        reasons=reasons, gpus=cat("gpus"), nodes=cat("nodes"), submit_time=cat("submit_time"),
        start_time=cat("start_time"), end_time=cat("end_time"), time_limit_s=cat("time_limit_s"),
        exit_code=cat("exit_code"), node_list=cat("node_list"),
        alloc_job=alloc_job.astype(np.int32, copy=False), alloc_node=alloc_node,
        alloc_gpu=cat("alloc_gpu"), alloc_node_names=alloc_names)


class JobTableStream(ListStream):
    """A `ListStream` of the ``jobs`` list whose `finish` gives the list as one `JobTable`.

    Each run of items becomes a table here (decoded, then tabulated while in cache) or in the
    helper process; `finish` joins them in order. ``helper`` False keeps everything in this
    process (tests; the console turns the helper off with ``AISC_CONSOLE_DECODE_HELPER=0``).
    """

    def __init__(self, key: str, item_type: Any, answer_type: Any, min_run: int = TABLE_RUN,
                 helper: bool = True) -> None:
        super().__init__(key, item_type, answer_type, min_run=min_run)
        #: per run in order: its table, its refusal, or the ticket of the helper's answer
        self._parts: list[Any] = []
        self._helper: decode_helper.TableHelper | None = None
        self._want_helper = helper
        self._next_job = b""  # the bytes a run followed by another job is followed by
        self.sent = 0  # runs handed to the helper (for tests and the benchmark)

    def _take(self, run: memoryview) -> None:
        if not self.runs:  # the first run is decoded here: it proves the answer's shape
            m = _FIRST_KEY.match(bytes(run[:512]))
            self._next_job = m.group(1) if m else b""
        elif self._want_helper and self._next_job and self._buf.startswith(
                self._next_job, self._lo + len(run), self._hi):
            # The helper takes runs followed by another job only: a run is cut after an item
            # followed by another, and that boundary may lie in a later list (the answer's
            # warnings, after the jobs); the run then holds the jobs' end, which only this
            # process's own decode sorts out (`ListStream`). A job is known by the first key
            # the answer's first job starts with (after the run: its "," then whitespace, "{"
            # and that key; the run's last byte, that ",", reads "]" while it is decoded).
            # Where that key has not arrived yet, the run is decoded here.
            if self._helper is None:
                self._helper = decode_helper.acquire()
                self._want_helper = self._helper is not None
            if self._helper is not None:
                ticket = self._helper.submit(run)
                if ticket is not None:
                    self._parts.append(ticket)
                    self.sent += 1
                    return
        items = self._items.decode(run)  # a run that is no JSON array raises: ListStream decides
        try:
            self._parts.append(table_of_run(items))
        except JobsRefused as refused:
            self._parts.append(refused)

    def _result(self) -> Any:
        """The jobs as one table, or the first run's `JobsRefused` if the table refused one."""
        try:
            parts = [p if not isinstance(p, int) else self._collect(p) for p in self._parts]
        finally:
            self._release()
        self._parts = []
        refused = next((p for p in parts if isinstance(p, JobsRefused)), None)
        return refused if refused is not None else concat_job_tables(parts)

    def _collect(self, ticket: int) -> Any:
        assert self._helper is not None
        return self._helper.result(ticket)  # ValueError when it could not

    def _drop(self) -> None:
        self._parts = []
        self._release()

    def _release(self) -> None:
        if self._helper is not None:
            decode_helper.release(self._helper)
            self._helper = None

    def close(self) -> None:
        """Let the helper go (an answer abandoned half-way: too large, cut off)."""
        self._drop()
