"""Real boto3 clients for the stand-in, with made-up credentials."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from spanledger.standin import StandIn

REGION = "us-east-1"


def aws_session() -> boto3.session.Session:
    """A session with made-up credentials: the stand-in checks no signature."""
    return boto3.session.Session(
        aws_access_key_id="AKIDSTANDIN", aws_secret_access_key="standin-secret", region_name=REGION
    )


def bedrock_client(llm: StandIn, service: str = "bedrock-runtime") -> Any:
    """A client for the stand-in that does not retry (a queued error answers one request)."""
    return aws_session().client(
        service, endpoint_url=llm.url, config=Config(retries={"total_max_attempts": 1})
    )
