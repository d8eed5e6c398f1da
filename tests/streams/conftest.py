from tests.streams.servers import seller, stream_server, streams_redis  # noqa: F401 - fixtures
from tests.trading.conftest import alice, market  # noqa: F401 - the trading tests' fixtures, shared
