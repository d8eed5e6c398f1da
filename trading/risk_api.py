"""The client API of a client's trading controls and fees (thin: ``trading.services.controls`` and the selectors
do the work): the kill switch, the dead-man switch (cancel-after) and the fees the caller pays."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.response import Response

from accounts.models import Scope
from accounts.permissions import client_account_of
from core.api.serializers import StrictSerializer, validated
from core.representation import fixed, iso
from trading import clock, selectors, services
from trading.models import KillSwitchHolder, Order
from trading.representations import trading_control_data
from trading.services.controls import CANCEL_AFTER_MAX_SECONDS

READ = {"GET": Scope.READ}
TRADE = {"GET": Scope.READ, "POST": Scope.TRADE}


class TradingControlSerializer(serializers.Serializer):
    """Rendered by ``trading.representations.trading_control_data``; the fields document it."""

    account = serializers.IntegerField()
    kill_switch = serializers.BooleanField(help_text="Engaged: no new orders are accepted.")
    kill_switch_by = serializers.ChoiceField(choices=KillSwitchHolder.choices, allow_null=True,
                                             help_text="Who engaged it; only operations release theirs.")
    kill_switch_reason = serializers.CharField(allow_blank=True)
    kill_switch_at = serializers.DateTimeField(allow_null=True, help_text="When it was last engaged or released.")
    cancel_after = serializers.DateTimeField(
        allow_null=True, help_text="Dead-man switch: every open order is cancelled at this time unless renewed.")
    cancel_after_timeout = serializers.IntegerField(allow_null=True, help_text="Seconds, as last set.")

    def to_representation(self, instance) -> dict:
        return instance


class KillSwitchSerializer(StrictSerializer):
    engaged = serializers.BooleanField(help_text="true: cancel every open order and refuse new ones; false: "
                                                 "accept orders again.")
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class CancelAfterSerializer(StrictSerializer):
    timeout = serializers.IntegerField(
        min_value=0, max_value=CANCEL_AFTER_MAX_SECONDS,
        help_text="Seconds from now (5 to 86400) after which every open order is cancelled unless you call "
                  "again; 0 disarms it.")


def _control_response(account) -> Response:
    control = services.trading_control_of(account=account)
    return Response(trading_control_data(control, account_id=account.pk))


class KillSwitchView(generics.GenericAPIView):
    """Your account's kill switch and dead-man switch. POST ``{"engaged": true}`` (an admin of the account)
    cancels every open order and refuses new ones (``kill_switch_engaged``) until ``{"engaged": false}``."""

    serializer_class = TradingControlSerializer
    required_scopes = TRADE
    pagination_class = None
    queryset = Order.objects.none()

    def get(self, request):
        return _control_response(client_account_of(request))

    @extend_schema(request=KillSwitchSerializer, responses={200: TradingControlSerializer})
    def post(self, request):
        data = validated(KillSwitchSerializer, request)
        account = client_account_of(request)
        change = services.kill_switch_engage if data["engaged"] else services.kill_switch_release
        change(account=account, acting_user=request.user, reason=data["reason"])
        return _control_response(account)


class CancelAfterView(generics.GenericAPIView):
    """Dead-man switch: unless you call this again within ``timeout`` seconds, every open order of your account
    is cancelled (reason ``cancel_after_lapsed``). Keep renewing it while your client is connected; 0 disarms."""

    serializer_class = TradingControlSerializer
    required_scopes = TRADE
    pagination_class = None
    queryset = Order.objects.none()

    @extend_schema(request=CancelAfterSerializer, responses={200: TradingControlSerializer})
    def post(self, request):
        data = validated(CancelAfterSerializer, request)
        account = client_account_of(request)
        services.cancel_after_set(account=account, timeout=data["timeout"], acting_user=request.user)
        return _control_response(account)


# --- fees -------------------------------------------------------------------------------------------------


class MarketFeesSerializer(serializers.Serializer):
    market = serializers.CharField()
    maker_fee_rate = serializers.CharField(help_text="A fraction: 0.001 is 0.1%.")
    taker_fee_rate = serializers.CharField()


class VolumeSerializer(serializers.Serializer):
    asset = serializers.CharField(help_text="The quote asset of the markets traded.")
    volume = serializers.CharField(help_text="Notional traded as maker or taker, at the asset's precision.")


class FeesSerializer(serializers.Serializer):
    tier = serializers.CharField()
    volume_since = serializers.DateTimeField(help_text="The 30-day volume counts fills from this time on.")
    volume_30d = VolumeSerializer(many=True)
    markets = MarketFeesSerializer(many=True)

    def to_representation(self, instance) -> dict:
        return instance


class FeesView(generics.GenericAPIView):
    """Your fee tier, the maker and taker rates your next order gets in each market (your tier's schedule, else
    the market's rates), and what you traded in the last 30 days per quote asset."""

    serializer_class = FeesSerializer
    required_scopes = READ
    pagination_class = None
    queryset = Order.objects.none()

    def get(self, request):
        account = client_account_of(request)
        since = clock.now() - selectors.FEE_VOLUME_WINDOW
        volumes = selectors.volume_of(account=account, since=since)
        rates = selectors.fee_rates_of(account=account)
        precision = {fees.market.quote_id: fees.market.quote.precision for fees in rates}
        return Response({
            "tier": account.tier,
            "volume_since": iso(since),
            "volume_30d": [{"asset": asset, "volume": fixed(volume, precision[asset])}
                           for asset, volume in volumes.items()],
            "markets": [{"market": fees.market.symbol, "maker_fee_rate": _rate(fees.maker_fee_rate),
                         "taker_fee_rate": _rate(fees.taker_fee_rate)}
                        for fees in rates],
        })


def _rate(rate) -> str:
    return format(rate.normalize(), "f")
