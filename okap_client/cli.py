"""The ``okap`` command line: get scoped provider access from a vault for any tool.

okap request openai --model gpt-4o-mini --monthly-limit 5
eval "$(okap env openai)"
okap run openai -- some-tool args
okap status
okap delegate ID --model gpt-4o-mini --daily-limit 1 --expires 2h
okap revoke ID
"""

from __future__ import annotations

import argparse
import difflib
import os
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from okap_client import __version__, display
from okap_client._base import DEFAULT_VAULT_URL
from okap_client.cache import CacheEntry, TokenCache
from okap_client.client import OkapClient
from okap_client.delegation import DelegateOptions, DelegationRefused
from okap_client.env import cleared_for
from okap_client.errors import (
    AccessDenied,
    AuthorizationExpired,
    OkapError,
    TokenRevoked,
    VaultUnreachable,
)
from okap_client.request import canonical_provider, normalize_expires
from okap_client.token import OkapToken

CLI_APP_NAME = "okap CLI"
EXIT_ERROR, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_DENIED, EXIT_EXPIRED = 1, 2, 3, 4, 5

EPILOG = """exit status: 0 ok, 1 other error, 2 bad usage, 3 vault unreachable,
4 access denied, 5 request expired. `okap run` exits with the command's own status.
The vault URL comes from --vault, else OKAP_VAULT_URL, else http://127.0.0.1:8400."""


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


def _vault_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--vault",
        metavar="URL",
        default=os.environ.get("OKAP_VAULT_URL") or DEFAULT_VAULT_URL,
        help="the vault's URL (default: $OKAP_VAULT_URL or %(default)s)",
    )


def _access_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "provider", help="provider id, or several joined by commas: openai,anthropic"
    )
    _vault_option(parser)
    add = parser.add_argument
    _scope_options(parser)
    add("--reason", help="why access is needed (shown to the person)")
    add("--app", default=CLI_APP_NAME, help="the app name shown on the consent page")
    add("--flow", choices=("browser", "device", "okap"), help="force an approval flow")
    add("--fresh", action="store_true", help="ask again even if a cached token covers this")


def _scope_options(parser: argparse.ArgumentParser) -> None:
    """Models, capabilities, limits and expiry: what a request asks for, and what a
    delegated token narrows."""
    add = parser.add_argument
    add("--model", "-m", action="append", default=[], help="a model or glob (repeatable)")
    add(
        "--capability", "-c", action="append", default=[], help="chat, embeddings, ... (repeatable)"
    )
    add("--monthly-limit", type=float, metavar="USD", help="spend limit per month")
    add("--daily-limit", type=float, metavar="USD", help="spend limit per day")
    add("--total-limit", type=float, metavar="USD", help="spend limit over the token's life")
    add("--requests-per-minute", "--rpm", type=int, metavar="N", help="requests per minute")
    add("--requests-per-day", type=int, metavar="N", help="requests per day")
    add("--max-tokens", type=int, metavar="N", help="max tokens per request (output)")
    add("--expires", metavar="WHEN", help="ISO date or a duration such as 12h, 30d")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="okap",
        description="Get scoped access to AI providers from an okap vault, for any tool.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"okap {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    request = commands.add_parser("request", help="ask for access and show what was granted")
    _access_options(request)
    request.set_defaults(handler=cmd_request)

    env = commands.add_parser("env", help='print export lines for eval "$(okap env openai)"')
    _access_options(env)
    env.add_argument(
        "--shell",
        choices=("sh", "fish", "powershell", "dotenv"),
        default="sh",
        help="syntax of the lines printed: sh (bash, zsh), fish, powershell, or a dotenv "
        "file (default: %(default)s)",
    )
    env.set_defaults(handler=cmd_env)

    run = commands.add_parser(
        "run",
        help="run a command with the provider's key and base URL variables set",
        usage="okap run PROVIDER [options] -- COMMAND [ARGS...]",
        description="Run COMMAND with e.g. OPENAI_API_KEY and OPENAI_BASE_URL set to a scoped "
        "okap token and the vault's proxy. Example: okap run openai -m gpt-4o-mini -- aider",
    )
    _access_options(run)
    run.set_defaults(handler=cmd_run)

    status = commands.add_parser("status", help="show cached tokens, their limits and usage left")
    status.add_argument("--vault", metavar="URL", help="only tokens of this vault")
    status.add_argument("--offline", action="store_true", help="do not ask the vault for usage")
    status.set_defaults(handler=cmd_status)

    revoke = commands.add_parser("revoke", help="give cached tokens back to the vault")
    revoke.add_argument("ids", nargs="*", metavar="ID", help="ids shown by `okap status`")
    revoke.add_argument("--provider", help="revoke every cached token for this provider")
    revoke.add_argument("--all", action="store_true", help="revoke every cached token")
    revoke.set_defaults(handler=cmd_revoke)

    delegate = commands.add_parser(
        "delegate",
        help="make a narrower child of a cached token, for a sub-agent or a job",
        description="Exchange a token for a narrower child (RFC 8693): its models, "
        "capabilities, limits and expiry within the parent's, its spend counted against the "
        "parent's limits too. Prints export lines (or, with --shell token, the token alone).",
    )
    delegate.add_argument(
        "id", nargs="?", help="the parent: an id from `okap status` (default: read it from stdin)"
    )
    delegate.add_argument("--provider", "-p", help="only this provider of the parent")
    _vault_option(delegate)
    _scope_options(delegate)
    delegate.add_argument("--name", help="the child's name, shown in the vault's dashboard")
    delegate.add_argument(
        "--shell", choices=("sh", "fish", "powershell", "dotenv", "token"), default="sh"
    )
    delegate.set_defaults(handler=cmd_delegate)
    return parser


def _limits_of(args: argparse.Namespace) -> dict[str, float | int]:
    limits = {
        "monthly_spend": args.monthly_limit,
        "daily_spend": args.daily_limit,
        "total_spend": args.total_limit,
        "requests_per_minute": args.requests_per_minute,
        "requests_per_day": args.requests_per_day,
        "tokens_per_request": args.max_tokens,
    }
    return {k: v for k, v in limits.items() if v is not None}


def _listed(values: list[str]) -> list[str]:
    return [v for raw in values for v in raw.split(",") if v]


def _access_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "models": _listed(args.model),
        "capabilities": _listed(args.capability) or None,
        "limits": _limits_of(args),
    }
    if args.expires:
        entry["expires"] = args.expires
    providers = [p for p in args.provider.split(",") if p]
    details = [{"provider": p, **entry} for p in providers]
    return {"authorization_details": details, "reason": args.reason, "flow": args.flow}


def _client(args: argparse.Namespace, cache: TokenCache) -> OkapClient:
    return OkapClient(args.vault, app_name=args.app, cache=cache)


def _obtain(args: argparse.Namespace, cache: TokenCache) -> OkapToken:
    kwargs = _access_kwargs(args)
    with _client(args, cache) as okap:
        try:
            supported = okap.metadata().providers_supported
        except VaultUnreachable:  # a cached token may still serve; get_access decides
            supported = ()
        _check_providers(kwargs["authorization_details"], supported)
        return okap.get_access(refresh=args.fresh, **kwargs)


def _check_providers(details: list[dict[str, Any]], supported: Sequence[str]) -> None:
    """A typo is caught here, with a suggestion, not after a consent page or a vault error."""
    if not supported:  # a vault that does not list its providers decides for itself
        return
    for entry in details:
        asked = str(entry["provider"])
        if canonical_provider(asked) in supported:
            continue
        close = difflib.get_close_matches(asked.lower(), list(supported), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else "."
        raise CliError(
            f"unknown provider {asked!r}{hint} This vault has: {', '.join(supported)}", EXIT_USAGE
        )


def cmd_request(args: argparse.Namespace, cache: TokenCache) -> int:
    args.fresh = True
    token = _obtain(args, cache)
    print(f"Granted by {args.vault}:")
    for line in display.grant_lines(token):
        print(f"  {line}")
    print("The token is cached: use `okap env` or `okap run` with the same options.")
    return 0


def cmd_env(args: argparse.Namespace, cache: TokenCache) -> int:
    token = _obtain(args, cache)
    for line in display.unset_lines(cleared_for(token.providers), args.shell):
        print(line)
    for line in display.export_lines(token.env(), args.shell):
        print(line)
    return 0


def cmd_run(args: argparse.Namespace, cache: TokenCache) -> int:
    command = list(args.child_argv)
    if not command:
        raise CliError("nothing to run: okap run PROVIDER -- COMMAND [ARGS...]", EXIT_USAGE)
    token = _obtain(args, cache)
    try:
        cleared = set(cleared_for(token.providers))
        inherited = {k: v for k, v in os.environ.items() if k not in cleared}
        return subprocess.call(command, env={**inherited, **token.env()})
    except FileNotFoundError:
        raise CliError(f"command not found: {command[0]}", 127) from None


def _selected(entries: list[CacheEntry], args: argparse.Namespace) -> list[CacheEntry]:
    if args.all:
        return entries
    if args.provider:
        return [e for e in entries if args.provider in e.token.providers]
    if not args.ids:
        raise CliError("name the tokens to revoke (IDs from `okap status`), or --all", EXIT_USAGE)
    chosen = [e for e in entries if any(e.id.startswith(i) for i in args.ids)]
    missing = [i for i in args.ids if not any(e.id.startswith(i) for e in entries)]
    if missing:
        raise CliError(f"no cached token with id {', '.join(missing)}", EXIT_USAGE)
    return chosen


def cmd_status(args: argparse.Namespace, cache: TokenCache) -> int:
    entries = cache.entries()
    if args.vault:
        entries = [e for e in entries if e.vault_url == args.vault.rstrip("/")]
    if not entries:
        print("No cached tokens. Ask for one with `okap request PROVIDER`.")
        return 0
    for entry in entries:
        token = entry.token
        print(f"{entry.short_id}  {entry.app} @ {entry.vault_url}")
        for line in display.grant_lines(token):
            print(f"  {line}")
        if args.offline:
            continue
        try:
            with OkapClient(entry.vault_url, cache=cache) as okap:
                usage = okap.usage(token)
            for line in display.usage_lines(usage):
                print(f"  {line}")
        except TokenRevoked:
            print("  status        revoked or expired (run `okap revoke` to tidy up)")
        except VaultUnreachable:
            print("  status        vault unreachable, usage unknown")
        except OkapError as exc:
            print(f"  status        usage unavailable ({exc.error})")
    return 0


def cmd_revoke(args: argparse.Namespace, cache: TokenCache) -> int:
    chosen = _selected(cache.entries(), args)
    if not chosen:
        print("Nothing to revoke.")
        return 0
    failed = 0
    for entry in chosen:
        where = f"{entry.short_id} ({', '.join(entry.token.providers)} @ {entry.vault_url})"
        try:
            with OkapClient(entry.vault_url, cache=cache) as okap:
                okap.revoke(entry.token)
        except OkapError as exc:
            failed += 1
            print(f"okap: could not revoke {where}: {exc.description}", file=sys.stderr)
            continue
        print(f"Revoked {where}")
    return EXIT_ERROR if failed else 0


def _parent(args: argparse.Namespace, cache: TokenCache) -> OkapToken:
    """A cached token by its id, or one read from stdin (never from argv)."""
    if args.id:
        found = [e for e in cache.entries() if e.id.startswith(args.id)]
        if len(found) != 1:
            raise CliError(f"no single cached token with id {args.id!r}", EXIT_USAGE)
        return found[0].token
    key = sys.stdin.readline().strip()
    if not key:
        raise CliError(
            "name a cached token (`okap status`) or pipe the parent to stdin", EXIT_USAGE
        )
    if not args.provider:
        raise CliError("a parent read from stdin needs --provider", EXIT_USAGE)
    details = [{"provider": canonical_provider(args.provider)}]
    return OkapToken(key=key, vault_url=args.vault.rstrip("/"), authorization_details=details)


def cmd_delegate(args: argparse.Namespace, cache: TokenCache) -> int:
    parent = _parent(args, cache)
    options: DelegateOptions = {}
    if args.provider:
        options["provider"] = args.provider
    if args.model:
        options["models"] = _listed(args.model)
    if args.capability:
        options["capabilities"] = _listed(args.capability)
    if _limits_of(args):
        options["limits"] = _limits_of(args)
    if args.name:
        options["client_name"] = args.name
    if args.expires:
        now = datetime.now(UTC)
        until = datetime.fromisoformat(
            str(normalize_expires(args.expires, now)).replace("Z", "+00:00")
        )
        options["expires_in"] = (until - now).total_seconds()
    with OkapClient(parent.vault_url, cache=cache) as okap:
        child = okap.delegate(parent, **options)
    if args.shell == "token":
        print(child.key)
        return 0
    for line in display.export_lines(child.env(), args.shell):
        print(line)
    return 0


def _explain(exc: OkapError, vault: str) -> CliError:
    if isinstance(exc, VaultUnreachable):
        return CliError(
            f"{exc.description}. Is the vault running? Pass --vault URL or set OKAP_VAULT_URL.",
            EXIT_UNREACHABLE,
        )
    if isinstance(exc, AccessDenied):
        return CliError(
            f"access denied by {vault}: {exc.description or 'the request was denied'}", EXIT_DENIED
        )
    if isinstance(exc, DelegationRefused):
        return CliError(f"the vault will not delegate this token: {exc.description}")
    if isinstance(exc, AuthorizationExpired):
        said = exc.description or ""
        # The flows' own descriptions already say what expired: never "expired ... expired".
        text = said if "expire" in said else f"the request expired before it was approved: {said}"
        return CliError(text.rstrip(": "), EXIT_EXPIRED)
    return CliError(f"{exc.error}: {exc.description}")


def main(argv: Sequence[str] | None = None, cache: TokenCache | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    child: list[str] = []
    if "--" in words:  # everything after the first -- belongs to `okap run`'s command
        cut = words.index("--")
        words, child = words[:cut], words[cut + 1 :]
    args = build_parser().parse_args(words)
    args.child_argv = child
    if child and args.handler is not cmd_run:
        print("okap: only `okap run` takes a command after --", file=sys.stderr)
        return EXIT_USAGE
    try:
        code: int = args.handler(args, cache or TokenCache.default())
    except OkapError as exc:
        failure = _explain(exc, getattr(args, "vault", "the vault"))
        print(f"okap: {failure}", file=sys.stderr)
        return failure.code
    except CliError as exc:
        print(f"okap: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
