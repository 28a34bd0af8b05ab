"""Two capabilities for the brand kit, granted to the built-in roles that held them in spirit.

Before them, personalising a template rode on "create local campaigns". Existing
built-in roles get the new grants so nobody loses what they could do.
"""

from django.db import migrations, models

NEW_GRANTS = {
    "hq_admin": ("personalise_templates", "add_unit_assets"),
    "region_manager": ("personalise_templates",),
    "unit_manager": ("personalise_templates", "add_unit_assets"),
}


def grant(apps, schema_editor):
    Role = apps.get_model("network", "Role")
    RoleGrant = apps.get_model("network", "RoleGrant")
    for role in Role.objects.filter(key__in=NEW_GRANTS, is_builtin=True):
        for capability in NEW_GRANTS[role.key]:
            RoleGrant.objects.get_or_create(role=role, capability=capability)


class Migration(migrations.Migration):

    dependencies = [
        ('network', '0002_row_security_setup'),
    ]

    operations = [
        migrations.AlterField(
            model_name='capabilityrule',
            name='capability',
            field=models.CharField(choices=[('manage_users', 'Manage users and roles'), ('manage_network', 'Manage the org tree and unit profiles'), ('manage_templates', 'Manage templates'), ('manage_assets', 'Manage assets'), ('personalise_templates', 'Personalise templates (local versions)'), ('add_unit_assets', "Add the unit's own assets"), ('create_national_campaigns', 'Create national campaigns'), ('approve_campaigns', 'Approve campaigns'), ('create_local_campaigns', 'Create local campaigns'), ('send_without_approval', 'Send without approval'), ('send_sms', 'Send SMS'), ('view_contacts', 'View contacts'), ('edit_contacts', 'Add and edit contacts'), ('erase_contacts', 'Erase contacts (GDPR)'), ('import_contacts', 'Import contacts'), ('export_contacts', 'Export contacts'), ('manage_segments', 'Build segments'), ('view_network_analytics', 'View network analytics')], max_length=40),
        ),
        migrations.AlterField(
            model_name='rolegrant',
            name='capability',
            field=models.CharField(choices=[('manage_users', 'Manage users and roles'), ('manage_network', 'Manage the org tree and unit profiles'), ('manage_templates', 'Manage templates'), ('manage_assets', 'Manage assets'), ('personalise_templates', 'Personalise templates (local versions)'), ('add_unit_assets', "Add the unit's own assets"), ('create_national_campaigns', 'Create national campaigns'), ('approve_campaigns', 'Approve campaigns'), ('create_local_campaigns', 'Create local campaigns'), ('send_without_approval', 'Send without approval'), ('send_sms', 'Send SMS'), ('view_contacts', 'View contacts'), ('edit_contacts', 'Add and edit contacts'), ('erase_contacts', 'Erase contacts (GDPR)'), ('import_contacts', 'Import contacts'), ('export_contacts', 'Export contacts'), ('manage_segments', 'Build segments'), ('view_network_analytics', 'View network analytics')], max_length=40),
        ),
        migrations.RunPython(grant, migrations.RunPython.noop),
    ]
