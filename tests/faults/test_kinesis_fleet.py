"""Three `sluice run` processes share a 4-shard stream; one is killed with SIGKILL mid-stream.

- Leases spread: every shard is held, by three workers, none holding more than 2.
- The killed worker's shards are taken over by the others within the lease timeout (plus one take round).
- Every record written before, during and after the kill is indexed exactly once: the set of `_id`s equals the
  ids derived independently from what PutRecord returned (stream, shard, sequence number), and no id is there
  twice.
- The survivors stop cleanly on SIGTERM (exit 0) and release their leases.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import yaml

from tests.kinesis_support import create_stream, kinesis_config, leases
from tests.support import all_ids, os_client
from worker.model import Origin
from worker.samples import vpc_flow_lines

SLUICE = Path(sys.executable).with_name("sluice")
LEASE_DURATION = 4.0
SHARDS = 4
WORKERS = 3


def _spawn(cfg_file: Path, log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen([str(SLUICE), "run", "--config", str(cfg_file)], stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))


def _worker_id(log_path: Path) -> str | None:
    for raw in log_path.read_bytes().splitlines():
        if b'"kinesis_source_started"' in raw:
            return str(orjson.loads(raw)["worker_id"])
    return None


class Writer(threading.Thread):
    """Puts one VPC flow line per record, round-robin over 16 partition keys, at about `rate` records/s."""

    def __init__(self, kinesis: Any, stream: str, rate: float) -> None:
        super().__init__(daemon=True)
        self.kinesis, self.stream, self.rate = kinesis, stream, rate
        self.lines = iter(list(vpc_flow_lines(100_000, seed=44))[1:])
        self.written: list[tuple[str, str]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        i = 0
        while not self.halt.is_set():
            resp = self.kinesis.put_record(StreamName=self.stream, PartitionKey=f"pk-{i % 16}",
                                           Data=next(self.lines).encode())
            self.written.append((resp["ShardId"], resp["SequenceNumber"]))
            i += 1
            time.sleep(1 / self.rate)


async def _until(predicate: Any, timeout: float, what: str, logs: list[Path]) -> float:
    started = time.monotonic()
    while not await asyncio.to_thread(predicate):
        if time.monotonic() - started > timeout:
            tails = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}" for p in logs)
            raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{tails}")
        await asyncio.sleep(0.25)
    return time.monotonic() - started


async def test_three_workers_share_four_shards_and_survive_a_kill(
        tmp_path: Path, aws_endpoint: str, opensearch_url: str, boto: Any, backup: Any, unique_name: Any) -> None:
    kinesis, ddb = boto.client("kinesis"), boto.client("dynamodb")
    client = os_client(opensearch_url)
    stream, table, prefix = unique_name("fleet"), unique_name("fleet-leases"), unique_name("fleet")
    create_stream(kinesis, stream, SHARDS)
    cfg = kinesis_config(aws_endpoint=aws_endpoint, opensearch_url=opensearch_url, backup=backup, prefix=prefix,
                         stream=stream, lease_table=table, log_type="vpc_flow", lease_duration=LEASE_DURATION,
                         checkpoint_interval=1.0)
    cfg_file = tmp_path / "sluice.yaml"
    data = cfg.model_dump(mode="json")
    data["worker"]["shutdown_grace"] = 8
    cfg_file.write_text(yaml.safe_dump(data))

    writer = Writer(kinesis, stream, rate=40)
    writer.start()
    logs = [tmp_path / f"worker-{i}.log" for i in range(WORKERS)]
    procs = []
    try:
        for log_path in logs:
            procs.append(_spawn(cfg_file, log_path))
            await asyncio.sleep(1.0)  # staggered, as a fleet scales out: later workers must steal to balance

        def spread() -> bool:
            owners = Counter(lease["owner"] for lease in leases(ddb, table).values())
            return None not in owners and len(owners) == WORKERS and max(owners.values()) <= 2

        await _until(spread, 60, "leases spread over three workers", logs)
        owners = Counter(lease["owner"] for lease in leases(ddb, table).values())
        print(f"\nleases per worker: {sorted(owners.values())}", file=sys.stderr)
        assert sum(owners.values()) == SHARDS

        await asyncio.sleep(2.0)  # reading under way on every shard
        victim_id = _worker_id(logs[0])
        assert victim_id is not None
        victim_shards = {shard for shard, lease in leases(ddb, table).items() if lease["owner"] == victim_id}
        assert victim_shards, "the first worker holds no lease"
        os.kill(procs[0].pid, signal.SIGKILL)
        procs[0].wait()

        def taken_over() -> bool:
            now = leases(ddb, table)
            return all(now[s]["owner"] not in (None, victim_id) for s in victim_shards)

        took = await _until(taken_over, 60, "the killed worker's shards taken over", logs[1:])
        print(f"killed worker's {len(victim_shards)} shard(s) taken over after {took:.1f} s "
              f"(lease duration {LEASE_DURATION} s)", file=sys.stderr)
        assert took <= LEASE_DURATION * 3  # about 1.25 x L when the machine is idle; slack for a loaded CI
        survivors = Counter(lease["owner"] for lease in leases(ddb, table).values())
        assert victim_id not in survivors and sum(survivors.values()) == SHARDS

        await asyncio.sleep(3.0)  # records keep coming after the takeover
    except BaseException:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        raise
    finally:
        writer.halt.set()
        writer.join()
    written = list(writer.written)
    expected = {Origin("stream", "kinesis", key=f"{stream}/{shard}", version=seq).id_prefix() + ".0"
                for shard, seq in written}
    assert len(expected) == len(written)
    try:
        await _until(lambda: len(all_ids(client, prefix)) >= len(written), 90, "every record indexed", logs[1:])
        await asyncio.sleep(2.0)  # anything doubled would show up now
        ids = all_ids(client, prefix)
        doubled = [i for i, n in Counter(ids).items() if n > 1]
        assert not doubled, f"{len(doubled)} ids indexed twice"
        assert set(ids) == expected, (len(set(ids) - expected), len(expected - set(ids)))
        print(f"{len(written)} records, {len(ids)} documents, 0 duplicates", file=sys.stderr)
    finally:
        for proc in procs[1:]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        try:
            codes = [proc.wait(timeout=30) for proc in procs[1:]]
        finally:
            for proc in procs[1:]:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    assert codes == [0, 0], [p.read_text(errors="replace")[-2000:] for p in logs[1:]]
    final = leases(ddb, table)
    assert all(lease["owner"] is None for lease in final.values()), final
    assert all(lease["checkpoint"].isdigit() for lease in final.values()), final
