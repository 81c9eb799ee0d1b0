"""Record Backstage's answers to the compatibility cases: ``python -m tests.compat.record``.

Needs ``BACKSTAGE_PEER_URL`` (e.g. ``http://127.0.0.1:7017``) and ``BACKSTAGE_PEER_TOKEN`` (its static
service token, subject ``bench``) and the peer's catalog directory in ``BACKSTAGE_PEER_CATALOG``
(default ``/var/tmp/backstage-peer/catalog``). The CORS cases come from Backstage's CORS middleware
run by ``cors_oracle.cjs`` from the peer's ``node_modules`` (``BACKSTAGE_PEER_HOME``). Writes
``tests/compat/recorded.json``; ``--case NAME`` re-records only those cases, ``--print`` shows the
answers without writing.
"""

from __future__ import annotations

import argparse
import json

from tests.compat.cases import CASES
from tests.compat.peer import RECORDED, cors_oracle, load_recorded, peer_target
from tests.compat.runner import run_case


def main() -> None:
    """Run the cases against the peer and store (or print) its normalised answers."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--case", action="append", help="only this case (repeatable)")
    parser.add_argument("--print", action="store_true", help="print instead of writing recorded.json")
    args = parser.parse_args()
    peer = peer_target()
    if peer is None:
        raise SystemExit("set BACKSTAGE_PEER_URL and BACKSTAGE_PEER_TOKEN")
    recorded = load_recorded()
    with cors_oracle() as oracle:
        targets = {"peer": peer, "cors-oracle": oracle}
        for case in CASES:
            if args.case and case.name not in args.case:
                continue
            recorded[case.name] = run_case(case, targets[case.recorded_from])
            if args.print:
                print(case.name, json.dumps(recorded[case.name], ensure_ascii=False))
    if not args.print:
        known = {case.name for case in CASES}
        ordered = {name: recorded[name] for name in sorted(recorded) if name in known}
        RECORDED.write_text(json.dumps(ordered, indent=1, ensure_ascii=False, sort_keys=True) + "\n")
        print(f"wrote {len(ordered)} cases to {RECORDED}")


if __name__ == "__main__":
    main()
