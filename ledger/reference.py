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
    # The firm's own position per asset (its balance rows), traded against clients by held-rate quotes and
    # stablecoin conversions. Equity: what the firm itself owns of what custody holds, as client accounts are
    # what clients own of it; a negative balance is a short position (README "Quotes").
    "inventory": ("firm:inventory", "Principal inventory", "equity"),
}
