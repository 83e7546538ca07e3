"""`nengjian commission`: its options, prompts and printing; the flow is install.commission.run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from nengjian_host.common import output
from nengjian_host.common.messages import msg, t
from nengjian_host.common.output import EXIT_OK, EXIT_USAGE, HelpFormatter, emit, fail


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
            return fail(args, EXIT_USAGE, msg("err.commission.answers", file=args.answers, reason=e))
        base = Path(args.answers).resolve().parent

    def step(stage, text):
        output.note(args, "... [%s] %s" % (stage, text))

    ctx = commission.Context(answers=answers, work=Path(args.work), base=base,
                             ask=None if (args.answers or args.json) else _ask, step=step)
    try:
        doc = commission.run(ctx, until=args.until)
    except commission.CommissionError as e:
        return fail(args, e.exit_code, msg("err.commission.stage", stage=commission.stage_name(e.stage), reason=e.text()),
                    stage=e.stage, state=str(Path(args.work) / commission.STATE_FILE))
    if args.until and args.until != "report":
        emit(args, {"ok": True, "done": doc["done"]}, [t("out.commission.done_until", stages=", ".join(doc["done"]))])
        return EXIT_OK
    rep = doc["results"]["report"]
    emit(args, {"ok": True, "report": rep, "refused": doc.get("refused", []),
                "meters": doc["results"]["identify"], "items": doc["results"]["codes"]},
         [t("out.commission.done", meters=len(doc["results"]["identify"]), items=len(doc["results"]["codes"])),
          t("out.commission.report", path=rep["html"]), t("out.commission.pdf", path=rep["pdf"] or rep["pdf_problem"])])
    return EXIT_OK


STAGES = ("find", "scan", "identify", "codes", "config", "flash", "provision", "first_values", "report")


def register(sub) -> None:
    c = sub.add_parser("commission", formatter_class=HelpFormatter, help=t("help.commission"),
                       description=t("help.commission.desc"), epilog=t("help.commission.epilog"))
    c.add_argument("--answers", metavar="FILE", help=t("help.commission.answers"))
    c.add_argument("--work", default="commission", help=t("help.commission.work"))
    c.add_argument("--until", choices=STAGES, help=t("help.commission.until"))
    c.add_argument("--json", action="store_true", help=t("help.commission.json"))
    c.set_defaults(func=cmd_commission)
