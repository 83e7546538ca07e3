"""What a meter's bytes can cause: the one error tree every codec raises, sorted by what a caller does.

    ProtocolError(ValueError)     the meter's bytes are no reading
      FrameError                  a frame that cannot be trusted: not ours, cut short, malformed
        CheckError                CRC or checksum wrong: noise on the line (or wrong line settings)
      MeterRefused                a well-formed refusal (.code; str() is the readable text)

The codecs hang their own classes under these (modbus CrcError and frame68 ChecksumError under
CheckError; WrongUnit, Truncated, AddressMismatch, UnexpectedReply, BCDError ... under FrameError;
ModbusException and MeterErrorReply under MeterRefused), so a caller sorts by isinstance on this
module alone and need not load a codec it does not use.

ProtocolError is a ValueError on purpose: the bus treats a framer's ValueError as "complete, let the
parser name it", and callers catch ValueError for bad frames. One chain of single bases, since
MicroPython cannot make a class of two built-in exception bases.
"""


class ProtocolError(ValueError):
    pass


class FrameError(ProtocolError):
    """The bytes are not a valid reply to the request."""


class CheckError(FrameError):
    """A complete frame whose CRC or checksum is wrong."""


class MeterRefused(ProtocolError):
    """The meter understood the request and refused it; .code is its error code or status."""

    def __init__(self, code, text):
        super().__init__(text)
        self.code = code
