"""A batch of records as they are stored: their CBOR payloads side by side in buffers its reader
keeps, and each record decoded only when it is looked at.

Store.read(..., into=batch) fills it; its reader sees a read-only sequence of (seq, record): len,
index and iteration, each giving a freshly decoded record that nothing else holds. A pass over the
batch (an upload's measuring and its body, the score) so holds one decoded record at a time, where a
list of decoded records held them all: 50 VALUEs took 16.6 KB of a 64-bit sim's heap decoded
(about 8 KB on an ESP32), and take at most 3.9 KB here (about 3.2 KB on an ESP32: mostly bytes).
Records decoded elsewhere (`extend`) follow the stored ones.

The payloads lie in chunks of CHUNK bytes, a record never across two. A batch takes all its storage
when it is made (a destination's, at boot, among the other long-lived objects) and never more: a
buffer taken at some moment of a running gateway and kept is how a heap comes apart (a simulated day
whose batches grew a chunk at a time ended with no free block over 352 bytes). A batch whose chunks
are full ends there, and the rest goes in the next round.
"""

from array import array

from nengjian.store import cbor

# Bytes a chunk: 11 VALUEs. A record too large for one (never a VALUE) ends the batch before it, and
# comes first in the next, where Store.read keeps it decoded.
CHUNK = 512
# Buffer bytes per record of the batch's size: a VALUE's payload is about 45 bytes, a wide value or a
# quality flag a few more, and a chunk's end may go unused.
RECORD_BYTES = 56
# A batch's chunk bytes at most: the default batch (50 records x RECORD_BYTES = 2.8 KB) fits whole in
# 6 chunks, and 8 hold about 88 VALUEs a round for a profile asking more (up to 500), rather than
# pinning up to 28 KB a destination from boot. Bytes weigh the same on an ESP32.
MOST_BYTES = 4096
# Stored bytes of the smallest record a batch keeps: its tables need no more slots than its chunks
# hold of those.
SMALLEST_RECORD = 32


class Batch:
    def __init__(self, size, record_bytes=RECORD_BYTES, most_bytes=MOST_BYTES):
        self.size = size
        chunks = max(1, (min(size * record_bytes, most_bytes) + CHUNK - 1) // CHUNK)
        slots = min(size, chunks * CHUNK // SMALLEST_RECORD)
        self._seqs = array("I", range(slots))
        self._starts = array("H", range(slots))  # slot k's payload: [starts[k], ends[k]) over the chunks
        self._ends = array("H", range(slots))
        self._order = array("H", range(slots))  # the slots still in the batch, in order
        self._chunks = []
        try:
            for _ in range(chunks):
                self._chunks.append(memoryview(bytearray(CHUNK)))
        except MemoryError:
            pass  # a boot this short of heap sends smaller batches (with none, one decoded record a round)
        self._slots = 0  # slots filled since clear()
        self._n = 0  # slots kept
        self.extra = []  # (seq, record) decoded elsewhere, after the stored ones
        # fn(seq) true for a record its reader passes over (sent already, refused): not kept, and not
        # counted against the read's limit
        self.unwanted = None

    def clear(self):
        self._slots = self._n = 0
        if self.extra:
            self.extra = []

    def put(self, seq, src, start, end):
        """Keep the payload src[start:end] as record `seq` (True also when it is passed over); False
        when the batch has no room for it."""
        if self.unwanted is not None and self.unwanted(seq):
            return True
        k = self._slots
        n = end - start
        if k >= len(self._seqs) or n > CHUNK:
            return False
        at = self._ends[k - 1] if k else 0
        c = at // CHUNK
        if (at + n - 1) // CHUNK != c:
            c += 1
            at = c * CHUNK
        if c >= len(self._chunks):
            return False  # full: the rest goes in the next round
        o = at - c * CHUNK
        self._chunks[c][o:o + n] = src[start:end]
        self._seqs[k] = seq
        self._starts[k] = at
        self._ends[k] = at + n
        self._order[self._n] = k
        self._slots = k + 1
        self._n += 1
        return True

    def _record(self, k):
        at = self._starts[k]
        c = at // CHUNK
        o = at - c * CHUNK
        return self._seqs[k], cbor.decode(self._chunks[c], o, o + self._ends[k] - at)

    def seq(self, i):
        n = self._n
        return self._seqs[self._order[i]] if i < n else self.extra[i - n][0]

    def __len__(self):
        return self._n + len(self.extra)

    def __getitem__(self, i):
        n = self._n
        if i < 0:
            i += n + len(self.extra)
        if i >= n:
            return self.extra[i - n]
        return self._record(self._order[i])

    def __iter__(self):
        order = self._order
        for i in range(self._n):
            yield self._record(order[i])
        for r in self.extra:
            yield r

    def keep(self, wanted, decoded=False):
        """Leave in the batch only the records for which wanted(seq) (wanted(seq, record) if
        decoded) is true, in their order."""
        out = 0
        order = self._order
        for i in range(self._n):
            k = order[i]
            if wanted(*self._record(k)) if decoded else wanted(self._seqs[k]):
                order[out] = k
                out += 1
        self._n = out
        if self.extra:
            self.extra = [r for r in self.extra if (wanted(*r) if decoded else wanted(r[0]))]

    def extend(self, recs):
        self.extra += recs
