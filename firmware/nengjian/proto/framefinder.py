"""Finding our reply among other bytes, for the 68H-framed protocols (DL/T 645, CJ/T 188).

The codecs frame from the first plausible 68H. On a shared bus what arrives before our reply can
be a late reply of the meter polled before, a frame of another master, or noise that happens to
hold 68H: the finder asks `ours(rx, start)` of every complete frame and passes over the ones that
are not (a memoryview is cut only then, so the common path allocates nothing). A frame that is
ours but damaged stays selected, so the parser reports the checksum error.
"""


class FrameFinder:
    def __init__(self, rx, bytes_needed, frame_start, ours, min_frame):
        self._rxv = memoryview(rx)
        self._needed = bytes_needed
        self._frame_start = frame_start
        self._ours = ours
        self._min = min_frame
        self._k = 0
        self.start = 0
        self.expect = 0
        self.frame = self._frame  # bound once: the bus calls it per chunk

    def reset(self, expect=0):
        """Before a request; expect: the reply's likely length, so the bus can sleep once for it."""
        self._k = 0
        self.start = 0
        self.expect = expect

    def _frame(self, rx, n):
        if n == 0 and self.expect:
            return self.expect
        while True:
            k = self._k
            view = rx if k == 0 else self._rxv[k:]
            need = self._needed(view, n - k)
            if need > 0:
                return need
            s = k + self._frame_start(view, n - k)
            if s >= n or self._ours(rx, s):
                self.start = s
                return 0
            self._k = s + 1
            if self._k >= n:
                return self._min

    def view(self, rx, n):
        """(buffer, count) to hand the codec's parser: rx itself unless frames were skipped."""
        if self._k == 0:
            return rx, n
        return self._rxv[self._k:], n - self._k

    def buffer(self, rx):
        """view()'s buffer alone (no tuple): rx itself unless frames were skipped."""
        return rx if self._k == 0 else self._rxv[self._k:]

    def count(self, n):
        """view()'s count alone."""
        return n - self._k
