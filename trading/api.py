"""The client API of trading: orders, fills and market data (thin: services and selectors do the work).

Orders and fills are scoped to ``client_account_of(request)``: another account's are simply not found (404).
Amounts are decimal strings, shown at the precision of their asset (prices at the quote asset's, or the
tick's if finer); exact accruals (notional, fees) are shown in full.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q
from django.shortcuts import get_object_or_404
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.response import Response

from accounts.idempotency import HEADER as IDEMPOTENCY_HEADER
from accounts.idempotency import idempotent_response
from accounts.models import Scope
from accounts.permissions import AccountScopedMixin, PublicReadPermission, client_account_of
from accounts.throttling import PublicReadRateThrottle
from core.api.errors import client_error_answer, error_code
from core.api.pagination import CreatedCursorPagination
from core.api.serializers import ErrorSerializer, SharedFieldsMixin, StrictSerializer, validated
from core.exceptions import Code as CoreCode
from core.exceptions import DomainError
from core.representation import fixed
from ledger.dates import UtcDateTimeField, UtcDateTimeFilter, parse_utc_datetime
from ledger.serializers import DecimalStringField
from trading import awaiting, metrics, selectors, services
from trading.candles import GRANULARITIES
from trading.errors import Code
from trading.models import Candle, Fill, Market, Order, OrderStatus, OrderType, SelfTradePrevention, Side, TimeInForce
from trading.representations import amount_places, fill_data, market_data, order_data

READ = {"GET": Scope.READ}
TRADE = {"GET": Scope.READ, "POST": Scope.TRADE, "DELETE": Scope.TRADE, "PATCH": Scope.TRADE}


# --- amounts ----------------------------------------------------------------------------------------------


def _places(kind: str, market: Market, value: Decimal) -> int:
    return amount_places(kind, market, value)


class MarketAmountField(DecimalStringField):
    """An output amount at the precision ``kind`` names (base, quote, price, exact) for the row's market."""

    def __init__(self, *, kind: str, **kwargs):
        self.kind = kind
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)

    def get_attribute(self, instance):
        market = instance if isinstance(instance, Market) else instance.market
        return super().get_attribute(instance), market

    def to_representation(self, value) -> str | None:
        amount, market = value
        if amount is None:
            return None
        return fixed(amount, _places(self.kind, market, amount))


# --- serializers ------------------------------------------------------------------------------------------


class MarketSerializer(serializers.ModelSerializer):
    base = serializers.CharField(source="base_id", read_only=True)
    quote = serializers.CharField(source="quote_id", read_only=True)
    tick_size = MarketAmountField(kind="exact")
    lot_size = MarketAmountField(kind="exact")
    min_size = MarketAmountField(kind="base")
    max_size = MarketAmountField(kind="base")
    maker_fee_rate = serializers.CharField(read_only=True)
    taker_fee_rate = serializers.CharField(read_only=True)

    class Meta:
        model = Market
        fields = ["symbol", "base", "quote", "status", "tick_size", "lot_size", "min_size", "max_size",
                  "maker_fee_rate", "taker_fee_rate"]
        read_only_fields = fields

    def to_representation(self, instance) -> dict:
        return market_data(instance)  # the fields above document it; events carry the same dict


class MarketSymbolField(serializers.SlugRelatedField):
    """A market by its symbol, taken from the process's market cache (``selectors.market_by_symbol``): only
    for placing orders, which checks inside its transaction that the market is current. Errors, and the
    schema, are the ``SlugRelatedField``'s."""

    def __init__(self, **kwargs):
        super().__init__(slug_field="symbol", queryset=Market.objects.select_related("base", "quote"), **kwargs)

    def to_internal_value(self, data) -> Market:
        if not isinstance(data, str):
            return super().to_internal_value(data)  # the queryset's coercion and errors, for odd input
        market = selectors.market_by_symbol(data)
        if market is None:
            self.fail("does_not_exist", slug_name=self.slug_field, value=data)
        return market


@extend_schema_field(OpenApiTypes.DATETIME)
class UtcDateTimeParam(serializers.Field):
    """An ISO 8601 date-time (a query parameter or a body field) as aware UTC (naive means UTC): ``invalid``, or ``out_of_range`` for
    an offset or a year PostgreSQL cannot store."""

    def to_internal_value(self, data):
        try:
            return UtcDateTimeField().clean(data)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages[0], code=exc.code) from None


class OrderCreateSerializer(SharedFieldsMixin, StrictSerializer):
    market = MarketSymbolField()
    side = serializers.ChoiceField(choices=Side.choices)
    type = serializers.ChoiceField(choices=OrderType.choices, default=OrderType.LIMIT)
    size = DecimalStringField(required=False, help_text="Base quantity, a multiple of the lot size.")
    price = DecimalStringField(required=False, help_text="Limit price, a multiple of the tick size.")
    funds = DecimalStringField(required=False, help_text="Market buys only: quote to spend, fees included.")
    time_in_force = serializers.ChoiceField(choices=TimeInForce.choices, default=TimeInForce.GTC)
    post_only = serializers.BooleanField(default=False)
    stp = serializers.ChoiceField(choices=SelfTradePrevention.choices, default=SelfTradePrevention.CANCEL_NEWEST)
    client_order_id = serializers.RegexField(
        r"^[A-Za-z0-9_.:-]{1,64}$", required=False,
        help_text="Your id for the order, unique in your account: resending it returns the same order.",
    )
    stop_price = DecimalStringField(
        required=False, help_text="Stop and stop-limit orders: the last trade price that triggers them (a buy at or "
                                  "above it, a sell at or below it), a multiple of the tick size.")
    expire_time = UtcDateTimeParam(
        required=False, help_text="Good-til-time (time_in_force gtt) only: when the order expires, at least 10 s "
                                  "ahead.")
    metadata = serializers.DictField(
        child=serializers.CharField(allow_blank=True, trim_whitespace=False), required=False,
        help_text="Up to 6 key/value pairs of text (100 characters each), echoed in the order, its events and "
                  "reports.")
    await_fill_ms = serializers.IntegerField(
        required=False, min_value=0, max_value=awaiting.MAX_AWAIT_MS, write_only=True,
        help_text="Wait up to this many milliseconds (at most 10000) for the order to be done (filled, cancelled, "
                  "rejected or expired) before answering.")


class OrderBatchItemSerializer(OrderCreateSerializer):
    """One order of a batch: the fields of ``POST /orders/`` but ``await_fill_ms`` (a batch answers at once, so
    it is an ``unknown_field`` here)."""

    await_fill_ms = None


@extend_schema_field(OrderBatchItemSerializer)
class BatchItemField(serializers.Field):
    """One order of a batch as sent, whatever it is: each is validated on its own (``OrderBatchItemSerializer``),
    so a malformed order is answered in its own result and never refuses the others."""

    def run_validation(self, data=serializers.empty):
        return data


class OrderBatchSerializer(StrictSerializer):
    """The body of POST /orders/batch/: the orders, each answered on its own."""

    orders = serializers.ListField(
        child=BatchItemField(), allow_empty=False, min_length=1, max_length=services.ORDER_BATCH_MAX,
        help_text=f"1 to {services.ORDER_BATCH_MAX} orders, placed in this order in one transaction; each counts "
                  f"as one request against the rate limits.")


class OrderAmendSerializer(StrictSerializer):
    size = DecimalStringField(required=False, help_text="The new total size, what has filled included. Smaller "
                                                        "and nothing else: reduced in place, keeps its priority.")
    price = DecimalStringField(required=False, help_text="A new limit price: cancel-replace, loses priority.")
    stop_price = DecimalStringField(required=False, help_text="A new stop price: cancel-replace.")
    client_order_id = serializers.RegexField(
        r"^[A-Za-z0-9_.:-]{1,64}$", required=False,
        help_text="Your id for the replacement order, if the amend is a cancel-replace.")


class OrderSerializer(SharedFieldsMixin, serializers.ModelSerializer):
    market = serializers.CharField(source="market.symbol", read_only=True)
    price = MarketAmountField(kind="price", allow_null=True)
    size = MarketAmountField(kind="base", allow_null=True)
    funds = MarketAmountField(kind="quote", allow_null=True)
    filled_size = MarketAmountField(kind="base")
    filled_quote = MarketAmountField(kind="exact", help_text="Exact notional of the fills, price x size.")
    fees_paid = MarketAmountField(kind="exact", help_text="Exact fees accrued at the order's rates.")
    settled_quote = MarketAmountField(
        kind="quote", help_text="Quote moved in your balance: paid incl. fees for a buy, received net for a sell."
    )
    stop_price = MarketAmountField(kind="price", allow_null=True)
    metadata = serializers.DictField(child=serializers.CharField(), read_only=True)
    replaces = serializers.IntegerField(source="replaces_id", read_only=True, allow_null=True,
                                        help_text="The order this one replaced (an amend that lost priority).")

    class Meta:
        model = Order
        fields = ["id", "client_order_id", "market", "side", "type", "time_in_force", "post_only", "stp", "price",
                  "size", "funds", "stop_price", "expire_time", "metadata", "replaces", "triggered_at", "status",
                  "reason", "filled_size", "filled_quote", "fees_paid", "settled_quote", "created_at", "updated_at"]
        read_only_fields = fields

    def to_representation(self, instance) -> dict:
        return order_data(instance)  # the fields above document it; events carry the same dict


class OrderBatchResultSerializer(serializers.Serializer):
    status = serializers.IntegerField(help_text="201: the order was placed (or replayed by its client_order_id); "
                                                "else the 4xx POST /orders/ would have answered, with its error.")
    order = OrderSerializer(required=False, help_text="With status 201: the order, as POST /orders/ answers it.")
    error = ErrorSerializer(required=False, help_text="With a 4xx status: the error POST /orders/ would answer.")


class OrderBatchResponseSerializer(serializers.Serializer):
    results = OrderBatchResultSerializer(many=True, help_text="One per order sent, in the same order.")


class CancelAllSerializer(StrictSerializer):
    market = serializers.SlugRelatedField(slug_field="symbol", queryset=Market.objects.all(), required=False)


class AccountFillSerializer(serializers.ModelSerializer):
    """A fill as one side of it sees it: the request's account is the maker or the taker. Rendered by
    ``trading.representations.fill_data``; the fields document it."""

    market = serializers.CharField(source="market.symbol", read_only=True)
    order_id = serializers.IntegerField(read_only=True, help_text="Your order in this fill.")
    side = serializers.ChoiceField(choices=Side.choices, read_only=True, help_text="Your side.")
    liquidity = serializers.ChoiceField(choices=[("maker", "maker"), ("taker", "taker")], read_only=True,
                                        help_text="maker or taker")
    price = MarketAmountField(kind="price")
    size = MarketAmountField(kind="base")
    quote_amount = MarketAmountField(kind="exact", help_text="Exact notional, price x size.")
    fee = DecimalStringField(read_only=True, help_text="Exact fee accrued by your side.")
    settled_quote = DecimalStringField(read_only=True, help_text="Quote moved in your balance for this fill.")

    class Meta:
        model = Fill
        fields = ["id", "order_id", "market", "side", "liquidity", "price", "size", "quote_amount", "fee",
                  "settled_quote", "created_at"]
        read_only_fields = fields

    def to_representation(self, instance) -> dict:
        return fill_data(instance, account_id=self.context["account"].pk)


class TradeSerializer(serializers.ModelSerializer):
    price = MarketAmountField(kind="price")
    size = MarketAmountField(kind="base")
    side = serializers.CharField(source="aggressor_side", read_only=True, help_text="The taker's side.")
    time = serializers.DateTimeField(source="created_at", read_only=True)

    class Meta:
        model = Fill
        fields = ["id", "price", "size", "side", "time"]
        read_only_fields = fields


class BookLevelSerializer(serializers.Serializer):
    price = serializers.CharField()
    size = serializers.CharField()
    orders = serializers.IntegerField()


class BookSerializer(serializers.Serializer):
    market = serializers.CharField()
    sequence = serializers.IntegerField(help_text="The book's version: WebSocket level2 updates carry the same "
                                        "numbers, one per change (README \"Streams\").")
    bids = BookLevelSerializer(many=True)
    asks = BookLevelSerializer(many=True)


class TickerSerializer(serializers.Serializer):
    market = serializers.CharField(source="market.symbol")
    last_price = MarketAmountField(kind="price", allow_null=True)
    last_size = MarketAmountField(kind="base", allow_null=True)
    last_at = serializers.DateTimeField(allow_null=True)
    best_bid = MarketAmountField(kind="price", allow_null=True)
    best_ask = MarketAmountField(kind="price", allow_null=True)
    open_24h = MarketAmountField(kind="price", allow_null=True, help_text="The first trade's price in the last 24 h.")
    high_24h = MarketAmountField(kind="price", allow_null=True)
    low_24h = MarketAmountField(kind="price", allow_null=True)
    volume_24h = MarketAmountField(kind="base")
    quote_volume_24h = MarketAmountField(kind="exact")
    trades_24h = serializers.IntegerField()


class CandleSerializer(serializers.ModelSerializer):
    """One bucket's trades: ``start`` is the bucket's first instant (UTC), ``volume`` the base traded,
    ``quote_volume`` the exact notional."""

    open = MarketAmountField(kind="price")
    high = MarketAmountField(kind="price")
    low = MarketAmountField(kind="price")
    close = MarketAmountField(kind="price")
    volume = MarketAmountField(kind="base")
    quote_volume = MarketAmountField(kind="exact")
    trades = serializers.IntegerField(source="trade_count", read_only=True)

    class Meta:
        model = Candle
        fields = ["start", "open", "high", "low", "close", "volume", "quote_volume", "trades"]
        read_only_fields = fields


class CandleQuerySerializer(serializers.Serializer):
    granularity = serializers.CharField()
    start = UtcDateTimeParam(required=False)
    end = UtcDateTimeParam(required=False)

    def validate_granularity(self, value: str) -> int:
        if not value.isdigit() or int(value) not in GRANULARITIES:
            raise serializers.ValidationError(
                f"Use one of {', '.join(map(str, GRANULARITIES))} (seconds).", code=Code.INVALID_GRANULARITY)
        return int(value)

    def validate(self, attrs: dict) -> dict:
        if "start" in attrs and "end" in attrs and attrs["start"] >= attrs["end"]:
            raise serializers.ValidationError(
                {"end": [serializers.ErrorDetail("end must be after start.", code=Code.INVALID_TIME_RANGE)]})
        return attrs


def _bounded_int(request, name: str, *, default: int, maximum: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise serializers.ValidationError({name: [serializers.ErrorDetail(
            f"Must be a whole number from 1 to {maximum}.", code=CoreCode.INVALID)]})
    return int(raw)


# --- orders -----------------------------------------------------------------------------------------------


CREATED_AFTER_HELP = ("From this time on (inclusive), ISO 8601; the list is then oldest first. For a feed that "
                      "never misses a late commit, use /events/.")


class AscendingAfterPagination(CreatedCursorPagination):
    """Newest first, but oldest first when the list starts at ``created_after`` (to page forward in time)."""

    def get_ordering(self, request, queryset, view):
        return ("id",) if "created_after" in request.query_params else ("-id",)


class OrderFilter(filters.FilterSet):
    market = filters.CharFilter(field_name="market__symbol")
    status = filters.MultipleChoiceFilter(choices=OrderStatus.choices)
    side = filters.ChoiceFilter(choices=Side.choices)
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte", help_text=CREATED_AFTER_HELP)
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt",
                                      help_text="Before this time (exclusive), ISO 8601.")

    class Meta:
        model = Order
        fields = ["market", "status", "side", "created_after", "created_before"]


class OrderView(AccountScopedMixin, generics.GenericAPIView):
    model = Order
    serializer_class = OrderSerializer
    required_scopes = TRADE

    def account_queryset(self, account):
        return selectors.orders_of(account=account)


class OrderListView(OrderView, generics.ListAPIView):
    """Your orders, newest first (oldest first from ``created_after``; cursor-paginated). POST places an order:
    it is accepted as ``new`` with the funds it may spend on hold, and matched by the matching engine moments
    later; follow it on /events/ (or a webhook) rather than polling. Resending the same ``client_order_id``
    returns the same order."""

    filterset_class = OrderFilter
    pagination_class = AscendingAfterPagination

    @extend_schema(request=OrderCreateSerializer, responses={201: OrderSerializer})
    def post(self, request):
        data = validated(OrderCreateSerializer, request)
        await_ms = data.pop("await_fill_ms", 0)
        try:
            order = services.order_place(account=client_account_of(request), acting_user=request.user, **data)
        except Exception as exc:
            metrics.order_rejected(code=error_code(exc))
            raise
        metrics.order_accepted(symbol=order.market.symbol)
        if await_ms:
            order = awaiting.order_await_done(order=order, milliseconds=await_ms)
        return Response(OrderSerializer(order).data, status=status.HTTP_201_CREATED)


class OrderBatchView(generics.GenericAPIView):
    """Place up to 50 orders in one request. Each order takes the fields of POST /orders/ (but ``await_fill_ms``)
    and is validated and answered on its own, in the order sent: a refused order does not stop the others. The
    batch is one transaction (the answers come after its commit), so a later order sees the holds and limits of
    the earlier ones; an error that is not a refusal (e.g. the database) fails the whole request and places
    nothing. Each order keeps the idempotency of its ``client_order_id``, and counts as one request against the
    rate limits."""

    serializer_class = OrderBatchSerializer
    required_scopes = TRADE
    pagination_class = None
    queryset = Order.objects.none()

    def throttle_weight(self, request) -> int:
        """The number of orders sent (accounts.throttling); a body that is no batch is refused and weighs 1."""
        orders = request.data.get("orders") if isinstance(request.data, dict) else None
        return len(orders) if isinstance(orders, list) and len(orders) <= services.ORDER_BATCH_MAX else 1

    @extend_schema(request=OrderBatchSerializer, responses={200: OrderBatchResponseSerializer})
    def post(self, request):
        checked = [_batch_item_checked(item) for item in validated(OrderBatchSerializer, request)["orders"]]
        valid = [item for item in checked if isinstance(item, dict)]
        try:
            placed = iter(services.orders_place_batch(account=client_account_of(request), acting_user=request.user,
                                                      orders=valid))
        except Exception as exc:
            for _ in valid:
                metrics.order_rejected(code=error_code(exc))
            raise
        results = [next(placed) if isinstance(item, dict) else item for item in checked]
        return Response({"results": [_batch_result(result) for result in results]})


def _batch_item_checked(item) -> dict | serializers.ValidationError:
    """The order's validated fields, or the validation error POST /orders/ would answer it with."""
    serializer = OrderBatchItemSerializer(data=item)
    if serializer.is_valid():
        return serializer.validated_data
    return serializers.ValidationError(serializer.errors)


def _batch_result(result: Order | DomainError | serializers.ValidationError) -> dict:
    """One order's answer in a batch, counted in the metrics as POST /orders/ counts it (a refusal by the
    serializer is not counted there either)."""
    if isinstance(result, Order):
        metrics.order_accepted(symbol=result.market.symbol)
        return {"status": status.HTTP_201_CREATED, "order": OrderSerializer(result).data}
    if isinstance(result, DomainError):
        metrics.order_rejected(code=error_code(result))
    code, body = client_error_answer(result)
    return {"status": code, "error": body}


class OrderDetailView(OrderView, generics.RetrieveAPIView):
    """One of your orders. DELETE cancels it (as does POST .../cancel/). PATCH amends it: a smaller size keeps
    its place in the queue; a new price or stop price or a larger size cancels it and places a replacement (the
    response is the replacement, whose ``replaces`` names this order). Idempotent with an ``Idempotency-Key``."""

    @extend_schema(request=None, responses={200: OrderSerializer})
    def delete(self, request, pk):
        order = services.order_cancel(order=self.get_object(), acting_user=request.user)
        return Response(OrderSerializer(order).data)

    @extend_schema(request=OrderAmendSerializer, responses={200: OrderSerializer}, parameters=[OpenApiParameter(
        IDEMPOTENCY_HEADER, str, OpenApiParameter.HEADER, required=False,
        description="Replays return the first response; the same key with another body is a 409.")])
    def patch(self, request, pk):
        order = self.get_object()

        def execute(key):
            amended = services.order_amend(order=order, acting_user=request.user,
                                           **validated(OrderAmendSerializer, request))
            return Response(OrderSerializer(amended).data)

        return idempotent_response(request, account=client_account_of(request), endpoint="orders.amend",
                                   required=False, execute=execute, content={"order": order.pk, "body": request.data})


class OrderByClientIdView(OrderView, generics.RetrieveAPIView):
    """One of your orders by the ``client_order_id`` you gave it."""

    lookup_field = "client_order_id"


class OrderCancelView(OrderDetailView):
    """Cancel one of your orders; what its hold still reserves becomes available again."""

    http_method_names = ["post", "options"]

    @extend_schema(request=None, responses={200: OrderSerializer})
    def post(self, request, pk):
        return self.delete(request, pk)


class OrdersCancelAllView(generics.GenericAPIView):
    """Cancel all your open orders, or those of one market."""

    serializer_class = CancelAllSerializer
    required_scopes = TRADE
    pagination_class = None
    queryset = Order.objects.none()

    @extend_schema(request=CancelAllSerializer, responses={200: OrderSerializer(many=True)})
    def post(self, request):
        data = validated(CancelAllSerializer, request)
        orders = services.orders_cancel_all(account=client_account_of(request), acting_user=request.user, **data)
        return Response(OrderSerializer(orders, many=True).data)


# --- fills ------------------------------------------------------------------------------------------------


class FillFilter(filters.FilterSet):
    market = filters.CharFilter(field_name="market__symbol")
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte", help_text=CREATED_AFTER_HELP)
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt",
                                      help_text="Before this time (exclusive), ISO 8601.")
    order = filters.NumberFilter(method="filter_order")
    liquidity = filters.ChoiceFilter(choices=[("maker", "maker"), ("taker", "taker")], method="filter_liquidity")
    side = filters.ChoiceFilter(choices=Side.choices, method="filter_side")

    class Meta:
        model = Fill
        fields = ["market", "order", "liquidity", "side", "created_after", "created_before"]

    def _account(self):
        return client_account_of(self.request)

    def filter_order(self, queryset, name, value):
        return queryset.filter(Q(maker_order_id=value) | Q(taker_order_id=value))

    def filter_liquidity(self, queryset, name, value):
        return queryset.filter(**{f"{value}_account": self._account()})

    def filter_side(self, queryset, name, value):
        # The account bought as taker of a buy, or as maker against a sell.
        other = Side.SELL if value == Side.BUY else Side.BUY
        account = self._account()
        return queryset.filter(
            Q(taker_account=account, aggressor_side=value) | Q(maker_account=account, aggressor_side=other)
        )


class FillListView(AccountScopedMixin, generics.ListAPIView):
    """Your fills, newest first (oldest first from ``created_after``; cursor-paginated)."""

    pagination_class = AscendingAfterPagination
    model = Fill
    serializer_class = AccountFillSerializer
    filterset_class = FillFilter
    required_scopes = READ

    def account_queryset(self, account):
        return selectors.fills_of(account=account)

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "account": client_account_of(self.request)}


class OrderFillListView(FillListView):
    """The fills of one of your orders, newest first."""

    filterset_class = None
    pagination_class = CreatedCursorPagination

    def account_queryset(self, account):
        order = get_object_or_404(selectors.orders_of(account=account), pk=self.kwargs["pk"])
        return selectors.fills_of_order(order=order)


# --- market data ------------------------------------------------------------------------------------------


class MarketView(generics.GenericAPIView):
    """Market data: public. Anyone may read it without a credential, throttled per IP address (``public_ip``);
    with a credential it is read as before (a key needs ``read``)."""

    serializer_class = MarketSerializer
    required_scopes = READ
    permission_classes = [PublicReadPermission]
    throttle_classes = [PublicReadRateThrottle]
    pagination_class = None
    queryset = Market.objects.none()

    def get_queryset(self):
        return selectors.markets_list()


class MarketListView(MarketView, generics.ListAPIView):
    """The markets, their grid (tick, lot, sizes), status and base fee rates."""


class MarketDetailView(MarketView, generics.RetrieveAPIView):
    """One market."""

    lookup_field = "symbol"


class MarketDataView(MarketView):
    def market(self) -> Market:
        return get_object_or_404(self.get_queryset(), symbol=self.kwargs["symbol"])


class OrderBookView(MarketDataView):
    """Aggregated price levels of the book, best first: open size and number of orders per price."""

    serializer_class = BookSerializer

    @extend_schema(parameters=[OpenApiParameter("depth", int, description="Levels per side, 1-200 (default 20).")])
    def get(self, request, symbol):
        market = self.market()
        depth = _bounded_int(request, "depth", default=20, maximum=200)
        sequence, snapshot = selectors.sequenced_read(
            market=market, read=lambda: selectors.book_snapshot(market=market, depth=depth))
        price_places, size_places = _places("price", market, Decimal(0)), market.base.precision
        return Response({"market": market.symbol, "sequence": sequence, **{
            side: [
                {"price": fixed(price, price_places), "size": fixed(size, size_places),
                 "orders": count}
                for price, size, count in levels
            ]
            for side, levels in snapshot.items()
        }})


class TradesView(MarketDataView):
    """Recent trades of the market, newest first: price, size, the taker's side and time."""

    serializer_class = TradeSerializer

    @extend_schema(
        parameters=[OpenApiParameter("limit", int, description="How many, 1-500 (default 50).")],
        responses={200: TradeSerializer(many=True)},
    )
    def get(self, request, symbol):
        trades = selectors.trades_recent(market=self.market(), limit=_bounded_int(request, "limit", default=50,
                                                                                  maximum=500))
        return Response(TradeSerializer(trades, many=True).data)


class TickerView(MarketDataView):
    """Last trade, best bid and ask, and the volume of the last 24 hours."""

    serializer_class = TickerSerializer

    def get(self, request, symbol):
        return Response(TickerSerializer(selectors.ticker(market=self.market())).data)


class CandleCursorPagination(CreatedCursorPagination):
    """Candles newest first, or oldest first from ``start`` (to page forward in time); the cursor's position is a
    bucket's start."""

    page_size = 300
    max_page_size = 1000

    def get_ordering(self, request, queryset, view):
        return ("start",) if "start" in request.query_params else ("-start",)

    def position_clean(self, position: str) -> str:
        return parse_utc_datetime(position).isoformat()


class CandlesView(MarketDataView):
    """The market's candles (OHLCV) of one granularity, from its fills: newest first, or oldest first from
    ``start``; cursor pages of up to 1,000 (default 300). A bucket without a trade has no candle."""

    serializer_class = CandleSerializer
    pagination_class = CandleCursorPagination
    filter_backends = []

    @extend_schema(
        parameters=[
            OpenApiParameter("granularity", int, required=True, enum=list(GRANULARITIES),
                             description="Seconds per candle: 60, 300, 900, 3600, 21600 or 86400."),
            OpenApiParameter("start", str, description="ISO 8601; from the candle that holds this time on."),
            OpenApiParameter("end", str, description="ISO 8601; candles that begin before this time."),
            OpenApiParameter("page_size", int, description="Candles per page, 1-1000 (default 300)."),
        ],
        responses={200: CandleSerializer(many=True)},
    )
    def get(self, request, symbol):
        market = self.market()
        query = CandleQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        page = self.paginate_queryset(selectors.candles_list(market=market, **query.validated_data))
        for candle in page:
            candle.market = market  # the amounts' precision: one market for all, no query per row
        return self.get_paginated_response(CandleSerializer(page, many=True).data)
