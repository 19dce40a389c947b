"""`car-select cache`: inspect or prune the feature cache."""

from __future__ import annotations

import json
from pathlib import Path

from ..config import Config
from ..errors import CarSelectError
from ..wording import count
from .options import CACHE_DIR_HELP, formatter

CACHE_EXAMPLE = """\
example:
  car-select cache info                        # namespaces, shards, rows, bytes
  car-select cache prune                       # unreadable shards, killed runs' temporaries, old formats
  car-select cache prune --older-than 30       # also namespaces not written for 30 days
"""


def add_parser(sub):
    cache = sub.add_parser("cache", help="inspect or prune the feature cache", epilog=CACHE_EXAMPLE,
                           formatter_class=formatter, description="info: what the feature cache holds. prune: "
                           "remove unreadable shards, killed runs' temporaries and old formats (and more with "
                           "--all or --older-than).")
    cache.add_argument("action", choices=["info", "prune"])
    cache.add_argument("--cache-dir", metavar="DIR", help=CACHE_DIR_HELP)
    cache.add_argument("--all", action="store_true", help="prune: remove every namespace")
    cache.add_argument("--older-than", type=float, default=None, metavar="DAYS",
                       help="prune: remove namespaces not written for this many days")
    cache.add_argument("--dry-run", action="store_true", help="prune: list what would be removed")
    cache.add_argument("--json", action="store_true")
    return cache


def main(args) -> int:
    from ..cache import cache_info, prune_cache

    root = Path(args.cache_dir) if args.cache_dir else Config().resolved_cache_dir()
    if args.action == "info":
        info = cache_info(root)
        if args.json:
            print(json.dumps({"cache_dir": str(root), "namespaces": info}))
        else:
            print(f"cache {root}: {count(len(info), 'namespace')}")
            for ns in info:
                print(f"  {ns['namespace']}  {count(ns['shards'], 'shard')}, {count(ns['rows'], 'row')}, "
                      f"{ns['bytes'] / 2**20:.1f} MiB"
                      + (f", {ns['unreadable_shards']} unreadable" if ns["unreadable_shards"] else "")
                      + ("" if ns["current_format"] else ", old format"))
        return 0
    if args.older_than is not None and args.older_than < 0:
        raise CarSelectError(f"--older-than must be >= 0, got {args.older_than}")
    removed = prune_cache(root, everything=args.all, older_than_days=args.older_than, dry_run=args.dry_run)
    if args.json:
        print(json.dumps({"cache_dir": str(root), "removed": removed, "dry_run": args.dry_run}))
    elif not removed:
        print(f"nothing to prune in {root}")
    else:
        for path in removed:
            print(("would remove " if args.dry_run else "removed ") + path)
    return 0
