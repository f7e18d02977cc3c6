"""`hemma questionnaire`: the questionnaires (care.questionnaires), from the command line.

* `list`: the questionnaires shipped, with their versions and questions' linkIds and option codes;
* `schedule PATIENT QUESTIONNAIRE --at 09:00 [--at 18:00] --as USER` (or `--clear`): the same
  command as the record's schedule form;
* `answer PATIENT QUESTIONNAIRE --answer linkId=code ... --as USER`: what the patient said on the
  telephone, entered by a nurse or physician (source `staff`), through the same command as the
  patient app's form.

Imports are lazy (hemma.cli): the parser is built on the standard library alone.
"""

from __future__ import annotations

import argparse
import uuid
from typing import TYPE_CHECKING

from hemma import cli_care

if TYPE_CHECKING:
    from collections.abc import Callable


def add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], patient_id: Callable[[str], uuid.UUID]
) -> None:
    p = sub.add_parser("questionnaire", help="symptom questionnaires: list, schedule, enter an answer")
    qsub = p.add_subparsers(dest="action", required=True)
    q = qsub.add_parser("list", help="the questionnaires, their versions, questions and answer codes")
    q.set_defaults(func=questionnaire_list)

    q = qsub.add_parser("schedule", help="the local times of day a patient answers a questionnaire")
    q.add_argument("patient", type=patient_id, help="patient id (uuid)")
    q.add_argument("questionnaire", help="e.g. hemma-hf-daily (see `hemma questionnaire list`)")
    when = q.add_mutually_exclusive_group(required=True)
    when.add_argument("--at", action="append", metavar="HH:MM", help="a time of day (repeat, 1 to 6)")
    when.add_argument("--clear", action="store_true", help="take the questionnaire off the schedule")
    q.add_argument("--as", "--by", dest="by", required=True, help="username of the nurse or physician")
    q.set_defaults(func=questionnaire_schedule)

    q = qsub.add_parser("answer", help="enter the patient's answers given on the telephone")
    q.add_argument("patient", type=patient_id, help="patient id (uuid)")
    q.add_argument("questionnaire")
    q.add_argument(
        "--answer", action="append", default=[], metavar="LINKID=CODE",
        help="an answer: the question's linkId and the option's code (or the text); repeat",
    )  # fmt: skip
    q.add_argument("--version", help="the questionnaire's version (default: the current one)")
    q.add_argument("--response-id", type=uuid.UUID, help="a key of your own: the same again stores nothing")
    q.add_argument("--as", "--by", dest="by", required=True, help="username of the nurse or physician")
    q.set_defaults(func=questionnaire_answer)


def questionnaire_list(args: argparse.Namespace) -> int:
    from care.questionnaires import catalogue

    for q in catalogue().values():
        print(f"{q.id}  version {q.version}  {q.title}")
        for question in q.questions:
            required = "" if question.required else " (optional)"
            if question.options:
                codes = ", ".join(o.code + (f" [{o.flag.code}]" if o.flag else "") for o in question.options)
                print(f"  {question.link_id}{required}: {codes}")
            else:
                print(f"  {question.link_id}{required}: {question.kind.value}")
    return 0


def questionnaire_schedule(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.questionnaires import clear_schedule, set_schedule

    origin = cli_care._cli_origin()
    with cli_care._connect() as conn:
        if args.clear:
            execute(conn, clear_schedule(patient_id=args.patient, questionnaire=args.questionnaire,
                                         by=args.by, origin=origin))  # fmt: skip
            print(f"schedule of {args.questionnaire} cleared")
            return 0
        done = execute(conn, set_schedule(patient_id=args.patient, questionnaire=args.questionnaire,
                                          times=args.at, by=args.by, origin=origin))  # fmt: skip
    print(f"{done.questionnaire} scheduled at {', '.join(done.times)}")
    return 0


def _answers(pairs: list[str]) -> dict[str, str]:
    answers: dict[str, str] = {}
    for pair in pairs:
        link_id, sep, value = pair.partition("=")
        if not sep or not link_id:
            raise ValueError(f"--answer takes LINKID=CODE, not {pair[:40]!r}")
        answers[link_id.strip()] = value
    return answers


def questionnaire_answer(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.questionnaires import ByStaff, answer, questionnaire

    found = questionnaire(args.questionnaire)
    version = args.version or (found.version if found else "")
    with cli_care._connect() as conn:
        done = execute(conn, answer(
            patient_id=args.patient, questionnaire=args.questionnaire, version=version,
            answers=_answers(args.answer), response_id=args.response_id or uuid.uuid4(),
            source=ByStaff(args.by), origin=cli_care._cli_origin(),
        ))  # fmt: skip
    stored = "stored" if done.stored else "stored before (same response id); nothing changed"
    flags = f"; flags {', '.join(done.flags)}" if done.flags else ""
    print(f"response {done.response_id} {stored}: score {done.score}{flags}")
    return 0
