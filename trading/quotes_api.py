"""The client API of held-rate quotes, indicative prices and stablecoin conversions (thin: ``trading.services.quotes`` and
``trading.services.conversions`` do the work). Quotes and conversions are scoped to the caller's account: another
account's are not found (404). Amounts are decimal strings at their asset's precision."""

from __future__ import annotations

from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import generics, serializers, status
from rest_framework.response import Response

from accounts.api import idempotency_header
from accounts.idempotency import idempotent_response
from accounts.permissions import AccountScopedMixin, client_account_of
from core.api.serializers import SharedFieldsMixin, StrictSerializer, validated
from ledger.serializers import AssetAmountField, AssetField, DecimalStringField
from trading import clock
from trading.api import READ, TRADE, MarketAmountField, MarketSymbolField
from trading.models import Conversion, Quote, Side
from trading.services import conversions, quotes

QUOTE_STATUSES = ["open", "expired", "executed"]


# --- quotes -------------------------------------------------------------------------------------------------


class QuoteCreateSerializer(StrictSerializer):
    market = MarketSymbolField()
    side = serializers.ChoiceField(choices=Side.choices, help_text="Your side: buy or sell the base asset.")
    size = DecimalStringField(required=False, help_text="Base amount, a multiple of the lot size.")
    funds = DecimalStringField(
        required=False, help_text="Instead of size: the quote-asset total (fee included) to pay (buy) or receive "
                                  "(sell) at most; the size is the largest lot multiple within it.")


@extend_schema_field({"type": "string", "enum": QUOTE_STATUSES})
class QuoteStatusField(serializers.Field):
    """open, expired (open past ``expires_at``, by ``trading.clock``) or executed."""

    def __init__(self, **kwargs):
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, quote) -> str:
        return quote.status_at(clock.now())


@extend_schema_field({"type": "string", "example": "0.002"})
class RateField(serializers.Field):
    def __init__(self, **kwargs):
        super().__init__(read_only=True, **kwargs)

    def to_representation(self, value) -> str:
        return format(value.normalize(), "f")


class QuoteSerializer(SharedFieldsMixin, serializers.ModelSerializer):
    market = serializers.CharField(source="market.symbol", read_only=True)
    size = MarketAmountField(kind="base", help_text="Base amount bought or sold.")
    funds = MarketAmountField(kind="quote", allow_null=True, help_text="The funds asked for, if any.")
    price = MarketAmountField(kind="price", help_text="Held price per unit of base, spread included.")
    quote_amount = MarketAmountField(kind="quote", help_text="price x size, at the quote asset's precision.")
    fee = MarketAmountField(kind="quote")
    total = MarketAmountField(kind="quote", help_text="What you pay (buy) or receive (sell), fee included.")
    fee_rate = RateField()
    status = QuoteStatusField(help_text="open, expired (open past expires_at) or executed.")

    class Meta:
        model = Quote
        fields = ["id", "market", "side", "size", "funds", "price", "quote_amount", "fee", "fee_rate", "total",
                  "status", "created_at", "expires_at", "executed_at"]
        read_only_fields = fields


class QuoteFilter(filters.FilterSet):
    market = filters.CharFilter(field_name="market__symbol")
    side = filters.ChoiceFilter(choices=Side.choices)

    class Meta:
        model = Quote
        fields = ["market", "side"]


class QuoteView(AccountScopedMixin, generics.GenericAPIView):
    model = Quote
    serializer_class = QuoteSerializer
    required_scopes = TRADE

    def account_queryset(self, account):
        return Quote.objects.filter(account=account).select_related("market__base", "market__quote")


class QuoteListView(QuoteView, generics.ListAPIView):
    """Your quotes, newest first (cursor-paginated). POST asks for a firm quote: the price is held until
    `expires_at` (30 seconds by default) and reserves nothing; execute it with POST .../execute/."""

    filterset_class = QuoteFilter

    @extend_schema(request=QuoteCreateSerializer, responses={201: QuoteSerializer})
    def post(self, request):
        quote = quotes.quote_create(account=client_account_of(request), acting_user=request.user,
                                    **validated(QuoteCreateSerializer, request))
        return Response(QuoteSerializer(quote).data, status=status.HTTP_201_CREATED)


class QuoteDetailView(QuoteView, generics.RetrieveAPIView):
    """One of your quotes."""


class QuoteExecuteView(QuoteView):
    """Execute one of your quotes at its held price, in full, once. The Idempotency-Key header is required:
    the same key replays the first response; another key on an executed quote is a 409
    `quote_already_executed`. Refused with `quote_expired`, `insufficient_funds` or `quote_rejected` (market
    not open, moved beyond the tolerance, or the firm's exposure limits), and nothing is written."""

    http_method_names = ["post", "options"]

    @extend_schema(request=None, responses={200: QuoteSerializer}, parameters=[idempotency_header(required=True)])
    def post(self, request, pk):
        account = client_account_of(request)

        def execute(key):
            validated(StrictSerializer, request)
            executed = quotes.quote_execute(quote=pk, account=account, idempotency_key=key, acting_user=request.user)
            return Response(QuoteSerializer(executed).data)

        return idempotent_response(request, account=account, endpoint="quotes.execute", required=True,
                                   execute=execute, content={"quote": pk, "body": request.data})


class IndicativePriceSerializer(serializers.Serializer):
    market = serializers.CharField(source="market.symbol")
    size = MarketAmountField(kind="base", help_text="The size priced: the market's minimum size.")
    bid = MarketAmountField(kind="price", allow_null=True, help_text="Per unit if you sold; null: no price.")
    ask = MarketAmountField(kind="price", allow_null=True, help_text="Per unit if you bought; null: no price.")
    at = serializers.DateTimeField()


class PriceListView(generics.GenericAPIView):
    """Indicative prices for every market, for your tier, at the market's minimum size: what a quote would
    say now. Not a promise (a quote is), and larger sizes walk deeper into the book."""

    serializer_class = IndicativePriceSerializer
    required_scopes = READ
    pagination_class = None
    queryset = Quote.objects.none()

    @extend_schema(responses={200: IndicativePriceSerializer(many=True)})
    def get(self, request):
        prices = quotes.indicative_prices(account=client_account_of(request))
        return Response(IndicativePriceSerializer(prices, many=True).data)


# --- conversions --------------------------------------------------------------------------------------------


class ConversionCreateSerializer(StrictSerializer):
    from_asset = AssetField(help_text="USD or USDP.")
    to_asset = AssetField(help_text="USDP or USD.")
    amount = DecimalStringField(help_text='Amount of from_asset, received 1:1 in to_asset, e.g. "100.00".')


class ConversionSerializer(serializers.ModelSerializer):
    from_asset = AssetField(read_only=True)
    to_asset = AssetField(read_only=True)
    amount = AssetAmountField(asset_source="from_asset")

    class Meta:
        model = Conversion
        fields = ["id", "from_asset", "to_asset", "amount", "created_at"]
        read_only_fields = fields


class ConversionView(AccountScopedMixin, generics.GenericAPIView):
    model = Conversion
    serializer_class = ConversionSerializer
    required_scopes = TRADE

    def account_queryset(self, account):
        return Conversion.objects.filter(account=account).select_related("from_asset", "to_asset")


@extend_schema_view(post=extend_schema(request=ConversionCreateSerializer, responses={201: ConversionSerializer},
                                       parameters=[idempotency_header(required=True)]))
class ConversionListView(ConversionView, generics.ListAPIView):
    """Your stablecoin conversions, newest first. POST converts USD to USDP or back at exactly 1:1 with no fee,
    at once. The Idempotency-Key header is required; conversions are limited per rolling 24 hours."""

    def post(self, request):
        account = client_account_of(request)

        def execute(key):
            data = validated(ConversionCreateSerializer, request)
            conversion = conversions.conversion_create(account=account, idempotency_key=key,
                                                       acting_user=request.user, **data)
            return Response(ConversionSerializer(conversion).data, status=status.HTTP_201_CREATED)

        return idempotent_response(request, account=account, endpoint="conversions.create", required=True,
                                   execute=execute)


class ConversionDetailView(ConversionView, generics.RetrieveAPIView):
    """One of your conversions."""
