"""The streamer's level book (pure): orders' resting sizes in, the changed levels out."""

from decimal import Decimal as D

from streams.books import LevelBook


def test_levels_add_up_orders_and_report_only_what_changed():
    book = LevelBook.from_orders(7, [(1, "buy", D("100"), D("1")), (2, "buy", D("100"), D("2")),
                                     (3, "sell", D("101"), D("0.5"))])
    assert book.side("buy", 10) == [(D("100"), D("3"))] and book.best("sell") == D("101")
    # Order 1 partly filled, order 3 filled, a new bid below.
    changed = book.apply_orders([(1, "buy", D("100"), D("0.25")), (3, "sell", D("101"), D("0")),
                                 (4, "buy", D("99"), D("5"))])
    assert changed == [("buy", D("100"), D("2.25")), ("sell", D("101"), D("0")), ("buy", D("99"), D("5"))]
    assert book.side("buy", 10) == [(D("100"), D("2.25")), (D("99"), D("5"))] and book.best("sell") is None
    # An order the book never had, ended: nothing changes; the same change twice: the level is as it was.
    assert book.apply_orders([(99, "sell", D("105"), D("0"))]) == []
    assert book.apply_orders([(4, "buy", D("99"), D("5"))]) == [("buy", D("99"), D("5"))]
    assert book.side("buy", 1) == [(D("100"), D("2.25"))]
