"""Client API of the ledger: my balances and my statement (postings), scoped to the request's account."""

from __future__ import annotations

from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.response import Response

from accounts.models import Scope
from accounts.permissions import client_account_of
from ledger import selectors
from ledger.dates import UtcDateTimeFilter
from ledger.models import Asset, LedgerAccount, Posting
from ledger.serializers import AssetAmountField, AssetField


class BalanceSerializer(serializers.Serializer):
    asset = AssetField(read_only=True)
    total = AssetAmountField(help_text="Everything we hold for you.")
    held = AssetAmountField(help_text="Reserved for open orders and pending withdrawals.")
    available = AssetAmountField(help_text="total - held: what you can trade or withdraw.")


class StatementLineSerializer(serializers.ModelSerializer):
    asset = AssetField(read_only=True)
    amount = AssetAmountField(source="change", help_text="Change to your balance: positive credits you.")
    kind = serializers.CharField(source="entry.kind", help_text="deposit, withdrawal, fill, reversal, ...")
    reference = serializers.CharField(source="entry.key", help_text="What caused it, e.g. `deposit:12`.")
    memo = serializers.CharField(source="entry.memo")

    class Meta:
        model = Posting
        fields = ["id", "created_at", "asset", "amount", "kind", "reference", "memo"]
        read_only_fields = fields


def client_ledger_account(request) -> LedgerAccount | None:
    # API-key authentication loads it with the account; for other logins the relation reads it here.
    return getattr(client_account_of(request), "ledger_account", None)  # None: the account has none yet


class BalancesView(generics.GenericAPIView):
    """Your balance in every asset: total, held and available (zero where you hold nothing)."""

    serializer_class = BalanceSerializer
    required_scopes = {"GET": Scope.READ}
    pagination_class = None
    filter_backends = []

    @extend_schema(responses=BalanceSerializer(many=True))
    def get(self, request):
        account = client_ledger_account(request)
        existing = {b.asset: b for b in selectors.balances_list(account=account)} if account else {}
        rows = []
        for asset in Asset.objects.all():
            balance = existing.get(asset.code, selectors.BalanceView(asset.code, selectors.ZERO, selectors.ZERO))
            rows.append({"asset": asset, "total": balance.total, "held": balance.held,
                         "available": balance.available})
        return Response(self.get_serializer(rows, many=True).data)


class StatementFilter(filters.FilterSet):
    asset = filters.ModelChoiceFilter(queryset=Asset.objects.all(), help_text="Only this asset.")
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte",
                                     help_text="From this time on (inclusive), ISO 8601.")
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt",
                                      help_text="Before this time (exclusive), ISO 8601.")

    class Meta:
        model = Posting
        fields = ["asset", "created_after", "created_before"]


class StatementView(generics.ListAPIView):
    """Your ledger statement: every posting to your account, newest first, cursor-paginated."""

    serializer_class = StatementLineSerializer
    filterset_class = StatementFilter
    required_scopes = {"GET": Scope.READ}

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Posting.objects.none()
        account = client_ledger_account(self.request)
        return selectors.statement_postings(account=account) if account else Posting.objects.none()
