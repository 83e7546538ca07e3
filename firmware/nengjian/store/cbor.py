"""A small CBOR (RFC 8949) encoder/decoder for stored records.

Covers what the store writes: unsigned/negative ints, text, bytes, arrays, maps, booleans, null,
float32/float64, and tag 4 decimal fractions ([exponent, mantissa]) so meter readings stay exact
fixed-point numbers (ESP32 floats are 32-bit and cannot hold a 7-digit reading). Decimal fractions
decode to nengjian.core.decimal.Decimal; CPython's cbor2 reads them as decimal.Decimal.
"""

import struct

from nengjian.core.decimal import Decimal  # the type of tag 4 (cbor.Decimal stays importable)


class CBORError(ValueError):
    pass


def _head(out, major, n):
    if n < 24:
        out.append((major << 5) | n)
    elif n < 0x100:
        out.append((major << 5) | 24)
        out.append(n)
    elif n < 0x10000:
        out.append((major << 5) | 25)
        out.extend(struct.pack(">H", n))
    elif n < 0x100000000:
        out.append((major << 5) | 26)
        out.extend(struct.pack(">I", n))
    else:
        out.append((major << 5) | 27)
        out.extend(struct.pack(">Q", n))


def encode_into(out, v):
    """Append the encoding of v to bytearray out."""
    if v is None:
        out.append(0xF6)
    elif v is True:
        out.append(0xF5)
    elif v is False:
        out.append(0xF4)
    elif isinstance(v, int):
        if v >= 0:
            _head(out, 0, v)
        else:
            _head(out, 1, -1 - v)
    elif isinstance(v, str):
        b = v.encode()
        _head(out, 3, len(b))
        out.extend(b)
    elif isinstance(v, (bytes, bytearray)):
        _head(out, 2, len(v))
        out.extend(v)
    elif isinstance(v, float):
        f32 = struct.pack(">f", v)
        if struct.unpack(">f", f32)[0] == v or v != v:
            out.append(0xFA)
            out.extend(f32)
        else:
            out.append(0xFB)
            out.extend(struct.pack(">d", v))
    elif isinstance(v, Decimal):
        out.append(0xC4)
        out.append(0x82)
        encode_into(out, v.exponent)
        encode_into(out, v.mantissa)
    elif isinstance(v, (list, tuple)):
        _head(out, 4, len(v))
        for x in v:
            encode_into(out, x)
    elif isinstance(v, dict):
        _head(out, 5, len(v))
        for k in v:
            encode_into(out, k)
            encode_into(out, v[k])
    else:
        raise CBORError("cannot encode %s" % type(v))
    return out


def encode(v):
    return bytes(encode_into(bytearray(), v))


def decode(buf, start=0, end=None):
    """Decode one item from buf[start:end]; returns the value. Raises CBORError on bad data."""
    if end is None:
        end = len(buf)
    v, pos = _decode(buf, start, end, 0)
    if pos != end:
        raise CBORError("%d trailing bytes" % (end - pos))
    return v


# struct formats of the 2-, 4- and 8-byte unsigned arguments (info 25, 26, 27)
_UINT = (">H", ">I", ">Q")


def _decode(buf, pos, end, depth):
    if pos >= end:
        raise CBORError("truncated")
    ib = buf[pos]
    pos += 1
    if ib < 24:
        return ib, pos  # a small unsigned int: most items of a record (kind, types, flags), first
    if depth > 16:
        raise CBORError("nested too deep")
    major = ib >> 5
    info = ib & 31
    if major == 7:
        if info == 20:
            return False, pos
        if info == 21:
            return True, pos
        if info in (22, 23):
            return None, pos
        if info == 26:
            if pos + 4 > end:
                raise CBORError("truncated")
            return struct.unpack_from(">f", buf, pos)[0], pos + 4
        if info == 27:
            if pos + 8 > end:
                raise CBORError("truncated")
            return struct.unpack_from(">d", buf, pos)[0], pos + 8
        if info == 25:
            raise CBORError("half floats not used")
        raise CBORError("unsupported simple value %d" % info)
    if info < 24:
        n = info
    elif info <= 27:
        size = 1 << (info - 24)
        if pos + size > end:
            raise CBORError("truncated")
        # one call, not a loop per byte: the times and values of every record read are 4-byte
        n = buf[pos] if size == 1 else struct.unpack_from(_UINT[info - 25], buf, pos)[0]
        pos += size
    else:
        raise CBORError("indefinite lengths not used")
    if major == 0:
        return n, pos
    if major == 1:
        return -1 - n, pos
    if major in (2, 3):
        if pos + n > end:
            raise CBORError("truncated string")
        b = bytes(buf[pos:pos + n])
        if major == 3:
            try:
                return b.decode(), pos + n
            except UnicodeError:
                raise CBORError("bad utf-8")
        return b, pos + n
    if major == 4:
        if n > end - pos:
            raise CBORError("array longer than data")
        items = []
        for _ in range(n):
            if pos < end and buf[pos] < 24:  # a small unsigned int, without a call
                items.append(buf[pos])
                pos += 1
                continue
            v, pos = _decode(buf, pos, end, depth + 1)
            items.append(v)
        return items, pos
    if major == 5:
        if 2 * n > end - pos:
            raise CBORError("map longer than data")
        d = {}
        for _ in range(n):
            k, pos = _decode(buf, pos, end, depth + 1)
            v, pos = _decode(buf, pos, end, depth + 1)
            try:
                d[k] = v
            except TypeError:
                raise CBORError("unhashable map key")
        return d, pos
    # major 6: tag
    v, pos = _decode(buf, pos, end, depth + 1)
    if n == 4:
        if not (isinstance(v, list) and len(v) == 2 and isinstance(v[0], int) and isinstance(v[1], int)):
            raise CBORError("bad decimal fraction")
        return Decimal(v[1], v[0]), pos
    raise CBORError("unsupported tag %d" % n)
