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


# What writes a ledger event: Gateway.event and the helpers each part is handed it as, called
# (kind, text, code), or (text, code) where the helper names the kind itself (clock, centerinfo, ota).
EMITTERS = ("event", "_event", "_note", "on_event")
CODE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")
# The helpers that put their part's name before the text ("%s: %s" % (name, text)): the catalogue's
# English has it, the call site's template does not.
PREFIXED = {"modem.py": "%s: ", "modemup.py": "%s: ", "centerinfo.py": "%s: "}
SOURCES = [p for root in (FIRMWARE, paths.BOARDS) for p in sorted(root.rglob("*.py"))]


def _is_code(node) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and bool(CODE.match(node.value))


def _passes_code_on(node) -> bool:
    """A helper's own call that hands on the code its caller gave (`code`)."""
    return isinstance(node, ast.Name) and node.id == "code"


def _event_list(node) -> bool:
    """A ledger record written directly: [records.EVENT, ts, kind, text(, code)]."""
    return isinstance(node, ast.List) and bool(node.elts) and getattr(node.elts[0], "attr", None) == "EVENT"


def scan() -> tuple[set[tuple[str, str, str | None]], list[str]]:
    """(coded, uncoded): (file, code, %-template or None) of every coded event call, direct event
    record, status alarm and last-error code in the firmware and the boards; "file:line call" of every
    event written without a code."""
    found, bare = set(), []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if _event_list(node):
                elts = node.elts
                if len(elts) == 5 and _is_code(elts[4]):
                    found.add((path.name, elts[4].value, _template(elts[3])))
                elif len(elts) == 5 and _passes_code_on(elts[4]):
                    pass
                elif not (len(elts) == 4 and all(isinstance(e, ast.Name) for e in elts[2:])):  # Gateway.event's own
                    bare.append("%s:%d %s" % (path.name, node.lineno, ast.unparse(node)[:100]))
                continue
            if isinstance(node, ast.Assign):  # a meter's or a destination's last_error_code
                names = [getattr(e, "attr", None) for t in node.targets for e in (t.elts if isinstance(t, ast.Tuple)
                                                                                  else [t])]
                if "last_error_code" in names:
                    found.update((path.name, c.value, None) for c in ast.walk(node.value) if _is_code(c))
                continue
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
            args = node.args
            if name in EMITTERS:
                if len(args) in (2, 3) and _is_code(args[-1]):
                    found.add((path.name, args[-1].value, _template(args[-2])))
                elif not (args and _passes_code_on(args[-1])):
                    bare.append("%s:%d %s" % (path.name, node.lineno, ast.unparse(node)[:100]))
            elif name == "_add" and path.name == "status.py" and not (len(args) == 4 and _is_code(args[2])):
                bare.append("%s:%d %s" % (path.name, node.lineno, ast.unparse(node)[:100]))
            if name == "_add" and len(args) == 4 and isinstance(args[2], ast.Constant):
                found.add((path.name, args[2].value, _template(args[3])))
            elif name == "record_check" and len(args) == 4 and isinstance(args[3], ast.Constant):  # CHECK
                found.add((path.name, args[3].value, _template(args[2])))
            elif name == "_loss" and len(args) == 2 and isinstance(args[1], ast.Constant):  # the store's
                found.add((path.name, args[1].value, _template(args[0])))
            elif name == "append" and getattr(f.value, "attr", None) == "_deferred" and \
                    isinstance(args[0], ast.Tuple) and isinstance(args[0].elts[-1], ast.Constant):
                found.add((path.name, args[0].elts[-1].value, _template(args[0].elts[1])))  # the store's, held
    return found, bare


def coded() -> set[tuple[str, str, str | None]]:
    return scan()[0]


def same_shape(template: str, en: str, where: str = "") -> bool:
    """The firmware's %-template and the catalogue's English say the same, field for field."""
    fw = re.sub(r"%[-+0-9.]*[srd]", "{}", PREFIXED.get(where, "") + template).replace("%%", "%")
    return fw == re.sub(r"\{[A-Za-z_0-9]+\}", "{}", en)


CODED = sorted(coded(), key=lambda x: (x[0], x[1], x[2] or ""))


def test_every_event_the_firmware_writes_has_a_code():
    """A new event written without a code would reach the crew in English only."""
    assert scan()[1] == []


def test_the_scan_sees_an_event_written_without_a_code(tmp_path, monkeypatch):
    src = tmp_path / "new.py"
    src.write_text('def f(gw, m, store, now):\n    gw.event("health", "task %s stuck" % m)\n'
                   '    m._note("modem", "powered on")\n    store.append([records.EVENT, now, "manual", "x"])\n'
                   '    gw.event("health", "fine", "health.fine")\n')
    monkeypatch.setitem(globals(), "SOURCES", [src])
    found, bare = scan()
    assert [b.split()[0] for b in bare] == ["new.py:2", "new.py:3", "new.py:4"]
    assert found == {("new.py", "health.fine", "fine")}


def test_the_firmware_gives_its_codes():
    codes = {c for _f, c, _t in CODED}
    assert {"gap.raised", "gap.cleared", "cal.expired", "meter.offline", "point.refused", "meter_offline",
            "gap", "cal", "quality", "dest_failing", "uplink.failing", "uplink.refused", "loss.unacked",
            "store.write_failed", "ota.confirmed", "refill.done", "meterclock.broadcast"} <= codes
    assert len(CODED) >= 80


@pytest.mark.parametrize("where, code, template", CODED)
def test_every_code_the_firmware_gives_is_in_the_catalogue_in_both_languages(where, code, template):
    keys = gatewaytext.keys(code)
    assert keys, "%s gives code %r: add gw.%s (or gw.%s.*) to messages.py" % (where, code, code, code)
    if template is not None:
        keys = [k for k in keys if same_shape(template, messages.MESSAGES[k][0], where)]
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
    ("uplink.delivering", "city: delivering again after 3 failure(s) over 120 s (last: HTTP 503); backlog 42",
     "city：连续 3 次失败（历时 120 秒，最后一次：HTTP 503）后恢复上传；待补传 42 条"),
    ("loss.unacked", "ring full: records 5..9 (2024-05-01 00:00:00 .. 2024-05-01 01:00:00 CST) dropped before "
     "every destination acknowledged them; their values are kept in history",
     "ring full：记录 5..9（北京时间 2024-05-01 00:00:00 .. 2024-05-01 01:00:00）在 所有上传目的地 确认接收前被丢弃；"
     "其数值已保留在历史数据中"),
    ("store.cursor_damaged", "cursor of city damaged: resending from the oldest record",
     "city 的上传游标已损坏：从最早的记录开始补传"),
    ("ota", "update refused: signature does not verify", "更新被拒绝：signature does not verify"),
    ("ota", "version 0.3.0 offered by the update channel: not fetched (it failed its trial on this gateway and was "
     "rolled back)", "更新通道提供版本 0.3.0：未下载（该版本曾在本网关试运行失败并已回退）"),
    ("ota.rolled_back", "rolled back from 0.3.0 to 0.2.0: not healthy within 1800 s",
     "已从版本 0.3.0 回退到 0.2.0：1800 秒内未确认运行正常"),
    ("interval.range", "E1: day value 99999 for 2024-05-01 00:00:00 outside 0..5000: sent as invalid",
     "数据采集项 E1：2024-05-01 00:00:00 的日值 99999 超出 0..5000：按无效值上传"),
    ("ota.received", "bundle 0.2.0 received: verified and installed at the restart",
     "已收到更新包 0.2.0：已校验，重启时安装"),
    ("meterclock.after_broadcast", "m3: meter clock NOT set after the broadcast: +75 s",
     "m3：广播校时后仪表时钟未校准：偏差 +75 秒"),
    ("refill.freeze_time", "m1: hourly freeze 2 reads 2024-05-01 03:00, not 2024-05-01 02:00: not used",
     "m1：小时冻结数据第 2 条的时间为 2024-05-01 03:00，而非 2024-05-01 02:00：不采用"),
    ("health.safe_mode", "SAFE MODE (crash loop, level 1): 3 quick crashes in a row (last reset: watchdog); meters "
     "polled and stored; notices, coefficients, update server off; normal start in 1800 s",
     "安全模式（反复重启，级别 1）：连续 3 次启动后很快崩溃（上次复位原因：看门狗复位）；仪表照常采集和存储；"
     "通知、折标系数和更新服务器暂停；1800 秒后正常启动"),
    ("boot.started", "started firmware 0.3.0 (reset cause: power-on, quick crashes: 0 of 3)",
     "固件 0.3.0 已启动（复位原因：上电，快速崩溃 0 次，上限 3 次）"),
    ("clock.held", "clock not stepped: Date header puts the clock +7200 s off, more than clock.max_step_s (60 s): "
     "not set until a second source agrees",
     "时钟未调整：平台应答的 Date 头 显示时钟偏差 +7200 秒，超过 clock.max_step_s（60 秒）：待第二个时间源一致后再调整"),
    ("modem.failed", "4g: sim failed: no SIM card (check the card and its holder)",
     "4g：SIM 卡检查失败：没有 SIM 卡（请检查卡和卡座）"),
    ("modem.weak_signal", "4g: weak signal: -105 dBm", "4g：信号弱：-105 dBm"),
    ("security.tls_insecure", "city: INSECURE: the platform's certificate is NOT verified (insecure_self_signed is "
     "on): anyone on the network path can read and alter what is uploaded. Pin the platform's certificate as 'ca' "
     "instead and turn insecure_self_signed off.",
     "city：安全警告：不安全：未验证平台证书（insecure_self_signed 已开启）：网络途中任何人都能读取和篡改上传的数据。"
     "请把平台证书固定为 'ca'，并关闭 insecure_self_signed。"),
    ("ota.keys", "update keys: added k2; retired k1 (signed by k1)", "更新签名密钥：added k2; retired k1（由 k1 签署）"),
    ("uplink.notice_refused", "city: fault notice refused, not resent: HTTP 400, unreadable answer: x",
     "city：fault 通知被平台拒绝，不再重发：HTTP 400，平台应答无法解读：x"),
    ("tce.invalid", "site total for day 2024-05-01 00:00:00 sent as invalid: no value from E1",
     "2024-05-01 00:00:00 的综合能耗日值总量按无效值上传：no value from E1"),
    ("interval.estimated", "E1: no reading within 120 s of 2024-05-01 00:15:00 .. 2024-05-01 00:30:00: estimated "
     "between readings 2024-05-01 00:10:00 and 2024-05-01 00:40:00",
     "数据采集项 E1：2024-05-01 00:15:00 .. 2024-05-01 00:30:00 前后 120 秒内没有读数：按 2024-05-01 00:10:00 与 "
     "2024-05-01 00:40:00 两次读数估算"),
    ("visit", "Li: meters, seals; done: cleaned the cabinet [visit V7, 2 photo(s)]",
     "巡检 V7：Li 检查了 meters, seals；处理：cleaned the cabinet（照片 2 张）"),
    ("visit", "Li came, all fine", "巡检：Li came, all fine"),
    ("health.task_failed", "task poll:bus0 failed (OSError: 5): restarted in 2 s", "任务 poll:bus0 出错（OSError: 5）：2 秒后重启"),
    ("meter.offline", "meter m2 offline after 3 failed polls (no reply); retry every 60 s",
     "仪表 m2 连续 3 次采集失败，已离线（无应答）；每 60 秒重试一次"),
    ("meter_error.timeout", "incomplete reply (3 bytes)", "应答不完整（3 字节）"),
    ("meter_error.check", "CRC mismatch", "校验错误（线路干扰或串口参数不符）：CRC mismatch"),
    ("dest_error", "HTTP 200, responseCode 401: token expired", "HTTP 200，平台返回码 401：token expired"),
    ("dest_error", "connect: [Errno 111] ECONNREFUSED", "上传失败：connect: [Errno 111] ECONNREFUSED"),
    ("dest_failing", "prov: delivery failing: TLS set-up: no ca", "prov：上传失败：TLS 设置失败：no ca"),
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


def test_an_older_gateways_uncoded_health_and_clock_events_read_in_chinese_by_their_kind():
    from nengjian_host.crew import ledger

    recs = [[records.EVENT, T0, "health", "task poll:bus0 moves again"],
            [records.EVENT, T0 + 60, "clock", "clock stepped by +30 s from NTP pool.ntp.org (2024-05-01T00:01:00Z)"],
            [records.EVENT, T0 + 120, "meter", "meter m2 offline after 3 failed polls (no reply); retry every 60 s"]]
    ev = ledger.build(recs)["events"]
    assert [e["text_zh"] for e in ev] == [
        "任务 poll:bus0 恢复运行", "时钟按 NTP pool.ntp.org 调整了 +30 秒（2024-05-01T00:01:00Z）",
        "仪表 m2 连续 3 次采集失败，已离线（无应答）；每 60 秒重试一次"]  # the error said in Chinese too


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


def test_the_firmwares_own_events_read_in_chinese():
    """Written by the firmware itself (run here on CPython): a manual entry, a clock step held back."""
    from nengjian.core import timeutil
    from nengjian.system import clock as clocksync
    from nengjian.values import manual

    class Store:
        def __init__(self):
            self.recs = []

        def append(self, rec):
            self.recs.append(rec)
            return len(self.recs)

    store = Store()
    manual.enter(store, "00-00-0000-023300-11", records.DAY, "2024-05-01", "12.5", 1, now=T0 + 86400 * 2, who="Li")
    _k, _ts, kind, text, code = store.recs[-1]
    said = gatewaytext.event(kind, code, text)
    assert said.key == "gw.manual.by" and said.zh.startswith("人工录入数据采集项 00-00-0000-023300-11 2024-05-01")
    assert said.zh.endswith("的日值 = 12.5（范围 1），录入人 Li")

    events = []
    c = clocksync.ClockSync(None, False, lambda k, t, code=None: events.append((code, t)), max_step_s=60)
    now = timeutil.now()
    c.accept(now, "Date header")
    c.accept(now + 7200, "Date header")
    said = [gatewaytext.render(code, t) for code, t in events]
    assert [s.key for s in said] == ["gw.clock.trusted", "gw.clock.held"], events
    assert said[1].zh.startswith("时钟未调整：平台应答的 Date 头 显示时钟偏差 +7200 秒")


def test_a_performance_check_from_the_firmware_reads_in_chinese():
    from nengjian.values import metercheck

    events = []
    meters = [{"id": "m1", "class": "1.0"}]
    mt = metrology.Metrology(meters, lambda k, t, c=None: events.append((c, t)))
    metercheck.check(mt, "m1", "energy", Decimal(100000, -2), T0, "1020.00", T0 + 5, who="Li")
    said = [gatewaytext.render(c, t) for c, t in events]
    assert [c for c, _t in events] == ["check.done", "check.beyond"] and all(s.key for s in said)
    assert "性能检验：仪表显示 1020.00，网关读数 1000.00" in said[0].zh and said[0].zh.endswith("：超出准确度等级；检验人 Li")
    assert said[1].zh.startswith("性能检验 m1 energy 超出准确度等级 1.0")
