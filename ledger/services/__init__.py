"""The only writer of the ledger: entries, postings, balances and holds.

Every function here runs in a transaction. ``from ledger import services as ledger`` then ``ledger.entry_post(...)``:
the names below are the ledger's write API, whichever module of this package holds them.
"""

from ledger.services.adjustments import adjustment_approve, adjustment_propose, adjustment_reject
from ledger.services.chart import (
    client_and_firm_accounts,
    client_ledger_account_create,
    credit_limit_set,
    firm_account,
    reference_data_ensure,
)
from ledger.services.holds import (
    balances_lock_for_holds,
    hold_new,
    hold_place,
    hold_placing,
    hold_reduce,
    hold_reserve_checked,
    hold_reserve_statement,
    holds_release,
)
from ledger.services.posting import (
    Capture,
    EntrySpec,
    Leg,
    credit,
    debit,
    entries_post,
    entry_post,
    entry_reverse,
)

__all__ = [
    "Capture",
    "EntrySpec",
    "Leg",
    "adjustment_approve",
    "adjustment_propose",
    "adjustment_reject",
    "balances_lock_for_holds",
    "client_and_firm_accounts",
    "client_ledger_account_create",
    "credit",
    "credit_limit_set",
    "debit",
    "entries_post",
    "entry_post",
    "entry_reverse",
    "firm_account",
    "hold_new",
    "hold_place",
    "hold_placing",
    "hold_reduce",
    "hold_reserve_checked",
    "hold_reserve_statement",
    "holds_release",
    "reference_data_ensure",
]
