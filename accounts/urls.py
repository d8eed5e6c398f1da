from django.urls import path

from accounts import api

urlpatterns = [
    path("account/", api.AccountView.as_view(), name="account"),
    path("deposits/", api.DepositListView.as_view(), name="deposit-list"),
    path("deposits/<int:pk>/", api.DepositDetailView.as_view(), name="deposit-detail"),
    path("withdrawals/", api.WithdrawalListView.as_view(), name="withdrawal-list"),
    path("withdrawals/<int:pk>/", api.WithdrawalDetailView.as_view(), name="withdrawal-detail"),
    path("withdrawals/<int:pk>/cancel/", api.WithdrawalCancelView.as_view(), name="withdrawal-cancel"),
    path("api-keys/", api.ApiKeyListView.as_view(), name="api-key-list"),
    path("api-keys/<int:pk>/", api.ApiKeyDetailView.as_view(), name="api-key-detail"),
    path("api-keys/<int:pk>/revoke/", api.ApiKeyRevokeView.as_view(), name="api-key-revoke"),
    path("withdrawal-destinations/", api.WithdrawalDestinationListView.as_view(), name="withdrawal-destination-list"),
    path("withdrawal-destinations/<int:pk>/remove/", api.WithdrawalDestinationRemoveView.as_view(),
         name="withdrawal-destination-remove"),
    path("audit-log/", api.AuditLogView.as_view(), name="audit-log"),
]
