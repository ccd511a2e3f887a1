from django.apps import AppConfig


class VisualizeConfig(AppConfig):
    name = "visualize"
    default_auto_field = "django.db.models.BigAutoField"
