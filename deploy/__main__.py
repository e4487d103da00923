"""``python -m deploy USER/SPACE``: build the Space tree from this repository and upload it.

    python -m deploy alice/emotions                       # a public Space under your name
    python -m deploy my-org/emotions --private --hardware cpu-upgrade --secret HF_TOKEN
    python -m deploy alice/emotions --update              # replace the files of your existing Space
    python -m deploy alice/emotions --dry-run space-tree  # only write the tree to ./space-tree

The token comes from HF_TOKEN or your saved login (`hf auth login`).  HF_ENDPOINT points
huggingface_hub at another Hub (tests use a local one).
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

from deploy.tree import TreeError, build_tree, space_config, untracked

TURN_KEYS = ("HF_TOKEN", "TURN_URLS", "CLOUDFLARE_TURN_KEY_ID")
KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
NAME = re.compile(r"^([A-Za-z0-9][\w.-]*/)?[A-Za-z0-9][\w.-]*$")


def _pairs(items: list[str], what: str, from_env: bool) -> dict[str, str]:
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not KEY.match(key):
            raise SystemExit(f"deploy: error: {what} {item!r}: expected KEY=VALUE" + (" or KEY" if from_env else ""))
        if not eq:
            if not from_env:
                raise SystemExit(f"deploy: error: {what} {item!r}: expected KEY=VALUE")
            if key not in os.environ:
                raise SystemExit(f"deploy: error: {what} {key}: no value given and ${key} is not set")
            value = os.environ[key]
        out[key] = value
    return out


def main(argv: list[str] | None = None) -> int:
    # the help shows the docstring without its reStructuredText markup (``code`` -> code)
    ap = argparse.ArgumentParser(prog="python -m deploy", description=__doc__.split("\n\n")[0].replace("``", ""),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("space", help="USER/SPACE or ORG/SPACE (a bare SPACE goes under your user name)")
    ap.add_argument("--private", action="store_true", help="create the Space private (ignored with --update)")
    ap.add_argument("--hardware", help="e.g. cpu-basic (free, the default), cpu-upgrade, t4-small")
    ap.add_argument("--secret", action="append", default=[], metavar="KEY[=VALUE]",
                    help="a Space secret; KEY alone takes the value of $KEY (keeps it out of shell history). "
                         "The live tab needs HF_TOKEN (a read-only token is enough) or TURN_* for its TURN relay")
    ap.add_argument("--variable", action="append", default=[], metavar="KEY=VALUE",
                    help="a public Space variable, e.g. VIDEO_MAX_SECONDS=300 (see docs/space.md)")
    ap.add_argument("--update", action="store_true",
                    help="the Space exists: replace its files with this version (one commit)")
    ap.add_argument("--dry-run", metavar="DIR", type=Path,
                    help="write the Space tree to DIR (new or empty) and upload nothing")
    args = ap.parse_args(argv)

    if not NAME.match(args.space):
        ap.error(f"{args.space!r} is not a Space name: expected USER/SPACE, ORG/SPACE or SPACE")
    secrets = _pairs(args.secret, "--secret", from_env=True)
    variables = _pairs(args.variable, "--variable", from_env=False)
    if set(secrets) & set(variables):
        ap.error(f"{', '.join(sorted(set(secrets) & set(variables)))}: both a secret and a variable")

    try:
        meta = space_config()
        left_out = untracked()
        if left_out:
            print(f"Left out (not tracked by git; `git add` them to ship them): {', '.join(left_out)}", file=sys.stderr)
        if args.dry_run:
            files = build_tree(args.dry_run)
            print(f"Space tree for {args.space} (sdk {meta['sdk']}): {len(files)} files in {args.dry_run}; "
                  "nothing uploaded")
            for f in files:
                print(f"  {f}")
            return 0
        from deploy.hub import DeployError, Plan, deploy

        with tempfile.TemporaryDirectory(prefix="space-tree-") as tmp:
            files = build_tree(Path(tmp) / "tree")
            print(f"Space tree: {len(files)} files")
            plan = Plan(repo_id=args.space, tree=Path(tmp) / "tree", sdk=meta["sdk"], private=args.private,
                        hardware=args.hardware, secrets=secrets, variables=variables, update=args.update)
            try:
                url = deploy(plan)
            except DeployError as e:
                print(f"deploy: error: {e}", file=sys.stderr)
                return 1
    except TreeError as e:
        print(f"deploy: error: {e}", file=sys.stderr)
        return 1
    print(f"\nDone: {url}\nThe Space now builds its image (several minutes); the build log is on that page.")
    if not args.update and not any(k in secrets or k in variables for k in TURN_KEYS):
        print("Note: no TURN secret given. Images, videos and the API work, but the Live tab cannot connect "
              "from most networks without one. Add it later with --update --secret HF_TOKEN, or in the "
              "Space's Settings -> Variables and secrets (see docs/space.md).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
