"""`sluice bench`: end-to-end throughput per log type, measured next to a reference ceiling in the same run.

`objects` generates the inputs, `stub` is the bulk endpoint that accepts everything, `aws_stub` an in-memory
S3 + SQS server (far cheaper per request than moto), `reference` the fused minimal loop, `parse_only` Sluice's
parsers alone, `runner` the phases and `report` the output; docs/performance.md tells how to run it and how to
read it. This module stays import-light: the CLI builds its parser from it.
"""

from __future__ import annotations

import argparse

BENCH_TYPES: tuple[str, ...] = ("vpc_flow", "alb", "s3_access", "cloudtrail")
"""The log types `sluice bench` generates and has a reference loop for."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The `sluice bench` options (kept here so that the command line in worker/__main__.py stays one call)."""
    p.add_argument("--types", nargs="+", choices=BENCH_TYPES, default=None,
                   help=f"log types to generate (default: {' '.join(BENCH_TYPES)})")
    p.add_argument("--mb", type=float, default=None, help="uncompressed MB generated per type (default 64, --quick 8)")
    p.add_argument("--object-mb", type=float, default=None,
                   help="uncompressed MB per object (default 8, --quick 2)")
    p.add_argument("--quick", action="store_true", help="a smaller run (~8 MB per type, fewer latency samples)")
    p.add_argument("--runs", type=int, default=1, help="repeat the throughput phases; medians are reported")
    p.add_argument("--files", nargs="+", metavar="[TYPE=]PATH", default=None,
                   help="measure these files instead of generated objects (type detected from the content "
                        f"unless given; one of {', '.join(BENCH_TYPES)})")
    p.add_argument("--aws", choices=("moto", "stub"), default="moto",
                   help="what serves S3 and SQS to the throughput phases: moto server (default) or `stub`, the "
                        "in-memory server of worker/bench/aws_stub.py (far less CPU per request)")
    p.add_argument("--aws-endpoint", default=None, help="use this S3/SQS endpoint instead of starting one (--aws)")
    p.add_argument("--bulk-url", default=None,
                   help="use this bulk stub (`python -m worker.bench.stub`) instead of starting one")
    p.add_argument("--latency-objects", type=int, default=None,
                   help="small objects per type for the latency phase (default 10, --quick 4; 0 skips it)")
    p.add_argument("--latency-rate", type=float, default=4.0, help="latency phase uploads per second (default 4)")
    p.add_argument("--latency-kb", type=float, default=64.0, help="uncompressed KB per latency object (default 64)")
    p.add_argument("--small-objects", type=int, default=None, metavar="N",
                   help="objects in the small-objects phase, always against the AWS stub (default 1000, --quick "
                        "200; 0 skips it)")
    p.add_argument("--small-kb", type=float, default=20.0,
                   help="uncompressed KB per object of the small-objects phase (default 20)")
    p.add_argument("--small-type", choices=BENCH_TYPES, default="alb",
                   help="log type of the small-objects phase (default alb)")
    p.add_argument("--worker-config", action="append", default=None, metavar="KEY=VALUE",
                   help="set a worker setting for every phase (dotted key into the worker's config, YAML value; "
                        "the source is `sources.bench`), e.g. sources.bench.max_in_flight=2; repeatable")
    p.add_argument("--no-compress", action="store_true",
                   help="bulk bodies uncompressed, for the worker and the reference (default: gzip, the worker's "
                        "default)")
    p.add_argument("--seed", type=int, default=1, help="generator seed (same seed, same objects)")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds one phase may take before giving up")
    p.add_argument("--json", default=None, metavar="FILE", help="also write every figure to FILE as JSON")
    p.add_argument("--min-ratio", type=float, default=None,
                   help="exit 1 when a type's sluice/reference ratio is below this (default: always exit 0)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.add_argument("--scaling", type=int, default=0, metavar="N",
                   help="also run each type once with `sluice run --processes N` and report its MB/s against the "
                        "one-process median (the multi-core scaling)")
    p.add_argument("--profile", default=None, metavar="DIR",
                   help="record each end-to-end phase with py-spy into DIR and print where the time went")
