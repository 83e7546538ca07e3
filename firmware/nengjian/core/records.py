"""The kinds of record the gateway stores, and their field order (CBOR arrays on flash).

READING  [1, ts, meter, point, value, quality]            a meter reading (cumulative, exact Decimal)
VALUE    [2, ts, dataCode, statType, statStart, value, valid, inputType, scope(, quality)]
                                                         a platform value, uploaded to every destination
EVENT    [3, ts, kind, text(, code)]                      ledger: fault, recovery, loss, config, visit

A READING of quality REFILLED was not polled: it is a DL/T 645 meter's frozen reading taken back
after a gap (nengjian.meters.refill), stamped with the boundary it was frozen at. A VALUE computed
from refilled boundary readings only (or refilled and measured ones) carries the trailing quality
REFILLED; estimates (valid false, nengjian.values.intervals) never do, so the two are never mixed.
An EVENT's optional code (a short str such as "gap.raised") names its template, so the laptop can say
the English text in the crew's language; events without one, and older records, are shown as written.
Times are UTC seconds. A VALUE carries its code and scope so later config changes never alter
what was already recorded.
"""

READING = 1
VALUE = 2
EVENT = 3

# VALUE fields
V_TS = 1
V_CODE = 2
V_STAT_TYPE = 3
V_STAT_START = 4
V_VALUE = 5
V_VALID = 6
V_INPUT = 7
V_SCOPE = 8
V_QUALITY = 9  # optional: absent for a measured value


# quality of a READING
GOOD = 0
OUT_OF_RANGE = 1
REFILLED = 2

# statType
REALTIME = 0
DAY = 1
MONTH = 2
YEAR = 3

# inputType
FIELD_INSTRUMENT = 4
MANUAL = 5
