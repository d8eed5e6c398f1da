from django.urls import path

from ledger import api

urlpatterns = [
    path("balances/", api.BalancesView.as_view(), name="balances"),
    path("statement/", api.StatementView.as_view(), name="statement"),
]
