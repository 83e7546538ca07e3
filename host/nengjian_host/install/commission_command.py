"""`nengjian commission`: its options, prompts and printing; the flow is install.commission.run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from nengjian_host.common import output
from nengjian_host.common.output import EXIT_OK, EXIT_USAGE, HelpFormatter, emit, fail

DESCRIPTION = """\
调试一台网关：查找网关、扫描总线、识别仪表、对应数据采集项编码、生成并检查站点配置、写入固件和身份、
等待平台接收首个数据，最后生成调试报告（HTML 和 PDF，也是运维台账的第一条记录）。
Commission one gateway: find it (USB serial number or MAC), scan each bus, identify each meter
against the profile library, map each data-item code the platform issued (a CSV) to a meter point,
write and check the site config, flash and provision, wait for the first value every destination
accepted, and write the commissioning report (HTML and PDF; also the first ledger entry).

Interactive by default (questions in Chinese and English); --answers FILE answers them from JSON.
A stage that fails says why and keeps everything done before it in WORK/commission-state.json:
run the same command again and it goes on from that stage."""

EPILOG = """\
example:
  nengjian commission --work site-dg01                      ask each answer
  nengjian commission --answers answers.json --work site-dg01 --json
codes CSV (the platform's issue):  code,name,scope,meter,point
  00-00-0000-023300-11,全厂用电,1,m1,energy_kwh
""" + output.EXIT_CODES_HELP


def _ask(question_zh: str, question_en: str, default):
    if not sys.stdin.isatty():
        return None
    hint = " [%s]" % (json.dumps(default) if not isinstance(default, str) else default) if default is not None else ""
    got = input("%s\n%s%s: " % (question_zh, question_en, hint)).strip()
    if got.startswith(("{", "[")):
        return json.loads(got)
    return got or None


def cmd_commission(args) -> int:
    from nengjian_host.install import commission

    answers, base = {}, Path.cwd()
    if args.answers:
        try:
            answers = json.loads(Path(args.answers).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            return fail(args, EXIT_USAGE, "cannot read the answers file %s: %s" % (args.answers, e),
                        zh="读不到应答文件 %s（应为 JSON）" % args.answers)
        base = Path(args.answers).resolve().parent

    def step(stage, text):
        output.note(args, "... [%s] %s" % (stage, text))

    ctx = commission.Context(answers=answers, work=Path(args.work), base=base,
                             ask=None if (args.answers or args.json) else _ask, step=step)
    try:
        doc = commission.run(ctx, until=args.until)
    except commission.CommissionError as e:
        return fail(args, e.exit_code, "%s: %s" % (e.stage, e), zh="%s：%s" % (commission.STAGE_ZH[e.stage], e.zh),
                    stage=e.stage, state=str(Path(args.work) / commission.STATE_FILE))
    if args.until and args.until != "report":
        emit(args, {"ok": True, "done": doc["done"]}, ["done: " + ", ".join(doc["done"])])
        return EXIT_OK
    rep = doc["results"]["report"]
    emit(args, {"ok": True, "report": rep, "refused": doc.get("refused", []),
                "meters": doc["results"]["identify"], "items": doc["results"]["codes"]},
         ["调试完成 / commissioned: %d meters, %d items" % (len(doc["results"]["identify"]), len(doc["results"]["codes"])),
          "  report: %s" % rep["html"], "  pdf:    %s" % (rep["pdf"] or rep["pdf_problem"])])
    return EXIT_OK


STAGES = ("find", "scan", "identify", "codes", "config", "flash", "provision", "first_values", "report")


def register(sub) -> None:
    c = sub.add_parser("commission", formatter_class=HelpFormatter, help="commission a gateway: scan, map codes, "
                       "provision, first value, report (调试网关)", description=DESCRIPTION, epilog=EPILOG)
    c.add_argument("--answers", metavar="FILE", help="answers as JSON (see install/commission.py): no questions")
    c.add_argument("--work", default="commission", help="work folder: state, site.json, report (default ./commission)")
    c.add_argument("--until", choices=STAGES, help="stop after this stage (the next run goes on from there)")
    c.add_argument("--json", action="store_true", help="one JSON result on stdout (needs --answers for anything asked)")
    c.set_defaults(func=cmd_commission)
