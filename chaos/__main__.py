"""``python -m chaos run|check``: a fault-injection run against an ordersctl stack, or the check of one.

Example: python -m chaos run --out chaos/out/run1 --seed 7 --count 50000 --per-kind 1 --recreate-db
         python -m chaos run --out chaos/out/citus1 --pg citus --count 20000 --per-kind 1 --short --recreate-db \
             --dsn postgresql://ordersctl:ordersctl@127.0.0.1:55431/orders_chaos
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from chaos.checker import check
from chaos.controls import Controls
from chaos.faults import PG_FAULTS, Timing
from chaos.harness import Options, Run
from chaos.report import human, write
from chaos.run_files import RunFiles


def _check(folder: Path, as_json: bool) -> int:
    files = RunFiles(folder)
    summary = write(files, check(files))
    print(json.dumps(summary, indent=2) if as_json else human(summary))
    if summary["timeline"]:
        print(f"timeline: {summary['timeline']}", file=sys.stderr)
    return 0 if summary["ok"] else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="produce, consume and serve under faults, then check")
    run.add_argument("--out", type=Path, required=True, help="folder for the run's files and report")
    run.add_argument("--seed", type=int, default=1)
    run.add_argument("--count", type=int, default=1_000_000, help="messages to produce (valid + poison)")
    run.add_argument("--per-kind", type=int, default=30, help="faults of every kind")
    run.add_argument("--dsn", default=Options.dsn, help="PostgreSQL (with --pg citus: the coordinator)")
    run.add_argument("--pg", choices=sorted(PG_FAULTS), default="plain",
                     help="the PostgreSQL behind --dsn; it decides the PostgreSQL faults")  # fmt: skip
    run.add_argument("--bootstrap", default=Options.bootstrap)
    run.add_argument("--redis", default=Options.redis, help="the API's Redis cache")
    run.add_argument("--prefix", default="chaos", help="topic and group name prefix")
    run.add_argument("--partitions", type=int, default=6)
    run.add_argument("--port", type=int, default=18181, help="port of the API server under read load")
    run.add_argument("--recreate-db", action="store_true",
                     help="drop and create the DSN's database and the prefix's topics first")  # fmt: skip
    run.add_argument("--controls", type=Path, help="JSON file of commands that act on the stack")
    run.add_argument("--short", action="store_true", help="shorter fault durations (the test-suite form)")
    run.add_argument("--json", action="store_true", help="the report as JSON on stdout")
    chk = sub.add_parser("check", help="check a finished run's folder again")
    chk.add_argument("folder", type=Path)
    chk.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "check":
        return _check(args.folder, args.json)
    timing = (Timing(broker_down=8, broker_pause=15, pg_down=3, redis_down=4, host_down=5, partition=(8, 15))
              if args.short else Timing())  # fmt: skip
    opts = Options(out=args.out, seed=args.seed, count=args.count, per_kind=args.per_kind, dsn=args.dsn,
                   bootstrap=args.bootstrap, redis=args.redis, prefix=args.prefix, partitions=args.partitions,
                   port=args.port, recreate_db=args.recreate_db, pg=args.pg, timing=timing,
                   controls=Controls.load(args.controls))  # fmt: skip
    Run(opts).execute()
    return _check(args.out, args.json)


if __name__ == "__main__":
    sys.exit(main())
