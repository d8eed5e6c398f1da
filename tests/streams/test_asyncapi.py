"""The AsyncAPI document (docs/asyncapi.yaml) names what the server has: its channels and its error codes."""

from pathlib import Path

import yaml

from streams.errors import Code
from streams.groups import CHANNELS

DOC = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.yaml"


def test_the_asyncapi_document_lists_the_server_channels_and_error_codes():
    doc = yaml.safe_load(DOC.read_text())
    assert doc["asyncapi"].startswith("3.")
    assert set(doc["components"]["schemas"]["channelName"]["enum"]) == set(CHANNELS)
    codes = doc["components"]["messages"]["error"]["payload"]["properties"]["code"]["enum"]
    assert set(codes) == {member.value for member in Code}
