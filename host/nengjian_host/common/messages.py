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
    "help.ledger.html": ("write the self-contained HTML report here", "把自包含的 HTML 报告写到这里"),
    "help.ledger.png_dir": ("also write the plots as PNG files here", "同时把曲线图以 PNG 文件写到这里"),
    "help.ledger.json": ("the ledger as JSON on stdout", "运维台账以 JSON 输出到 stdout"),
    "err.ledger.input": ("{reason}", "运维台账的输入有误：{reason}"),
    "err.io": ("cannot read or write: {reason}", "读写文件失败：{reason}"),
    "out.ledger.report": ("  report: {path}", "  报告：{path}"),

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
        raise ValueError("language must be one of %s, not %r" % (", ".join(LANGS), lang))
    _lang = lang or lang_from_env(env)
    return _lang


def get_lang() -> str:
    return _lang


def both(key: str, **kw) -> tuple[str, str]:
    """(english, chinese) of a message, formatted."""
    en, zh = MESSAGES[key]
    return (en.format(**kw), zh.format(**kw)) if kw else (en, zh)


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


_FIELD = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z_0-9]*)[^{}]*\}")


def placeholders(text: str) -> set[str]:
    """The names of a template's str.format fields ({name} or {name:spec})."""
    return set(_FIELD.findall(text))


def t_in(lang: str, key: str, **kw) -> str:
    """A message in the language named, whatever the chosen one (errors print both)."""
    return both(key, **kw)[1 if lang == "zh" else 0]
