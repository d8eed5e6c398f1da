"""The client API of the accounts domain: profile, funding, API keys and the audit log (thin: services and
selectors do the work). Every view is scoped to ``client_account_of(request)``: another account's objects
are simply not found (404)."""

from __future__ import annotations

from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import generics, serializers, status
from rest_framework.response import Response

from accounts import selectors, services
from accounts.activity import client_activity_of, client_view
from accounts.idempotency import HEADER, idempotent_response
from accounts.models import (
    ApiKey,
    AssetLimit,
    ClientAccount,
    Deposit,
    FundingStatus,
    Scope,
    Withdrawal,
    WithdrawalDestination,
)
from accounts.permissions import AccountScopedMixin, client_account_of, granted_scopes
from accounts.representations import FUNDING_FIELDS, account_data, api_key_data, funding_data
from audit.models import AuditLog
from core.api.serializers import StrictSerializer, validated
from ledger.serializers import AssetAmountField, AssetAmountValidationMixin, AssetField, DecimalStringField

# --- serializers ------------------------------------------------------------------------------------------


class AssetLimitSerializer(serializers.ModelSerializer):
    asset = AssetField(read_only=True)
    max_order_size = AssetAmountField(allow_null=True)
    daily_withdrawal_limit = AssetAmountField(allow_null=True)

    class Meta:
        model = AssetLimit
        fields = ["asset", "max_order_size", "daily_withdrawal_limit"]


class ClientAccountSerializer(serializers.ModelSerializer):
    limits = AssetLimitSerializer(source="asset_limits", many=True, read_only=True)
    username = serializers.SerializerMethodField()
    role = serializers.SerializerMethodField()
    scopes = serializers.SerializerMethodField(help_text="What this request's credential may do.")

    class Meta:
        model = ClientAccount
        fields = ["id", "legal_name", "kind", "status", "kyc_status", "tier", "can_trade", "can_withdraw",
                  "created_at", "limits", "username", "role", "scopes"]
        read_only_fields = fields

    def get_username(self, account) -> str:
        return self.context["request"].user.get_username()

    def get_role(self, account) -> str:
        return self.context["request"].user.membership.role

    def get_scopes(self, account) -> list[str]:
        return sorted(granted_scopes(self.context["request"]))

    def to_representation(self, instance) -> dict:
        # The account as events show it, plus what depends on the caller.
        return {**account_data(instance), "username": self.get_username(instance), "role": self.get_role(instance),
                "scopes": self.get_scopes(instance)}




class DepositSerializer(serializers.ModelSerializer):
    asset = AssetField(read_only=True)
    amount = AssetAmountField()

    class Meta:
        model = Deposit
        fields = FUNDING_FIELDS
        read_only_fields = fields

    def to_representation(self, instance) -> dict:
        return funding_data(instance)  # the fields above document it; events carry the same dict


class WithdrawalSerializer(DepositSerializer):
    class Meta:
        model = Withdrawal
        fields = FUNDING_FIELDS
        read_only_fields = fields


class FundingCreateSerializer(AssetAmountValidationMixin, StrictSerializer):
    asset = AssetField()
    amount = DecimalStringField(help_text='A positive decimal string at the asset\'s precision, e.g. "0.5".')
    blockchain_address = serializers.CharField(max_length=128, required=False, allow_blank=True, default="")
    bank_reference = serializers.CharField(max_length=128, required=False, allow_blank=True, default="")


class DepositCreateSerializer(FundingCreateSerializer):
    tx_hash = serializers.CharField(max_length=128, required=False, allow_blank=True, default="")


class ReasonSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class ApiKeySerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)
    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "username", "scopes", "allowed_ips", "is_active", "created_at",
                  "last_used_at", "revoked_at", "expires_at", "signing_required"]
        read_only_fields = fields

    def to_representation(self, instance) -> dict:
        return api_key_data(instance)  # the fields above document it; events carry the same dict


class ApiKeyCreatedSerializer(ApiKeySerializer):
    secret = serializers.CharField(read_only=True, help_text="The full key: shown in this response only.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "secret"]
        read_only_fields = fields

    def to_representation(self, instance) -> dict:
        return {**api_key_data(instance), "secret": instance.secret}


class ApiKeyCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=100, required=False, default="")
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=Scope.choices), allow_empty=False)
    allowed_ips = serializers.ListField(child=serializers.IPAddressField(), required=False, default=list)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None,
                                           help_text="Refused from this time on; omitted: never (or when the key "
                                                     "this request is made with expires).")
    signing_required = serializers.BooleanField(
        required=False, default=False,
        help_text="Every request of the new key must be signed (README: request signing).",
    )


class WithdrawalDestinationSerializer(serializers.ModelSerializer):
    asset = AssetField(read_only=True)

    class Meta:
        model = WithdrawalDestination
        fields = ["id", "asset", "address", "label", "usable_from", "created_at"]
        read_only_fields = fields


class WithdrawalDestinationCreateSerializer(StrictSerializer):
    asset = AssetField()
    address = serializers.CharField(max_length=128, help_text="Blockchain address, or bank reference for fiat.")
    label = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")


class AuditLogSerializer(serializers.ModelSerializer):
    """An entry of your account's activity (``accounts.activity``): what changed, as you may see it."""

    actor = serializers.SerializerMethodField(
        help_text="Your user (and API key) who acted, 'operations' for brokerage staff, or 'system'."
    )
    before = serializers.SerializerMethodField(help_text="The fields that changed, as they were.")
    after = serializers.SerializerMethodField(help_text="The fields that changed, as they became.")

    class Meta:
        model = AuditLog
        fields = ["id", "at", "actor", "action", "object_type", "object_id", "before", "after"]
        read_only_fields = fields

    def _by_member(self, entry) -> bool:
        return entry.actor_id is not None and entry.actor_id in self.context["member_ids"]

    def get_actor(self, entry) -> str:
        if entry.actor_id is None:
            return "system"
        return entry.actor_label if self._by_member(entry) else "operations"

    @extend_schema_field(serializers.DictField(allow_null=True))
    def get_before(self, entry) -> dict | None:
        return client_view(entry, entry.before, by_member=self._by_member(entry))

    @extend_schema_field(serializers.DictField(allow_null=True))
    def get_after(self, entry) -> dict | None:
        return client_view(entry, entry.after, by_member=self._by_member(entry))


# --- views ------------------------------------------------------------------------------------------------


class AccountView(generics.GenericAPIView):
    serializer_class = ClientAccountSerializer
    required_scopes = {"GET": Scope.READ}
    pagination_class = None

    def get(self, request):
        return Response(self.get_serializer(client_account_of(request)).data)


class FundingFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=FundingStatus.choices)


class DepositFilter(FundingFilter):
    class Meta:
        model = Deposit
        fields = ["status", "asset"]


class WithdrawalFilter(FundingFilter):
    class Meta:
        model = Withdrawal
        fields = ["status", "asset"]


class FundingListView(AccountScopedMixin, generics.ListAPIView):
    """Lists the account's deposits or withdrawals; POST requests one through ``request_service``."""

    required_scopes = {"GET": Scope.READ, "POST": Scope.TRANSFER}
    create_serializer: type[serializers.Serializer]
    request_service: staticmethod
    idempotency_key_required: bool

    def post(self, request):
        account = client_account_of(request)

        def execute(key):
            data = validated(self.create_serializer, request)
            created = self.request_service(account=account, acting_user=request.user, idempotency_key=key, **data)
            return Response(self.get_serializer(created).data, status=status.HTTP_201_CREATED)

        return idempotent_response(request, account=account, endpoint=f"{self.model._meta.model_name}s.create",
                                   required=self.idempotency_key_required, execute=execute)


def idempotency_header(*, required: bool) -> OpenApiParameter:
    return OpenApiParameter(HEADER, location=OpenApiParameter.HEADER, required=required,
                            description="Makes the request safe to retry: the same key and body replay the first "
                                        "response.")


@extend_schema_view(post=extend_schema(request=DepositCreateSerializer, responses={201: DepositSerializer},
                                       parameters=[idempotency_header(required=False)]))
class DepositListView(FundingListView):
    """Your deposits, newest first. POST notifies us of a deposit you are sending; operations complete it
    when the funds arrive, and only then is your balance credited. An optional Idempotency-Key makes the
    notification safe to retry."""

    model = Deposit
    serializer_class = DepositSerializer
    filterset_class = DepositFilter
    create_serializer = DepositCreateSerializer
    request_service = staticmethod(services.deposit_request)
    idempotency_key_required = False

    def account_queryset(self, account):
        return selectors.deposits_of(account=account)


class DepositDetailView(AccountScopedMixin, generics.RetrieveAPIView):
    model = Deposit
    serializer_class = DepositSerializer
    required_scopes = {"GET": Scope.READ}

    def account_queryset(self, account):
        return selectors.deposits_of(account=account)


@extend_schema_view(post=extend_schema(request=FundingCreateSerializer, responses={201: WithdrawalSerializer},
                                       parameters=[idempotency_header(required=True)]))
class WithdrawalListView(FundingListView):
    """Your withdrawals, newest first. POST requests one to a destination of your withdrawal address book
    (usable once its cool-off has passed): the amount is held from your available balance at once, and sent
    after operations approve it (two approvers when your withdrawals of the asset, or everything sent to that
    destination, in the last 24 hours exceed the four-eyes threshold). The
    Idempotency-Key header is required: the same key and body replays the first response; the same key with
    another body is a 409 `idempotency_conflict`."""

    model = Withdrawal
    serializer_class = WithdrawalSerializer
    filterset_class = WithdrawalFilter
    create_serializer = FundingCreateSerializer
    request_service = staticmethod(services.withdrawal_request)
    idempotency_key_required = True

    def account_queryset(self, account):
        return selectors.withdrawals_of(account=account)


class WithdrawalDetailView(AccountScopedMixin, generics.RetrieveAPIView):
    model = Withdrawal
    serializer_class = WithdrawalSerializer
    required_scopes = {"GET": Scope.READ}

    def account_queryset(self, account):
        return selectors.withdrawals_of(account=account)


class WithdrawalCancelView(AccountScopedMixin, generics.GenericAPIView):
    """Cancel a withdrawal operations have not approved yet; the held amount becomes available again.
    Cancelling a cancelled withdrawal returns it unchanged."""

    model = Withdrawal
    serializer_class = WithdrawalSerializer
    required_scopes = {"POST": Scope.TRANSFER}

    def account_queryset(self, account):
        return selectors.withdrawals_of(account=account)

    @extend_schema(request=ReasonSerializer, responses={200: WithdrawalSerializer})
    def post(self, request, pk):
        data = validated(ReasonSerializer, request)
        withdrawal = services.withdrawal_cancel(withdrawal=self.get_object(), acting_user=request.user, **data)
        return Response(WithdrawalSerializer(withdrawal).data)


class ApiKeyScopedMixin(AccountScopedMixin):
    """The keys the caller may see: their own, or every key of the account for an account admin."""

    model = ApiKey
    serializer_class = ApiKeySerializer

    def account_queryset(self, account):
        return selectors.api_keys_visible_to(user=self.request.user, account=account)


class ApiKeyListView(ApiKeyScopedMixin, generics.ListAPIView):
    """Your API keys (an account admin sees every key of the account). POST (scope `manage_keys`) creates a
    key for yourself: the secret is in that response only. A key can be given only scopes your role has and,
    when created with an API key, only scopes (and IPs) that key has; it expires no later than that key and is
    revoked with it. A user holds at most a configured number of active keys (`api_key_limit_reached`)."""

    required_scopes = {"GET": Scope.READ, "POST": Scope.MANAGE_KEYS}

    @extend_schema(request=ApiKeyCreateSerializer, responses={201: ApiKeyCreatedSerializer})
    def post(self, request):
        data = validated(ApiKeyCreateSerializer, request)
        issuing_key = request.auth if isinstance(request.auth, ApiKey) else None
        key, secret = services.api_key_create(user=request.user, issuing_key=issuing_key, acting_user=request.user,
                                              **data)
        key.secret = secret
        return Response(ApiKeyCreatedSerializer(key).data, status=status.HTTP_201_CREATED)


class ApiKeyDetailView(ApiKeyScopedMixin, generics.RetrieveAPIView):
    """One of the keys you may see (never its secret)."""

    required_scopes = {"GET": Scope.READ}


class ApiKeyRevokeView(ApiKeyScopedMixin, generics.GenericAPIView):
    """Revoke a key at once (your own, or any key of the account for an account admin), with every key
    created through it. Needs the `manage_keys` scope. POST only: a GET here is a 405."""

    required_scopes = {"POST": Scope.MANAGE_KEYS}

    @extend_schema(request=None, responses={200: ApiKeySerializer})
    def post(self, request, pk):
        validated(StrictSerializer, request)
        key = services.api_key_revoke(key=self.get_object(), acting_user=request.user)
        return Response(ApiKeySerializer(key).data)


class WithdrawalDestinationListView(AccountScopedMixin, generics.ListAPIView):
    """Your withdrawal address book: where each asset may be withdrawn to. POST (an account admin, scope
    `transfer`) adds a destination, usable for withdrawals only after the cool-off (`usable_from`); adding a
    listed one again returns it unchanged."""

    model = WithdrawalDestination
    serializer_class = WithdrawalDestinationSerializer
    required_scopes = {"GET": Scope.READ, "POST": Scope.TRANSFER}

    def account_queryset(self, account):
        return selectors.withdrawal_destinations_of(account=account)

    @extend_schema(request=WithdrawalDestinationCreateSerializer, responses={201: WithdrawalDestinationSerializer})
    def post(self, request):
        data = validated(WithdrawalDestinationCreateSerializer, request)
        destination = services.withdrawal_destination_add(account=client_account_of(request),
                                                          acting_user=request.user, **data)
        return Response(WithdrawalDestinationSerializer(destination).data, status=status.HTTP_201_CREATED)


class WithdrawalDestinationRemoveView(AccountScopedMixin, generics.GenericAPIView):
    """Take a destination off your address book at once (an account admin, scope `transfer`)."""

    model = WithdrawalDestination
    serializer_class = WithdrawalDestinationSerializer
    required_scopes = {"POST": Scope.TRANSFER}

    def account_queryset(self, account):
        return selectors.withdrawal_destinations_of(account=account)

    @extend_schema(request=None, responses={200: WithdrawalDestinationSerializer})
    def post(self, request, pk):
        validated(StrictSerializer, request)
        destination = services.withdrawal_destination_remove(destination=self.get_object(), acting_user=request.user)
        return Response(WithdrawalDestinationSerializer(destination).data)


class AuditLogFilter(filters.FilterSet):
    class Meta:
        model = AuditLog
        fields = ["action", "object_type"]


class AuditLogView(AccountScopedMixin, generics.ListAPIView):
    """Your account's activity, newest first: your own actions and their outcomes (who, when, what, before and
    after). Internal notes, compliance activity and staff identities are not part of it."""

    model = AuditLog
    serializer_class = AuditLogSerializer
    filterset_class = AuditLogFilter
    required_scopes = {"GET": Scope.READ}

    def account_queryset(self, account):
        return client_activity_of(account=account)

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if not getattr(self, "swagger_fake_view", False):
            context["member_ids"] = selectors.member_user_ids(account=client_account_of(self.request))
        return context
