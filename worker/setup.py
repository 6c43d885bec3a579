"""`sluice setup`: install what OpenSearch needs before the first document (index templates)."""

from __future__ import annotations

from worker.config import Config
from worker.sinks.templates import index_templates


async def setup(cfg: Config) -> int:
    from worker.sinks.opensearch import build_client

    client = build_client(cfg.opensearch, cfg.aws.region)
    try:
        for name, body in index_templates(cfg.opensearch).items():
            await client.indices.put_index_template(name=name, body=body)
            print(f"index template {name}: installed ({', '.join(body['index_patterns'])})")
    finally:
        await client.close()
    return 0
