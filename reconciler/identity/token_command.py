"""`meshward token`: mint a local identity token for an agent with the CA directory's key, into a 0600 file."""

from __future__ import annotations

import datetime
import sys
from pathlib import Path

from reconciler.identity import private_files, tokens


def main(ca_dir: Path, caller: tokens.Caller, *, ttl: datetime.timedelta, output: Path) -> int:
    try:
        key = tokens.load_or_create_key(ca_dir)
        private_files.replace(output, tokens.mint(key, caller, ttl=ttl).encode())
    except (OSError, ValueError, TypeError) as err:
        print(f"meshward token: {err}", file=sys.stderr)
        return 2
    print(f"meshward token: {output}: {caller.namespace}/{caller.service_account}, valid for {ttl}", file=sys.stderr)
    return 0
