from django.urls import path

from trading import api, quotes_api, risk_api

urlpatterns = [
    path("orders/", api.OrderListView.as_view(), name="order-list"),
    path("orders/cancel-all/", api.OrdersCancelAllView.as_view(), name="order-cancel-all"),
    path("orders/cancel-after/", risk_api.CancelAfterView.as_view(), name="order-cancel-after"),
    path("orders/batch/", api.OrderBatchView.as_view(), name="order-batch"),
    path("orders/<int:pk>/", api.OrderDetailView.as_view(), name="order-detail"),
    path("orders/by-client-id/<str:client_order_id>/", api.OrderByClientIdView.as_view(), name="order-by-client-id"),
    path("orders/<int:pk>/cancel/", api.OrderCancelView.as_view(), name="order-cancel"),
    path("orders/<int:pk>/fills/", api.OrderFillListView.as_view(), name="order-fills"),
    path("fills/", api.FillListView.as_view(), name="fill-list"),
    path("markets/", api.MarketListView.as_view(), name="market-list"),
    path("markets/<str:symbol>/", api.MarketDetailView.as_view(), name="market-detail"),
    path("markets/<str:symbol>/book/", api.OrderBookView.as_view(), name="market-book"),
    path("markets/<str:symbol>/trades/", api.TradesView.as_view(), name="market-trades"),
    path("markets/<str:symbol>/ticker/", api.TickerView.as_view(), name="market-ticker"),
    path("markets/<str:symbol>/candles/", api.CandlesView.as_view(), name="market-candles"),
    path("kill-switch/", risk_api.KillSwitchView.as_view(), name="kill-switch"),
    path("fees/", risk_api.FeesView.as_view(), name="fees"),
    # held-rate quotes, indicative prices and stablecoin conversions (trading.quotes_api)
    path("quotes/", quotes_api.QuoteListView.as_view(), name="quote-list"),
    path("quotes/<int:pk>/", quotes_api.QuoteDetailView.as_view(), name="quote-detail"),
    path("quotes/<int:pk>/execute/", quotes_api.QuoteExecuteView.as_view(), name="quote-execute"),
    path("prices/", quotes_api.PriceListView.as_view(), name="price-list"),
    path("conversions/", quotes_api.ConversionListView.as_view(), name="conversion-list"),
    path("conversions/<int:pk>/", quotes_api.ConversionDetailView.as_view(), name="conversion-detail"),
]
