"""Property checks shared by the tests of the 68H-frame codecs (test_dlt645, test_cjt188).

Both codecs frame through nengjian.proto.frame68 and share one error hierarchy, so the same checks
hold for each: arbitrary bytes give a value or a typed error, and bytes_needed() says "more" on
exactly the prefixes that parse_reply() calls incomplete.
"""

from hypothesis import strategies as st


def frames_and_noise(frames):
    """Random bytes, or a frame drawn from `frames` with noise before it, some bytes hit, maybe cut."""

    @st.composite
    def strategy(draw):
        if draw(st.booleans()):
            return draw(st.binary(max_size=80))
        frame = bytearray(draw(st.binary(max_size=6)) + draw(frames))
        for _ in range(draw(st.integers(0, 2))):
            frame[draw(st.integers(0, len(frame) - 1))] = draw(st.integers(0, 255))
        cut = draw(st.integers(0, len(frame)))
        return bytes(frame[:cut] if draw(st.booleans()) else frame)

    return strategy()


def typed(codec):
    """The exceptions a codec may raise on bad bytes."""
    return (codec.FrameError, codec.MeterErrorReply)


def assert_only_typed_errors(codec, parsers, data):
    """Every parser (and bytes_needed) on data returns or raises one of typed(codec)."""
    for parse in list(parsers) + [codec.bytes_needed]:
        try:
            parse(data)
        except typed(codec):
            pass


def assert_bytes_needed_agrees(codec, parse, data):
    """For every prefix buf[:k] of data: bytes_needed(buf, k) > 0 exactly when parse(buf, k) raises
    IncompleteFrame (buf has room to spare, so bytes_needed never says "cannot fit")."""
    b = bytearray(data) + bytearray(300)
    for k in range(len(data) + 1):
        need = codec.bytes_needed(b, k)
        try:
            parse(b, k)
            incomplete = False
        except codec.IncompleteFrame:
            incomplete = True
        except typed(codec):
            incomplete = False
        assert incomplete == (need > 0), (k, need)
