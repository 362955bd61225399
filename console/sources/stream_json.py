"""Decode one large list of a pretty-printed JSON answer while it is still arriving.

Why: slurmrestd answers ``GET /jobs`` with one JSON object whose ``jobs`` list holds every job;
at 50,000 jobs that is some 170 MB. Read whole and then decoded, the poll costs the transfer
plus the decode, one after the other, and holds the answer twice (its chunks and their join).
Decoded run by run as the bytes come in, the decoding runs while the server is still sending,
and once the first run has decoded (`ListStream.committed`) the client lets each chunk go as
soon as it is copied: the answer is never held whole (``benchmarks/bench_ingest.py``: peak
memory of a 50,000-job poll +50 MiB instead of +329 MiB, and the poll a quarter faster).

How, and why it is safe. slurmrestd pretty-prints its answers with two spaces per level of
depth (every release recorded in the fixtures: 22.05, 24.11, 26.05), so the list's items start
and end on lines of their own: ``\\n    {`` ... ``\\n    }``. A raw newline byte can never occur
inside a JSON string (control characters must be escaped there), so a newline followed by
exactly four spaces and ``}`` is a structural brace at depth two, and inside the list it closes
an item. Each run of complete items is decoded as a JSON array of its own (``[`` + items +
``]``, written over the separator bytes, no copy); what remains of the answer (everything but
the items) is decoded at the end with a placeholder in the list, which proves that the list
found is the answer's top-level one.

Every piece is checked by a full decode, so an answer that does not have this shape (compact
JSON, another indentation, a proxy that re-serialised it, a truncated or corrupt body) makes
the stream give up (`failed`) and the caller decodes the whole body as before: the result is
the same either way, only the time differs. Text around the pieces is joined back exactly as
it came (a separator is ``,`` plus whitespace), so a decode of the pieces that succeeds gives
the same values as a decode of the whole would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

__all__ = ["ListStream", "StreamFactory"]

#: A factory of fresh streams, one per answer (what `HttpClient.request` takes).
StreamFactory = Callable[[], "ListStream"]

_ITEM_END = b"\n    }"  # an item of a depth-1 list closes at depth 2
#: An item followed by the next one (the pattern a run of items ends at).
_NEXT_ITEM = b"\n    },\n    {"
#: A list at depth one closes (the items' list, or one after it).
_LIST_END = b"\n  ]"
_WS = b" \t\r\n"
#: How far into an answer the list's key must appear (the keys before it are small: meta,
#: errors, warnings); past this the answer is not what the stream expects.
_HEAD_LIMIT = 1 << 20
#: Items are decoded in runs of at least this many bytes (a decoder call per item would cost
#: more than it saves; a few hundred kilobytes keep the run in the CPU's cache).
_MIN_RUN = 256 * 1024
_START_CAPACITY = 1 << 20


class ListStream:
    """Feed an answer's bytes in order (`feed`), then `finish` for the decoded answer.

    ``key`` names the top-level list decoded in slices, ``item_type`` its items' msgspec type,
    ``answer_type`` the type of the rest of the answer, in which ``key`` must be declared as a
    list of int (the placeholder). `finish` returns the rest of the answer as a dict with
    ``key`` holding every item, or None when the stream gave up (then decode the whole body).
    ``min_run``: bytes gathered before a run is decoded (small values exercise the run logic
    in tests).
    """

    def __init__(self, key: str, item_type: Any, answer_type: Any,
                 min_run: int = _MIN_RUN) -> None:
        self.key = key
        self._min_run = int(min_run)
        self._head_mark = b'\n  "' + key.encode() + b'": ['
        self._items = msgspec.json.Decoder(list[item_type])
        self._answer = msgspec.json.Decoder(answer_type)
        self.items: list[Any] = []
        self.runs = 0  # runs of items decoded (for tests and debugging)
        self.failed = False
        self.why = ""  # why it gave up, for debugging and tests
        self._state = "head"  # head -> items -> tail
        # The bytes not decoded yet are buf[lo:hi]. One buffer, reused: appending to a
        # bytearray consumed from the front would reallocate it again and again, and fresh
        # memory costs a page fault per page (more than the copy itself at 200 MB).
        self._buf = bytearray(_START_CAPACITY)
        self._lo = 0
        self._hi = 0
        self._head = b""
        self._pending = 0  # bytes fed since the last run was decoded
        self._scanned = 0  # buf[:_scanned] was searched for the list's key (absolute)
        self._searched = 0  # buf[:_searched] was searched for the end of a run (absolute)
        self._seek_end = False  # a run did not decode: only the list's end is looked for

    @property
    def committed(self) -> bool:
        """True once a run of items decoded: the answer has the expected shape, so the caller
        may stop keeping its bytes (a later failure is then a broken answer, to be asked for
        again whole)."""
        return self.runs > 0 and not self.failed

    # ------------------------------------------------------------------------------------

    def feed(self, chunk: bytes) -> None:
        """Take the next bytes of the answer (never raises: a mismatch sets `failed`)."""
        if self.failed or not chunk:
            return
        self._append(chunk)
        self._pending += len(chunk)
        try:
            if self._state == "head":
                self._find_head()
            if self._state == "items" and self._pending >= self._min_run:
                self._pending = 0
                self._decode_items()
        except (msgspec.MsgspecError, ValueError) as exc:
            self._give_up(f"a run of items did not decode ({type(exc).__name__}: {exc})")

    def finish(self) -> dict[str, Any] | None:
        """The decoded answer, or None if the stream gave up (decode the whole body instead)."""
        if not self.failed and self._state == "items":
            try:
                self._decode_items(final=True)
            except (msgspec.MsgspecError, ValueError) as exc:
                self._give_up(f"the last run of items did not decode ({type(exc).__name__}: {exc})")
        if self.failed:
            return None
        if self._state != "tail":
            self._give_up(f"the {self.key} list was not found or did not end")
            return None
        skeleton = self._head + b"0" + bytes(self._buf[self._lo:self._hi])
        self._buf = bytearray()
        try:
            rest = self._answer.decode(skeleton)
        except (msgspec.MsgspecError, ValueError) as exc:
            self._give_up(f"the rest of the answer did not decode ({type(exc).__name__})")
            return None
        if not isinstance(rest, dict) or rest.get(self.key) != [0]:
            self._give_up(f"the {self.key} list found is not the answer's own")
            return None
        try:
            rest[self.key] = self._result()
        except (msgspec.MsgspecError, ValueError) as exc:
            self._give_up(f"the items did not come together ({type(exc).__name__}: {exc})")
            return None
        return rest

    # ---- what is done with the items (a subclass may build something else from them) -------

    def _take(self, run: memoryview) -> None:
        """Decode one run of whole items (a JSON array) and keep its items."""
        self.items += self._items.decode(run)

    def _result(self) -> Any:
        """What the answer's list becomes in the value `finish` returns: the items, in order."""
        return self.items

    def _drop(self) -> None:
        """Forget what the runs gave (the stream gave up)."""
        self.items = []

    def close(self) -> None:
        """The answer was abandoned before `finish` (refused, cut off): let go of what the
        stream holds beyond its memory (nothing here; a subclass may hold a helper)."""

    # ------------------------------------------------------------------------------------

    def _append(self, chunk: bytes) -> None:
        """Copy ``chunk`` after the undecoded bytes, moving those to the front or growing the
        buffer only when it is full (equal-length slice assignments never reallocate)."""
        n = len(chunk)
        buf, lo, hi = self._buf, self._lo, self._hi
        if hi + n > len(buf):
            keep = hi - lo
            if lo:
                buf[:keep] = buf[lo:hi]
                self._scanned = max(0, self._scanned - lo)
                self._searched = max(0, self._searched - lo)
                self._lo, self._hi = 0, keep
                lo, hi = 0, keep
            if keep + n > len(buf):
                grown = bytearray(max(2 * len(buf), keep + n))
                grown[:keep] = buf[:keep]
                self._buf = buf = grown
        buf[hi:hi + n] = chunk
        self._hi = hi + n

    def _give_up(self, why: str) -> None:
        """Stop decoding (the caller decodes the whole body); free what was decoded."""
        self.failed = True
        self.why = why
        self._buf = bytearray()
        self._lo = self._hi = 0
        self._drop()

    def _find_head(self) -> None:
        buf, lo, hi = self._buf, self._lo, self._hi
        at = buf.find(self._head_mark, max(lo, self._scanned - len(self._head_mark)), hi)
        self._scanned = hi
        if at < 0:
            if hi - lo > _HEAD_LIMIT:
                self._give_up(f"no top-level {self.key!r} list near the start")
            return
        cut = at + len(self._head_mark) - 1  # the list's "["
        self._head = bytes(buf[lo:cut + 1])
        self._lo = cut  # keep the "[": it opens the first run
        self._state = "items"

    def _decode_items(self, final: bool = False) -> None:
        """Decode the complete items in the buffer as one array; keep the incomplete rest.

        While items keep coming, a run ends at the last item followed by another (found from
        the buffer's end, so each byte is looked at about once). A run that does not decode
        may hold the list's end (then the decode fails on what follows it): the end is then
        searched for itself, as it is at the end of the answer.
        """
        buf, lo, hi = self._buf, self._lo, self._hi
        if not final and self._only_space_to_close(lo, hi):
            self._close_list()  # the list ended (or was empty)
            return
        if not final and not self._seek_end:
            k = buf.rfind(_NEXT_ITEM, max(lo, self._searched - len(_NEXT_ITEM)), hi)
            self._searched = hi
            if k < 0:
                return  # no item followed by another yet: wait for more bytes
            try:
                self._run(k + len(_ITEM_END))
                return
            except (msgspec.MsgspecError, ValueError):
                # The list may end inside this run (an item followed by another after it
                # belongs to a later list): from now on look for the list's end instead. If it
                # never comes, the answer is not what this stream reads (it gives up at the end).
                self._seek_end = True
                self._searched = lo
        # The list's end: the first line that closes a list at depth one (searched for only
        # near an answer's end: the pattern is slow to search for).
        if not final:
            end = buf.find(_LIST_END, max(lo, self._searched - len(_LIST_END)), hi)
            self._searched = hi
            if end < 0:
                return
        lo = self._lo
        end = buf.find(_LIST_END, lo, hi)
        if self._only_space_to_close(lo, end if end >= 0 else hi):
            self._close_list()
            return
        if end < 0:
            if final:
                raise ValueError("the list does not end")
            return
        if buf.rfind(_ITEM_END, lo, end) + len(_ITEM_END) == end:
            self._run(end)
        self._close_list()

    def _only_space_to_close(self, lo: int, hi: int) -> bool:
        """Whether only whitespace lies between the byte before the next item and a "]"."""
        buf = self._buf
        i = lo + 1
        while i < hi and buf[i] in _WS:
            i += 1
        return i < self._hi and buf[i] == 0x5D

    def _run(self, close: int) -> None:
        """Decode ``buf[lo + 1:close]`` (whole items) as an array and drop it from the buffer.

        The run starts after the byte before it (the list's ``[`` or the ``,`` after the
        previous item), which becomes ``[``; the byte at ``close`` (after the last "}": ``,``
        or whitespace) becomes ``]`` for the decode and is put back.
        """
        buf, lo = self._buf, self._lo
        if buf[lo] not in b"[,":  # items must be separated by commas
            raise ValueError("items without a separator between them")
        after = buf[close]
        if after not in b"," + _WS:
            raise ValueError("an item is not followed by a separator")
        buf[lo] = 0x5B  # "["
        buf[close] = 0x5D  # "]"
        try:
            with memoryview(buf) as whole, whole[lo:close + 1] as part:  # released at once
                self._take(part)
        finally:
            buf[close] = after
        self._lo = close  # the rest starts with the byte after the run
        self.runs += 1

    def _close_list(self) -> None:
        """After the last item only whitespace may come before the list's ``]``."""
        buf, i, hi = self._buf, self._lo, self._hi
        if buf[i:i + 1] == b",":
            raise ValueError("a separator after the last item")
        if buf[i:i + 1] == b"[":
            i += 1
        while i < hi and buf[i] in _WS:
            i += 1
        if i >= hi or buf[i] != 0x5D:
            raise ValueError("the list does not end after its items")
        self._lo = i  # the rest starts with "]"
        self._state = "tail"
