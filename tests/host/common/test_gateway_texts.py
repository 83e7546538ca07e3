"""The gateway's own texts in the crew's language: every code the firmware gives a ledger event
(`event(kind, "..." % ..., "code")`) or a status alarm (nengjian/console/status.py `_add(alarms, codes,
"code", ...)`) names a `gw.*` catalogue entry whose English is the firmware's template, with Chinese;
the laptop takes the arguments back out of the English and says it in Chinese (nengjian status, its
--json, the ledger report); a code or a wording it does not know is shown as the gateway wrote it."""

from __future__ import annotations

import ast
import io
import re

import pytest
from nengjian.core import records
from nengjian.core.decimal import Decimal
from nengjian.values import alarms, metrology
from nengjian.values.manual import cst_timestamp
from nengjian_host.common import gatewaytext, messages, paths

CJK = re.compile(r"[\u4e00-\u9fff]")
FIRMWARE = paths.FIRMWARE / "nengjian"


def _template(node) -> str | None:
    text = node.left if isinstance(node, ast.BinOp) else node
    return text.value if isinstance(text, ast.Constant) and isinstance(text.value, str) else None


def coded() -> set[tuple[str, str, str | None]]:
    """(file, code, %-template or None) of every coded event call and status alarm in the firmware."""
    found = set()
    for path in sorted(FIRMWARE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
            args = node.args
            if name in ("event", "_event") and len(args) == 3 and isinstance(args[2], ast.Constant):
                found.add((path.name, args[2].value, _template(args[1])))
            elif name == "_add" and len(args) == 4 and isinstance(args[2], ast.Constant):
                found.add((path.name, args[2].value, _template(args[3])))
    return found


def same_shape(template: str, en: str) -> bool:
    """The firmware's %-template and the catalogue's English say the same, field for field."""
    fw = re.sub(r"%[-+0-9.]*[srd]", "{}", template).replace("%%", "%")
    return fw == re.sub(r"\{[A-Za-z_0-9]+\}", "{}", en)


CODED = sorted(coded(), key=lambda x: (x[0], x[1], x[2] or ""))


def test_the_firmware_gives_its_codes():
    codes = {c for _f, c, _t in CODED}
    assert {"gap.raised", "gap.cleared", "cal.expired", "meter.offline", "point.refused", "meter_offline",
            "gap", "cal", "quality", "dest_failing"} <= codes
    assert len(CODED) >= 30


@pytest.mark.parametrize("where, code, template", CODED)
def test_every_code_the_firmware_gives_is_in_the_catalogue_in_both_languages(where, code, template):
    keys = gatewaytext.keys(code)
    assert keys, "%s gives code %r: add gw.%s (or gw.%s.*) to messages.py" % (where, code, code, code)
    if template is not None:
        keys = [k for k in keys if same_shape(template, messages.MESSAGES[k][0])]
        assert keys, "%s: code %r says %r: no gw.%s entry has that English" % (where, code, template, code)
    for k in keys:
        en, zh = messages.MESSAGES[k]
        assert CJK.search(zh) and messages.placeholders(zh) == messages.placeholders(en), k


def test_every_catalogue_entry_for_the_gateway_is_one_it_can_say():
    given = {c for _f, c, _t in CODED}
    for key in messages.MESSAGES:
        if key.startswith("gw.") and not key.startswith(("gw.word.", "gw.dur.")):
            code = key[3:]
            assert code in given or code.rsplit(".", 1)[0] in given, "%s: no firmware code names it" % key


def test_the_status_page_names_every_status_alarm_in_chinese():
    """The page (firmware, no catalogue) puts a short Chinese name before each alarm's English."""
    tree = ast.parse((FIRMWARE / "console" / "pagehtml.py").read_text())
    table = next(n.value for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "_ALARM_ZH")
    names = dict(x.split("=") for x in table.value.strip("|").split("|"))
    status_codes = {c for f, c, _t in CODED if f == "status.py"}
    assert status_codes == set(names) and all(CJK.search(v) for v in names.values())


T0 = cst_timestamp(2024, 5, 1)


def test_a_data_gap_event_from_the_firmware_reads_in_chinese():
    events = []
    al = alarms.Alarms(["E1"], 900, lambda k, t, c=None: events.append((c, t)), None, None, now=T0)
    al.check(T0 + 3 * 86400 + 7200)
    al.observe([records.VALUE, T0 + 4 * 86400, "E1", records.REALTIME, T0 + 4 * 86400, Decimal(1, 0), True, 4, 1])
    (c1, t1), (c2, t2) = events
    assert (c1, c2) == ("gap.raised", "gap.cleared")
    assert gatewaytext.render(c1, t1).zh == \
        "数据采集项 E1 发出告警：已 3 天 2 小时 无有效数据（自 2024-05-01 00:00:00 起）"
    assert gatewaytext.render(c2, t2).zh == ("数据采集项 E1 的告警已解除：2024-05-05 00:00:00 起重新有有效数据，"
                                             "此前 4 天 0 小时 无有效数据")
    assert str(gatewaytext.render(c1, t1)) == t1  # the English stays the gateway's


def test_a_calibration_alarm_reads_in_chinese_in_the_event_and_the_status():
    events = []
    meters = [{"id": "m1", "calibration": {"certificate": "JD-9", "date": "2023-05-01", "due": "2024-04-20"}}]
    mt = metrology.Metrology(meters, lambda k, t, c=None: events.append((c, t)))
    mt.check_calibrations(T0)
    (code, text), = events
    assert code == "cal.expired"
    assert gatewaytext.render(code, text).zh == \
        "仪表 m1 检定已过期：仪表 m1 的检定已于 2024-04-20 到期，已过期 11 天（证书 JD-9）"
    assert gatewaytext.render("cal", mt.status_alarms()[0]).zh == "仪表 m1 的检定已于 2024-04-20 到期，已过期 11 天（证书 JD-9）"


@pytest.mark.parametrize("code, english, chinese", [
    ("meter.offline", "meter m2 offline after 3 failed polls (BusTimeout: no answer); retry every 60 s",
     "仪表 m2 连续 3 次采集失败，已离线（BusTimeout: no answer）；每 60 秒重试一次"),
    ("point.refused", "meter m1 point tariff4 unsupported: meter error 0x02; asked again every 3600 s",
     "仪表 m1 不支持测点 tariff4：meter error 0x02；每 3600 秒再询问一次"),
    ("gap", "warning: 00-00-0000-023300-11 without valid data for 25 h",
     "预警：数据采集项 00-00-0000-023300-11 已 25 小时无有效数据"),
    ("quality", "QUALITY city E1 day 2026-12-01: completeness 80.5 % (70 of 96 values due), below 90 %",
     "数据质量 city：数据采集项 E1 2026-12-01 的日值完整率 80.5 %（应有 96 个值，收到 70 个），低于 90 %"),
    ("dest_failing", "prov: delivery failing: HTTP 503", "prov：上传失败：HTTP 503"),
])
def test_gateway_texts_in_chinese(code, english, chinese):
    said = gatewaytext.render(code, english)
    assert (str(said), said.zh) == (english, chinese)


@pytest.mark.parametrize("code, text", [
    (None, "meter m2 offline: no answer"),  # an older gateway: no code
    ("no.such.code", "something new"),  # a newer gateway: a code this laptop does not know
    ("meter_offline", "meter m2 went away"),  # a wording the template does not match
])
def test_what_the_catalogue_cannot_say_is_shown_as_the_gateway_wrote_it(code, text):
    said = gatewaytext.render(code, text)
    assert str(said) == said.zh == text


STATUS = {"t": "status", "mode": "run", "firmware": "0.1.0", "board": "sim", "gateway_id": "NJ-1", "time": T0,
          "alarms": ["meter m2 offline: no answer", "warning: E1 without valid data for 25 h", "store x: y"],
          "alarm_codes": ["meter_offline", "gap", "no.such"]}


def test_nengjian_status_says_the_alarms_in_chinese():
    from nengjian_host.crew import status
    from rich.console import Console

    messages.set_lang("zh")
    try:
        out = io.StringIO()
        status.render(dict(STATUS), console=Console(file=out, width=200))
        text = out.getvalue()
    finally:
        messages.set_lang("en")
    assert "仪表 m2 离线：no answer" in text and "预警：数据采集项 E1 已 25 小时无有效数据" in text
    assert "store x: y" in text and "meter m2 offline" not in text
    assert [str(a) for a in gatewaytext.alarms({"alarms": STATUS["alarms"]})] == STATUS["alarms"]  # no codes


def test_the_ledger_says_coded_events_in_both_languages():
    from nengjian_host.crew import ledger

    recs = [[records.EVENT, T0, "meter", "meter m2 offline after 3 failed polls (no answer); retry every 60 s",
             "meter.offline"],
            [records.EVENT, T0 + 60, "meter", "meter m2 answers again after 3 failed polls"],  # an older record
            [records.EVENT, T0 + 120, "store", "cursor of city damaged: resending from the oldest record"]]
    led = ledger.build(recs)
    ev = led["events"]
    assert ev[0]["text_zh"] == "仪表 m2 连续 3 次采集失败，已离线（no answer）；每 60 秒重试一次"
    assert ev[1]["text_zh"] == "仪表 m2 在连续 3 次采集失败后恢复应答"  # by its kind's templates
    assert ev[2]["text_zh"] == ev[2]["text"]  # no code, no template of its kind: as the gateway wrote it
    page = ledger.to_html(led, {})
    assert "仪表 m2 连续 3 次采集失败" in page and "meter m2 offline after 3 failed polls" in page


def test_an_error_raised_with_a_catalogue_text_gives_its_reason_in_chinese():
    """The link's errors (common/device.py, crew/pull.py) are catalogue texts: the message that carries
    one as {reason} says it in Chinese too."""
    from nengjian_host.common.device import DeviceGone

    e = DeviceGone(messages.msg("err.dev.read", port="/dev/ttyUSB0", reason=OSError(5, "EIO")))
    said = messages.msg("err.unreachable", reason=e)
    assert "/dev/ttyUSB0: read failed: [Errno 5] EIO (cable pulled or gateway reset?)" in str(said)
    assert "/dev/ttyUSB0：读取失败：[Errno 5] EIO（线缆被拔出或网关已重启？）" in said.zh


def test_a_bundle_error_says_its_reason_in_chinese():
    from nengjian_host.common import bundle

    with pytest.raises(bundle.BundleError) as e:
        bundle.size_text_to_bytes("4 GB")
    said = messages.msg("err.bundle", reason=e.value) if "err.bundle" in messages.MESSAGES else None
    assert str(e.value) == "flash size '4 GB': write it like 4MB or 16MB"
    assert said is not None and "闪存大小 '4 GB'：请写成 4MB 或 16MB 这样" in said.zh
