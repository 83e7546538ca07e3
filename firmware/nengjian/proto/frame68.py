"""Framing shared by the meter codecs whose frames start with 68H (dlt645, cjt188).

Owns, for such frames, where one starts in received bytes, how many bytes it still needs, whether a
complete one is intact (checksum, end byte), the checksum and the tail (CS 16) of a built frame, and
the framing errors IncompleteFrame(FrameError) and ChecksumError(CheckError), in the tree of
nengjian.proto.errors (dlt645 and cjt188 re-export them with FrameError). Nothing about addresses,
control codes or data.

Frame: [FE preamble, noise] 68 ... L DATA CS 16. L, the data byte count, sits len_off bytes after
the 68 and DATA follows it, so a frame is len_off + 3 + L bytes; CS is the sum mod 256 from the 68 to
the last data byte. pair_off > 0: a second 68H at that offset (once received) tells a frame start
from a 68H in noise; 0: the first 68H starts the frame. DL/T 645: len_off 9, pair_off 7;
CJ/T 188: len_off 10, pair_off 0.

The codecs pass their offsets as constants. These run in the poll loop: start_of, need_at and
check_start allocate nothing; locate and check are the same with a tuple.
"""

from nengjian.core.compat import const
from nengjian.proto.errors import CheckError, FrameError

_START = const(0x68)
_END = const(0x16)


class IncompleteFrame(FrameError):
    pass


class ChecksumError(CheckError):
    pass


def checksum(buf, start, end):
    """Sum mod 256 of buf[start:end]."""
    s = 0
    for i in range(start, end):
        s += buf[i]
    return s & 0xFF


def tail(out, start, p):
    """Write CS (over out[start:p]) and 16H at out[p]; returns the frame end p + 2."""
    out[p] = checksum(out, start, p)
    out[p + 1] = _END
    return p + 2


def locate(buf, n, len_off, pair_off):
    """(start, need): start of the first plausible frame in buf[:n] (-1: none) and the bytes it still
    misses (a lower bound until L has arrived; 0 = complete)."""
    s = start_of(buf, n, pair_off)
    return s, need_at(buf, s, n, len_off)


def start_of(buf, n, pair_off):
    """Start of the first plausible frame in buf[:n], -1 if none (locate without a tuple)."""
    i = 0
    while i < n:
        if buf[i] == _START and (not pair_off or i + pair_off >= n or buf[i + pair_off] == _START):
            return i
        i += 1
    return -1


def need_at(buf, s, n, len_off):
    """Bytes the frame starting at s (-1: none yet) still misses in buf[:n]."""
    if s < 0:
        return len_off + 3
    have = n - s
    if have <= len_off:
        return len_off + 3 - have
    need = len_off + 3 + buf[s + len_off] - have
    return need if need > 0 else 0


def frame_start(buf, n, len_off, pair_off):
    """Index of the first plausible frame start in buf[:n] (n None or < 0: all), or n if none."""
    if n is None or n < 0:
        n = len(buf)
    s = start_of(buf, n, pair_off)
    return n if s < 0 else s


def bytes_needed(buf, n, len_off, pair_off):
    """More bytes needed to complete the frame in buf[:n] (0 = complete). FrameError if it cannot fit."""
    if n is None or n < 0:
        n = len(buf)
    need = need_at(buf, start_of(buf, n, pair_off), n, len_off)
    if need and n + need > len(buf):
        raise FrameError("frame cannot fit the buffer")
    return need


def check(buf, n, len_off, pair_off):
    """(start, length) of the complete frame in buf[:n] (n None or < 0: all) with CS and 16H right.

    Raises IncompleteFrame, ChecksumError, or FrameError when the end byte is wrong.
    """
    s = check_start(buf, n, len_off, pair_off)
    return s, buf[s + len_off]


def check_start(buf, n, len_off, pair_off):
    """check() without a tuple: the frame's start (its length is buf[start + len_off])."""
    if n is None or n < 0:
        n = len(buf)
    s = start_of(buf, n, pair_off)
    if s < 0 or need_at(buf, s, n, len_off):
        raise IncompleteFrame("incomplete frame")
    length = buf[s + len_off]
    e = s + len_off + 1 + length
    if checksum(buf, s, e) != buf[e]:
        raise ChecksumError("checksum")
    if buf[e + 1] != _END:
        raise FrameError("no end byte")
    return s
