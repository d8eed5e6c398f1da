"""Channel-layer group names: one per (channel, market), one per account for the ``user`` channel."""

PUBLIC_CHANNELS = ("heartbeat", "level2", "matches", "ticker")
USER = "user"
CHANNELS = PUBLIC_CHANNELS + (USER,)


def market_group(channel: str, market_id: int) -> str:
    return f"{channel}.{market_id}"


def user_group(account_id: int) -> str:
    return f"user.{account_id}"
