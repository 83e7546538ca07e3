"""The layout of the quality score (nengjian.uplink.quality): its slots, the flags of an item-day and
item-month, and its file's header, shared by the always-loaded part and the figures and file reading
(nengjian.uplink.qualityfig), which is loaded only while it runs.
"""

from nengjian.core.compat import const

DAY_S = const(86400)
DAYS = const(4)  # day slots: today and the three days before
MONTHS = const(2)  # this month and the last

# flags, one byte per item-day and item-month
F_VALUE = const(1)  # the day (month) value accepted
F_ON_TIME = const(2)  # ... within one period of falling due
F_CHECKED = const(4)  # alarms checked
F_MISALIGNED = const(8)  # a day (month) value off its statistics time
F_MIS_DAYS = const(16)  # month: a misaligned day value in it

HEAD = "<4sHIBBqI"
MAGIC = b"NJQ1"
ITEM_BYTES = (8, 1, 2, 4, 4, 1, 8, 2, 2, 2, 4, 4, 1)  # of each table, in Quality._tables order (q B H f f B ...)
