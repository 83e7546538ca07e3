"""What one exchange with a platform came to: the Result a profile returns and delivery acts on.

Result.kind:
  OK             the platform acknowledged the batch
  REJECTED       Result.rejected lists (index, reason) of records refused for good; nothing else of the
                 batch was taken: resend the rest
  RETRY          anything else; Result.reason says why (the platform's words when it answered)
  OUT_OF_MEMORY  the batch did not fit the heap while it was encoded or sent: a local condition,
                 not the platform's (delivery retries at once with a smaller batch)
"""

from nengjian.core.compat import const

OK = const(0)
REJECTED = const(1)
RETRY = const(2)
OUT_OF_MEMORY = const(3)


class Result:
    __slots__ = ("kind", "reason", "rejected")

    def __init__(self, kind, reason="", rejected=None):
        self.kind = kind
        self.reason = reason
        self.rejected = rejected or []  # (index in batch, reason)
