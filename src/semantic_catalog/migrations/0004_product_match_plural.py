from django.db import migrations


class Migration(migrations.Migration):
    """The admin says "product matches" (Django's default plural was "product matchs"); no table changes."""

    dependencies = [("semantic_catalog", "0003_collection_model")]

    operations = [
        migrations.AlterModelOptions(name="productmatch", options={"verbose_name_plural": "product matches"}),
    ]
