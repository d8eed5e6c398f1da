"""Reference data every installation has: the assets traded and the firm's accounts of the chart."""

ASSETS = [
    # code, name, precision (decimal places of the smallest unit), is_fiat
    ("USD", "US Dollar", 2, True),
    ("USDP", "Pax Dollar", 6, False),
    ("PAXG", "PAX Gold", 8, False),
    ("BTC", "Bitcoin", 8, False),
    ("ETH", "Ether", 18, False),
]

FIRM_ACCOUNTS = {
    # purpose: (code, name, account type)
    "custody": ("firm:custody", "Custody omnibus", "asset"),
    "fees": ("firm:fees", "Fee revenue", "revenue"),
    "settlement": ("firm:settlement", "Settlement", "liability"),
    "suspense": ("firm:suspense", "Suspense", "liability"),
    "equity": ("firm:equity", "Firm equity", "equity"),
    "expense": ("firm:expense", "Firm expense", "expense"),
}
