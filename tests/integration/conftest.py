"""The integration tier: real PostgreSQL, real HTTP, S3 over HTTP (a moto server).

PostgreSQL is found through ``CUSTOMER_FEED_TEST_PG`` (default the local server,
``postgresql://postgres@127.0.0.1:5432/test``). A test that needs it and cannot reach it fails
with a message saying so; it is never skipped.

Here ``warehouse`` is a fresh PostgreSQL database and ``staging_root`` an S3 bucket: the
``*_postgres.py`` and ``*_s3.py`` modules run the unit tier's warehouse and staging tests again
on them.
"""

from __future__ import annotations

import os
import uuid

import pytest

from include.warehouse import Warehouse

PG_ADMIN_URL = os.environ.get("CUSTOMER_FEED_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_connect(url: str):
    import psycopg2

    try:
        return psycopg2.connect(url, connect_timeout=5)
    except psycopg2.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {url.split('@')[-1]} ({exc}). Start it, or point "
            "CUSTOMER_FEED_TEST_PG at one (make test starts a throwaway cluster when the "
            "PostgreSQL server binaries are installed).",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def pg_database():
    """A fresh database on the test server for this session, dropped afterwards."""
    admin = _pg_connect(PG_ADMIN_URL)
    admin.autocommit = True
    name = f"customer_feed_test_{uuid.uuid4().hex[:10]}"
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.close()


@pytest.fixture
def warehouse(pg_database):
    wh = Warehouse(pg_database)
    wh.drop_all()
    wh.create_schema()
    yield wh
    wh.close()


@pytest.fixture(scope="session")
def s3_endpoint():
    """An S3 endpoint over real HTTP (moto's server), for staging on object storage. s3fs finds
    it the way a deployment points at MinIO or another S3-compatible store: AWS_ENDPOINT_URL_S3."""
    from moto.server import ThreadedMotoServer

    from scripts.local_stack import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    settings = {
        "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    saved = {k: os.environ.get(k) for k in settings}
    os.environ.update(settings)
    yield settings["AWS_ENDPOINT_URL_S3"]
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    server.stop()


@pytest.fixture
def staging_root(s3_endpoint):
    """A staging root in an S3 bucket of its own."""
    import s3fs

    bucket = f"staging-{uuid.uuid4().hex[:10]}"
    s3fs.S3FileSystem(skip_instance_cache=True).mkdir(bucket)
    return f"s3://{bucket}/customer-feed"
