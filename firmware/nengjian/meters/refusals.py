"""What follows once a meter refuses a point: committing the refusal (nengjian.meters.poller.Unsupported),
the ledger events, the point that answers again, and a refused Modbus block read point by point.

Loaded the first time a meter refuses something, never on a site whose meters answer every point:
the always-loaded poller and drivers keep only the path of a meter that answers.
"""

from nengjian.core.compat import ticks_add, ticks_ms
from nengjian.meters import profile as profiles
from nengjian.proto import modbus

# Modbus exception codes that refuse the request itself (nengjian.meters.modbus_meter's doc)
MODBUS_REFUSED = (1, 2, 3)


def commit(ref, out):
    """End of a read with refusals (Unsupported.end): raise the last one if nothing else answered,
    else mark each refused unit and drop its points from `out`."""
    pending = ref.pending
    ref.pending = ()
    if not ref.answers:
        raise pending[-1][2]
    own(ref)
    again = ticks_add(ticks_ms(), ref.retry_ms)
    for unit, points, err in pending:
        ref.due[unit] = again
        why = str(err)
        for p in points if points is not None else (unit,):
            name = p[0]
            if name in out:
                del out[name]
            if name not in ref.points:
                ref.points[name] = why
                ref.news.append((name, why))


def own(ref):
    """Give a meter containers of its own before anything is written: until its first refusal it
    shares the poller's empty ones."""
    if not ref.due:
        ref.due = {}
    if not ref.points:
        ref.points = {}
    if not ref.news:
        ref.news = []


def answers_again(ref, unit, points):
    """A unit refused before answered (Unsupported.answered)."""
    own(ref)
    del ref.due[unit]
    for p in points if points is not None else (unit,):
        if ref.points.pop(p[0], None) is not None:
            ref.news.append((p[0], None))


def report(m, ref, event):
    """The poller's `point` events for what changed (the crew's ledger reads these texts)."""
    for name, why in ref.news:
        if why is None:
            event("point", "meter %s point %s answers again" % (m.id, name), "point.back")
        elif ref.retry_ms:
            event("point", "meter %s point %s unsupported: %s; asked again every %d s"
                  % (m.id, name, why, ref.retry_ms // 1000), "point.refused")
        else:
            event("point", "meter %s point %s unsupported: %s; checked in every reply" % (m.id, name, why),
                  "point.refused_always")
    ref.news = ()


async def split(drv, bus, line, timeout_ms, gap_ms, blk, out):
    """A Modbus block the meter refused, read point by point (nengjian.meters.modbus_meter's doc).
    True if one point answered: the block is then replaced for good by its points in drv.blocks,
    and each point's outcome is told to drv.unsupported. False if none did: the caller refuses the
    block as one unit."""
    parts = []
    errs = []  # type: list  # per part: None (answered) or its refusal
    for p in blk.points:
        part = profiles.plan_modbus(drv.prof, [p[0]], drv.ratio)[0]
        parts.append(part)
        try:
            await drv.read_block(bus, line, timeout_ms, gap_ms, part, out)
            errs.append(None)
        except modbus.ModbusException as e:
            if e.code not in MODBUS_REFUSED:
                raise
            errs.append(e)
    if None not in errs:
        return False
    ref = drv.unsupported
    own(ref)
    due = ref.due
    if blk in due:  # refused before as a whole: its parts inherit that, so their answers are news
        for part in parts:
            due[part] = due[blk]
        del due[blk]
    for i in range(len(parts)):
        if errs[i] is None:
            ref.answered(parts[i], parts[i].points)
        else:
            ref.refused(parts[i], parts[i].points, errs[i])
    blocks = []
    for b in drv.blocks:
        if b is blk:
            blocks.extend(parts)
        else:
            blocks.append(b)
    drv.blocks = blocks  # the running read goes on over the list it started with
    return True

