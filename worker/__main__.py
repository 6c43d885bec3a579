"""`sluice` command line: run | demo | parse | check-config | setup | replay | backfill | import-esf | athena-ddl |
compact | bench."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from worker.config import ConfigError, load_config, redacted
from worker.supervisor import processes_arg


def _cmd_run(args: argparse.Namespace) -> int:
    from worker import supervisor

    cfg = load_config(args.config)
    if supervisor.is_child():
        cfg = supervisor.prepare_child(cfg)
    elif args.processes > 1:
        return supervisor.run_supervisor(args.config, cfg, args.processes)

    from worker.app import run_worker
    from worker.telemetry import configure_logging

    configure_logging(cfg.telemetry.log_level, cfg.telemetry.log_format)
    run_worker(cfg)
    return 0


def _cmd_check_config(args: argparse.Namespace) -> int:
    import yaml

    cfg = load_config(args.config)
    print(f"{args.config}: OK ({len(cfg.sources)} source(s): {', '.join(cfg.sources)})")
    if args.show:
        print(yaml.safe_dump(redacted(cfg), sort_keys=False))
    return 0


def _cmd_parse(args: argparse.Namespace) -> int:
    from worker.cli_parse import parse_files

    return parse_files(args.files, args.type, keep_original=args.keep_original,
                       options=dict(o.split("=", 1) for o in args.option))


def _cmd_setup(args: argparse.Namespace) -> int:
    import asyncio

    from worker.setup import setup

    cfg = load_config(args.config)
    return asyncio.run(setup(cfg))


def _cmd_demo(args: argparse.Namespace) -> int:
    from worker.demo import run_demo

    return run_demo(aws_endpoint=args.aws_endpoint, opensearch_url=args.opensearch_url, corpus=args.corpus)


def _cmd_replay(args: argparse.Namespace) -> int:
    from worker.replay import run_replay

    return run_replay(load_config(args.config), args)


def _cmd_backfill(args: argparse.Namespace) -> int:
    from worker.backfill import run_backfill

    return run_backfill(load_config(args.config), args)


def _cmd_import_esf(args: argparse.Namespace) -> int:
    from worker.import_esf import run_import

    return run_import(args.config, args.output, keep_index_names=not args.sluice_index_names)


def _cmd_bench(args: argparse.Namespace) -> int:
    from worker.bench.runner import main as bench_main

    return bench_main(args)


def _cmd_athena_ddl(args: argparse.Namespace) -> int:
    from worker.athena import run_athena_ddl

    return run_athena_ddl(load_config(args.config) if args.config else None, args)


def _cmd_compact(args: argparse.Namespace) -> int:
    from worker.compaction import run_compact

    return run_compact(load_config(args.config), args)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sluice", description="Move AWS service logs into OpenSearch.")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the worker")
    run.add_argument("--config", "-c", required=True, help="YAML config file")
    run.add_argument("--processes", type=processes_arg, default=1, metavar="N|auto",
                     help="worker processes behind one supervisor and one /metrics (default 1: no supervisor; "
                          "auto or 0: one per available CPU)")
    run.set_defaults(func=_cmd_run)

    check = sub.add_parser("check-config", help="validate a config file; non-zero exit with the problems")
    check.add_argument("config")
    check.add_argument("--show", action="store_true", help="print the effective config, secrets redacted")
    check.set_defaults(func=_cmd_check_config)

    parse = sub.add_parser("parse", help="parse log files (gz or plain) and print documents as NDJSON")
    parse.add_argument("files", nargs="+")
    parse.add_argument("--type", "-t", default="auto", help="log type (default: detect from name and content)")
    parse.add_argument("--keep-original", action="store_true", help="keep event.original")
    parse.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                       help="parser option, e.g. format='version srcaddr ...' for VPC flow logs")
    parse.set_defaults(func=_cmd_parse)

    setup = sub.add_parser("setup", help="install index templates into OpenSearch")
    setup.add_argument("--config", "-c", required=True)
    setup.set_defaults(func=_cmd_setup)

    replay = sub.add_parser("replay", help="re-drive dead letters (re-parse raw lines, re-submit rejected documents)")
    replay.add_argument("--config", "-c", required=True)
    where = replay.add_mutually_exclusive_group()
    where.add_argument("--from-queue", action="store_true",
                       help="read pointer messages from the replay queue (default)")
    where.add_argument("--from-bucket", action="store_true",
                       help="list dead-letter objects in the backup bucket instead of reading the queue")
    replay.add_argument("--prefix", default="", help="with --from-bucket: key prefix under dead_letters.prefix")
    replay.add_argument("--since", default=None, help="with --from-bucket: objects written at or after (ISO 8601)")
    replay.add_argument("--until", default=None, help="with --from-bucket: objects written before (ISO 8601)")
    replay.add_argument("--dry-run", action="store_true", help="report what would be re-driven; change nothing")
    replay.add_argument("--rate", type=float, default=0.0, help="records per second at most (0: unlimited)")
    replay.add_argument("--max-attempts", type=int, default=3,
                        help="replays of a record before it is parked under poison/")
    replay.set_defaults(func=_cmd_replay)

    backfill = sub.add_parser("backfill", help="ingest objects that already exist under an S3 prefix")
    backfill.add_argument("--config", "-c", required=True)
    backfill.add_argument("url", help="s3://bucket/prefix")
    backfill.add_argument("--since", default=None, help="objects last modified at or after (ISO 8601)")
    backfill.add_argument("--until", default=None, help="objects last modified before (ISO 8601)")
    backfill.add_argument("--state", default=None,
                          help="file recording finished keys, so an interrupted backfill resumes "
                               "(default: .sluice-backfill-<bucket>-<hash of prefix>.state)")
    backfill.add_argument("--log-type", default="auto", help="log type of every object (default: route by key)")
    backfill.add_argument("--concurrency", type=int, default=8, help="objects read at once")
    backfill.set_defaults(func=_cmd_backfill)

    esf = sub.add_parser("import-esf", help="convert an Elastic Serverless Forwarder config.yaml into a Sluice "
                         "config (YAML on stdout, what did not map on stderr)")
    esf.add_argument("config", help="the ESF config.yaml")
    esf.add_argument("--output", "-o", default=None, help="write the Sluice config here instead of stdout")
    esf.add_argument("--sluice-index-names", action="store_true",
                     help="do not carry es_datastream_name over as the sources' index; use Sluice's index names")
    esf.set_defaults(func=_cmd_import_esf)

    demo = sub.add_parser("demo", help="start local servers, ingest sample logs end to end, print what landed")
    demo.add_argument("--aws-endpoint", default=None,
                      help="use this AWS endpoint (LocalStack, moto) instead of starting one (env SLUICE_AWS_ENDPOINT)")
    demo.add_argument("--opensearch-url", default=None,
                      help="use this OpenSearch instead of starting one (env SLUICE_OPENSEARCH_URL)")
    demo.add_argument("--corpus", default=None, help="folder of sample logs (default: ../shared/corpus if present)")
    demo.set_defaults(func=_cmd_demo)

    ddl = sub.add_parser("athena-ddl", help="print CREATE EXTERNAL TABLE statements (partition projection) for the "
                         "Parquet dataset, one per log type")
    ddl.add_argument("--config", "-c", default=None, help="YAML config file (its parquet section gives the location)")
    ddl.add_argument("--location", default=None, help="dataset root instead of the config's, e.g. s3://bucket/parquet/")
    ddl.add_argument("--log-type", action="append", default=[], help="only this log type (repeatable; default all)")
    ddl.add_argument("--database", default=None, help="qualify the table names with this Glue database")
    ddl.add_argument("--table-prefix", default="sluice_", help="table name prefix (default sluice_)")
    ddl.add_argument("--accounts", default=None,
                     help="comma-separated account ids: an enum projection (default: injected, name it in WHERE)")
    ddl.add_argument("--regions", default=None,
                     help="comma-separated regions: an enum projection (default: injected, name it in WHERE)")
    ddl.add_argument("--start-hour", default="2020010100", help="first event_hour of the projection (YYYYMMDDHH)")
    ddl.set_defaults(func=_cmd_athena_ddl)

    compact = sub.add_parser("compact", help="merge the small Parquet files of closed hours into large ones "
                             "(and drop duplicate rows); safe to interrupt and rerun")
    compact.add_argument("--config", "-c", required=True)
    compact.add_argument("--log-type", action="append", default=[], help="only this log type (repeatable)")
    compact.add_argument("--since", default=None, help="first event_hour to consider (YYYYMMDDHH)")
    compact.add_argument("--until", default=None, help="event_hour to stop before (YYYYMMDDHH)")
    compact.add_argument("--grace", type=float, default=2.0,
                         help="hours after its end before an hour counts as closed (default 2)")
    compact.add_argument("--small-bytes", type=int, default=None,
                         help="files under this size are small (default parquet.max_file_bytes / 4)")
    compact.add_argument("--dry-run", action="store_true", help="list the hours that would be compacted")
    compact.set_defaults(func=_cmd_compact)

    from worker.bench import add_arguments as bench_arguments

    bench = sub.add_parser("bench", help="end-to-end throughput per log type against local servers and a bulk stub, "
                           "next to a minimal reference loop measured in the same run (docs/performance.md)")
    bench_arguments(bench)
    bench.set_defaults(func=_cmd_bench)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"configuration error:\n{exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
