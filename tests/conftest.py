"""Session-wide real servers for the integration and fault tests.

`SLUICE_TEST_BACKEND` picks them:

* `local`: moto server (AWS) and osmem-server (OpenSearch) as child processes. Starts in under a
  second, needs no Docker, and lets fault tests stop, pause and restart each server by pid.
* `docker`: LocalStack and OpenSearch 2 containers (testcontainers). Closer to the real services but
  ~30 s to start; `moto_server`, `osmem` and the `private_*` fixtures skip there.
* `auto` (the default): `docker` if `docker info` succeeds, else `local`.

Nothing here starts before a test asks for it, so unit-only runs pay nothing.

What moto server (5.2) does that real AWS does not, found by trying it (tests/integration/test_servers.py
pins the ones the worker relies on):

* Notification keys are `urllib.parse.quote_plus(key)` with NO safe characters: `/` arrives as `%2F`
  (real S3 leaves `/` alone), a space as `+`, a `+` as `%2B`. `unquote_plus` undoes both forms.
* `put_bucket_notification_configuration` synchronously enqueues one
  `{"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": ...}` message (no `Records` key), as AWS
  does; `s3_queue` drains it.
* Records carry only eventVersion 2.1, eventSource, awsRegion, eventTime, eventName and
  s3.{bucket.name/arn, object.key/size/eTag}: no `sequencer`, `versionId`, `userIdentity`,
  `requestParameters` or `responseElements`.
* Completing a multipart upload sends TWO records for the same key: `ObjectCreated:Put` and then
  `ObjectCreated:CompleteMultipartUpload` (CopyObject sends one `ObjectCreated:Copy`). The worker must
  be idempotent anyway (SQS is at-least-once), and this makes moto exercise it.
* Prefix/suffix `Filter` rules on the notification are honoured.
* The redrive to the DLQ happens on the receive AFTER the maxReceiveCount-th: with maxReceiveCount=5,
  five receives return the message, the sixth returns nothing and the message is in the DLQ, where its
  ApproximateReceiveCount reads maxReceiveCount + 1.
* Deleting with a stale receipt handle (the message was received again since) succeeds AND deletes the
  message; AWS may leave it in the queue. DeleteMessageBatch reports a garbage handle per entry in
  `Failed` (`ReceiptHandleIsInvalid`, SenderFault) with HTTP 200; ChangeMessageVisibility with a garbage
  handle raises `ReceiptHandleIsInvalid`.
* ChangeMessageVisibility(0) makes the message receivable at once; VisibilityTimeout expiry works to
  the second; a long poll (WaitTimeSeconds) returns as soon as a message is sent, else after the full wait.
* MaxNumberOfMessages > 10 is rejected (InvalidParameterValue), as on AWS.
* Every response carries `Connection: close` (werkzeug): no keep-alive, each call is a new TCP
  connection, so connection-pool behaviour is not representative.
* Account id is 123456789012 (LocalStack uses 000000000000); queue URLs are
  `http://127.0.0.1:PORT/123456789012/NAME`, built from the request's Host.
* Terminating the server mid long-poll gives the client `EndpointConnectionError` (not a read timeout).
* State is in memory only: a restart comes back with no buckets or queues. `MotoServer.pause()` (SIGSTOP)
  fakes an outage that keeps the state.

What osmem-server (0.1.6) does:

* Reports itself as OpenSearch 3.8.0 and sends `X-Elastic-Product: Elasticsearch` on every response.
* `_bulk` answers exactly like OpenSearch: HTTP 200 with `errors: true` and per-item `status`; a duplicate
  `create` is 409 `version_conflict_engine_exception`; a mapping clash or bad JSON source is a 400
  `mapper_parsing_exception` item; a body without a final newline is a whole-request 400. `_shards.total`
  is 2 (a phantom replica), cluster health is yellow. `filter_path` works.
* It accepts `Content-Encoding: gzip` request bodies (so opensearch-py's `http_compress=True` works) and
  never compresses responses. It keeps connections alive.
* It indexes ~2.5-3k docs/s here (a 5k-doc bulk takes ~2 s): keep test volumes in the hundreds.
* A restart on the same port is immediate (~20 ms) and empty. `--parent-pid` makes it exit ~2 s after
  the test process dies, so an interrupted run leaves nothing behind.
* The osmem_server wheel also registers a pytest plugin with `osmem_server`/`osmem_clone`/`osmem_url`
  fixtures (Japanese analysis on, slower start); use `opensearch_url`/`osmem` from here instead.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

from worker.local_servers import AWS_REGION, DUMMY_AWS_ENV, MotoServer, OsmemProcess, free_port

Backend = Literal["local", "docker"]

_TESTS = Path(__file__).resolve().parent
_INTEGRATION_DIRS = (_TESTS / "integration", _TESTS / "faults")

# Pinned, so a new LocalStack release (newer ones may demand an auth token) cannot change the results.
LOCALSTACK_IMAGE = os.environ.get("SLUICE_LOCALSTACK_IMAGE", "localstack/localstack:4.0")
OPENSEARCH_IMAGE = os.environ.get("SLUICE_OPENSEARCH_IMAGE", "opensearchproject/opensearch:2")

DLQ_MAX_RECEIVE_COUNT = 5


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark by location, so `-m "not integration"` works without every test file remembering to."""
    for item in items:
        path = Path(item.path)
        if any(path.is_relative_to(d) for d in _INTEGRATION_DIRS):
            item.add_marker(pytest.mark.integration)
        if path.is_relative_to(_TESTS / "faults"):
            item.add_marker(pytest.mark.faults)


# -- backend choice -----------------------------------------------------------------------------------


@functools.cache
def _docker_problem() -> str | None:
    """Why Docker cannot be used, or None; `docker info` is the only reliable "is an engine there"."""
    if shutil.which("docker") is None:
        return "no docker CLI on PATH"
    try:
        proc = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=15, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"`docker info` failed: {e}"
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return f"`docker info` exited {proc.returncode}: {last}"
    return None


@pytest.fixture(scope="session")
def backend_kind() -> Backend:
    """`local` or `docker`, from SLUICE_TEST_BACKEND; explicit `docker` without an engine skips."""
    wanted = os.environ.get("SLUICE_TEST_BACKEND", "auto").strip().lower() or "auto"
    if wanted == "local":
        return "local"
    if wanted == "docker":
        problem = _docker_problem()
        if problem is not None:
            pytest.skip(f"SLUICE_TEST_BACKEND=docker but Docker is unusable: {problem}")
        return "docker"
    if wanted == "auto":
        return "docker" if _docker_problem() is None else "local"
    raise pytest.UsageError(f"SLUICE_TEST_BACKEND={wanted!r}: expected local, docker or auto")


# -- local processes ----------------------------------------------------------------------------------

# Every session server, so a test that stopped or paused one and then failed before bringing it back
# does not take every later test down with it (see _revive_session_servers).
_SESSION_SERVERS: list[MotoServer | OsmemProcess] = []


@pytest.fixture(scope="session")
def moto_server(backend_kind: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """The session's moto server; tests may stop/pause/restart it (state is lost on restart)."""
    if backend_kind != "local":
        pytest.skip("moto_server exists only with SLUICE_TEST_BACKEND=local")
    server = MotoServer(log_dir=tmp_path_factory.mktemp("moto"))
    _SESSION_SERVERS.append(server)
    try:
        yield server
    finally:
        _SESSION_SERVERS.remove(server)
        server.close()


@pytest.fixture(scope="session")
def osmem(backend_kind: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OsmemProcess]:
    """The session's osmem-server; a test that stops it must restart it (it comes back empty)."""
    if backend_kind != "local":
        pytest.skip("osmem exists only with SLUICE_TEST_BACKEND=local")
    server = OsmemProcess(log_dir=tmp_path_factory.mktemp("osmem"))
    _SESSION_SERVERS.append(server)
    try:
        yield server
    finally:
        _SESSION_SERVERS.remove(server)
        server.close()


@pytest.fixture(autouse=True)
def _revive_session_servers() -> Iterator[None]:
    yield
    for server in list(_SESSION_SERVERS):
        server.resume()
        if not server.running:
            server.start()


@pytest.fixture(scope="session")
def kinesis_local(backend_kind: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """kinesis-mock (npm `kinesis-local`), for resharding: moto keeps writing to a closed parent shard.

    Skipped when `npm ci --prefix tools/kinesis-local` has not been run, except under CI, where a missing
    install is a failure (the Makefile installs it).
    """
    from tests.kinesis_local import KinesisLocal, KinesisLocalMissing

    try:
        # 0.3 s in CREATING/UPDATING: long enough to see on a loaded machine, short enough to be cheap.
        server = KinesisLocal(delay=0.3, log_dir=Path(tmp_path_factory.mktemp("kinesis-local")))
    except KinesisLocalMissing as e:
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false"):
            pytest.fail(str(e))
        pytest.skip(str(e))
    with server:
        yield server


@pytest.fixture
def private_opensearch(backend_kind: Backend, tmp_path: Path) -> Iterator[OsmemProcess]:
    """An osmem for one test alone (~20 ms to start), to stop, pause or kill without hurting others."""
    if backend_kind != "local":
        pytest.skip("private_opensearch exists only with SLUICE_TEST_BACKEND=local")
    with OsmemProcess(log_dir=tmp_path / "osmem") as server:
        yield server


@pytest.fixture
def private_moto(backend_kind: Backend, tmp_path: Path) -> Iterator[MotoServer]:
    """A moto server for one test alone (~0.6 s to start), for S3/SQS outages that must not leak."""
    if backend_kind != "local":
        pytest.skip("private_moto exists only with SLUICE_TEST_BACKEND=local")
    with MotoServer(log_dir=tmp_path / "moto") as server:
        yield server


# -- containers ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _localstack_url() -> Iterator[str]:
    from testcontainers.localstack import LocalStackContainer

    # The queue URLs LocalStack hands out must point at the port mapped on this side, or a client that
    # follows a QueueUrl goes to the container's 4566; so bind a known host port and advertise it.
    port = free_port()
    container = (
        LocalStackContainer(image=LOCALSTACK_IMAGE, region_name=AWS_REGION)
        .with_services("s3", "sqs", "sts", "kinesis", "dynamodb", "logs")
        .with_bind_ports(4566, port)
        .with_env("SQS_ENDPOINT_STRATEGY", "path")
        .with_env("LOCALSTACK_HOST", f"127.0.0.1:{port}")
    )
    container.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        container.stop()


@pytest.fixture(scope="session")
def _opensearch_container_url() -> Iterator[str]:
    from testcontainers.opensearch import OpenSearchContainer

    container = (
        OpenSearchContainer(image=OPENSEARCH_IMAGE, security_enabled=False)
        # Tag "2" is >= 2.12, whose demo-config installer refuses to run without an admin password even
        # with the security plugin off; skip the installer and cap the heap for CI machines.
        .with_env("DISABLE_INSTALL_DEMO_CONFIG", "true")
        .with_env("OPENSEARCH_JAVA_OPTS", "-Xms512m -Xmx512m")
    )
    container.start()
    try:
        cfg = container.get_config()
        yield f"http://{cfg['host']}:{cfg['port']}"
    finally:
        container.stop()


# -- the fixtures tests use ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def aws_endpoint(backend_kind: Backend, request: pytest.FixtureRequest) -> Iterator[str]:
    """The AWS emulator's endpoint URL; dummy credentials and us-east-1 are in the environment meanwhile."""
    if backend_kind == "local":
        url = request.getfixturevalue("moto_server").endpoint_url
    else:
        url = request.getfixturevalue("_localstack_url")
    with pytest.MonkeyPatch.context() as mp:
        for name, value in DUMMY_AWS_ENV.items():
            mp.setenv(name, value)
        # A developer's profile or session token would otherwise win over the dummy keys.
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL"):
            mp.delenv(name, raising=False)
        yield str(url)


@pytest.fixture(scope="session")
def opensearch_url(backend_kind: Backend, request: pytest.FixtureRequest) -> str:
    if backend_kind == "local":
        return str(request.getfixturevalue("osmem").url)
    return str(request.getfixturevalue("_opensearch_container_url"))


@dataclass
class Boto:
    """boto3 clients bound to the emulator; cached per service, as boto3 clients are thread-safe."""

    endpoint_url: str
    region: str = AWS_REGION
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            import boto3
            from botocore.config import Config

            self._clients[service] = boto3.client(
                service,
                endpoint_url=self.endpoint_url,
                region_name=self.region,
                aws_access_key_id=DUMMY_AWS_ENV["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=DUMMY_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
                # Fail fast: a test helper that retries for a minute hides a dead server.
                config=Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=5),
            )
        return self._clients[service]


@pytest.fixture(scope="session")
def boto(aws_endpoint: str) -> Boto:
    return Boto(aws_endpoint)


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    """Names valid for buckets, queues and indices alike (lowercase, [a-z0-9-], <= 63 chars)."""

    def make(prefix: str = "t") -> str:
        clean = "".join(c if c.isalnum() else "-" for c in prefix.lower()).strip("-") or "t"
        return f"{clean[:40]}-{uuid.uuid4().hex[:16]}"

    return make


def queue_arn(sqs: Any, queue_url: str) -> str:
    arn: str = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return arn


@dataclass(frozen=True)
class S3Queue:
    bucket: str
    queue_url: str
    queue_arn: str
    dlq_url: str
    dlq_arn: str
    max_receive_count: int = DLQ_MAX_RECEIVE_COUNT


@dataclass(frozen=True)
class Backup:
    bucket: str
    replay_queue_url: str
    replay_queue_arn: str


def _drain_test_event(sqs: Any, queue_url: str, bucket: str, timeout: float = 10.0) -> None:
    """Remove the s3:TestEvent that configuring a notification sends, so tests see only their records."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        resp = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for msg in resp.get("Messages", []):
            body = json.loads(msg["Body"])
            if body.get("Event") != "s3:TestEvent":
                raise AssertionError(f"unexpected message before any upload to {bucket}: {msg['Body']}")
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=msg["ReceiptHandle"])
            return
    raise AssertionError(f"no s3:TestEvent arrived for {bucket} within {timeout} s")


@pytest.fixture
def s3_queue(boto: Boto, unique_name: Callable[[str], str]) -> S3Queue:
    """A bucket whose ObjectCreated events go to a queue with a DLQ, as in production (AWS wiring)."""
    s3, sqs = boto.client("s3"), boto.client("sqs")
    name = unique_name("logs")
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = queue_arn(sqs, dlq_url)
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(DLQ_MAX_RECEIVE_COUNT)}
    queue_url = sqs.create_queue(
        QueueName=name, Attributes={"RedrivePolicy": json.dumps(redrive), "VisibilityTimeout": "30"}
    )["QueueUrl"]
    arn = queue_arn(sqs, queue_url)
    s3.create_bucket(Bucket=name)
    s3.put_bucket_notification_configuration(
        Bucket=name,
        NotificationConfiguration={"QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]},
    )
    _drain_test_event(sqs, queue_url, name)
    return S3Queue(bucket=name, queue_url=queue_url, queue_arn=arn, dlq_url=dlq_url, dlq_arn=dlq_arn)


@pytest.fixture
def backup(boto: Boto, unique_name: Callable[[str], str]) -> Backup:
    """Where the worker writes what OpenSearch refused, and the queue a replay is driven from."""
    s3, sqs = boto.client("s3"), boto.client("sqs")
    bucket = unique_name("backup")
    s3.create_bucket(Bucket=bucket)
    url = sqs.create_queue(QueueName=unique_name("replay"))["QueueUrl"]
    return Backup(bucket=bucket, replay_queue_url=url, replay_queue_arn=queue_arn(sqs, url))
