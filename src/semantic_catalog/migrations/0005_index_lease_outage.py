from django.db import migrations, models


class Migration(migrations.Migration):
    """Self-healing sync: the drain state records an outage of the store or the model (since when, the
    error, the next try) and the deferred drain already queued, so drains retry without being asked."""

    dependencies = [("semantic_catalog", "0004_product_match_plural")]

    operations = [
        migrations.AddField(
            model_name="indexlease",
            name="outage",
            field=models.CharField(
                blank=True, choices=[("", "none"), ("store", "Store"), ("model", "Model")], default="", max_length=10
            ),
        ),
        migrations.AddField(
            model_name="indexlease",
            name="outage_since",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="indexlease",
            name="outage_error",
            field=models.TextField(blank=True, default=""),
        ),
        migrations.AddField(
            model_name="indexlease",
            name="outage_retry_at",
            field=models.DateTimeField(
                blank=True, help_text="when a drain tries the store or the model again", null=True
            ),
        ),
        migrations.AddField(
            model_name="indexlease",
            name="retry_at",
            field=models.DateTimeField(blank=True, help_text="a deferred drain is queued for this time", null=True),
        ),
    ]
