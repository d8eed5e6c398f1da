from django.db import migrations, models


class Migration(migrations.Migration):
    """Dual control on deposits, in the database (after 0006 recorded who completed the deposits before it)."""

    dependencies = [
        ('accounts', '0007_security_dual_control_keys_address_book'),
    ]

    operations = [
        migrations.AddConstraint(
            model_name='deposit',
            constraint=models.CheckConstraint(condition=models.Q(('approved_by__isnull', True), models.Q(('approved_by', models.F('requested_by')), _negated=True), _connector='OR'), name='deposit_approver_not_requester'),
        ),
        migrations.AddConstraint(
            model_name='deposit',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('status__in', ['approved', 'completed']), _negated=True), ('approved_by__isnull', False), _connector='OR'), name='deposit_approved_has_approver'),
        ),
        migrations.AddConstraint(
            model_name='deposit',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('status', 'completed'), _negated=True), models.Q(('completed_by__isnull', False), models.Q(('completed_by', models.F('approved_by')), _negated=True)), _connector='OR'), name='deposit_completer_not_approver'),
        ),
    ]
