"""Per-destination cursors: the seq up to which each upload destination has acknowledged.

Owns: the c-NAME files, "seq crc32\\n" (the seq in decimal and the CRC-32 of that text), written
through the firmware's one atomic writer (nengjian.core.statefile.replace: c-NAME.new, renamed over
c-NAME), and what a file found at boot means. A missing or damaged one counts as none: the
destination starts again from the oldest record in the main ring, since resending is harmless (the
platform's natural key) and skipping is not. One past the data is clamped to the newest record,
but still raises the next seq (a platform may hold an acknowledgement for it). Whether an ack is
allowed is the store's.
"""

from binascii import crc32

from nengjian.core import statefile


class Cursors:
    def __init__(self, root, names, event, stats):
        self.root = root
        self.names = names
        self.event = event  # fn(kind, text): the store's ledger
        self.stats = stats  # the store's counters
        self.at = {}  # dest -> seq acknowledged (None between load() and settle())

    def path(self, dest):
        return "%s/c-%s" % (self.root, dest)

    def load(self):
        """Read every destination's file; returns the highest seq saved (0 if none)."""
        high = 0
        for dest in self.names:
            c = self._load(dest)
            self.at[dest] = c
            if c is not None and c > high:
                high = c
        return high

    def _load(self, dest):
        try:
            with open(self.path(dest)) as f:
                text = f.read()
        except OSError:
            return None
        try:
            seq_text, crc_text = text.split()
            seq = int(seq_text)
            if crc32(seq_text.encode()) != int(crc_text) or seq < 0:
                raise ValueError("crc")
        except (ValueError, IndexError):
            self.event("store", "cursor of %s damaged: resending from the oldest record" % dest)
            return None
        return seq

    def settle(self, top, oldest):
        """After load(): a destination without a cursor starts before `oldest`; one past `top`, the
        newest record, is clamped to it."""
        for dest in self.names:
            c = self.at[dest]
            if c is None:
                c = oldest - 1
            elif c > top:
                self.event("store", "cursor of %s (%d) past the newest record (%d): clamped" % (dest, c, top))
                c = top
            self.at[dest] = c

    def save(self, dest, seq):
        """Move dest's cursor to seq in RAM and on flash. True once on flash; False when the write
        failed (the cursor has moved in RAM all the same)."""
        self.at[dest] = seq
        text = str(seq)
        line = "%s %d\n" % (text, crc32(text.encode()))

        def failed(why):
            self.stats["write_errors"] += 1
            self.event("store", "cursor of %s not saved (%s)" % (dest, why))

        return statefile.replace(self.path(dest), lambda f: f.write(line), "w", failed)
