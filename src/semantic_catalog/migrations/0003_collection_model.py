from django.db import migrations, models


class Migration(migrations.Migration):
    """The embedding model's name is ``model`` everywhere (it was ``Collection.encoder``)."""

    dependencies = [("semantic_catalog", "0002_analysis_results")]

    operations = [
        migrations.RenameField(model_name="collection", old_name="encoder", new_name="model"),
        migrations.AlterField(
            model_name="collection",
            name="model",
            field=models.CharField(help_text="name of the embedding model whose vectors the table holds", max_length=200),
        ),
    ]
